"""Run a mapping spec over a raw transfer: one SDTM domain (+ SUPP--), its rejections and trace.

Nothing is dropped silently: a raw record either becomes an SDTM record (its RECORDID kept in
the trace) or a row in the rejection listing with form, record, field, value and reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from edc.read import RawTransfer
from sdtm import metadata
from sdtm.algorithms import ALGORITHMS, Context
from sdtm.spec import DomainSpec

REJECTION_COLUMNS = ["FORM", "RECORDID", "SUBJECT", "FIELD", "VALUE", "REASON"]
ISSUE_COLUMNS = ["DOMAIN", "VARIABLE", "FORM", "RECORDID", "SUBJECT", "VALUE", "MESSAGE"]


@dataclass
class DomainResult:
    domain: str
    data: pd.DataFrame
    supp: pd.DataFrame | None
    trace: pd.DataFrame            # USUBJID, --SEQ, FORM, RECORDID of every SDTM record
    issues: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ISSUE_COLUMNS))


def accepted_records(raw: RawTransfer, form: str, enrolled: set[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Active, non-duplicate records of enrolled subjects, and the rest as rejections."""
    df = raw.frames[form]
    dup_of = {f.record: f.message for f in raw.findings if f.kind == "duplicate_record" and f.form == form}
    reasons = pd.Series("", index=df.index, dtype=object)
    reasons[df["RECORDACTIVE"] == "0"] = "inactivated in the EDC"
    is_dup = df["RECORDID"].isin(dup_of) & (reasons == "")
    reasons[is_dup] = "duplicate record: " + df.loc[is_dup, "RECORDID"].map(dup_of).astype(object).astype(str)
    orphan = ~df["SUBJECT"].isin(enrolled) & (reasons == "")
    reasons[orphan] = "subject has no enrolment record: not an enrolled study subject"
    second = _second_records(raw, form, df, reasons == "")
    reasons[second.index] = second["REASON"]
    rejected = reasons != ""
    rej = pd.DataFrame({"FORM": form, "RECORDID": df.loc[rejected, "RECORDID"],
                        "SUBJECT": df.loc[rejected, "SUBJECT"],
                        "FIELD": np.where(orphan[rejected], "SUBJECT",
                                          np.where(is_dup[rejected], "", "RECORDACTIVE")),
                        "VALUE": "", "REASON": reasons[rejected]}, columns=REJECTION_COLUMNS)
    rej["VALUE"] = np.where(rej["FIELD"] == "SUBJECT", rej["SUBJECT"],
                            np.where(rej["FIELD"] == "RECORDACTIVE", "0", ""))
    hit = rej.index.isin(second.index)
    rej.loc[hit, "FIELD"] = second.loc[rej.index[hit], "FIELD"].to_numpy()
    rej.loc[hit, "VALUE"] = second.loc[rej.index[hit], "VALUE"].to_numpy()
    return df[~rejected], rej


def _second_records(raw: RawTransfer, form: str, df: pd.DataFrame, candidates: pd.Series
                    ) -> pd.Series:
    """Reasons for the records of a non-repeating form beyond the first for one subject and
    visit (SUBJECT, FOLDER, FOLDERSEQ): an EDC conflict (two DM records, one M and one F) that
    no mapping can settle. The first record is kept; the others are rejected naming it and the
    fields that differ, so the data manager can resolve it in the EDC."""
    none = pd.DataFrame(columns=["REASON", "FIELD", "VALUE"], dtype=object)
    defs = {f.oid: f for f in raw.forms.forms} if raw.forms is not None else {}
    if form not in defs or defs[form].repeating:
        return none
    keys = ["SUBJECT", "FOLDER", "FOLDERSEQ"]
    live = df[candidates]
    extra = live.duplicated(keys, keep="first")
    if not extra.any():
        return none
    first = live[~extra].set_index(keys)
    later = live[extra]
    kept = first.loc[pd.MultiIndex.from_frame(later[keys])]
    fields = [c for c in defs[form].data_columns() if c in df.columns and not c.endswith("_DEC")]
    differ = later[fields].to_numpy() != kept[fields].to_numpy()
    # a handful of conflicting records: their texts are built one by one
    rows = []
    for rid, row, values in zip(kept["RECORDID"], differ, later[fields].to_numpy()):
        names = [f for f, d in zip(fields, row) if d]
        rows.append(((f"second record of non-repeating form {form} for this subject and visit "
                     f"(RECORDID {rid} is kept; differs in {', '.join(names) or 'no field'}): "
                     "resolve the conflict in the EDC"),
                     names[0] if names else "", values[fields.index(names[0])] if names else ""))
    return pd.DataFrame(rows, columns=["REASON", "FIELD", "VALUE"], index=later.index, dtype=object)


