"""Listings: one table row per ADaM record, in the catalogue's column order and sort.

The ARD of a listing has one `n` row per listed record (STATVAL 1): its cell is the record
itself (VARLVL "<USUBJID> <seq var> <seq>"), so the record is the row's only member and lineage
leads from every listed line to its raw form record.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from tlf.analyses.base import Result, TableLayout
from tlf.ard import finish_ard, finish_members
from tlf.context import TlfInputError

SEQ_VARS = ("ASEQ", "AESEQ")


def records(ctx, spec) -> Result:
    """params: dataset; filter {VAR: value | [values] | {not: value | [values]}} (all must
    hold); columns [{var, label, width}] (width: relative, default 1) (ADSL variables may be named, they are joined by USUBJID);
    sort [vars] (default: the listed columns' order); page_by (a listed variable, optional)."""
    p = spec.params
    dataset = p.get("dataset")
    if not dataset:
        raise TlfInputError(f"output {spec.id}: a listing needs params.dataset",
                            hint="name the ADaM dataset to list, e.g. dataset: ADAE")
    columns = _columns(spec)
    df = ctx.dataset(dataset)
    df = df[apply_filter(df, p.get("filter", {}), spec.id, dataset)]
    return listing_result(ctx, spec, df, dataset, columns, p.get("sort"), p.get("page_by"))


def _columns(spec) -> list[dict]:
    cols = spec.params.get("columns")
    if not cols or not all(isinstance(c, dict) and "var" in c for c in cols):
        raise TlfInputError(f"output {spec.id}: params.columns must list {{var, label}}",
                            hint="e.g. columns: [{var: USUBJID, label: Subject}]")
    return [{"var": c["var"], "label": c.get("label", c["var"]), "width": float(c.get("width", 1))}
            for c in cols]


def apply_filter(df: pd.DataFrame, conditions: dict, outid: str, dataset: str) -> pd.Series:
    keep = pd.Series(True, index=df.index)
    for var, cond in (conditions or {}).items():
        if var not in df:
            raise TlfInputError(f"output {outid}: {dataset} has no variable {var} (params.filter)",
                                hint="fix the listing's filter in the catalogue")
        negate = isinstance(cond, dict)
        values = cond.get("not") if negate else cond
        values = [values] if not isinstance(values, list) else values
        hit = df[var].astype(str).isin([str(v) for v in values])
        keep &= ~hit if negate else hit
    return keep


def listing_result(ctx, spec, df: pd.DataFrame, dataset: str, columns: list[dict],
                   sort: list[str] | None = None, page_by: str | None = None) -> Result:
    """The listing of `df` (records of `dataset`) restricted to the output's population."""
    groups = ctx.groups(spec)
    seq = next((s for s in SEQ_VARS if s in df), None)
    wanted = [c["var"] for c in columns]
    from_adsl = [v for v in wanted if v not in df and v != "USUBJID"]
    missing = [v for v in from_adsl if v not in ctx.adsl]
    if missing:
        raise TlfInputError(f"output {spec.id}: neither {dataset} nor ADSL has {missing}",
                            hint="fix params.columns in the catalogue")
    # the population's subjects, once each (the 'All subjects' copy of a total is not wanted)
    subj = groups.frame.drop_duplicates("USUBJID")[["USUBJID", "GRP1", "GRP1LVL"]]
    rec = df.merge(subj, on="USUBJID", how="inner")
    if from_adsl:
        rec = rec.merge(ctx.adsl[["USUBJID", *from_adsl]], on="USUBJID", how="left")
    sort = sort or wanted
    bad = [v for v in sort if v not in rec]
    if bad:
        raise TlfInputError(f"output {spec.id}: cannot sort by {bad}", hint="fix params.sort")
    rec = rec.sort_values([*sort, *([seq] if seq else [])], kind="stable").reset_index(drop=True)
    seqval = rec[seq].astype(float) if seq else pd.Series(np.nan, index=rec.index)
    # astype(str): an empty listing's map() gives float64, which text cannot be added to
    key = rec["USUBJID"].astype(str) + ((" " + seq + " " + seqval.map("{:.0f}".format).astype(str))
                                        if seq else "")
    ard = finish_ard(pd.DataFrame({
        "OUTID": spec.id, "POP": groups.pop, "GRP1": rec["GRP1"], "GRP1LVL": rec["GRP1LVL"],
        "PARAMCD": dataset, "VARLVL": key, "STAT": "n", "STATVAL": 1.0, "STATC": "1"}))
    members = finish_members(pd.DataFrame({
        "GRP1": rec["GRP1"], "GRP1LVL": rec["GRP1LVL"], "PARAMCD": dataset, "VARLVL": key,
        "ROLE": "num", "USUBJID": rec["USUBJID"], "DATASET": dataset, "RECSEQ": seqval}))
    body = pd.DataFrame({c["var"]: _text(rec[c["var"]]) for c in columns})
    headers = [c["label"] for c in columns if c["var"] != page_by]
    if page_by:
        body = body[[page_by, *[v for v in body.columns if v != page_by]]]
    table = TableLayout(body, headers, page_by=page_by,
                        widths=[c["width"] for c in columns if c["var"] != page_by],
                        # listings read as records: text left, as in a data listing
                        align=["l"] * len([c for c in columns if c["var"] != page_by]))
    if body.empty:
        table = TableLayout(pd.DataFrame({"X": ["No records meet the listing's criteria."]}),
                            [""], widths=[1.0])
    return Result(ard, members, table)


def _text(values: pd.Series) -> pd.Series:
    """Printed text: whole numbers without '.0', missing as ''."""
    if pd.api.types.is_numeric_dtype(values):
        as_int = values.dropna().eq(values.dropna().round()).all()
        out = values.map(lambda v: "" if pd.isna(v) else (f"{v:.0f}" if as_int else f"{v:g}"))
        return out.astype(str)
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.strftime("%Y-%m-%d").fillna("")
    return values.fillna("").astype(str)
