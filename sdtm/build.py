"""Build every SDTM dataset of a study from one raw transfer, with reconciliation.

Order matters: DM first (its RFSTDTC anchors every --DY), then the other mapped domains.
Reconciliation accounts for every raw record: mapped into a domain, rejected with a reason,
or (for forms no spec maps yet) listed as unmapped — never silently dropped.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from clinpipe.config import load_study
from edc.read import RawTransfer
from sdtm.engine import (
    ISSUE_COLUMNS,
    REJECTION_COLUMNS,
    DomainResult,
    accepted_records,
    active_records,
    enrolled_subjects,
    map_domain,
)
from sdtm.field_coverage import MAPPED, field_coverage, form_field_summary, load_not_submitted
from sdtm.spec import load_specs
from sdtm.subject_elements import build_se, load_element_rules
from sdtm.subject_visits import build_sv
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


def build_sdtm(raw: RawTransfer, root=None) -> SdtmBuild:
    study = load_study(raw.study, root)
    specs = load_specs(raw.study, raw.forms, root)
    order = ["DM", *sorted(d for d in specs if d != "DM")]
    results, rejections, derived = {}, {}, {}
    ref_start = ref_exposure = elements = rules = None
    active = active_records(raw)
    unscheduled = unscheduled_visits(study, raw.forms, active)
    for name in order:
        if name not in specs:
            continue
        parts = []
        for spec in specs[name]:
            result, rejected = map_domain(spec, raw, study, ref_start=ref_start, ref_exposure=ref_exposure,
                                          elements=elements,
                                          active=active, unscheduled=unscheduled)
            parts.append((spec, result))
            rejections.setdefault(spec.source, []).append(rejected)
        results[name] = combine_parts(name, parts)
        if name == "DM":
            dm = results[name].data
            ref_start = dm.set_index("USUBJID")["RFSTDTC"]
            ref_exposure = dm.set_index("USUBJID")["RFXSTDTC"]
            rules = load_element_rules(study, raw.forms, root)
            elements = derived["SE"] = build_se(study, rules, dm, active)
    sv = build_sv({n: r.data for n, r in results.items()}, results["DM"].data)
    if len(sv):
        derived["SV"] = sv
    rejections = _settle_rejections(rejections, results)
    enrolled = enrolled_subjects(raw)
    for form in raw.frames:
        if form not in rejections:
            rejections[form] = accepted_records(raw, form, enrolled)[1]
    rej = pd.concat(list(rejections.values()) or [pd.DataFrame(columns=REJECTION_COLUMNS)],
                    ignore_index=True)
    issues = pd.concat([r.issues for r in results.values()] or [pd.DataFrame(columns=ISSUE_COLUMNS)],
                       ignore_index=True)
    sources = {spec.source for group in specs.values() for spec in group}
    coverage = field_coverage(raw.forms, specs, load_not_submitted(raw.study, raw.forms, root), rules)
    return SdtmBuild(raw.study, results, derived, rej, issues, reconcile(raw, results, rejections, sources, coverage),
                     {s.path.name: s.sha256 for group in specs.values() for s in group}, coverage)


def _settle_rejections(per_spec: dict[str, list[pd.DataFrame]],
                       results: dict[str, DomainResult]) -> dict[str, pd.DataFrame]:
    """A form read by several specs (TL feeds TU and TR) is rejected per record only where no
    spec mapped it; each record is listed once, with the first reason given."""
    mapped: dict[str, set] = {}
    for res in results.values():
        for form, ids in res.trace.groupby("FORM")["RECORDID"]:
            mapped.setdefault(form, set()).update(ids)
    settled = {}
    for form, frames in per_spec.items():
        rej = pd.concat(frames, ignore_index=True).drop_duplicates("RECORDID")
        settled[form] = rej[~rej["RECORDID"].isin(mapped.get(form, set()))].reset_index(drop=True)
    return settled


def combine_parts(domain: str, parts: list) -> DomainResult:
    """One domain from several specs (one per source form): --SEQ renumbered over the union in
    each part's key order, SUPP-- IDVARVAL and the trace following the new numbers."""
    if len(parts) == 1:
        return parts[0][1]
    seq_var = f"{domain}SEQ"
    data, supp, trace, issues = [], [], [], []
    for k, (spec, res) in enumerate(parts):
        d = res.data.assign(_PART=k, _OLD=res.data.get(seq_var))
        data.append(d)
        if res.supp is not None:
            supp.append(res.supp.assign(_PART=k))
        trace.append(res.trace.assign(_PART=k))
        issues.append(res.issues)
    data = pd.concat(data, ignore_index=True)
    keys = ["USUBJID", *[k for k in parts[0][0].keys if k in data.columns and k != "USUBJID"], "_PART", "_OLD"]
    data = data.sort_values(keys, kind="stable").reset_index(drop=True)
    data[seq_var] = data.groupby("USUBJID").cumcount().astype("float64") + 1
    renumber = data[["_PART", "USUBJID", "_OLD", seq_var]]
    trace = pd.concat(trace, ignore_index=True)
    # joined subject-level records (no --SEQ of their own) keep SEQ empty
    trace["SEQ"] = trace.merge(renumber, how="left", left_on=["_PART", "USUBJID", "SEQ"],
                               right_on=["_PART", "USUBJID", "_OLD"])[seq_var].to_numpy()
    supp_df = None
    if supp:
        supp_df = pd.concat(supp, ignore_index=True)
        old = supp_df.assign(_OLD=supp_df["IDVARVAL"].astype(float))
        new = old.merge(renumber, how="left", on=["_PART", "USUBJID", "_OLD"])[seq_var]
        supp_df["IDVARVAL"] = new.astype(int).astype(str).to_numpy()
        supp_df = supp_df.drop(columns="_PART")
    return DomainResult(domain, data.drop(columns=["_PART", "_OLD"]), supp_df, trace.drop(columns="_PART"),
                        pd.concat(issues, ignore_index=True))


def reconcile(raw: RawTransfer, results: dict[str, DomainResult],
              rejections: dict[str, pd.DataFrame], sources: set[str],
              coverage: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per raw form: records in, records mapped (distinct RECORDIDs in the traces), rejected
    (distinct RECORDIDs in the rejection listing) and what is left unaccounted for; with the
    field coverage, how many collected fields are mapped / not submitted and which are
    UNMAPPED. A form is "mapped" only when every one of its collected fields lands somewhere;
    a form whose records are mapped but some fields are not is "fields unmapped"."""
    mapped: dict[str, set] = {}
    domains: dict[str, list] = {}
    for name, res in results.items():
        for form, ids in res.trace.groupby("FORM")["RECORDID"]:
            mapped.setdefault(form, set()).update(ids)
            domains.setdefault(form, []).append(name)
    rows = []
    for form, df in raw.frames.items():
        rejected = set(rejections[form]["RECORDID"]) if form in rejections else set()
        n_map, n_rej = len(mapped.get(form, set()) - rejected), len(rejected)
        status = "mapped" if form in mapped or form in sources else "not mapped by any spec"
        rows.append((form, len(df), n_map, n_rej, len(df) - n_map - n_rej,
                     ", ".join(sorted(set(domains.get(form, [])))), status))
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
