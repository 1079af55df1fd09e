"""Time-to-event summaries from ADTTE: events, censored, Kaplan-Meier median with 95% CI and
landmark event-free rates, per parameter and column group."""
from __future__ import annotations

import pandas as pd

from tlf.analyses.base import (
    LANDMARK_MONTHS,
    Result,
    denominators,
    km_table,
    layout_rows,
    records_of,
)
from tlf.context import TlfInputError

METHOD = ("Kaplan-Meier; 95% CI of the median by Brookmeyer-Crowley on the log-log scale; "
          "landmark rates with log-log 95% CI (Greenwood). Times in months (days / 30.4375).")
ADTTE_COLUMNS = ["USUBJID", "ASEQ", "PARAMCD", "PARAM", "AVAL", "CNSR"]


def tte_records(ctx, spec) -> tuple[pd.DataFrame, dict]:
    """ADTTE records of params `paramcd` with AVAL, and PARAMCD -> heading (params `labels`
    override PARAM). params `responders` (ADRS parameters): keep only subjects with AVALC 'Y'
    in at least one of them -- DOR is defined for responders only, so a DOR record of a
    non-responder (by the primary criteria) must not enter the analysis."""
    p = spec.params
    codes = list(p["paramcd"])
    df = ctx.dataset("ADTTE", ADTTE_COLUMNS)
    df = df[df["PARAMCD"].isin(codes) & df["AVAL"].notna()]
    absent = [c for c in codes if c not in set(df["PARAMCD"])]
    if absent:
        raise TlfInputError(f"output {spec.id}: ADTTE has no PARAMCD {absent}",
                            file=ctx.adam_dir / "adtte.parquet",
                            hint="rebuild ADaM or fix params paramcd in the catalogue")
    if p.get("responders"):
        rs = ctx.dataset("ADRS", ["USUBJID", "PARAMCD", "AVALC"])
        yes = rs.loc[rs["PARAMCD"].isin(list(p["responders"])) & (rs["AVALC"] == "Y"),
                     "USUBJID"]
        df = df[df["USUBJID"].isin(yes)]
    labels = df.drop_duplicates("PARAMCD").set_index("PARAMCD")["PARAM"].to_dict()
    labels.update(p.get("labels", {}))
    return records_of(df, "ADTTE"), labels


def km_summary(ctx, spec) -> Result:
    """params: paramcd (list of ADTTE parameters), landmarks (months, default 6/12/24),
    labels (PARAMCD -> heading, e.g. naming the endpoint's population), responders."""
    codes = list(spec.params["paramcd"])
    landmarks = tuple(spec.params.get("landmarks", LANDMARK_MONTHS))
    groups = ctx.groups(spec)
    records, labels = tte_records(ctx, spec)
    ard, members, _ = km_table(records, groups, spec.id, landmarks=landmarks)
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
    table = layout_rows(ard, groups, rows)
    # "12.5 (0.7, 42.3)" must fit one line in a column of five dose levels plus total
    table.widths = [2.0] + [1.0] * len(groups.levels)
    return Result(ard, members, table, method=METHOD)
