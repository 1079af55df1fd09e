"""Run a mapping spec over a raw transfer: one SDTM domain (+ SUPP--), its rejections and trace.

Nothing is dropped silently: a raw record either becomes an SDTM record (its RECORDID kept in
the trace) or a row in the rejection listing with form, record, field, value and reason.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from edc.codes import factorize
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


def accepted_records(raw: RawTransfer, form: str, enrolled: set[str], leave_out: Sequence[str] = ()
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Active, non-duplicate records of enrolled subjects (without the columns `leave_out`
    names), and the rest as rejections.

    When nothing is rejected and no column is left out, the form's own frame is returned, not
    a copy: nothing downstream writes into the frames it is handed."""
    df = raw.frames[form]
    drop = [c for c in leave_out if c in df.columns]
    records = df.drop(columns=drop) if drop else df
    dup_of = {f.record: f.message for f in raw.findings if f.kind == "duplicate_record" and f.form == form}
    inactive = (df["RECORDACTIVE"] == "0").to_numpy()
    is_dup = df["RECORDID"].isin(dup_of).to_numpy() & ~inactive if dup_of else np.zeros(len(df), bool)
    orphan = ~df["SUBJECT"].isin(enrolled).to_numpy() & ~inactive & ~is_dup
    second = _second_records(raw, form, df, ~(inactive | is_dup | orphan))
    is_second = np.zeros(len(df), bool)
    is_second[df.index.get_indexer(second.index)] = True
    rejected = inactive | is_dup | orphan | is_second
    if not rejected.any():
        return records, pd.DataFrame({c: pd.Series([], dtype=object) for c in REJECTION_COLUMNS})
    rows = df.index[rejected]
    ids, subjects = df["RECORDID"].to_numpy()[rejected], df["SUBJECT"].to_numpy()[rejected]
    orphan, is_dup, is_second = orphan[rejected], is_dup[rejected], is_second[rejected]
    reasons = np.where(orphan, "subject has no enrolment record: not an enrolled study subject",
                       "inactivated in the EDC").astype(object)
    if is_dup.any():
        reasons[is_dup] = "duplicate record: " + pd.Series(ids[is_dup]).map(dup_of).astype(object).astype(str)
    fields = np.where(orphan, "SUBJECT", np.where(is_dup, "", "RECORDACTIVE")).astype(object)
    values = np.where(orphan, subjects, np.where(is_dup, "", "0")).astype(object)
    if is_second.any():
        at = second.index.get_indexer(rows[is_second])
        reasons[is_second] = second["REASON"].to_numpy()[at]
        fields[is_second] = second["FIELD"].to_numpy()[at]
        values[is_second] = second["VALUE"].to_numpy()[at]
    rej = pd.DataFrame({"FORM": form, "RECORDID": ids, "SUBJECT": subjects, "FIELD": fields,
                        "VALUE": values, "REASON": reasons}, index=rows, columns=REJECTION_COLUMNS)
    return records[~rejected], rej


