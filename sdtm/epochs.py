"""EPOCH from the subject's elements (SE): the element whose [start, end) holds the date."""
from __future__ import annotations

import pandas as pd

from sdtm import dates


def epoch_of(usubjid: pd.Series, dtc: pd.Series, elements: pd.DataFrame | None) -> pd.Series:
    out = pd.Series("", index=dtc.index, dtype=object)
    if elements is None or elements.empty:
        return out
    when = dates.to_datetime(dtc)
    rec = pd.DataFrame({"USUBJID": usubjid, "when": when}).dropna(subset=["when"])
    if rec.empty:
        return out
    se = elements.assign(start=dates.to_datetime(elements["SESTDTC"]),
                         end=dates.to_datetime(elements["SEENDTC"]))
    se = se.dropna(subset=["start"]).sort_values("start")
    merged = pd.merge_asof(rec.reset_index().sort_values("when"), se[["USUBJID", "start", "end", "EPOCH"]],
                           left_on="when", right_on="start", by="USUBJID",
                           direction="backward").set_index("index")
    # SDTMIG: a date on the day one element ends and the next starts belongs to the next.
    inside = merged["end"].isna() | (merged["when"] <= merged["end"])
    out.loc[merged.index[inside]] = merged.loc[inside, "EPOCH"].fillna("")
    return out