def enrolled_subjects(raw: RawTransfer) -> set[str]:
    form = raw.forms.enrolment_form
    df = raw.frames[form]
    return set(df.loc[df["RECORDACTIVE"] != "0", "SUBJECT"])


def _join_other_forms(src: pd.DataFrame, spec: DomainSpec, raw: RawTransfer, enrolled: set[str],
                      joined: list) -> pd.DataFrame:
    """Bring FORM.FIELD values of other forms onto the source rows: the subject's first active
    record of that form (subject-level forms such as ENR or INF). The records used are added to
    `joined` as (FORM, RECORDID, SUBJECT) so reconciliation counts them as mapped."""
    refs = sorted({r for v in [*spec.variables.values(), *(s.var for s in spec.supp)]
                   if v.algorithm != "subject_date"
                   for r in ALGORITHMS[v.algorithm].fields(v) if "." in r})
    out = src
    for form in sorted({r.split(".")[0] for r in refs}):
        cols = [r.split(".", 1)[1] for r in refs if r.startswith(f"{form}.")]
        cols += [f"{c}_DEC" for c in cols if f"{c}_DEC" in raw.frames[form].columns]
        cols = list(dict.fromkeys(cols))     # a spec may name both FIELD and FIELD_DEC
        other, _ = accepted_records(raw, form, enrolled)
        first = (other.sort_values("RECORDID", key=lambda s: s.astype(int))
                 .drop_duplicates("SUBJECT"))
        used = first[first["SUBJECT"].isin(src["SUBJECT"])]
        joined.extend(zip([form] * len(used), used["RECORDID"], used["SUBJECT"]))
        first = first[["SUBJECT", *cols]]
        first = first.rename(columns={c: f"{form}.{c}" for c in cols})
        out = out.merge(first, on="SUBJECT", how="left").set_index(out.index)
    return out.fillna({c: "" for c in out.columns if "." in c})


def active_records(raw: RawTransfer) -> dict[str, pd.DataFrame]:
    """Every form's accepted records (what per-subject look-ups may use)."""
    enrolled = enrolled_subjects(raw)
    return {form: accepted_records(raw, form, enrolled)[0] for form in raw.frames}


def map_domain(spec: DomainSpec, raw: RawTransfer, study, *, ref_start: pd.Series | None = None,
               ref_exposure: pd.Series | None = None,
               elements: pd.DataFrame | None = None,
               active: dict[str, pd.DataFrame] | None = None,
               unscheduled: pd.Series | None = None) -> tuple[DomainResult, pd.DataFrame]:
    """Map one spec; returns the domain result and the rejected raw records of its source."""
    enrolled = enrolled_subjects(raw)
    src, rejected = accepted_records(raw, spec.source, enrolled)
    if spec.filter:
        keep = src.eval(spec.filter, engine="python").astype(bool)
        src = src[keep]
    joined: list = []
    src = _join_other_forms(src, spec, raw, enrolled, joined)
    if spec.split:
        src, rejected = _split_rows(src, spec, rejected)
    studyid = study.study.studyid
    out = pd.DataFrame(index=src.index)
    out["STUDYID"] = studyid
    out["DOMAIN"] = spec.domain
    out["USUBJID"] = studyid + "-" + src["SUBJECT"]
    active = active if active is not None else active_records(raw)
    if unscheduled is None:
        from sdtm.visits import unscheduled_visits
        unscheduled = unscheduled_visits(study, raw.forms, active)
    ctx = Context(study=study, src=src, out=out, ref_start=ref_start, ref_exposure=ref_exposure,
                  elements=elements, raw=active,
                  unscheduled=unscheduled, spec_split=spec.split or [])
    for name, var in spec.variables.items():
        out[name] = ALGORITHMS[var.algorithm].run(ctx, var)
    dom = metadata.domain(spec.domain)
    seq_var = f"{spec.domain}SEQ"
    if dom.has(seq_var):
        out = _derive_seq(out, spec, seq_var)
    trace = pd.DataFrame({"USUBJID": out["USUBJID"], "SEQ": out.get(seq_var), "FORM": spec.source,
                          "RECORDID": src.loc[out.index, "RECORDID"]})
    if joined:   # subject-level records folded into this domain's records (e.g. ENR into DM)
        extra = pd.DataFrame(joined, columns=["FORM", "RECORDID", "SUBJECT"])
        extra = extra.assign(USUBJID=study.study.studyid + "-" + extra["SUBJECT"], SEQ=np.nan)
        trace = pd.concat([trace, extra[["USUBJID", "SEQ", "FORM", "RECORDID"]]])
    supp = _supp(spec, ctx, out, seq_var) if spec.supp else None
    issues = pd.DataFrame(
        [(spec.domain, v, spec.source, src.at[i, "RECORDID"], src.at[i, "SUBJECT"], value, msg)
         for v, i, value, msg in ctx.issues], columns=ISSUE_COLUMNS)
    return DomainResult(spec.domain, out.reset_index(drop=True), supp, trace.reset_index(drop=True),
                        issues), rejected


