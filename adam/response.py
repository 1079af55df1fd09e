"""Response engine: best overall response from ordered event definitions (the role of
admiral's `derive_extreme_event` / admiralonco's `derive_param_bor`), vectorised over subjects.

Input is one record per overall-response assessment (USUBJID, ADT, AVALC the criterion's code,
SRCSEQ) plus the subject's analysis window and anchor as columns. The criterion (study.yaml
`response_criteria`) gives each code a rank (1 = best) and says which are responders; nothing
here names a response value.

Rules, each a keyword so a parameter states them as data (mappings/<STUDY>/adam/adrs.yaml):
- window: `WSTART` < ADT <= `WEND` (dates per subject: the start is the anchor itself, e.g. the
  infusion, so the pre-infusion baseline scan never counts);
- new anti-cancer therapy (`NEWTXDT`): assessments after its start do not count (on the start
  day the scan is taken before the new therapy begins, so it counts);
- stop at progression: nothing after the first PD (or relapse) counts; the PD itself does;
- SD minimum duration: an SD earlier than `sd_min_days` after the anchor is not evaluable
  (Lugano as RS001 applies it: "SD needs an assessment >= Day 21") and ranks as NE;
- confirmation: not required by these studies; `confirm_days` would need a second CR/PR at
  least that many days later (kept off; no study asks for it);
- LYRIC (`compute_lyric`): IR1/IR2/IR3 are not progression when called; a PD at the next
  evaluable assessment confirms the IR run before it and the progression is back-dated to the
  first IR of that run (the IR records then count as PD); an IR followed by anything else
  stays an IR.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

KEY = ["USUBJID"]


@dataclass(frozen=True)
class Criterion:
    """A criterion's ordered responses: code -> rank (1 best), the responders, the progression
    codes (the worst-but-NE, e.g. PD; RELAPSE for ALL) and the indeterminate codes (LYRIC)."""
    code: str
    ranks: dict[str, int]
    responders: frozenset[str]
    progression: frozenset[str] = frozenset({"PD"})
    indeterminate: frozenset[str] = frozenset()
    not_evaluable: str = "NE"

    @classmethod
    def from_study(cls, study, code: str, progression=("PD", "RELAPSE"), indeterminate=("IR1", "IR2", "IR3")):
        crit = study.criteria(code) if hasattr(study, "criteria") else next(
            c for c in study.response_criteria if c.code == code)
        ranks = {r.code: r.rank for r in crit.responses}
        return cls(code, ranks, frozenset(r.code for r in crit.responses if r.responder),
                   frozenset(p for p in progression if p in ranks),
                   frozenset(i for i in indeterminate if i in ranks))


@dataclass(frozen=True)
class BestResponseRule:
    """How one best-response parameter is decided (see the module docstring)."""
    stop_at_progression: bool = True
    stop_at_new_therapy: bool = True
    sd_min_days: int | None = None
    sd_code: str = "SD"
    confirm_days: int | None = None
    extra: dict = field(default_factory=dict)


def _sorted(assess: pd.DataFrame) -> pd.DataFrame:
    return assess.sort_values(["USUBJID", "ADT", "SRCSEQ"], kind="stable").reset_index(drop=True)


def _prior_in_subject(flag: pd.Series, subj: pd.Series) -> pd.Series:
    """True where an earlier record of the same subject has `flag` (records sorted)."""
    c = flag.astype(int).groupby(subj.to_numpy()).cumsum() - flag.astype(int)
    return c > 0


def compute_lyric(assess: pd.DataFrame, crit: Criterion) -> pd.DataFrame:
    """LYRIC back-dating. Adds RESPC (the response as it counts: an IR confirmed by the next
    evaluable assessment's PD is PD), IRCONF ("Y" on IR records so confirmed) and PDDT (on
    progression records: the progression date, the first IR of a confirmed run else ADT).
    NE records are left out of the IR/PD sequence (a not-evaluable scan confirms nothing)."""
    out = _sorted(assess)
    out["RESPC"] = out["AVALC"]
    out["IRCONF"] = ""
    out["PDDT"] = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns]")
    ev = out[out["AVALC"] != crit.not_evaluable]
    subj = ev["USUBJID"]
    is_ir = ev["AVALC"].isin(crit.indeterminate)
    is_pd = ev["AVALC"].isin(crit.progression)
    new_subj = subj != subj.shift()
    # runs of consecutive IR records: a run id that changes at every non-IR record or subject
    run = (~is_ir | new_subj).cumsum()
    run_start = ev["ADT"].where(is_ir & (new_subj | ~is_ir.shift(fill_value=False)))
    run_start = run_start.groupby(run.to_numpy()).transform("first")
    prev_ir = is_ir.shift(fill_value=False) & ~new_subj
    confirming = is_pd & prev_ir
    # the run the confirming PD closes is the run of the record before it
    confirmed_runs = run.shift()[confirming].unique()
    conf_ir = is_ir & run.isin(confirmed_runs)
    out.loc[conf_ir[conf_ir].index, "RESPC"] = "PD" if "PD" in crit.progression else min(crit.progression)
    out.loc[conf_ir[conf_ir].index, "IRCONF"] = "Y"
    pd_dt = ev["ADT"].where(is_pd)
    pd_dt[confirming] = run_start.shift()[confirming]
    out.loc[pd_dt.index, "PDDT"] = pd_dt
    return out


def derive_best_response(assess: pd.DataFrame, crit: Criterion, rule: BestResponseRule,
                         resp_var: str = "AVALC") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Best response per subject, and the scored records. `assess` has USUBJID, ADT, SRCSEQ,
    `resp_var` and the subject's ANCHOR, WSTART, WEND (dates) and NEWTXDT (date or NaT).
    The best: one record per subject with an eligible assessment, AVALC (best code), AVAL (its
    rank), ADT and SRCSEQ of the assessment that gave it (ties on rank: the earliest, the first
    time it was reached); subjects with none are absent (the caller gives them NE). The scored
    records: `assess` sorted, with BESTC (the code as it counts: early SD -> NE), RANK and ANL
    (eligible: in the window, not after the first progression or new therapy)."""
    a = _sorted(assess)
    resp = a[resp_var]
    ok = a["ADT"].notna() & (a["ADT"] > a["WSTART"]) & (a["ADT"] <= a["WEND"])
    if rule.stop_at_new_therapy and "NEWTXDT" in a.columns:
        ok &= ~(a["NEWTXDT"].notna() & (a["ADT"] > a["NEWTXDT"]))
    if rule.stop_at_progression:
        prog = ok & resp.isin(crit.progression)
        ok &= ~_prior_in_subject(prog, a["USUBJID"])
    code = resp.where(resp.isin(crit.ranks.keys()), crit.not_evaluable)
    if rule.sd_min_days is not None:
        early = (a["ADT"] - a["ANCHOR"]).dt.days < rule.sd_min_days
        code = code.where(~((code == rule.sd_code) & early), crit.not_evaluable)
    if rule.confirm_days is not None:
        code = _confirm(a, code, ok, crit, rule.confirm_days)
    a["BESTC"] = code
    a["RANK"] = code.map(crit.ranks).astype(float)
    a["ANL"] = ok
    cand = a[ok].sort_values(["USUBJID", "RANK", "ADT", "SRCSEQ"], kind="stable")
    best = cand.drop_duplicates("USUBJID")[["USUBJID", "BESTC", "RANK", "ADT", "SRCSEQ"]]
    best = best.rename(columns={"BESTC": "AVALC", "RANK": "AVAL"})
    return best.reset_index(drop=True), a


