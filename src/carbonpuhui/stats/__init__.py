"""Pilot statistics: organisations' divisions and industries, export shipments, indicators with
disclosure control, and the pilot cities' quarterly reports."""
