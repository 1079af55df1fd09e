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
from sdtm.engine import ISSUE_COLUMNS, REJECTION_COLUMNS, DomainResult, map_domain
from sdtm.spec import load_specs


@dataclass
class SdtmBuild:
    study: str
    results: dict[str, DomainResult]
    rejections: pd.DataFrame
    issues: pd.DataFrame
    reconciliation: pd.DataFrame
    spec_hashes: dict[str, str] = field(default_factory=dict)

    def datasets(self) -> dict[str, pd.DataFrame]:
        out = {}
        for name, res in self.results.items():
            out[name] = res.data
            if res.supp is not None and len(res.supp):
                out[f"SUPP{name}"] = res.supp
        return out


def build_sdtm(raw: RawTransfer, root=None) -> SdtmBuild:
    study = load_study(raw.study, root)
    specs = load_specs(raw.study, raw.forms, root)
    order = ["DM", *sorted(d for d in specs if d != "DM")]
    results, rejections = {}, {}
    ref_start = None
    for name in order:
        if name not in specs:
            continue
        result, rejected = map_domain(specs[name], raw, study, ref_start=ref_start)
        results[name] = result
        rejections[specs[name].source] = rejected
        if name == "DM":
            ref_start = result.data.set_index("USUBJID")["RFSTDTC"]
    rej = pd.concat(list(rejections.values()) or [pd.DataFrame(columns=REJECTION_COLUMNS)],
                    ignore_index=True)
    issues = pd.concat([r.issues for r in results.values()] or [pd.DataFrame(columns=ISSUE_COLUMNS)],
                       ignore_index=True)
    return SdtmBuild(raw.study, results, rej, issues, reconcile(raw, results, rejections),
                     {n: s.sha256 for n, s in specs.items()})


def reconcile(raw: RawTransfer, results: dict[str, DomainResult],
              rejections: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per raw form: records in, records mapped (distinct RECORDIDs in the traces), rejected."""
    mapped: dict[str, set] = {}
    domains: dict[str, list] = {}
    for name, res in results.items():
        for form, ids in res.trace.groupby("FORM")["RECORDID"]:
            mapped.setdefault(form, set()).update(ids)
            domains.setdefault(form, []).append(name)
    rows = []
    for form, df in raw.frames.items():
        n_map = len(mapped.get(form, ()))
        n_rej = len(rejections.get(form, ())) if form in rejections else 0
        status = "mapped" if form in rejections else "not yet mapped by a spec"
        rows.append((form, len(df), n_map, n_rej, len(df) - n_map - n_rej if form in rejections else 0,
                     ", ".join(sorted(set(domains.get(form, [])))), status))
    return pd.DataFrame(rows, columns=["FORM", "RECORDS", "MAPPED", "REJECTED", "UNACCOUNTED",
                                       "DOMAINS", "STATUS"])
