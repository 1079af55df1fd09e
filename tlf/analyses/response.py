"""Response: best overall response distributions and response rates from ADRS.

Rates are subjects with a responder parameter 'Y' over the analysis population, n/N (%) with
the exact Clopper-Pearson 95% CI. A BOR distribution counts every subject of the population
once: a subject without a BOR record counts in the `missing` category (by default NE), so the
categories always add up to N.
"""
from __future__ import annotations

import pandas as pd

from clinpipe.errors import ConfigError
from tlf.analyses.base import Groups, Result, count_subjects, denominators, layout_rows, records_of
from tlf.context import TlfInputError

METHOD = "Exact (Clopper-Pearson) 95% confidence interval."
ADRS_COLUMNS = ["USUBJID", "ASEQ", "PARAMCD", "PARAM", "AVALC"]


def _adrs(ctx, spec, dataset: str, codes: list[str]) -> tuple[pd.DataFrame, dict]:
    df = ctx.dataset(dataset, ADRS_COLUMNS)
    df = df[df["PARAMCD"].isin(codes)]
    absent = [c for c in codes if c not in set(df["PARAMCD"])]
    if absent:
        raise TlfInputError(f"output {spec.id}: {dataset} has no PARAMCD {absent}",
                            file=ctx.adam_dir / f"{dataset.lower()}.parquet",
                            hint="rebuild ADaM or fix params paramcd/bor in the catalogue")
    labels = df.drop_duplicates("PARAMCD").set_index("PARAMCD")["PARAM"].to_dict()
    return df, labels


def rate_cells(ctx, spec, groups: Groups, codes: list[str], dataset: str = "ADRS"
               ) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """n, pct and the Clopper-Pearson CI of AVALC 'Y' per responder parameter."""
    df, labels = _adrs(ctx, spec, dataset, codes)
    responders = records_of(df[df["AVALC"] == "Y"], dataset)
    ard, members = count_subjects(responders, groups, spec.id, ci=True)
    return ard, members, labels


def _rate_rows(codes, labels, overrides) -> list:
    rows = []
    for code in codes:
        rows.append((overrides.get(code, labels.get(code, code)), {"PARAMCD": code}, ""))
        rows.append(("  n (%)", {"PARAMCD": code}, "{n} ({pct})"))
        rows.append(("  95% CI", {"PARAMCD": code}, "({lcl}, {ucl})"))
    return rows


def proportions(ctx, spec) -> Result:
    """params: paramcd (list of responder parameters, AVALC Y/N), dataset (default ADRS),
    labels (PARAMCD -> row heading; default PARAM)."""
    p = spec.params
    codes = list(p["paramcd"])
    groups = ctx.groups(spec)
    ard, members, labels = rate_cells(ctx, spec, groups, codes, p.get("dataset", "ADRS"))
    n_ard, n_members = denominators(groups, ctx.adsl, spec.id)
    ard = pd.concat([n_ard, ard], ignore_index=True)
    members = pd.concat([n_members, members], ignore_index=True)
    table = layout_rows(ard, groups, _rate_rows(codes, labels, p.get("labels", {})))
    return Result(ard, members, table, method=METHOD)


def bor_table(ctx, spec) -> Result:
    """Best overall response distribution, then response rates with CI.

    params: bor (the BOR parameter, e.g. BOR), categories (AVALC -> row label, in display
    order), missing (category for subjects without a BOR record, default NE), rates (list
    of responder parameters), labels (PARAMCD -> heading), dataset (default ADRS)."""
    p = spec.params
    dataset = p.get("dataset", "ADRS")
    bor = p["bor"]
    categories: dict = dict(p["categories"])
    missing = p.get("missing", "NE")
    if missing not in categories:
        raise ConfigError(f"output {spec.id}: missing category {missing!r} is not in params "
                          f"categories", field="params",
                          hint="add it to categories: or change missing:")
    rates = list(p.get("rates", []))
    overrides = p.get("labels", {})
    groups = ctx.groups(spec)
    df, labels = _adrs(ctx, spec, dataset, [bor])
    pop_ids = groups.frame["USUBJID"].unique()
    df = df[df["USUBJID"].isin(pop_ids)]
    unknown = sorted(set(df["AVALC"].fillna("")) - set(categories))
    if unknown:
        raise TlfInputError(f"output {spec.id}: {dataset} PARAMCD {bor} AVALC values {unknown} "
                            f"are not in params categories",
                            file=ctx.adam_dir / f"{dataset.lower()}.parquet",
                            hint="add them to categories: so the distribution adds up to N")
    if df["USUBJID"].duplicated().any():
        raise TlfInputError(f"output {spec.id}: {dataset} PARAMCD {bor} has more than one "
                            f"record per subject", file=ctx.adam_dir / f"{dataset.lower()}.parquet",
                            hint="a best overall response is one record per subject")
    recs = records_of(df, dataset).assign(PARAMCD=bor, VARLVL=df["AVALC"].to_numpy())
    # subjects with no BOR record still belong to N: their ADSL record is the evidence
    absent = pd.DataFrame({"USUBJID": sorted(set(pop_ids) - set(df["USUBJID"]))})
    absent = absent.assign(DATASET="ADSL", RECSEQ=float("nan"), PARAMCD=bor, VARLVL=missing)
    recs = pd.concat([recs[["USUBJID", "DATASET", "RECSEQ", "PARAMCD", "VARLVL"]], absent],
                     ignore_index=True)
    bor_ard, bor_members = count_subjects(recs, groups, spec.id)
    n_ard, n_members = denominators(groups, ctx.adsl, spec.id)
    parts, mparts = [n_ard, bor_ard], [n_members, bor_members]
    if rates:
        r_ard, r_members, r_labels = rate_cells(ctx, spec, groups, rates, dataset)
        parts.append(r_ard)
        mparts.append(r_members)
        labels.update(r_labels)
    ard = pd.concat(parts, ignore_index=True)
    members = pd.concat(mparts, ignore_index=True)
    rows = [(f"{overrides.get(bor, labels.get(bor, bor))}, n (%)", {"PARAMCD": bor}, "")]
    rows += [(f"  {label}", {"PARAMCD": bor, "VARLVL": code}, "{n} ({pct})")
             for code, label in categories.items()]
    rows += _rate_rows(rates, labels, overrides)
    table = layout_rows(ard, groups, rows)
    return Result(ard, members, table, method=METHOD)