def _confirm(a: pd.DataFrame, code: pd.Series, ok: pd.Series, crit: Criterion, days: int) -> pd.Series:
    """A responder code counts only if a later eligible assessment >= `days` later is a
    responder of the same or better rank; otherwise it is downgraded to SD (RECIST-style)."""
    rank = code.map(crit.ranks).astype(float)
    # per subject, the best rank among records at least `days` later: merge_asof on reversed time
    later = pd.DataFrame({"USUBJID": a["USUBJID"], "ADT": a["ADT"], "R": rank.where(ok)})
    later = later.sort_values(["ADT"], kind="stable")
    later["BESTLATER"] = later.iloc[::-1].groupby("USUBJID")["R"].cummin().iloc[::-1]
    probe = pd.DataFrame({"USUBJID": a["USUBJID"], "ADT": a["ADT"] + pd.Timedelta(days=days),
                          "i": np.arange(len(a))}).sort_values("ADT")
    m = pd.merge_asof(probe, later[["USUBJID", "ADT", "BESTLATER"]].sort_values("ADT"), on="ADT",
                      by="USUBJID", direction="forward").sort_values("i")
    confirmed = m["BESTLATER"].to_numpy() <= rank.to_numpy()
    need = code.isin(crit.responders).to_numpy() & ~confirmed
    return code.where(~need, "SD" if "SD" in crit.ranks else crit.not_evaluable)


def compute_nearest(assess: pd.DataFrame, lo: int, hi: int, target: int, anchor: str = "ANCHOR",
                    eligible: pd.Series | None = None) -> pd.DataFrame:
    """The assessment per subject in the window Day `lo`..`hi` after `anchor` (Day 0 = anchor)
    nearest to Day `target`; ties (equally far before and after) go to the later one, the
    longer follow-up. Returns the chosen records."""
    day = (assess["ADT"] - assess[anchor]).dt.days
    inwin = (day >= lo) & (day <= hi)
    if eligible is not None:
        inwin &= eligible.to_numpy()
    c = assess[inwin.to_numpy()].assign(_DIST=(day[inwin] - target).abs(), _DAY=day[inwin])
    c = c.sort_values(["USUBJID", "_DIST", "_DAY"], ascending=[True, True, False], kind="stable")
    return c.drop_duplicates("USUBJID").drop(columns=["_DIST", "_DAY"])


def compute_last_before(assess: pd.DataFrame, start: str, end: str, max_gap_days: int) -> pd.DataFrame:
    """The last assessment per subject on or after `start` and before `end`, provided it is at
    most `max_gap_days` before `end` (GLOCART: the last response from the first glofitamab dose
    to <= 14 days before lymphodepletion or conditioning)."""
    gap = (assess[end] - assess["ADT"]).dt.days
    ok = (assess["ADT"] >= assess[start]) & (gap >= 1) & (gap <= max_gap_days)
    c = assess[ok.to_numpy()].sort_values(["USUBJID", "ADT", "SRCSEQ"], kind="stable")
    return c.drop_duplicates("USUBJID", keep="last")
