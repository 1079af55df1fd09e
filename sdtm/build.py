"""Build every SDTM dataset of a study from one raw transfer, with reconciliation.

Order matters: DM first (its RFSTDTC anchors every --DY), then the other mapped domains.
Reconciliation accounts for every raw record: mapped into a domain, rejected with a reason,
or (for forms no spec maps yet) listed as unmapped — never silently dropped.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from clinpipe.config import load_study
from clinpipe.memory import release_memory
from edc.read import RawTransfer
from sdtm.engine import (
    ISSUE_COLUMNS,
    REJECTION_COLUMNS,
    AcceptedRecords,
    DomainResult,
    forms_read,
    map_domain,
    run_numbers,
    sort_order,
    take_columns,
)
from sdtm.field_coverage import MAPPED, field_coverage, form_field_summary, load_not_submitted
from sdtm.spec import load_specs
from sdtm.subject_elements import build_se, load_element_rules
from sdtm.subject_visits import sv_from_visits, visit_records
from sdtm.visits import unscheduled_visits


@dataclass
class SdtmBuild:
    study: str
    results: dict[str, DomainResult]
    derived: dict[str, pd.DataFrame]       # SE, SV: built from other domains, no raw source
    rejections: pd.DataFrame
    issues: pd.DataFrame
    reconciliation: pd.DataFrame
    spec_hashes: dict[str, str] = field(default_factory=dict)
    # Per collected field: mapped (by which specs), not submitted (why) or UNMAPPED.
    field_coverage: pd.DataFrame = field(default_factory=pd.DataFrame)

    def datasets(self) -> dict[str, pd.DataFrame]:
        out = {}
        for name, res in self.results.items():
            out[name] = res.data
            if res.supp is not None and len(res.supp):
                out[f"SUPP{name}"] = res.supp
        out.update(self.derived)
        return out


# One domain mapped: its result, per spec (source form, rejected records), and its
# `visit_records` (what SV needs of it, so that a domain mapped elsewhere need not send more).
Mapped = tuple[DomainResult, list[tuple[str, pd.DataFrame]], pd.DataFrame | None]


class Offload(Protocol):
    """Maps some domains elsewhere (`sdtm.run`: in a second process)."""

    def __call__(self, map_one: Callable[[str], Mapped], costs: dict[str, int],
                 forget_raw: Callable[[list[str]], None]) -> Offloaded | None:
        """Take some of `costs`' domains (cost: records of their source forms) and map each with
        `map_one`; None: take none. `forget_raw(pending)` lets go of every raw frame that no
        domain of `pending` reads, in the process where it is called: for a process of its
        own (the frames are gone for the build)."""


class Offloaded(Protocol):
    names: list[str]

    def result(self) -> dict[str, Mapped]: ...

    def cancel(self) -> None: ...


def build_sdtm(raw: RawTransfer, root=None, offload: Offload | None = None,
               let_go: Sequence[str] | None = None,
               meanwhile: Callable[[SdtmBuild], None] | None = None) -> SdtmBuild:
    """`offload`: once DM is mapped, offered the other domains; the ones it takes are mapped
    by it, the rest here meanwhile. The build is the same either way. `meanwhile`: while the
    offload is at work, handed each domain mapped here as soon as it is mapped, then SE (to
    write them then, and let their records go); not DM, which SV and the trial design, built
    at the end, need.

    `let_go`: the columns to keep of a raw frame once its accepted records are worked out
    (those are what mapping reads) and, where they are the frame itself, once no domain left
    to map here reads them. The frame is replaced in `raw` itself, so that its memory is freed
    while the build goes on. None: `raw` is left whole."""
    study = load_study(raw.study, root)
    specs = load_specs(raw.study, raw.forms, root)
    order = ["DM", *sorted(d for d in specs if d != "DM")]
    results, rejected, visits, derived = {}, {}, {}, {}
    ref_start = ref_exposure = elements = rules = None
    # LASTMODIFIED, the EDC's audit stamp, is text no spec maps but one distinct string per
    # record (104 MiB in LB at 10,000 subjects): the accepted records go without it, where the
    # raw frames are let go (leaving it out is a copy) and no spec names it
    left_out = ("LASTMODIFIED",) if let_go is not None and not _named("LASTMODIFIED", specs) else ()
    accepted = AcceptedRecords(raw, left_out)

    def cut(form: str, keep: Sequence[str]) -> None:
        df = raw.frames[form]
        raw.frames[form] = df[[c for c in keep if c in df.columns]]

    active = {}
    for form in raw.frames:     # a raw frame whose records were copied goes at once
        active[form] = accepted[form][0]
        if let_go is not None and active[form] is not raw.frames[form]:
            cut(form, let_go)
    unscheduled = unscheduled_visits(study, raw.forms, active)

    def map_one(name: str) -> Mapped:
        parts, rejects = [], []
        for spec in specs[name]:
            result, rejects_ = map_domain(spec, raw, study, ref_start=ref_start, ref_exposure=ref_exposure,
                                          elements=elements, active=active, unscheduled=unscheduled,
                                          accepted=accepted)
            parts.append((spec, result))
            rejects.append((spec.source, rejects_))
        combined = combine_parts(name, parts)
        visit_rows = visit_records(name, combined.data)
        release_memory()   # the mapping's temporaries, before the next domain's
        return combined, rejects, visit_rows

    results["DM"], rejected["DM"], visits["DM"] = map_one("DM")
    dm = results["DM"].data
    ref_start = dm.set_index("USUBJID")["RFSTDTC"]
    ref_exposure = dm.set_index("USUBJID")["RFXSTDTC"]
    rules = load_element_rules(study, raw.forms, root)
    elements = derived["SE"] = build_se(study, rules, dm, active)
    rest = [n for n in order[1:] if n in specs]
    costs = {n: sum(len(raw.frames[s.source]) for s in specs[n] if s.source in raw.frames) for n in rest}

    def unread(pending: list[str]) -> list[str]:
        """The forms no domain of `pending` reads."""
        read = set()
        for spec in (spec for name in pending for spec in specs[name]):
            forms = forms_read(spec)
            if forms is None:
                return []
            read |= forms
        return [form for form in raw.frames if form not in read]

    def forget(pending: list[str], keep: Sequence[str]) -> None:
        """Let go of the forms no domain of `pending` reads (of their raw frames: `keep`)."""
        forms = [f for f in unread(pending) if f not in accepted.gone]
        for form in forms:
            cut(form, keep)
            accepted.let_go(form)
            active.pop(form, None)
        if forms:
            release_memory()

    def hand_over(mapped: dict[str, DomainResult], built: dict[str, pd.DataFrame]) -> None:
        if elsewhere is not None and meanwhile is not None:
            meanwhile(SdtmBuild(raw.study, mapped, built, pd.DataFrame(), pd.DataFrame(), pd.DataFrame()))

    # the offload's process, where the build is not read again: every raw column may go
    elsewhere = (offload(map_one, costs, lambda pending: forget(pending, ())) if offload is not None and rest
                 else None)
    here = [name for name in rest if elsewhere is None or name not in elsewhere.names]
    try:
        for k, name in enumerate(here):
            if let_go is not None:
                forget(here[k:], let_go)
            results[name], rejected[name], visits[name] = map_one(name)
            hand_over({name: results[name]}, {})
        if let_go is not None:
            forget([], let_go)
        hand_over({}, {"SE": derived["SE"]})
    except BaseException:
        if elsewhere is not None:
            elsewhere.cancel()
        raise
    if elsewhere is not None:
        for name, (result, rejects, visit_rows) in elsewhere.result().items():
            results[name], rejected[name], visits[name] = result, rejects, visit_rows
        results = {n: results[n] for n in order if n in results}
    sv = sv_from_visits([visits[n] for n in results], results["DM"].data)
    if len(sv):
        derived["SV"] = sv
    rejections = {}
    for name in results:
        for source, rejects in rejected[name]:
            rejections.setdefault(source, []).append(rejects)
    rejections = _settle_rejections(rejections, results)
    for form in raw.frames:
        if form not in rejections:
            rejections[form] = accepted.rejected(form)
    rej = pd.concat(list(rejections.values()) or [pd.DataFrame(columns=REJECTION_COLUMNS)],
                    ignore_index=True)
    issues = pd.concat([r.issues for r in results.values()] or [pd.DataFrame(columns=ISSUE_COLUMNS)],
                       ignore_index=True)
    sources = {spec.source for group in specs.values() for spec in group}
    coverage = field_coverage(raw.forms, specs, load_not_submitted(raw.study, raw.forms, root), rules)
    return SdtmBuild(raw.study, results, derived, rej, issues, reconcile(raw, results, rejections, sources, coverage),
                     {s.path.name: s.sha256 for group in specs.values() for s in group}, coverage)


def _named(column: str, specs: dict[str, list]) -> bool:
    """Whether any spec names `column` (in a variable, a SUPP-- entry, its filter or split)."""
    return any(column in repr((spec.variables, spec.supp, spec.filter, spec.split))
               for group in specs.values() for spec in group)


def _mapped_records(results: dict[str, DomainResult]) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Per raw form: (domain, RECORDIDs in its trace) of every domain that maps it."""
    mapped: dict[str, list[tuple[str, np.ndarray]]] = {}
    for name, res in results.items():
        ids = res.trace["RECORDID"].to_numpy()
        for form, rows in res.trace.groupby("FORM").indices.items():
            mapped.setdefault(form, []).append((name, ids[rows]))
    return mapped