class AcceptedRecords:
    """`accepted_records` of every form of one transfer, each worked out once however many
    specs, joins and look-ups ask for it."""

    def __init__(self, raw: RawTransfer, leave_out: Sequence[str] = ()):
        self.raw, self.leave_out = raw, tuple(leave_out)
        self.enrolled = enrolled_subjects(raw)
        self._forms: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}
        self.gone: set[str] = set()          # forms let go

    def __getitem__(self, form: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        if form in self.gone:   # a bug: Algorithm.forms did not name a form a domain reads
            raise RuntimeError(f"the raw records of form {form} were let go before a domain read them")
        if form not in self._forms:
            self._forms[form] = accepted_records(self.raw, form, self.enrolled, self.leave_out)
        return self._forms[form]

    def active(self) -> dict[str, pd.DataFrame]:
        return {form: self[form][0] for form in self.raw.frames}

    def rejected(self, form: str) -> pd.DataFrame:
        return self._forms[form][1] if form in self.gone else self[form][1]

    def let_go(self, form: str) -> None:
        """Forget the form's accepted records (its rejections stay): no domain reads them again."""
        if form in self.gone:
            return
        self[form]     # the rejections are reconciled at the end
        self.gone.add(form)
        self._forms[form] = pd.DataFrame(), self._forms[form][1]


def forms_read(spec: DomainSpec) -> set[str] | None:
    """The raw forms mapping `spec` reads: its source, the forms of the FORM.FIELD values it
    joins or looks up; None: every form."""
    read = {spec.source} if spec.source else set()
    for var in [*spec.variables.values(), *(s.var for s in spec.supp)]:
        forms = ALGORITHMS[var.algorithm].forms(var)
        if forms is None:
            return None
        read |= forms
    return read


def _second_records(raw: RawTransfer, form: str, df: pd.DataFrame, candidates: np.ndarray
                    ) -> pd.DataFrame:
    """Reasons for the records of a non-repeating form beyond the first for one subject and
    visit (SUBJECT, FOLDER, FOLDERSEQ): an EDC conflict (two DM records, one M and one F) that
    no mapping can settle. The first record is kept; the others are rejected naming it and the
    fields that differ, so the data manager can resolve it in the EDC."""
    none = pd.DataFrame(columns=["REASON", "FIELD", "VALUE"], dtype=object)
    defs = {f.oid: f for f in raw.forms.forms} if raw.forms is not None else {}
    if form not in defs or defs[form].repeating:
        return none
    keys = ["SUBJECT", "FOLDER", "FOLDERSEQ"]
    extra = df.loc[candidates, keys].duplicated(keys, keep="first")
    if not extra.any():
        return none
    live = df[candidates]     # a conflict: rare, so the whole rows only now
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


def _join_other_forms(src: pd.DataFrame, spec: DomainSpec, raw: RawTransfer,
                      accepted: AcceptedRecords, joined: list) -> pd.DataFrame:
    """Bring FORM.FIELD values of other forms onto the source rows: the subject's first active
    record of that form (subject-level forms such as ENR or INF). The records used are added to
    `joined` as (FORM, RECORDID, SUBJECT) so reconciliation counts them as mapped."""
    refs = sorted({r for v in [*spec.variables.values(), *(s.var for s in spec.supp)]
                   if v.algorithm != "subject_date"
                   for r in ALGORITHMS[v.algorithm].fields(v) if "." in r})
    forms = sorted({r.split(".")[0] for r in refs})
    if not forms:
        return src
    # the joined columns go into a shallow copy: src's own columns are not copied or touched
    out = src.copy(deep=False)
    for form in forms:
        cols = [r.split(".", 1)[1] for r in refs if r.startswith(f"{form}.")]
        other = accepted[form][0]
        cols += [f"{c}_DEC" for c in cols if f"{c}_DEC" in other.columns]
        cols = list(dict.fromkeys(cols))     # a spec may name both FIELD and FIELD_DEC
        first = (other[list(dict.fromkeys(["SUBJECT", "RECORDID", *cols]))]
                 .sort_values("RECORDID", key=lambda s: s.astype(int))
                 .drop_duplicates("SUBJECT"))
        used = first[first["SUBJECT"].isin(src["SUBJECT"])]
        joined.extend(zip([form] * len(used), used["RECORDID"], used["SUBJECT"]))
        at = pd.Index(first["SUBJECT"]).get_indexer(src["SUBJECT"])
        found = at >= 0
        for c in cols:
            values = np.full(len(src), "", dtype=object)
            values[found] = first[c].to_numpy()[at[found]]
            column = pd.Series(values, index=src.index, dtype=object)
            out[f"{form}.{c}"] = column.fillna("") if first[c].isna().any() else column
    return out


def active_records(raw: RawTransfer) -> dict[str, pd.DataFrame]:
    """Every form's accepted records (what per-subject look-ups may use)."""
    return AcceptedRecords(raw).active()


def map_domain(spec: DomainSpec, raw: RawTransfer, study, *, ref_start: pd.Series | None = None,
               ref_exposure: pd.Series | None = None,
               elements: pd.DataFrame | None = None,
               active: dict[str, pd.DataFrame] | None = None,
               unscheduled: pd.Series | None = None,
               accepted: AcceptedRecords | None = None) -> tuple[DomainResult, pd.DataFrame]:
    """Map one spec; returns the domain result and the rejected raw records of its source.
    `accepted` (one per transfer) shares the accepted records between the specs of a build."""
    accepted = accepted if accepted is not None and accepted.raw is raw else AcceptedRecords(raw)
    src, rejected = accepted[spec.source]
    if spec.filter:
        keep = src.eval(spec.filter, engine="python").astype(bool)
        src = src[keep]
    joined: list = []
    src = _join_other_forms(src, spec, raw, accepted, joined)
    if spec.split:
        src, rejected = _split_rows(src, spec, rejected)
    studyid = study.study.studyid
    out = pd.DataFrame(index=src.index)
    out["STUDYID"] = studyid
    out["DOMAIN"] = spec.domain
    out["USUBJID"] = _usubjid(studyid, src["SUBJECT"])
    active = active if active is not None else accepted.active()
    if unscheduled is None:
        from sdtm.visits import unscheduled_visits
        unscheduled = unscheduled_visits(study, raw.forms, active)
    ctx = Context(study=study, src=src, out=out, ref_start=ref_start, ref_exposure=ref_exposure,
                  elements=elements, raw=active,
                  unscheduled=unscheduled, spec_split=spec.split or [])
    for name, var in spec.variables.items():
        out[name] = ALGORITHMS[var.algorithm].run(ctx, var)
    dom = metadata.domain(spec.domain)
    out, rejected = _reject_missing_required(spec, dom, ctx, out, rejected)
    seq_var = f"{spec.domain}SEQ"
    if dom.has(seq_var):
        ctx.out = out = _derive_seq(out, spec, seq_var)    # the unsorted records let go
    # out holds src's rows (reordered by --SEQ): their RECORDIDs by position, not by label
    trace = pd.DataFrame({"USUBJID": out["USUBJID"].to_numpy(),
                          "SEQ": out[seq_var].to_numpy() if seq_var in out.columns else None,
                          "FORM": spec.source,
                          "RECORDID": src["RECORDID"].to_numpy()[src.index.get_indexer(out.index)]})
    if joined:   # subject-level records folded into this domain's records (e.g. ENR into DM)
        extra = pd.DataFrame(joined, columns=["FORM", "RECORDID", "SUBJECT"])
        extra = extra.assign(USUBJID=study.study.studyid + "-" + extra["SUBJECT"], SEQ=np.nan)
        trace = pd.concat([trace, extra[["USUBJID", "SEQ", "FORM", "RECORDID"]]])
    supp = _supp(spec, ctx, out, seq_var) if spec.supp else None
    issues = pd.DataFrame(
        [(spec.domain, v, spec.source, src.at[i, "RECORDID"], src.at[i, "SUBJECT"], value, msg)
         for v, i, value, msg in ctx.issues], columns=ISSUE_COLUMNS)
    out.index = pd.RangeIndex(len(out))     # out is this call's own frame: no copy needed
    return DomainResult(spec.domain, out, supp, trace.reset_index(drop=True), issues), rejected


# Built by the engine for every record, never from a collected value.
_STRUCTURAL = ("STUDYID", "DOMAIN", "USUBJID")


def _reject_missing_required(spec: DomainSpec, dom, ctx: Context, out: pd.DataFrame,
                             rejected: pd.DataFrame):
    """A record whose Required variable came out empty (the CRF field it is mapped from left
    blank) cannot be submitted: it is rejected with the variable and the raw field named, and
    the build goes on. DM is exempt: one record per subject, which every other
    domain needs; an empty DM value stays in DM for validation to report."""
    if spec.domain == "DM" or not len(out):
        return out, rejected
    names = [n for n in dom.required()
             if n not in _STRUCTURAL and n in spec.variables and n in out.columns]
    first = np.full(len(out), -1)      # per record: the first Required variable left empty
    for k, name in enumerate(names):
        col = out[name]
        empty = col.isna().to_numpy()
        if col.dtype == object:
            empty |= (col == "").to_numpy()
        first[empty & (first < 0)] = k
    drop = first >= 0
    if not drop.any():
        return out, rejected
    src = ctx.src
    at = src.index.get_indexer(out.index)
    ids = src["RECORDID"].to_numpy()[at]
    kept = set(ids[~drop])
    rows = []
    for i in np.flatnonzero(drop):
        name = names[first[i]]
        var = spec.variables[name]
        field_ = ",".join(f.rpartition(".")[2] for f in ALGORITHMS[var.algorithm].fields(var)) or name
        value = src[field_].iat[at[i]] if field_ in src.columns else ""
        reason = (f"required {name} ({dom.var(name).label}) is empty: the record cannot be "
                  f"submitted without it; query the site for {spec.source}.{field_}")
        if ids[i] in kept:     # the raw record's other SDTM records stay: an issue, not a rejection
            ctx.issues.append((name, out.index[i], value, reason + "; this SDTM record was left out"))
        else:
            rows.append((spec.source, ids[i], src["SUBJECT"].iat[at[i]], field_, value, reason))
    new = pd.DataFrame(rows, columns=REJECTION_COLUMNS).drop_duplicates("RECORDID")
    # src keeps every row: the trace and the issues look records up in it by label
    ctx.out = out = out[~drop]
    return out, pd.concat([rejected, new], ignore_index=True)


def _usubjid(studyid: str, subjects: pd.Series) -> pd.Series:
    """STUDYID-SUBJECT, built once per subject rather than once per record."""
    codes, distinct = factorize(subjects)
    text = (studyid + "-" + pd.Series(distinct, dtype=subjects.dtype)).to_numpy()
    return pd.Series(text[codes], index=subjects.index, dtype=object)


def _split_rows(src: pd.DataFrame, spec: DomainSpec, rejected: pd.DataFrame):
    """One row per (raw record, split item) whose item field holds a value. A raw record with
    no value in any item field is listed as rejected ('no result collected'), not dropped.
    Rows are ordered by RECORDID, then item; the rows are taken from src once, in that order."""
    has = [(src[item["field"]] != "").to_numpy() for item in spec.split]
    rows = np.concatenate([np.flatnonzero(h) for h in has])
    items = np.concatenate([np.full(int(h.sum()), k, dtype=np.int64) for k, h in enumerate(has)])
    record_ids = src["RECORDID"]
    order = np.lexsort((items, record_ids.to_numpy().astype(np.int64)[rows]))
    split = src.take(rows[order])
    split["_ITEM"] = items[order]
    split.index = pd.RangeIndex(len(split))
    empty = src.loc[~record_ids.isin(record_ids.to_numpy()[np.logical_or.reduce(has)]), ["RECORDID", "SUBJECT"]]
    none = pd.DataFrame({"FORM": spec.source, "RECORDID": empty["RECORDID"], "SUBJECT": empty["SUBJECT"],
                         "FIELD": ",".join(i["field"] for i in spec.split), "VALUE": "",
                         "REASON": "no result collected in any of the form's result fields"},
                        columns=REJECTION_COLUMNS)
    return split, pd.concat([rejected, none], ignore_index=True)


def _derive_seq(out: pd.DataFrame, spec: DomainSpec, seq_var: str) -> pd.DataFrame:
    """--SEQ: 1..n per subject in the order of the spec's natural key (then raw record order)."""
    keys = ["USUBJID", *[k for k in spec.keys if k not in ("STUDYID", "USUBJID") and k in out.columns]]
    ordered = take_columns(out, sort_order([out[k].to_numpy() for k in keys]))
    ordered[seq_var] = run_numbers(ordered["USUBJID"])
    return ordered


def take_columns(df: pd.DataFrame, order: np.ndarray) -> pd.DataFrame:
    """`df.take(order)` a column at a time, each of `df`'s columns let go once taken (`df` is
    left without columns): the records are never held twice, as they are by take or
    sort_values (which also copies them into one block)."""
    out = pd.DataFrame(index=df.index.take(order))
    for c in list(df.columns):
        out[c] = df[c].take(order).set_axis(out.index)
        del df[c]
    return out


def sort_order(keys: list[np.ndarray]) -> np.ndarray:
    """The row order DataFrame.sort_values(<these columns>, kind="stable") gives, without
    building the frame: the very function it calls for several keys (for one, the order its
    stable argsort gives: missing last, ties in row order)."""
    try:
        from pandas.core.sorting import lexsort_indexer
    except ImportError:     # a pandas that moved it: sort a frame of the keys instead
        frame = pd.DataFrame(dict(enumerate(keys)))
        return frame.sort_values(list(frame.columns), kind="stable").index.to_numpy()
    return lexsort_indexer(keys, orders=True, na_position="last")


def run_numbers(sorted_keys: pd.Series) -> np.ndarray:
    """1, 2, ... within each run of equal values (float64): a groupby cumcount + 1 for a
    column already sorted by its groups, without hashing the groups."""
    values = sorted_keys.to_numpy()
    n = len(values)
    if n == 0 or pd.isna(values).any():    # missing groups: let pandas apply its own rules
        return sorted_keys.groupby(sorted_keys).cumcount().to_numpy(dtype="float64") + 1
    starts = np.ones(n, dtype=bool)
    starts[1:] = values[1:] != values[:-1]
    position = np.arange(n)
    return (position - np.maximum.accumulate(np.where(starts, position, 0)) + 1).astype("float64")


def _supp(spec: DomainSpec, ctx: Context, out: pd.DataFrame, seq_var: str) -> pd.DataFrame:
    ctx.out = out
    frames, order = [], []
    # A one-record-per-subject domain (DM) has no --SEQ: its SUPP-- records name the subject only
    # (IDVAR and IDVARVAL empty, SDTMIG 3.4 section 8.4).
    by_seq = seq_var in out.columns
    for s in spec.supp:
        qval = ALGORITHMS[s.var.algorithm].run(ctx, s.var).reindex(out.index).fillna("").astype(str)
        has = qval != ""
        seq = out.loc[has, seq_var].astype(int) if by_seq else None
        frames.append(pd.DataFrame({
            "STUDYID": out.loc[has, "STUDYID"], "RDOMAIN": spec.domain, "USUBJID": out.loc[has, "USUBJID"],
            "IDVAR": seq_var if by_seq else "",
            "IDVARVAL": seq.astype(str) if by_seq else "",
            "QNAM": s.qnam, "QLABEL": s.qlabel, "QVAL": qval[has], "QORIG": s.qorig, "QEVAL": ""}))
        order.append(seq.to_numpy() if by_seq else np.zeros(int(has.sum()), dtype=np.int64))
    supp = pd.concat(frames, ignore_index=True)
    # sorted on a key frame, then the records taken once (IDVARVAL numerically: 2 before 10)
    keys = pd.DataFrame({"USUBJID": supp["USUBJID"], "_o": np.concatenate(order), "QNAM": supp["QNAM"]})
    supp = supp.take(keys.sort_values(["USUBJID", "_o", "QNAM"], kind="stable").index.to_numpy())
    supp.index = pd.RangeIndex(len(supp))
    return supp
