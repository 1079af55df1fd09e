"""Response rates: subjects with a responder parameter 'Y' over the analysis population,
n/N (%) with the exact Clopper-Pearson 95% CI."""
from __future__ import annotations

import pandas as pd

from tlf.analyses.base import Result, count_subjects, denominators, layout_rows, records_of

METHOD = "Exact (Clopper-Pearson) 95% confidence interval."


def proportions(ctx, spec) -> Result:
    """params: paramcd (list of responder parameters, AVALC Y/N), dataset (default ADRS)."""
    p = spec.params
    dataset = p.get("dataset", "ADRS")
    codes = list(p["paramcd"])
    groups = ctx.groups(spec)
    df = ctx.dataset(dataset, ["USUBJID", "ASEQ", "PARAMCD", "PARAM", "AVALC"])
    df = df[df["PARAMCD"].isin(codes)]
    labels = df.drop_duplicates("PARAMCD").set_index("PARAMCD")["PARAM"].to_dict()
    responders = records_of(df[df["AVALC"] == "Y"], dataset)
    ard, members = count_subjects(responders, groups, spec.id, ci=True)
    n_ard, n_members = denominators(groups, ctx.adsl, spec.id)
    ard = pd.concat([n_ard, ard], ignore_index=True)
    members = pd.concat([n_members, members], ignore_index=True)
    rows = []
    for code in codes:
        rows.append((labels.get(code, code), {"PARAMCD": code}, ""))
        rows.append(("  n (%)", {"PARAMCD": code}, "{n} ({pct})"))
        rows.append(("  95% CI", {"PARAMCD": code}, "({lcl}, {ucl})"))
    table = layout_rows(ard, groups, rows)
    return Result(ard, members, table, method=METHOD)
