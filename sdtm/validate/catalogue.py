"""Every rule the SDTM validator runs, as reviewers expect a rules sheet: id, severity, what it
checks and the SDTMIG / FDA source, with this run's number of findings. Built from the rule
registries themselves (`schemas.SCHEMA_RULES`, `rules.RULES`, the XPT-SYNC check of `load`), so
the sheet cannot drift from the checks."""
from __future__ import annotations

import pandas as pd

from sdtm.validate.load import SYNC_CHECKS, SYNC_RULE, SYNC_SEVERITY, SYNC_SOURCE
from sdtm.validate.rules import RULES
from sdtm.validate.schemas import SCHEMA_RULES

COLUMNS = ["RULE", "SEVERITY", "CHECKS", "SOURCE", "FINDINGS", "OPEN"]


def rule_catalogue(findings: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per rule in run order (file, schema, cross-dataset rules); FINDINGS and OPEN
    (not waived) count this run's findings of the rule, 0 where it found nothing."""
    rows = [(SYNC_RULE, SYNC_SEVERITY, SYNC_CHECKS, SYNC_SOURCE)]
    rows += [(rule, *facts) for rule, facts in SCHEMA_RULES.items()]
    rows += [(r.id, r.severity, r.description, r.mirrors) for r in RULES]
    out = pd.DataFrame(rows, columns=COLUMNS[:4])
    found = findings if findings is not None and len(findings) else None
    total = found.groupby("RULE").size() if found is not None else pd.Series(dtype=int)
    still = (found[found["WAIVED"] != "Y"].groupby("RULE").size()
             if found is not None and "WAIVED" in found.columns else total)
    out["FINDINGS"] = out["RULE"].map(total).fillna(0).astype(int)
    out["OPEN"] = out["RULE"].map(still).fillna(0).astype(int)
    return out
