"""The one shape every validation finding takes, whoever raises it (SDTM or ADaM schema, rule, reader).

A finding names the record a data manager must fix: dataset, USUBJID, --SEQ (as SEQ), the
variable and its value, with the rule id, severity and a message saying what is wrong.
"""
from __future__ import annotations

import pandas as pd

SEVERITIES = ("ERROR", "WARNING", "NOTICE")
COLUMNS = ["RULE", "SEVERITY", "DATASET", "USUBJID", "SEQ", "VARIABLE", "VALUE", "MESSAGE"]


def findings_frame(rows=None) -> pd.DataFrame:
    """An empty (or filled) findings frame with the standard columns, in order."""
    df = pd.DataFrame(rows if rows is not None else [], columns=COLUMNS)
    return df.astype({"SEQ": "float64"}) if len(df) else df


def make_findings(rule: str, severity: str, dataset: str, records: pd.DataFrame, variable: str,
                  message: str | pd.Series) -> pd.DataFrame:
    """Findings for the `records` (rows of `dataset`) that break `rule`, vectorised."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity {severity!r} is not one of {SEVERITIES}")
    n = len(records)
    if n == 0:
        return findings_frame()
    seq_var = f"{dataset}SEQ"
    seq = records[seq_var] if seq_var in records else pd.Series(float("nan"), index=records.index)
    return pd.DataFrame({
        "RULE": rule, "SEVERITY": severity, "DATASET": dataset,
        "USUBJID": records["USUBJID"].astype(str) if "USUBJID" in records else "",
        "SEQ": pd.to_numeric(seq, errors="coerce").astype("float64"),
        "VARIABLE": variable,
        "VALUE": records[variable].astype(str) if variable in records else "",
        "MESSAGE": message,
    }, columns=COLUMNS).reset_index(drop=True)
