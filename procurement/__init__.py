"""Tenders, sealed bids and their evaluation (a Litestar plugin); calls ``scoring``."""

from procurement.plugin import ProcurementPlugin

__all__ = ["ProcurementPlugin"]
