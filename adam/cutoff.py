"""The data cut-off: records dated after it are left out of every ADaM dataset (SAP §3).

A record's date is its --DTC (findings) or --STDTC (events, interventions); a partial date is
after the cut-off only when its earliest possible day is ("2025-06" is after 2025-05-27,
"2025-05" is not). Records without a date stay (they cannot be placed after it). DM is kept
whole, but a death dated after the cut-off is not yet known at the cut-off, so DTHDTC/DTHFL are
cleared. What was left out is counted per dataset for the run's report.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from adam.dates import compute_dt


def record_date_var(df: pd.DataFrame, dataset: str) -> str | None:
    for suffix in ("DTC", "STDTC"):
        name = f"{dataset}{suffix}"
        if name in df.columns:
            return name
    return None


def after_cutoff(dtc: pd.Series, cutoff: dt.date) -> np.ndarray:
    earliest, _ = compute_dt(dtc, "M", "first")
    return (earliest > pd.Timestamp(cutoff)).to_numpy()


class CutoffView:
    """The SDTM datasets as of the cut-off, read on first use; `dropped` counts, per dataset,
    the records left out."""

    def __init__(self, sdtm, cutoff: dt.date):
        self.sdtm, self.cutoff = sdtm, cutoff
        self.dropped: dict[str, int] = {}
        self._cache: dict[str, pd.DataFrame] = {}

    def get(self, name: str, required: tuple[str, ...] = ()) -> pd.DataFrame:
        if name not in self._cache:
            df = self.sdtm.get(name, required)
            if name == "DM" and "DTHDTC" in df.columns:
                late = after_cutoff(df.DTHDTC, self.cutoff)
                df = df.copy()
                df.loc[late, "DTHDTC"] = ""
                if "DTHFL" in df.columns:
                    df.loc[late, "DTHFL"] = ""
                self.dropped["DM.DTHDTC"] = int(late.sum())
            elif (var := record_date_var(df, name)) is not None:
                late = after_cutoff(df[var], self.cutoff)
                self.dropped[name] = int(late.sum())
                df = df[~late].reset_index(drop=True)
            self._cache[name] = df
        else:
            self.sdtm.get(name, required)   # still check the variables asked for
        return self._cache[name]

    def has(self, name: str) -> bool:
        return self.sdtm.has(name)

    def names(self) -> list[str]:
        return sorted(self.sdtm.files)
