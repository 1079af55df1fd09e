"""ADTTE: one record per subject and time-to-event parameter (STUDIES.md §1.2, §2.2, §3).

The parameters are data (mappings/<STUDY>/adam/adtte.yaml, PARAMCD rule; the shared sources
and censoring reasons in mappings/common/adam/adtte.yaml, CNSR rule); `adam.tte` does the
work. Response assessments are read from SDTM RS directly (RSTESTCD = OVRLRESP, RSCAT naming
the criterion) through the cut-off view, so ADTTE does not depend on ADRS being built.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from adam.merged import RuleError
from adam.metadata import DatasetSpec, load_spec
from adam.tte import CensorSource, EventSource, Source, TteParam, compute_schedule, derive_param_tte

ADSL_VARS = ["STUDYID", "SUBJID", "SITEID", "TRT01P", "TRT01A", "SAFFL"]


def _source(d: dict, where: str) -> Source:
    try:
        return Source(d["dataset"], d["date"], d.get("filter", ""), d.get("impute", "n"),
                      bool(d.get("optional", False)))
    except KeyError as exc:
        raise RuleError(f"{where}: a source needs dataset and date ({exc} missing)", field=where,
                        hint="e.g. {dataset: RS, date: RSDTC, filter: ...}") from None


def load_params(spec: DatasetSpec, study, adsl: pd.DataFrame) -> list[TteParam]:
    """The study's parameters from the spec's rules, with each subject's assessment schedule."""
    conv = spec.var("CNSR").rule or {}
    rule = spec.var("PARAMCD").rule or {}
    named = {**conv.get("sources", {}), **rule.get("sources", {})}

    def src(name: str, where: str) -> Source:
        if name not in named:
            raise RuleError(f"{where}: no source named {name!r}", field=where,
                            hint=f"name one of {', '.join(sorted(named))} or add it under sources:")
        return _source(named[name], name)

    censors = {}
    for name, c in conv.get("censors", {}).items():
        base = src(c["source"], name) if c.get("source") else Source("", "")
        censors[name] = CensorSource(dataset=base.dataset, date=base.date, filter=base.filter, impute=base.impute,
                                     optional=base.optional,
                                     cnsr=int(c["cnsr"]), kind=c.get("kind", "source"),
                                     evntdesc=c.get("evntdesc", ""), cnsdtdsc=c.get("cnsdtdsc", ""),
                                     sources=tuple(src(s, name) for s in c.get("sources", ())))
    sch = rule.get("schedule")
    schedule = compute_schedule(adsl, study, sch["visits"], sch["anchors"], sch.get("by")) if sch else None
    params = []
    for p in rule.get("parameters", []):
        code = p["paramcd"]
        events = []
        for e in p["events"]:
            s = src(e["source"], code)
            events.append(EventSource(s.dataset, s.date, s.filter, s.impute, s.optional, evntdesc=e.get("evntdesc", ""),
                                      absent_by_day=e.get("absent_by_day")))
        unknown = [c for c in p["censors"] if c not in censors]
        if unknown:
            raise RuleError(f"{code}: censoring reason {unknown[0]!r} is not defined", field="censors",
                            hint=f"use one of {', '.join(censors)} (mappings/common/adam/adtte.yaml)")
        start = p["start"]
        start = src(start["source"], code) if isinstance(start, dict) else start
        params.append(TteParam(code, p["param"], p["population"], start, tuple(events),
                               tuple(censors[c] for c in p["censors"]),
                               src(p["assessments"], code) if p.get("assessments") else None,
                               p.get("through_days"), schedule,
                               src(p["start_before"], code) if p.get("start_before") else None))
    codes = [p.paramcd for p in params]
    if len(set(codes)) != len(codes) or len({p.param for p in params}) != len(codes):
        raise RuleError("PARAMCD and PARAM must be one-to-one and unique", field="parameters",
                        hint="give each parameter its own code and description")
    return params


def build_adtte(frames, study, adsl: pd.DataFrame, spec: DatasetSpec | None = None) -> pd.DataFrame | None:
    # Without response assessments there is no progression, response or relapse to time (like
    # ADPC without PC, and ADRS): the dataset does not apply and is not written.
    if not frames.has("RS"):
        return None
    spec = spec or load_spec("ADTTE", study.study.studyid)
    params = load_params(spec, study, adsl)
    if not params:
        return None
    parts = [derive_param_tte(frames, adsl, p).assign(PARAMN=float(i + 1)) for i, p in enumerate(params)]
    tte = pd.concat(parts, ignore_index=True)
    extra = [v for v in spec.names if v in adsl.columns and v not in ("USUBJID", *ADSL_VARS)]
    tte = tte.merge(adsl[["USUBJID", *ADSL_VARS, *extra]], on="USUBJID", how="left")
    tte = tte.rename(columns={"TRT01P": "TRTP", "TRT01A": "TRTA"})
    tte = tte.sort_values(["USUBJID", "PARAMN"], kind="stable").reset_index(drop=True)
    tte["ASEQ"] = (tte.groupby("USUBJID").cumcount() + 1).astype(np.float64)
    return tte[spec.names]
