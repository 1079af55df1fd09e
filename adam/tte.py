"""Time-to-event engine: the role of admiral's `derive_param_tte`, plus the FDA 2018 censoring
conventions of STUDIES.md §3 that admiral leaves to the programmer.

A parameter (`TteParam`) is data: a start date (an ADSL date, or the first record of a source,
e.g. the first response for DOR), an ADSL population, event sources and censoring rules, each
rule with its own CNSR and texts. Per subject, in this order of precedence:

1. `new_therapy`: new anti-cancer therapy started before the event (or with no event) -> censor
   at the last adequate assessment on or before the therapy start (the start date if none).
2. `missed`: the event came after >= 2 missed scheduled assessments -> censor at the last
   adequate assessment before the event (see `deadline_after` for the exact definition).
3. the earliest event on or after the start date (ties: the order of the event sources).
4. `last_assessment`: no event -> the last adequate assessment after the start date.
5. `no_assessment`: no event and no adequate assessment after the start -> the start date
   (AVAL = 1, "Day 1 of the interval").
6. `source` censors (admiral's censor_source, e.g. OS at ADSL.LSTALVDT): no event -> the latest
   of their dates on or after the start date; none -> the start date.

A parameter lists only the rules that apply to it (RFS and EFS have no new-therapy rule: §3
names PFS, DOR, PFS-t and PFS-c). An "adequate" assessment is whatever the parameter's
`assessments` source selects: for the response criteria an overall response other than NE
(not evaluable), so a technically inadequate scan never keeps a subject at risk.

Everything is vectorised: every source becomes a (USUBJID, ADT, SRCDOM, SRCVAR, SRCSEQ) frame,
frames are concatenated, and the record that decides is picked per subject with sort +
drop_duplicates — no per-subject Python. Partial dates are not imputed (a response or a death
without a full date cannot time an event) unless a source asks (`impute: M` for new therapy:
the first of the month, which censors no later than the truth).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from adam.dates import compute_dt
from adam.merged import RuleError, condition_mask

KEYS = ["USUBJID", "ADT", "SRCDOM", "SRCVAR", "SRCSEQ"]
RULES = ("source", "no_assessment", "new_therapy", "missed", "last_assessment")


@dataclass(frozen=True)
class Source:
    """Dated records of one dataset: an SDTM domain (read through the cut-off view) or ADSL."""
    dataset: str
    date: str
    filter: str = ""
    impute: str = "n"            # compute_dt highest_imputation for SDTM --DTC text
    optional: bool = False       # an absent dataset is no records (CM/PR: no new therapy), not an error

    def frame(self, frames, adsl: pd.DataFrame) -> pd.DataFrame:
        if self.dataset == "ADSL":
            df = adsl
            if self.date not in df.columns:
                raise RuleError(f"ADSL has no {self.date}", field=self.date, hint="derive it in ADSL first")
            seq = pd.Series(np.nan, index=df.index)
            date = pd.to_datetime(df[self.date])
        else:
            seqvar = f"{self.dataset}SEQ"
            absent = self.optional and not frames.has(self.dataset)
            df = pd.DataFrame() if absent else frames.get(self.dataset, ("USUBJID", self.date, seqvar))
            seq = df[seqvar] if not df.empty else pd.Series(dtype=float)
            date = compute_dt(df[self.date], self.impute, "first")[0] if not df.empty else pd.Series(dtype="datetime64[ns]")
        if df.empty:
            return pd.DataFrame({k: pd.Series(dtype=t) for k, t in
                                 zip(KEYS, (object, "datetime64[ns]", object, object, float))})
        keep = condition_mask(df, self.filter, f"{self.dataset} filter") if self.filter else np.ones(len(df), bool)
        out = pd.DataFrame({"USUBJID": df.USUBJID.to_numpy(), "ADT": date.to_numpy(),
                            "SRCDOM": self.dataset, "SRCVAR": self.date, "SRCSEQ": seq.to_numpy(np.float64)})
        return out[keep & out.ADT.notna().to_numpy()].reset_index(drop=True)


@dataclass(frozen=True)
class EventSource(Source):
    """An event (CNSR 0). `absent_by_day`: the event is the *absence* of a record of the source
    from the start date to start + that many days (treatment failure: no CR/CRi by the Month-3
    window), dated on the start date (AVAL 1: "an event on Day 0"). It is only called once the
    window is over at the cut-off, or the subject died inside it."""
    evntdesc: str = ""
    absent_by_day: int | None = None


@dataclass(frozen=True)
class CensorSource(Source):
    """A censoring rule (`kind` one of RULES) with its CNSR (>= 1) and texts; `sources` are the
    new-therapy records of a `new_therapy` rule. A `source` rule reads `dataset`/`date` itself."""
    cnsr: int = 1
    kind: str = "source"
    evntdesc: str = ""
    cnsdtdsc: str = ""
    sources: tuple[Source, ...] = ()
    dataset: str = ""
    date: str = ""


@dataclass(frozen=True)
class TteParam:
    paramcd: str
    param: str
    population: str                          # ADSL condition
    start: str | Source                      # ADSL date, or the first record of a source
    events: tuple[EventSource, ...]
    censors: tuple[CensorSource, ...]
    assessments: Source | None = None        # adequate response assessments
    through_days: int | None = None          # events and assessments up to start + this (PFS-t: 2 years)
    schedule: pd.DataFrame | None = field(default=None, compare=False)   # USUBJID, LODT, HIDT (see below)
    # a start source's records count only before this source's first record (DOR: a CR/PR
    # after progression is not a response, so it does not start a duration of response)
    start_before: Source | None = None

    def rule(self, kind: str) -> CensorSource | None:
        return next((c for c in self.censors if c.kind == kind), None)


def _first(df: pd.DataFrame, order=("ADT",), last: bool = False) -> pd.DataFrame:
    """One record per subject: the earliest (or latest) by `order`."""
    return df.sort_values(["USUBJID", *order], kind="stable").drop_duplicates("USUBJID", keep="last" if last else "first")


def deadline_after(ref: pd.DataFrame, schedule: pd.DataFrame | None) -> pd.Series:
    """For each subject's reference date `ref.REFDT` (the last adequate assessment, or the start
    date), the date after which an event counts as coming after >= 2 missed assessments.

    Definition: the scheduled assessment visits of the subject (study.yaml, dated from their
    anchors: `schedule` has USUBJID, LODT = day + window start, HIDT = day + window end) are in
    date order; the reference date has "reached" every visit whose window opened on or before it
    (LODT <= REFDT), say n of them. The next two scheduled visits are n+1 and n+2; both are
    missed when the event comes after the end of visit n+2's window (HIDT). No visit n+2 (the
    schedule is over) -> no deadline (NaT): nothing can be missed any more."""
    out = pd.Series(pd.NaT, index=ref.index, dtype="datetime64[ns]")
    if schedule is None or schedule.empty or ref.empty:
        return out
    sched = schedule.sort_values(["USUBJID", "LODT"], kind="stable")
    sched = sched.assign(_K=sched.groupby("USUBJID").cumcount())
    both = sched.merge(ref[["USUBJID", "REFDT"]], on="USUBJID")
    reached = (both.LODT <= both.REFDT).groupby(both.USUBJID).sum()
    want = pd.DataFrame({"USUBJID": ref.USUBJID.to_numpy(),
                         "_K": ref.USUBJID.map(reached).fillna(0).astype(int).to_numpy() + 1})
    found = want.merge(sched[["USUBJID", "_K", "HIDT"]], on=["USUBJID", "_K"], how="left")
    return pd.Series(found.HIDT.to_numpy(), index=ref.index)


def _start(param: TteParam, frames, adsl: pd.DataFrame) -> pd.DataFrame:
    pop = adsl[condition_mask(adsl, param.population, f"{param.paramcd} population")]
    if isinstance(param.start, str):
        st = pd.DataFrame({"USUBJID": pop.USUBJID.to_numpy(), "STARTDT": pd.to_datetime(pop[param.start]).to_numpy(),
                           "S_DOM": "ADSL", "S_VAR": param.start, "S_SEQ": np.nan})
    else:
        recs = param.start.frame(frames, adsl)
        if param.start_before is not None:
            stop = _first(param.start_before.frame(frames, adsl))[["USUBJID", "ADT"]]
            recs = recs.merge(stop.rename(columns={"ADT": "_STOP"}), on="USUBJID", how="left")
            recs = recs[recs._STOP.isna() | (recs.ADT < recs._STOP)].drop(columns="_STOP")
        first = _first(recs)
        first = first[first.USUBJID.isin(pop.USUBJID)]
        st = first.rename(columns={"ADT": "STARTDT", "SRCDOM": "S_DOM", "SRCVAR": "S_VAR", "SRCSEQ": "S_SEQ"})
    return st[st.STARTDT.notna()].reset_index(drop=True)


def _window(df: pd.DataFrame, st: pd.DataFrame, param: TteParam, strict: bool = False) -> pd.DataFrame:
    """Records of subjects at risk, on/after the start (after it when `strict`), within through_days."""
    df = df.merge(st[["USUBJID", "STARTDT"]], on="USUBJID")
    keep = (df.ADT > df.STARTDT) if strict else (df.ADT >= df.STARTDT)
    if param.through_days is not None:
        keep &= df.ADT <= df.STARTDT + pd.Timedelta(days=param.through_days)
    return df[keep].drop(columns="STARTDT")


def _events(param: TteParam, frames, adsl: pd.DataFrame, st: pd.DataFrame) -> pd.DataFrame:
    parts = []
    for i, ev in enumerate(param.events):
        recs = ev.frame(frames, adsl)
        if ev.absent_by_day is not None:
            recs = _absence(ev, recs, st, adsl, frames.cutoff)
        else:
            recs = _window(recs, st, param)
        parts.append(recs.assign(EVNTDESC=ev.evntdesc, _ORD=i))
    if not parts:
        return pd.DataFrame(columns=[*KEYS, "EVNTDESC", "_ORD"])
    return _first(pd.concat(parts, ignore_index=True), ("ADT", "_ORD"))


def _absence(ev: EventSource, recs: pd.DataFrame, st: pd.DataFrame, adsl: pd.DataFrame, cutoff) -> pd.DataFrame:
    end = st.STARTDT + pd.Timedelta(days=ev.absent_by_day)
    hit = recs.merge(st[["USUBJID", "STARTDT"]], on="USUBJID")
    hit = hit[(hit.ADT >= hit.STARTDT) & (hit.ADT <= hit.STARTDT + pd.Timedelta(days=ev.absent_by_day))]
    death = st.USUBJID.map(adsl.set_index("USUBJID").DTHDT) if "DTHDT" in adsl.columns else pd.Series(pd.NaT, index=st.index)
    over = (end <= pd.Timestamp(cutoff)) | (pd.to_datetime(death) <= end)
    fail = st[~st.USUBJID.isin(hit.USUBJID) & over.to_numpy()]
    return pd.DataFrame({"USUBJID": fail.USUBJID, "ADT": fail.STARTDT, "SRCDOM": fail.S_DOM,
                         "SRCVAR": fail.S_VAR, "SRCSEQ": fail.S_SEQ})


def derive_param_tte(frames, adsl: pd.DataFrame, param: TteParam) -> pd.DataFrame:
    """One record per subject of the population with a start date: USUBJID, PARAMCD, PARAM,
    STARTDT, ADT, AVAL (days, ADT - STARTDT + 1), CNSR, EVNTDESC, CNSDTDSC, SRCDOM/SRCVAR/SRCSEQ
    of the record that decided it."""
    for c in param.censors:
        if c.kind not in RULES:
            raise RuleError(f"{param.paramcd}: censoring rule {c.kind!r} is not one of {', '.join(RULES)}",
                            field="kind", hint="fix the parameter in mappings/<STUDY>/adam/adtte.yaml")
    st = _start(param, frames, adsl)
    t = st.copy()
    ev = _events(param, frames, adsl, st)
    t = t.merge(ev.rename(columns={"ADT": "E_DT", "SRCDOM": "E_DOM", "SRCVAR": "E_VAR", "SRCSEQ": "E_SEQ"})
                .drop(columns="_ORD"), on="USUBJID", how="left")
    has_ev = t.E_DT.notna().to_numpy()

    # new anti-cancer therapy before the event (or without one)
    nt_rule = param.rule("new_therapy")
    nt_applies = np.zeros(len(t), bool)
    if nt_rule is not None and nt_rule.sources:
        nt = _first(_window(pd.concat([s.frame(frames, adsl) for s in nt_rule.sources], ignore_index=True), st, param))
        t["N_DT"] = t.USUBJID.map(nt.set_index("USUBJID").ADT)
        nt_applies = (t.N_DT.notna() & (~has_ev | (t.N_DT < t.E_DT))).to_numpy()
    # the last adequate assessment before what ends follow-up: the therapy (on or before it),
    # the event (strictly before it) or the cut-off
    limit = pd.Series(pd.Timestamp.max, index=t.index)
    limit = limit.where(~has_ev, t.E_DT - pd.Timedelta(days=1))
    if nt_applies.any():
        limit = limit.where(~nt_applies, t.N_DT)
    la = pd.DataFrame(columns=KEYS)
    if param.assessments is not None:
        a = _window(param.assessments.frame(frames, adsl), st, param, strict=True)
        a = a.merge(pd.DataFrame({"USUBJID": t.USUBJID, "_LIM": limit}), on="USUBJID")
        la = _first(a[a.ADT <= a._LIM].drop(columns="_LIM"), last=True)
    t = t.merge(la.rename(columns={"ADT": "L_DT", "SRCDOM": "L_DOM", "SRCVAR": "L_VAR", "SRCSEQ": "L_SEQ"}),
                on="USUBJID", how="left")
    has_la = t.L_DT.notna().to_numpy()

    missed = np.zeros(len(t), bool)
    if (m_rule := param.rule("missed")) is not None and has_ev.any():
        ref = pd.DataFrame({"USUBJID": t.USUBJID, "REFDT": t.L_DT.where(has_la, t.STARTDT)})
        deadline = deadline_after(ref, param.schedule)
        missed = (has_ev & ~nt_applies & deadline.notna().to_numpy() & (t.E_DT > deadline).to_numpy())

    # the generic censor sources (admiral's censor_source: latest date on/after the start)
    src_rules = [c for c in param.censors if c.kind == "source"]
    cs = None
    if src_rules:
        parts = [_window(c.frame(frames, adsl), st, param).assign(_C=i) for i, c in enumerate(src_rules)]
        cs = _first(pd.concat(parts, ignore_index=True), ("ADT", "_C"), last=True).set_index("USUBJID")

    n = len(t)
    out = pd.DataFrame({"USUBJID": t.USUBJID, "STARTDT": t.STARTDT, "ADT": pd.NaT, "CNSR": np.nan,
                        "EVNTDESC": "", "CNSDTDSC": "", "SRCDOM": "", "SRCVAR": "", "SRCSEQ": np.nan})
    decided = np.zeros(n, bool)

    def put(mask, rule, date, dom, var, seq, evntdesc=None):
        nonlocal decided
        mask = mask & ~decided
        if not mask.any():
            return
        out.loc[mask, "ADT"] = date[mask]
        out.loc[mask, "CNSR"] = 0 if rule is None else rule.cnsr
        out.loc[mask, "EVNTDESC"] = evntdesc[mask] if evntdesc is not None else rule.evntdesc
        out.loc[mask, "CNSDTDSC"] = "" if rule is None else rule.cnsdtdsc
        out.loc[mask, "SRCDOM"], out.loc[mask, "SRCVAR"], out.loc[mask, "SRCSEQ"] = dom[mask], var[mask], seq[mask]
        decided |= mask

    at_la = (t.L_DT.where(has_la, t.STARTDT), t.L_DOM.where(has_la, t.S_DOM),
             t.L_VAR.where(has_la, t.S_VAR), t.L_SEQ.where(has_la, t.S_SEQ))
    if nt_rule is not None:
        put(nt_applies, nt_rule, *at_la)
    if m_rule is not None:
        put(missed, m_rule, *at_la)
    put(has_ev, None, t.E_DT, t.E_DOM, t.E_VAR, t.E_SEQ, evntdesc=t.EVNTDESC)
    if (r := param.rule("last_assessment")) is not None:
        put(has_la, r, t.L_DT, t.L_DOM, t.L_VAR, t.L_SEQ)
    if (r := param.rule("no_assessment")) is not None:
        put(np.ones(n, bool), r, t.STARTDT, t.S_DOM, t.S_VAR, t.S_SEQ)
    if cs is not None:
        m = cs.reindex(t.USUBJID.to_numpy())          # NaN where a subject has no censor record
        which = m._C.to_numpy()

        def col(name):
            return pd.Series(m[name].to_numpy(), index=t.index)
        for i, rule in enumerate(src_rules):          # one pass per censor source, not per subject
            put(which == i, rule, pd.to_datetime(col("ADT")), col("SRCDOM"), col("SRCVAR"), col("SRCSEQ"))
        # no dated censor record on/after the start: censored on the start date
        put(np.ones(n, bool), src_rules[0], t.STARTDT, t.S_DOM, t.S_VAR, t.S_SEQ)
    if not decided.all():
        first = t.USUBJID[~decided].iloc[0]
        raise RuleError(f"{param.paramcd}: subject {first} has no event and no censoring rule applies",
                        field="censors", hint="add a no_assessment or source censor to the parameter")
    out["ADT"] = pd.to_datetime(out.ADT)
    out["AVAL"] = (out.ADT - out.STARTDT).dt.days.astype(np.float64) + 1
    out["CNSR"] = out.CNSR.astype(np.float64)
    out.insert(1, "PARAMCD", param.paramcd)
    out.insert(2, "PARAM", param.param)
    return out.reset_index(drop=True)


def compute_schedule(adsl: pd.DataFrame, study, assessments: dict[str, list[str]] | list[str],
                     anchors: dict[str, str], by: str | None = None) -> pd.DataFrame:
    """Each subject's scheduled response-assessment visits as dates (USUBJID, LODT, HIDT): the
    study.yaml visits carrying the assessment(s) — per value of ADSL variable `by` when the
    assessment differs (RS001: RESP_NHL for B-NHL, RESP_ALL for B-ALL) — dated from their anchor
    (`anchors` maps a study.yaml anchor to the ADSL date it is, e.g. INFUSION: TRTSDT). A
    subject without the anchor date (no CAR-T) has no such visits."""
    groups = assessments if isinstance(assessments, dict) else {None: assessments}
    rows = []
    for group, names in groups.items():
        for v in study.visits:
            if not set(names) & set(v.assessments):
                continue
            if v.anchor not in anchors:
                raise RuleError(f"visit {v.folder} is relative to anchor {v.anchor}, which the schedule does not map "
                                "to an ADSL date", field="anchors", hint=f"add {v.anchor}: <ADSL date> to schedule.anchors")
            rows.append({"_G": group, "_A": anchors[v.anchor], "_DAY": v.day, "_LO": v.window[0], "_HI": v.window[1]})
    vis = pd.DataFrame(rows)
    if vis.empty:
        return pd.DataFrame(columns=["USUBJID", "LODT", "HIDT"])
    subj = adsl[["USUBJID", *({by} if by else set()), *sorted(set(vis._A))]].copy()
    subj["_G"] = subj[by] if by else None
    both = subj.merge(vis, on="_G")
    anchor = pd.Series(pd.NaT, index=both.index, dtype="datetime64[ns]")
    for name in set(vis._A):
        anchor = anchor.where(both._A != name, pd.to_datetime(both[name]))
    day = pd.to_timedelta(both._DAY, unit="D")
    out = pd.DataFrame({"USUBJID": both.USUBJID, "LODT": anchor + day + pd.to_timedelta(both._LO, unit="D"),
                        "HIDT": anchor + day + pd.to_timedelta(both._HI, unit="D")})
    return out[out.LODT.notna()].sort_values(["USUBJID", "LODT"], kind="stable").reset_index(drop=True)

