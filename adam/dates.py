"""ISO 8601 --DTC text to analysis dates and datetimes, with imputation flags.

admiral's `derive_vars_dt` / `derive_vars_dtm` grammar. SDTM keeps what was collected, so
dates may be partial ("2025-03", "2025") and times optional ("2025-03-07T14:30"). Imputation
is never silent: a date completed from a partial one carries `--DTF` (ADaM CT C81223: "D" the
day was imputed, "M" month and day, "Y" year, month and day); a time completed carries `--TMF`
("H", "M", "S"). Everything is vectorised: the text is split into parts once.

`highest_imputation` says how much may be imputed: "n" nothing (a partial date gives no date),
"D" the day, "M" the month and day (the usual setting for AE and death dates). `date_imputation`
is "first" (start dates) or "last" (end dates); `min_dates` / `max_dates` bound an imputed
date — e.g. an AE start imputed to the first of the month is moved to the treatment start if
that is later in the same month, and no imputed date passes death or the data cut-off.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

_ISO = (r"^(?P<Y>\d{4})(?:-(?P<M>\d{2})(?:-(?P<D>\d{2})"
        r"(?:T(?P<h>\d{2})(?::(?P<m>\d{2})(?::(?P<s>\d{2}(?:\.\d+)?))?)?)?)?)?$")
_IMPUTE = {"n": 0, "D": 1, "M": 2, "Y": 3}


def _parts(dtc: pd.Series) -> pd.DataFrame:
    text = dtc.astype(object).where(dtc.notna(), "").astype(str).str.strip()
    uniq = pd.Series(text.unique())
    # SDTM repeats values heavily: parse the distinct ones and map back
    parsed = uniq.str.extract(_ISO).set_index(uniq)
    return parsed.reindex(text.to_numpy()).set_axis(dtc.index)


def compute_dt(dtc: pd.Series, highest_imputation: str = "n", date_imputation: str = "first",
               min_dates: list[pd.Series] | None = None, max_dates: list[pd.Series] | None = None
               ) -> tuple[pd.Series, pd.Series]:
    """(date as datetime64 at midnight, imputation flag '' / 'D' / 'M' / 'Y') for ISO text."""
    if highest_imputation not in _IMPUTE or date_imputation not in ("first", "last"):
        raise ValueError("highest_imputation is one of n, D, M, Y; date_imputation first or last")
    p = _parts(dtc)
    level = _IMPUTE[highest_imputation]
    has_y, has_m, has_d = p.Y.notna(), p.M.notna(), p.D.notna()
    flag = np.select([has_d, has_m, has_y], ["", "D", "M"], default="")
    flag = np.where(has_y & ~has_m & ~has_d & (level >= 3), "Y", flag)
    allowed = np.select([has_d, has_m & (level >= 1), has_y & (level >= 2)], [True, True, True], default=False)
    month = p.Y + "-" + p.M.fillna("01" if date_imputation == "first" else "12")
    start = pd.to_datetime(month + "-" + p.D.fillna("01"), format="%Y-%m-%d", errors="coerce")
    if date_imputation == "last":
        month_end = pd.to_datetime(month + "-01", format="%Y-%m-%d", errors="coerce") + pd.offsets.MonthEnd(0)
        start = start.where(has_d, month_end)
    out = start.where(allowed)
    flag = pd.Series(np.where(out.notna(), flag, ""), index=dtc.index, dtype=object)
    imputed = flag != ""
    for bound in min_dates or []:
        # only an imputed date moves, and only within what the collected part allows
        later = imputed & bound.notna() & (bound > out) & _same_period(bound, p, has_m)
        out = out.where(~later, bound.dt.normalize())
    for bound in max_dates or []:
        earlier = imputed & bound.notna() & (bound < out)
        out = out.where(~earlier, bound.dt.normalize())
    return out, flag


def _same_period(bound: pd.Series, p: pd.DataFrame, has_m: pd.Series) -> pd.Series:
    ym = bound.dt.strftime("%Y-%m")
    return (ym.str.slice(0, 4) == p.Y) & ((ym.str.slice(5, 7) == p.M) | ~has_m)


_TIME_LEVELS = {"n": 0, "s": 1, "m": 2, "h": 3, "D": 4, "M": 5, "Y": 6}


def compute_dtm(dtc: pd.Series, highest_imputation: str = "n", date_imputation: str = "first",
                time_imputation: str = "first") -> tuple[pd.Series, pd.Series, pd.Series]:
    """(datetime, date flag, time flag) for ISO text. `highest_imputation` as admiral's:
    "n" nothing, "s" seconds, "m" minutes, "h" hours (a date without time gets 00:00:00 or
    23:59:59), "D"/"M"/"Y" the date parts too. The time flag is the highest part imputed:
    'H', 'M' or 'S'."""
    if highest_imputation not in _TIME_LEVELS or time_imputation not in ("first", "last"):
        raise ValueError("highest_imputation is one of n, s, m, h, D, M, Y; time_imputation first or last")
    level = _TIME_LEVELS[highest_imputation]
    date_level = {4: "D", 5: "M", 6: "Y"}.get(level, "n")
    date, dflag = compute_dt(dtc, date_level, date_imputation)
    p = _parts(dtc)
    tflag = pd.Series(np.select([p.h.isna(), p.m.isna(), p.s.isna()], ["H", "M", "S"], default=""),
                      index=dtc.index, dtype=object)
    needs = tflag.map({"": 0, "S": 1, "M": 2, "H": 3})
    fill = ("00", "00", "00") if time_imputation == "first" else ("23", "59", "59")
    seconds = (p.h.fillna(fill[0]).astype(float) * 3600 + p.m.fillna(fill[1]).astype(float) * 60
               + p.s.fillna(fill[2]).astype(float).round(0))
    out = (date + pd.to_timedelta(seconds, unit="s")).where(date.notna() & (needs <= level))
    tflag = tflag.where(out.notna(), "")
    dflag = dflag.where(out.notna(), "")
    return out, dflag, tflag


def compute_study_day(date: pd.Series, ref: pd.Series) -> pd.Series:
    """SDTMIG/ADaM study day: date - ref + 1 on or after ref, date - ref before it (no day 0)."""
    d = (pd.to_datetime(date) - pd.to_datetime(ref)).dt.days
    return d.where(d < 0, d + 1).astype("float64")


def derive_vars_dt(dataset: pd.DataFrame, new_prefix: str, dtc: str, *, highest_imputation: str = "n",
                   date_imputation: str = "first", flag: bool | None = None,
                   min_dates: list[str] | None = None, max_dates: list[str] | None = None) -> pd.DataFrame:
    """Add `<prefix>DT` (and `<prefix>DTF` when imputation is allowed, or `flag=True`)."""
    out = dataset.copy()
    value, dtf = compute_dt(out[dtc], highest_imputation, date_imputation,
                            [out[c] for c in min_dates or []], [out[c] for c in max_dates or []])
    out[f"{new_prefix}DT"] = value
    if flag if flag is not None else highest_imputation != "n":
        out[f"{new_prefix}DTF"] = dtf
    return out


def derive_vars_dtm(dataset: pd.DataFrame, new_prefix: str, dtc: str, *, highest_imputation: str = "n",
                    date_imputation: str = "first", time_imputation: str = "first",
                    flags: bool = False) -> pd.DataFrame:
    """Add `<prefix>DTM` (and `<prefix>DTF`/`<prefix>TMF` with `flags=True`)."""
    out = dataset.copy()
    value, dtf, tmf = compute_dtm(out[dtc], highest_imputation, date_imputation, time_imputation)
    out[f"{new_prefix}DTM"] = value
    if flags:
        out[f"{new_prefix}DTF"], out[f"{new_prefix}TMF"] = dtf, tmf
    return out
