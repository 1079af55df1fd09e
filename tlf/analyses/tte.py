"""Time-to-event summaries from ADTTE: events, censored, Kaplan-Meier median with 95% CI and
landmark event-free rates, per parameter and column group."""
from __future__ import annotations

import pandas as pd

from tlf.analyses.base import (LANDMARK_MONTHS, Result, denominators, km_table, layout_rows,
                               records_of)

METHOD = ("Kaplan-Meier; 95% CI of the median by Brookmeyer-Crowley on the log-log scale; "
          "landmark rates with log-log 95% CI (Greenwood). Times in months (days / 30.4375).")


def km_summary(ctx, spec) -> Result:
    """params: paramcd (list of ADTTE parameters), landmarks (months, default 6/12/24)."""
    codes = list(spec.params["paramcd"])
    landmarks = tuple(spec.params.get("landmarks", LANDMARK_MONTHS))
    groups = ctx.groups(spec)
    df = ctx.dataset("ADTTE", ["USUBJID", "ASEQ", "PARAMCD", "PARAM", "AVAL", "CNSR"])
    df = df[df["PARAMCD"].isin(codes) & df["AVAL"].notna()]
    labels = df.drop_duplicates("PARAMCD").set_index("PARAMCD")["PARAM"].to_dict()
    ard, members, _ = km_table(records_of(df, "ADTTE"), groups, spec.id, landmarks=landmarks)
    n_ard, n_members = denominators(groups, ctx.adsl, spec.id)
    ard = pd.concat([n_ard, ard], ignore_index=True)
    members = pd.concat([n_members, members], ignore_index=True)
    rows = []
    for code in codes:
        k = {"PARAMCD": code}
        rows += [(labels.get(code, code), k, ""),
                 ("  Subjects analysed", k, "{n}"),
                 ("  Events", k, "{events}"),
                 ("  Censored", k, "{censored}"),
                 ("  Median, months (95% CI)", k, "{km_median} ({km_median_lcl}, {km_median_ucl})")]
        for m in landmarks:
            rows.append((f"  {m}-month rate, % (95% CI)", {**k, "TIMEPT": str(m)},
                         "{km_rate} ({km_rate_lcl}, {km_rate_ucl})"))
    return Result(ard, members, layout_rows(ard, groups, rows), method=METHOD)