def _ids(parts: list[tuple[str, np.ndarray]]) -> np.ndarray:
    return np.concatenate([ids for _, ids in parts]) if parts else np.array([], dtype=object)


def _settle_rejections(per_spec: dict[str, list[pd.DataFrame]],
                       results: dict[str, DomainResult]) -> dict[str, pd.DataFrame]:
    """A form read by several specs (TL feeds TU and TR) is rejected per record only where no
    spec mapped it; each record is listed once, with the first reason given."""
    mapped = _mapped_records(results)
    settled = {}
    for form, frames in per_spec.items():
        rej = pd.concat(frames, ignore_index=True).drop_duplicates("RECORDID")
        # the few rejected ids are hashed, the many mapped ones only looked up
        ids = _ids(mapped.get(form, []))
        hit = ids[pd.Series(ids, dtype=object).isin(rej["RECORDID"]).to_numpy()] if len(rej) else ids[:0]
        settled[form] = rej[~rej["RECORDID"].isin(hit)].reset_index(drop=True)
    return settled


def combine_parts(domain: str, parts: list) -> DomainResult:
    """One domain from several specs (one per source form): --SEQ renumbered over the union in
    each part's key order, SUPP-- IDVARVAL and the trace following the new numbers.

    The parts' frames are emptied into the union (at 10,000 subjects LB would otherwise be
    held twice). A part's records are found again by (part, USUBJID, old --SEQ), unique within
    a domain, as integer keys."""
    if len(parts) == 1:
        return parts[0][1]
    seq_var = f"{domain}SEQ"
    results = [res for _, res in parts]
    # the union built a column at a time, each part's column let go once added: the records
    # are never held twice
    data = pd.DataFrame(index=pd.RangeIndex(sum(len(res.data) for res in results)))
    part = np.repeat(np.arange(len(results)), [len(res.data) for res in results])
    for c in dict.fromkeys(c for res in results for c in res.data.columns):
        data[c] = _union(results, c)
        for res in results:
            if c in res.data.columns:
                del res.data[c]
    old = (data[seq_var] if seq_var in data.columns else pd.Series(np.nan, index=data.index)).to_numpy()
    keys = ["USUBJID", *[k for k in parts[0][0].keys if k in data.columns and k != "USUBJID"]]
    order = sort_order([*(data[k].to_numpy() for k in keys), part, old])
    data = take_columns(data, order)
    data.index = pd.RangeIndex(len(data))
    data[seq_var] = run_numbers(data["USUBJID"])
    trace = pd.concat([res.trace for res in results], ignore_index=True)
    supps = [(k, res.supp) for k, res in enumerate(results) if res.supp is not None]
    supp = pd.concat([s for _, s in supps], ignore_index=True) if supps else None

    subjects = pd.Index(pd.unique(np.concatenate(
        [data["USUBJID"].to_numpy(), trace["USUBJID"].to_numpy(),
         *([] if supp is None else [supp["USUBJID"].to_numpy()])])))
    width = int(np.nanmax(old)) + 2 if len(old) and not np.isnan(old).all() else 2

    def key(part_no: np.ndarray, usubjid: pd.Series, seq: np.ndarray) -> np.ndarray:
        # a missing or fractional --SEQ matches nothing (-1 is never a record's key)
        whole = np.isfinite(seq) & (seq % 1 == 0) & (seq >= 0) & (seq < width)
        code = (part_no * len(subjects) + subjects.get_indexer(usubjid)) * width
        return np.where(whole, code + np.where(whole, seq, 0).astype(np.int64), -1)

    new_seq = data[seq_var].to_numpy()
    renumber = pd.Index(key(part[order], data["USUBJID"], old[order]))
    trace_part = np.repeat(np.arange(len(results)), [len(res.trace) for res in results])
    at = renumber.get_indexer(key(trace_part, trace["USUBJID"], trace["SEQ"].to_numpy(dtype=float)))
    # joined subject-level records (no --SEQ of their own) keep SEQ empty
    trace["SEQ"] = np.where(at >= 0, new_seq[at], np.nan)
    if supp is not None:
        supp_part = np.repeat([k for k, _ in supps], [len(s) for _, s in supps])
        at = renumber.get_indexer(key(supp_part, supp["USUBJID"], supp["IDVARVAL"].astype(float).to_numpy()))
        supp["IDVARVAL"] = pd.Series(np.where(at >= 0, new_seq[at], np.nan)).astype(int).astype(str).to_numpy()
    return DomainResult(domain, data, supp, trace, pd.concat([res.issues for res in results], ignore_index=True))


