"""PACT (WBCSD Pathfinder) Technical Specifications v2.3: the ProductFootprint data model, its
events and errors, and the export/import between it and the platform's footprints."""
