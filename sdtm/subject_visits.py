"""SV (Subject Visits): one record per subject and visit actually done, from every mapped
record that carries VISITNUM (EX included, so dosing-only visits such as Day -4 are visits):
start/end = earliest/latest of the records' dates; SVPRESP/SVOCCUR "Y" on planned visits."""
from __future__ import annotations

import numpy as np
import pandas as pd

from sdtm import dates

_KEYS = ["STUDYID", "USUBJID", "VISITNUM", "VISIT"]


def visit_records(name: str, df: pd.DataFrame) -> pd.DataFrame | None:
    """What SV takes from one domain: STUDYID, USUBJID, VISITNUM, VISIT and the date (--DTC,
    else --STDTC, as DTC) of its records with a VISITNUM; None when it has no visits."""
    dtc = f"{name}DTC" if f"{name}DTC" in df.columns else f"{name}STDTC"
    if "VISITNUM" not in df.columns or dtc not in df.columns:
        return None
    has = df["VISITNUM"].notna().to_numpy()
    return pd.DataFrame({c: df[s][has] for c, s in zip([*_KEYS, "DTC"], [*_KEYS, dtc])})


def build_sv(datasets: dict[str, pd.DataFrame], dm: pd.DataFrame,
             unscheduled_prefix: str = "UNSCHEDULED") -> pd.DataFrame:
    """SV from the mapped domains (in their order)."""
    return sv_from_visits([visit_records(n, d) for n, d in datasets.items()], dm, unscheduled_prefix)


def sv_from_visits(parts: list[pd.DataFrame | None], dm: pd.DataFrame,
                   unscheduled_prefix: str = "UNSCHEDULED") -> pd.DataFrame:
    """SV from each domain's `visit_records`, in domain order (a domain mapped in another
    process sends only these)."""
    parts = [v for v in parts if v is not None]
    if not parts:
        return pd.DataFrame()
    rec = {c: pd.concat([v[c] for v in parts], ignore_index=True) for c in [*_KEYS, "DTC"]}
    sv = _visit_spans(rec)
    sv["DOMAIN"] = "SV"
    ref = sv["USUBJID"].map(dm.set_index("USUBJID")["RFSTDTC"])
    sv["SVSTDY"] = dates.study_day(sv["SVSTDTC"], ref)
    sv["SVENDY"] = dates.study_day(sv["SVENDTC"], ref)
    unplanned = sv["VISIT"].str.startswith(unscheduled_prefix)
    # SDTMIG 3.4 SV: SVPRESP "Y" for planned visits (those in TV), null for unplanned ones;
    # SVOCCUR records whether a planned visit occurred, null for unplanned visits. SV holds
    # only visits that took place, so every planned visit here occurred.
    sv["SVPRESP"] = np.where(unplanned, "", "Y")
    sv["SVOCCUR"] = np.where(unplanned, "", "Y")
    sv["SVUPDES"] = np.where(unplanned, "Unscheduled visit", "")
    return sv


def _visit_spans(rec: dict[str, pd.Series]) -> pd.DataFrame:
    """One row per (STUDYID, USUBJID, VISITNUM, VISIT) with the earliest and latest full date
    of its records ('' when none is dated), ordered by USUBJID, VISITNUM.

    Millions of records hold a few thousand distinct dates and visits: the text work is done
    on the distinct values, the grouping on their integer codes (ISO dates sort as text, so
    a sorted code's min/max is the text's min/max). Row order follows what a sorted groupby
    of the dated visits followed by the undated ones in order of appearance gives."""
    dtc_codes, dtc_values = pd.factorize(rec["DTC"])
    distinct = pd.Series(dtc_values, dtype=object)
    day = distinct.str[:10].where(distinct.str.match(r"^\d{4}-\d{2}-\d{2}"), "")
    day_codes, days = pd.factorize(day, sort=True)
    # a missing DTC (code -1) is undated, like ''
    undated_code = -1
    if len(days) and days[0] == "":
        undated_code = 0
    row_day = np.append(day_codes, undated_code)[dtc_codes]

    n = len(row_day)
    key_codes, sizes = [], []
    for c in _KEYS:
        codes, uniques = pd.factorize(rec[c], sort=True)
        codes = codes.astype(np.int64)
        codes[codes < 0] = len(uniques)      # a missing key value: its own code, sorted last
        key_codes.append(codes)
        sizes.append(len(uniques) + 1)
    if np.prod(np.array(sizes, dtype=float)) < 2.0 ** 62:
        combined = np.zeros(n, dtype=np.int64)
        for codes, size in zip(key_codes, sizes):
            combined = combined * size + codes
    else:   # too many distinct keys for one int64: let pandas number the groups
        combined = pd.DataFrame(dict(enumerate(key_codes))).groupby(list(range(4))).ngroup().to_numpy()
    group, group_keys = pd.factorize(combined)           # groups numbered in order of appearance
    n_groups = len(group_keys)
    sorted_rank = np.empty(n_groups, dtype=np.int64)
    sorted_rank[np.argsort(group_keys, kind="stable")] = np.arange(n_groups)
    first_row = np.full(n_groups, n, dtype=np.int64)
    np.minimum.at(first_row, group, np.arange(n))

    dated = row_day != undated_code
    lo = np.full(n_groups, len(days), dtype=np.int64)
    hi = np.full(n_groups, -1, dtype=np.int64)
    np.minimum.at(lo, group[dated], row_day[dated])
    np.maximum.at(hi, group[dated], row_day[dated])
    has_date = hi >= 0

    tie = np.where(has_date, sorted_rank, np.arange(n_groups))
    order = np.lexsort((tie, ~has_date, key_codes[2][first_row], key_codes[1][first_row]))
    rows = first_row[order]
    span = np.append(np.asarray(days, dtype=object), "")
    sv = pd.DataFrame({c: rec[c].take(rows).reset_index(drop=True) for c in _KEYS})
    sv["SVSTDTC"] = span[np.where(has_date, lo, len(days))[order]]
    sv["SVENDTC"] = span[np.where(has_date, hi, len(days))[order]]
    return sv
