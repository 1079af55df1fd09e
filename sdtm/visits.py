"""VISITNUM, VISIT and VISITDY from the EDC folder and the study's schedule.

Scheduled folders take the schedule's VISITNUM and name. An unscheduled folder (study.yaml
`edc_folders.unscheduled`) takes the VISITNUM of the last scheduled visit the subject had
before it plus 0.01 per repeat, and VISIT "UNSCHEDULED <n>" — the common sponsor convention
that keeps VISITNUM one-to-one with VISIT. Non-visit folders (logs, end of study) get none.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from sdtm import dates


def planned_study_day(day: int) -> int:
    """Schedule day (Day 0 = anchor) -> SDTM planned study day (no day 0)."""
    return day + 1 if day >= 0 else day


def visit_columns(study, src: pd.DataFrame, out: pd.DataFrame) -> dict[str, pd.Series]:
    sched = study.visit_by_folder
    folder = src["FOLDER"]
    num = folder.map({f: v.visitnum for f, v in sched.items()})
    name = folder.map({f: v.name.upper() for f, v in sched.items()})
    vday = folder.map({f: float(planned_study_day(v.day)) for f, v in sched.items()
                       if v.anchor == study.visits[0].anchor})
    uns = folder == study.edc_folders.unscheduled
    if uns.any():
        num, name = _unscheduled(study, src, out, uns, num, name)
    return {"VISITNUM": num.astype("float64"), "VISIT": name.fillna("").astype(object),
            "VISITDY": vday.astype("float64")}


def _unscheduled(study, src, out, uns, num, name):
    """Number each unscheduled visit after the subject's latest scheduled visit before it."""
    subj = out["USUBJID"] if "USUBJID" in out else src["SUBJECT"]
    when = _visit_dates(out, src)
    sched_rows = pd.DataFrame({"subj": subj, "when": when, "num": num})[~uns & num.notna()]
    sched_rows = sched_rows.dropna(subset=["when"]).sort_values("when")
    base = pd.Series(np.nan, index=src.index)
    targets = pd.DataFrame({"subj": subj, "when": when})[uns].dropna(subset=["when"]).sort_values("when")
    if len(targets) and len(sched_rows):
        merged = pd.merge_asof(targets.reset_index(), sched_rows, on="when", by="subj",
                               direction="backward").set_index("index")
        base.loc[merged.index] = merged["num"]
    base = base.fillna(min(v.visitnum for v in study.visits))
    seq = pd.to_numeric(src["FOLDERSEQ"], errors="coerce").fillna(1)
    unum = (base + 0.01 * seq).round(2)
    num = num.where(~uns, unum)
    name = name.where(~uns, "UNSCHEDULED " + unum.map(lambda v: f"{v:.2f}"))
    return num, name


def _visit_dates(out: pd.DataFrame, src: pd.DataFrame) -> pd.Series:
    """The record's own date: the first --DTC variable mapped so far."""
    dtc = [c for c in out.columns if c.endswith("DTC")]
    if not dtc:
        return pd.Series(pd.NaT, index=src.index)
    return dates.to_datetime(out[dtc[0]])
