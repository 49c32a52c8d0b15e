"""File formats, each with its reader and writer: the register and treasury CSVs, the tokens file,
and the reconciliation report's HTML page."""