def _union(results: list[DomainResult], column: str) -> pd.Series:
    """One column of the parts' records concatenated, as pandas concatenates whole frames (a
    part without the column gives missing values)."""
    return pd.concat([res.data[[column]] if column in res.data.columns else pd.DataFrame(index=res.data.index)
                      for res in results], ignore_index=True)[column]


def reconcile(raw: RawTransfer, results: dict[str, DomainResult],
              rejections: dict[str, pd.DataFrame], sources: set[str],
              coverage: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per raw form: records in, records mapped (distinct RECORDIDs in the traces), rejected
    (distinct RECORDIDs in the rejection listing) and what is left unaccounted for; with the
    field coverage, how many collected fields are mapped / not submitted and which are
    UNMAPPED. A form is "mapped" only when every one of its collected fields lands somewhere;
    a form whose records are mapped but some fields are not is "fields unmapped"."""
    mapped = _mapped_records(results)
    rows = []
    for form, df in raw.frames.items():
        rejected = pd.unique(rejections[form]["RECORDID"].to_numpy()) if form in rejections else []
        ids = pd.unique(_ids(mapped.get(form, [])))
        n_rej = len(rejected)
        n_map = len(ids) - (int(pd.Series(ids, dtype=object).isin(rejected).sum()) if n_rej else 0)
        status = "mapped" if form in mapped or form in sources else "not mapped by any spec"
        rows.append((form, len(df), n_map, n_rej, len(df) - n_map - n_rej,
                     ", ".join(sorted({name for name, _ in mapped.get(form, [])})), status))
    out = pd.DataFrame(rows, columns=["FORM", "RECORDS", "MAPPED", "REJECTED", "UNACCOUNTED",
                                      "DOMAINS", "STATUS"])
    if coverage is None or coverage.empty:
        return out
    fields = form_field_summary(coverage)
    out = out.merge(fields, on="FORM", how="left")
    out["FIELDS_UNMAPPED"] = out["FIELDS_UNMAPPED"].fillna("")
    out["FIELDS_STALE"] = out["FIELDS_STALE"].fillna("")
    partly = (out["STATUS"] == MAPPED) & ((out["FIELDS_UNMAPPED"] != "") | (out["FIELDS_STALE"] != ""))
    out.loc[partly, "STATUS"] = "fields unmapped"
    return out
