"""The finding shape lives in `clinpipe.findings` (SDTM and ADaM validation share it)."""
from clinpipe.findings import COLUMNS, SEVERITIES, findings_frame, make_findings

__all__ = ["COLUMNS", "SEVERITIES", "findings_frame", "make_findings"]
