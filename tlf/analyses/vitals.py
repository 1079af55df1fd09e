"""Vital-sign and ECG abnormalities: subjects with a post-baseline value meeting each of the
ADaM's abnormality criteria (ADVS/ADEG CRITy/CRITyFL, from adam/metadata/vs_eg_abnormal.csv,
each criterion cited there), by dose level.

The criteria's wording is the ADaM's CRITy text, so a sponsor changing a threshold changes the
metadata once and this table follows.
"""
from __future__ import annotations

import re

import pandas as pd

from tlf.analyses.base import Result, count_subjects, denominators, layout_rows, records_of
from tlf.context import TlfInputError

METHOD = "Subjects counted once per criterion, at any post-baseline value meeting it."
_CRIT = re.compile(r"^CRIT(\d+)$")


def criteria_records(ctx, spec, dataset: str, flag: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The `flag` records of `dataset` that meet a criterion (long over y: PARAMCD, VARLVL
    'CRITy', CRIT text), and the criteria (PARAMCD, PARAM, PARAMN, y, CRIT) in display order."""
    df = ctx.dataset(dataset)
    ys = sorted(int(m.group(1)) for c in df.columns if (m := _CRIT.match(c)))
    need = ["USUBJID", "ASEQ", "PARAMCD", "PARAM", "PARAMN", flag,
            *[v for y in ys for v in (f"CRIT{y}", f"CRIT{y}FL")]]
    df = ctx.dataset(dataset, need)
    if not ys:
        raise TlfInputError(f"output {spec.id}: {dataset} has no CRITy/CRITyFL variables",
                            hint="the abnormality criteria come from adam/metadata/vs_eg_abnormal.csv")
    hits, crits = [], []
    for y in ys:
        text, fl = f"CRIT{y}", f"CRIT{y}FL"
        defined = df[df[text].fillna("") != ""]
        crits.append(defined[["PARAMCD", "PARAM", "PARAMN", text]]
                     .drop_duplicates(["PARAMCD", text]).rename(columns={text: "CRIT"})
                     .assign(Y=y))
        met = defined[(defined[flag] == "Y") & (defined[fl] == "Y")]
        hits.append(met.assign(VARLVL=text, CRIT=met[text]))
    crit = (pd.concat(crits, ignore_index=True)
            .sort_values(["PARAMN", "PARAMCD", "Y"], kind="stable").reset_index(drop=True))
    recs = records_of(pd.concat(hits, ignore_index=True), dataset)
    return recs, crit.assign(DATASET=dataset)


def abnormalities(ctx, spec) -> Result:
    """params: datasets (default [ADVS, ADEG]), flag (ONTRTFL: post-baseline on treatment).
    Percentages are of the population N of the dose level."""
    p = spec.params
    flag = p.get("flag", "ONTRTFL")
    groups = ctx.groups(spec)
    recs, crits = [], []
    for dataset in p.get("datasets", ["ADVS", "ADEG"]):
        r, c = criteria_records(ctx, spec, dataset, flag)
        recs.append(r)
        crits.append(c)
    crit = pd.concat(crits, ignore_index=True)
    ard, members = count_subjects(pd.concat(recs, ignore_index=True), groups, spec.id)
    n_ard, n_mem = denominators(groups, ctx.adsl, spec.id)
    ard = pd.concat([n_ard, ard], ignore_index=True)
    members = pd.concat([n_mem, members], ignore_index=True)
    rows = []
    for (code, param), block in crit.groupby(["PARAMCD", "PARAM"], sort=False):
        rows.append((param, {"PARAMCD": code}, ""))
        for c in block.itertuples():
            rows.append((f"  {c.CRIT}", {"PARAMCD": code, "VARLVL": f"CRIT{c.Y}"}, "{n} ({pct})"))
    table = layout_rows(ard, groups, rows, label_header="Parameter\\line  Criterion, n (%)")
    return Result(ard, members, table, method=METHOD + " Percentages are of the population N.")