def _split_rows(src: pd.DataFrame, spec: DomainSpec, rejected: pd.DataFrame):
    """One row per (raw record, split item) whose item field holds a value. A raw record with
    no value in any item field is listed as rejected ('no result collected'), not dropped."""
    parts = []
    for k, item in enumerate(spec.split):
        has = src[item["field"]] != ""
        part = src[has].copy()
        part["_ITEM"] = k
        parts.append(part)
    rows = pd.concat(parts) if parts else src.iloc[:0].assign(_ITEM=0)
    empty = src[~src["RECORDID"].isin(rows["RECORDID"])]
    none = pd.DataFrame({"FORM": spec.source, "RECORDID": empty["RECORDID"], "SUBJECT": empty["SUBJECT"],
                         "FIELD": ",".join(i["field"] for i in spec.split), "VALUE": "",
                         "REASON": "no result collected in any of the form's result fields"},
                        columns=REJECTION_COLUMNS)
    rows = rows.sort_values(["RECORDID", "_ITEM"], key=lambda s: s.astype(int) if s.name == "RECORDID" else s,
                            kind="stable").reset_index(drop=True)
    return rows, pd.concat([rejected, none], ignore_index=True)


def _derive_seq(out: pd.DataFrame, spec: DomainSpec, seq_var: str) -> pd.DataFrame:
    """--SEQ: 1..n per subject in the order of the spec's natural key (then raw record order)."""
    keys = ["USUBJID", *[k for k in spec.keys if k not in ("STUDYID", "USUBJID") and k in out.columns]]
    ordered = out.sort_values(keys, kind="stable")
    ordered[seq_var] = ordered.groupby("USUBJID").cumcount().astype("float64") + 1
    return ordered


def _supp(spec: DomainSpec, ctx: Context, out: pd.DataFrame, seq_var: str) -> pd.DataFrame:
    ctx.out = out
    frames = []
    # A one-record-per-subject domain (DM) has no --SEQ: its SUPP-- records name the subject only
    # (IDVAR and IDVARVAL empty, SDTMIG 3.4 section 8.4).
    by_seq = seq_var in out.columns
    for s in spec.supp:
        qval = ALGORITHMS[s.var.algorithm].run(ctx, s.var).reindex(out.index).fillna("").astype(str)
        has = qval != ""
        frames.append(pd.DataFrame({
            "STUDYID": out.loc[has, "STUDYID"], "RDOMAIN": spec.domain, "USUBJID": out.loc[has, "USUBJID"],
            "IDVAR": seq_var if by_seq else "",
            "IDVARVAL": out.loc[has, seq_var].astype(int).astype(str) if by_seq else "",
            "QNAM": s.qnam, "QLABEL": s.qlabel, "QVAL": qval[has], "QORIG": s.qorig, "QEVAL": ""}))
    supp = pd.concat(frames, ignore_index=True)
    order = pd.to_numeric(supp["IDVARVAL"], errors="coerce").fillna(0)
    return supp.assign(_o=order).sort_values(["USUBJID", "_o", "QNAM"], kind="stable").drop(columns="_o") \
        .reset_index(drop=True)
