"""VISITNUM, VISIT and VISITDY from the EDC folder and the study's schedule.

Scheduled folders take the schedule's VISITNUM and name. An unscheduled folder (study.yaml
`edc_folders.unscheduled`) takes the VISITNUM of the last scheduled visit the subject had
before it plus 0.01 per repeat, and VISIT "UNSCHEDULED <n>" — the common sponsor convention
that keeps VISITNUM one-to-one with VISIT. Non-visit folders (logs, end of study) get none.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from edc.codes import factorize
from sdtm import dates


def planned_study_day(day: int) -> int:
    """Schedule day (Day 0 = anchor) -> SDTM planned study day (no day 0)."""
    return day + 1 if day >= 0 else day


def visit_columns(study, src: pd.DataFrame, unscheduled: pd.Series) -> dict[str, pd.Series]:
    """VISITNUM/VISIT/VISITDY of the source rows; `unscheduled` is the study-level numbering
    of unscheduled folder instances (see `unscheduled_visits`)."""
    sched = study.visit_by_folder
    folder = src["FOLDER"]
    num = folder.map({f: v.visitnum for f, v in sched.items()})
    name = folder.map({f: v.name.upper() for f, v in sched.items()})
    vday = folder.map({f: float(planned_study_day(v.day)) for f, v in sched.items()
                       if v.anchor == study.visits[0].anchor})
    uns = folder == study.edc_folders.unscheduled
    if uns.any():
        keys = pd.MultiIndex.from_arrays([src.loc[uns, "SUBJECT"], src.loc[uns, "FOLDERSEQ"]])
        unum = pd.Series(unscheduled.reindex(keys).to_numpy(), index=src.index[uns])
        num = num.where(~uns, unum)
        name = name.where(~uns, "UNSCHEDULED " + unum.map(lambda v: f"{v:.2f}" if pd.notna(v) else ""))
    return {"VISITNUM": num.astype("float64"), "VISIT": name.fillna("").astype(object),
            "VISITDY": vday.astype("float64")}


def unscheduled_visits(study, forms, active: dict[str, pd.DataFrame]) -> pd.Series:
    """VISITNUM of every unscheduled folder instance, numbered once for the whole study so
    every domain agrees: (SUBJECT, FOLDERSEQ) -> latest scheduled VISITNUM the subject had
    on or before the instance's date + 0.01 per unscheduled instance after that visit, in
    date order. An instance is dated by the earliest full date of any of its records."""
    sched = study.visit_by_folder
    unsched = study.edc_folders.unscheduled
    # per form, the dated records of visit folders as arrays: no frame of every record is built
    parts = []
    for form in forms.forms:
        frame = active.get(form.oid)
        first_date = next((f.oid for f in form.fields if f.type == "date"), None)
        if frame is None or first_date is None or frame.empty:
            continue
        folder = frame["FOLDER"]
        keep = (folder.isin(sched) | (folder == unsched)).to_numpy()
        # a few hundred distinct dates per form: parsed once each
        codes, distinct = factorize(frame[first_date])
        when = dates.to_datetime(pd.Series(distinct, dtype=frame[first_date].dtype)).to_numpy()[codes]
        keep &= ~np.isnat(when)
        parts.append((frame["SUBJECT"].to_numpy()[keep], folder.to_numpy()[keep],
                      frame["FOLDERSEQ"].to_numpy()[keep], when[keep]))
    empty = pd.Series(dtype="float64", index=pd.MultiIndex.from_arrays([[], []]))
    if not parts:
        return empty
    subject, folder, folderseq, when = (np.concatenate(column) for column in zip(*parts))
    is_uns = folder == unsched
    inst = (pd.DataFrame({"SUBJECT": subject[is_uns], "FOLDERSEQ": folderseq[is_uns], "WHEN": when[is_uns]})
            .groupby(["SUBJECT", "FOLDERSEQ"], as_index=False)["WHEN"].min().sort_values("WHEN"))
    if inst.empty:
        return empty
    num = pd.Series(folder[~is_uns], dtype=object).map({f: v.visitnum for f, v in sched.items()})
    visits = pd.DataFrame({"SUBJECT": subject[~is_uns], "NUM": num.to_numpy(), "WHEN": when[~is_uns]})
    visits = visits.groupby(["SUBJECT", "NUM"], as_index=False)["WHEN"].min().sort_values("WHEN")
    merged = pd.merge_asof(inst, visits, on="WHEN", by="SUBJECT", direction="backward")
    merged["NUM"] = merged["NUM"].fillna(min(v.visitnum for v in study.visits))
    merged = merged.sort_values(["SUBJECT", "NUM", "WHEN", "FOLDERSEQ"], kind="stable")
    merged["K"] = merged.groupby(["SUBJECT", "NUM"]).cumcount() + 1
    merged["VISITNUM"] = (merged["NUM"] + 0.01 * merged["K"]).round(2)
    return merged.set_index(["SUBJECT", "FOLDERSEQ"])["VISITNUM"]
