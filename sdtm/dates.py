"""ISO 8601 date/times and SDTM study days, vectorised."""
from __future__ import annotations

import numpy as np
import pandas as pd

_FULL_DATE = r"^\d{4}-\d{2}-\d{2}"


def combine(date: pd.Series, time: pd.Series | None) -> pd.Series:
    """'2025-03-07' + '14:30' -> '2025-03-07T14:30'; a partial date keeps no time (ISO 8601
    cannot carry a time without a full date)."""
    date = date.fillna("").astype(str)
    if time is None:
        return date.astype(object)
    time = time.fillna("").astype(str)
    full = date.str.match(_FULL_DATE) & (date.str.len() == 10) & (time != "")
    return date.where(~full, date + "T" + time).astype(object)


def to_datetime(dtc: pd.Series) -> pd.Series:
    """The date part of full ISO dates as datetime64; NaT for partial or empty values."""
    text = dtc.fillna("").astype(str).str[:10]
    ok = text.str.match(r"^\d{4}-\d{2}-\d{2}$")
    return pd.to_datetime(text.where(ok), format="%Y-%m-%d", errors="coerce")


def study_day(dtc: pd.Series, ref: pd.Series) -> pd.Series:
    """SDTMIG --DY: (date - reference) + 1 on or after the reference start date, (date -
    reference) before it, so there is no day 0; NaN when either date is not a full date."""
    days = (to_datetime(dtc) - to_datetime(ref)).dt.days
    return pd.Series(np.where(days >= 0, days + 1, days), index=dtc.index, dtype="float64")
