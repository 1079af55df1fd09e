"""RS001 synthetic EDC study: a 3+3 dose escalation run by its own rules, then expansion.

`run(study, forms, n_subjects, seed)` returns a `SimulatedStudy` (see `simulate/model.py`);
`stream(...)` the same trial with its subjects still to run (`StudyStream`).

How the trial unfolds
1. Planning (calendar and decisions only). Escalation cohorts of 3 eligible subjects are
   screened and infused in sequence; each subject's DLT is a draw from the level's true DLT
   probability (`simulate/profiles/RS001.yaml`). After a cohort's 28-day DLT window (plus a
   safety-review gap) the 3+3 rules of STUDIES.md section 1 pick the next level, so the MTD
   emerges from the data. Expansion then screens the remaining subjects at the recommended
   dose (the MTD, or the highest level tested if no level was exceeded), B-NHL and B-ALL in
   the ratio of `expansion.max_subjects`.
2. Each subject's course (per-subject random stream): toxicities (CRS/ICANS, the DLT if
   any, lymphodepletion cytopenias, background AEs), labs that reflect them, cellular
   kinetics, response and progression, survival, end of study.
3. Records for every form, dated, never after death, end of study or the transfer date.

Simplifications (documented, deliberate)
- Every escalation subject is DLT-evaluable: nobody dies, withdraws or is lost before Day 28
  without a DLT, and escalation subjects are always infused at the assigned dose.
- The escalation decisions use the rule-based DLT status; the investigator's AEDLT flag
  disagrees with the rules for ~5% of subjects (truth records which, "missed"/"overcalled").
- If `n_subjects` runs out during escalation, the trial stops there (truth
  `escalation_complete` False). If DL1 is too toxic, there is no recommended dose and no
  expansion: fewer subjects than asked are simulated (truth says so).
- Scale-test mode: when more subjects are asked for than escalation plus the expansion caps
  need, the expansion absorbs all of them (caps scaled up in the same B-NHL:B-ALL ratio) and
  accrues over `scale_accrual_months` instead of at the protocol pace.
- AEDLT is collected for all infused subjects (escalation and expansion) for records
  starting Day 0-28.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from clinpipe.config import Site, StudyConfig
from edc.forms import FormsConfig
from simulate import common as C
from simulate.model import SimulatedStudy, StudyStream

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"

FIRST_DAY, N_DAYS = -40, 281          # latent daily series cover study days -40 .. 240
LAB_PANELS_FULL = ("HEM", "CHEM", "COAG", "INFL")


def load_profile(studyid: str = "RS001", path: Path | None = None) -> dict:
    with open(path or PROFILE_DIR / f"{studyid}.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def run(study: StudyConfig, forms: FormsConfig, n_subjects: int, seed: int) -> SimulatedStudy:
    """Simulate RS001 with `n_subjects` screened (consented) subjects."""
    return stream(study, forms, n_subjects, seed).collect()


def stream(study: StudyConfig, forms: FormsConfig, n_subjects: int, seed: int) -> StudyStream:
    """`run` with the subjects still to simulate: the trial is planned, the records come a
    group of subjects at a time (`StudyStream.chunks`)."""
    if n_subjects < 1:
        raise ValueError("n_subjects must be at least 1")
    return _Trial(study, forms, load_profile(study.study.studyid), n_subjects, seed).begin()


# =============================================================================================
# Planning: who is screened when, the 3+3 and the expansion
# =============================================================================================


@dataclass
class Screened:
    order: int
    rng: np.random.Generator
    site: Site
    consent: dt.date
    disease: str
    histology: str
    screen_failure: bool
    sf_criterion: str | None = None
    sf_date: dt.date | None = None
    cohort: str | None = None          # ESCALATION / EXPANSION
    level: str | None = None
    esc_cohort: int | None = None
    day0: dt.date | None = None
    vdays: dict[str, int] = field(default_factory=dict)
    consent_lead: int = 0              # days from consent to the screening visit
    dlt: bool = False
    dlt_type: str | None = None
    infused: bool = True
    subject: str = ""


class EscalationState:
    """The 3+3 bookkeeping of STUDIES.md section 1: per-level counts and the decision after
    each cohort. `next_level()` is the level of the next cohort, None when escalation ends."""

    def __init__(self, levels: list[str], cohort_size: int, max_per_level: int):
        self.levels = levels
        self.size = cohort_size
        self.max = max_per_level
        self.n = {lv: 0 for lv in levels}
        self.d = {lv: 0 for lv in levels}
        self.exceeded: list[str] = []
        self.current: int | None = 0
        self.mtd: str | None = None
        self.stop_reason = ""

    def record(self, n_dlt: int) -> str:
        """Book a completed cohort at the current level and decide; returns the decision."""
        i = self.current
        lv = self.levels[i]
        self.n[lv] += self.size
        self.d[lv] += n_dlt
        n, d = self.n[lv], self.d[lv]
        if n == self.size and d == 0 or n == self.max and d <= 1:
            above = i + 1
            if above < len(self.levels) and self.levels[above] in self.exceeded:
                self.mtd, self.current, self.stop_reason = lv, None, "MTD identified"
                return "stop: MTD"
            if above >= len(self.levels):
                self.current, self.stop_reason = None, "highest level tested, MTD not reached"
                return "stop: top level"
            self.current = above
            return "escalate"
        if n == self.size and d == 1:
            return "expand"
        return self._exceeded(i)

    def _exceeded(self, i: int) -> str:
        self.exceeded.append(self.levels[i])
        if i == 0:
            self.current, self.stop_reason = None, "lowest level exceeds the MTD"
            return "stop: DL1 too toxic"
        below = self.levels[i - 1]
        if self.n[below] >= self.max:
            self.mtd, self.current, self.stop_reason = below, None, "MTD identified"
            return "de-escalate: MTD"
        self.current = i - 1
        return "de-escalate: expand below"

    def recommended(self) -> str | None:
        if self.mtd:
            return self.mtd
        if self.exceeded:
            return None
        tested = [lv for lv in self.levels if self.n[lv] > 0]
        return tested[-1] if tested else None


class _Trial:
    def __init__(self, study: StudyConfig, forms: FormsConfig, prof: dict, n_subjects: int, seed: int):
        self.study = study
        self.forms = forms
        self.prof = prof
        self.n = n_subjects
        self.seed = seed
        self.rng = np.random.default_rng([seed, 0])               # calendar decisions
        self.subject_rngs = C.subject_rngs(seed, n_subjects, stream=1)
        self.levels = [d.code for d in study.dose_levels]
        self.dose = {d.code: d.dose for d in study.dose_levels}
        self.visits = sorted(study.visits, key=lambda v: v.visitnum)
        self.screened: list[Screened] = []
        self.cohorts: list[dict] = []
        cal = prof["calendar"]
        self.start = C.from_iso(cal["study_start"]) + dt.timedelta(days=int(self.rng.integers(0, 61)))

    # -- screening one subject ------------------------------------------------------------------
    def _screen(self, consent: dt.date, disease: str | None) -> Screened:
        idx = len(self.screened)
        rng = self.subject_rngs[idx]
        p = self.prof
        site = C.draw_site(rng, self.study.sites, p["site_weights"])
        dis = disease or C.pick(rng, p["disease_mix"])
        hist = C.pick(rng, p["histology"]) if dis == "B-NHL" else "BALL"
        sf = C.bernoulli(rng, p["screen_failure_rate"])
        s = Screened(idx, rng, site, consent, dis, hist, sf)
        if sf:
            s.sf_criterion = C.pick(rng, p["screen_failure_criteria"])
            s.sf_date = consent + dt.timedelta(days=C.uniform_int(rng, p["screen_failure_days"]))
        self.screened.append(s)
        return s

    def _schedule(self, s: Screened, cohort: str, level: str) -> None:
        """Visit days and Day 0 for an eligible subject consenting on `s.consent`."""
        s.cohort, s.level = cohort, level
        # FC days move as one block (SubjectSim._fc_block), from a separate generator.
        s.vdays = C.visit_days(self.visits, s.rng, fixed=[v.folder for v in self.visits if "LD" in v.assessments])
        s.consent_lead = int(s.rng.integers(0, 4))
        s.day0 = s.consent + dt.timedelta(days=s.consent_lead - s.vdays["SCR"])
        s.dlt = C.bernoulli(s.rng, self.prof["dlt"]["true_probability"][level])
        s.dlt_type = C.pick(s.rng, self.prof["dlt"]["types"]) if s.dlt else None

    def _remaining(self) -> int:
        return self.n - len(self.screened)

    # -- escalation -------------------------------------------------------------------------------
    def _run_escalation(self) -> tuple[EscalationState, dt.date, bool]:
        esc = self.study.escalation
        state = EscalationState(self.levels, esc.cohort_size, esc.max_per_level)
        cal = self.prof["calendar"]
        gate = self.start
        complete = True
        while state.current is not None:
            level = self.levels[state.current]
            members: list[Screened] = []
            while len(members) < esc.cohort_size and self._remaining() > 0:
                # Sentinel pacing: each eligible subject of a cohort consents about a week
                # after the previous one, screen failures in between.
                lead = C.uniform_int(self.rng, cal["consent_spread_days"]) + 6 * len(members)
                s = self._screen(gate + dt.timedelta(days=lead), None)
                if s.screen_failure:
                    continue
                self._schedule(s, "ESCALATION", level)
                s.esc_cohort = len(self.cohorts) + 1
                members.append(s)
            if len(members) < esc.cohort_size:
                complete = False
                if members:
                    self.cohorts.append({"level": level, "subjects": members, "n_dlt": None,
                                         "decision": "incomplete: no subjects left"})
                break
            n_dlt = sum(m.dlt for m in members)
            decision = state.record(n_dlt)
            self.cohorts.append({"level": level, "subjects": members, "n_dlt": n_dlt, "decision": decision})
            window_end = max(m.day0 for m in members) + dt.timedelta(days=self.study.dlt.window_days)
            gate = window_end + dt.timedelta(days=C.uniform_int(self.rng, cal["src_review_days"]))
        return state, gate, complete

    # -- expansion --------------------------------------------------------------------------------
    def _run_expansion(self, level: str, gate: dt.date) -> dict:
        n_exp = self._remaining()
        caps = dict(self.study.expansion.max_subjects)
        cal = self.prof["calendar"]
        rate = float(cal["expansion_accrual_per_month"])
        # Accrual pace is a calendar decision taken before screening outcomes are known.
        needed = sum(caps.values()) / (1 - self.prof["screen_failure_rate"])
        if n_exp > 2 * needed:
            rate = max(rate, n_exp / float(cal["scale_accrual_months"]))
        mean_gap = 30.4375 / rate
        t = 0.0
        plan = []
        for _ in range(n_exp):
            t += float(self.rng.exponential(mean_gap))
            s = self._screen(gate + dt.timedelta(days=int(t)), "B-NHL")
            plan.append(s)
        eligible = [s for s in plan if not s.screen_failure]
        total_cap = sum(caps.values())
        scale = len(eligible) > total_cap
        if scale:
            f = len(eligible) / total_cap
            caps = {k: math.ceil(v * f) for k, v in caps.items()}
        assigned = {k: 0 for k in caps}
        for s in plan:
            room = {k: max(caps[k] - assigned[k], 0) for k in caps}
            weights = room if any(room.values()) else caps
            dis = C.pick(s.rng, weights)
            s.disease = dis
            s.histology = C.pick(s.rng, self.prof["histology"]) if dis == "B-NHL" else "BALL"
            if s.screen_failure:
                continue
            assigned[dis] += 1
            self._schedule(s, "EXPANSION", level)
            s.infused = not C.bernoulli(s.rng, self.prof["not_infused_rate"])
            if not s.infused:
                s.dlt, s.dlt_type = False, None
        return {"level": level, "scale_mode": scale, "caps": caps, "enrolled": assigned}

    def _number_subjects(self) -> None:
        width = C.SubjectNumbering.width_for(self.n)
        numbering = C.SubjectNumbering(width)
        for s in sorted(self.screened, key=lambda s: (s.consent, s.order)):
            s.subject = numbering.next(s.site.siteid)

    # -- the whole trial --------------------------------------------------------------------------
    def begin(self) -> StudyStream:
        """Plan the trial (cohorts, expansion, numbering, transfer date); the subjects follow."""
        state, gate, complete = self._run_escalation()
        recommended = state.recommended() if complete else None
        expansion = None
        if recommended and self._remaining() > 0:
            expansion = self._run_expansion(recommended, gate)
        self._number_subjects()
        last_consent = max(s.consent for s in self.screened)
        transfer = last_consent + dt.timedelta(
            days=C.uniform_int(self.rng, self.prof["calendar"]["transfer_after_last_consent_days"]))
        # Every screened subject's consent is recorded (all are on or before the transfer).
        first_consent = min(s.consent for s in self.screened)

        def subjects(per_chunk: int):
            return self._subjects(state, complete, recommended, expansion, transfer, per_chunk)
        return StudyStream(self.study.study.studyid, self.seed, transfer, first_consent, subjects)

    def _subjects(self, state: EscalationState, complete: bool, recommended: str | None,
                  expansion: dict | None, transfer: dt.date, per_chunk: int):
        rec = C.Recorder(self.forms, transfer, np.random.default_rng([self.seed, 2]),
                         entry_lag=self.prof["calendar"]["entry_lag"])
        subjects_truth = []
        for s in sorted(self.screened, key=lambda s: s.order):
            subjects_truth.append(SubjectSim(self, s, rec, transfer).simulate())
            if len(subjects_truth) % per_chunk == 0:
                yield rec.take()
        if len(subjects_truth) % per_chunk:
            yield rec.take()
        by_id = {t["SUBJECT"]: t for t in subjects_truth}
        truth = {
            "study_start": C.iso(self.start),
            "transfer_date": C.iso(transfer),
            "escalation": [{"level": c["level"], "subjects": [m.subject for m in c["subjects"]],
                            "n_dlt": c["n_dlt"], "decision": c["decision"]} for c in self.cohorts],
            "escalation_complete": complete,
            "escalation_stop_reason": state.stop_reason,
            "exceeded_levels": list(state.exceeded),
            "mtd": state.mtd if complete else None,
            "recommended_dose": recommended,
            "expansion": expansion,
            "n_screened": len(self.screened),
            "n_requested": self.n,
            "subjects": subjects_truth,
        }
        # The 3+3 used the drawn DLTs; the AE data must show exactly those (rules-based).
        for c in truth["escalation"]:
            if c["n_dlt"] is not None:
                assert c["n_dlt"] == sum(by_id[s]["dlt"] for s in c["subjects"]), "DLT truth mismatch"
        return truth


# =============================================================================================
# One subject's course
# =============================================================================================

_IE_SPEC = {
    "IN01": "Age outside 18-75 years",
    "IN02": "CD19 negative on repeat biopsy",
    "IN03": "No measurable disease on screening PET-CT / marrow",
    "IN04": "ECOG 3 at screening",
    "IN05": "Creatinine clearance below 40 mL/min",
    "EX01": "CNS involvement on MRI / CSF cytology",
    "EX02": "HBV DNA detectable",
    "EX03": "Active chronic GVHD on systemic steroids",
    "EX04": "LVEF 38% on echocardiogram",
}

_CRS = "Cytokine release syndrome"
_ICANS = "Immune effector cell-associated neurotoxicity syndrome"


@dataclass
class Fate:
    """When the subject's participation ends and why (study days)."""
    death_day: int | None = None
    death_cause: str | None = None         # DTHCAUS
    death_text: str | None = None
    fatal_pt: str | None = None            # AE that caused death
    fatal_rel: str = "1"
    end_day: int | None = None             # DS date when not death
    end_code: str | None = None
    end_term: str | None = None


class SubjectSim:
    def __init__(self, trial: _Trial, s: Screened, rec: C.Recorder, transfer: dt.date):
        self.t = trial
        self.s = s
        self.rec = rec
        self.rng = s.rng
        self.prof = trial.prof
        self.study = trial.study
        age_spec = self.prof["age"][s.disease]
        age = int(np.clip(round(self.rng.normal(age_spec["mean"], age_spec["sd"])), *age_spec["range"]))
        if s.screen_failure and s.sf_criterion == "IN01":
            age = int(self.rng.choice([76, 77, 79]))       # too old for the protocol
        self.subj = C.draw_subject(self.rng, s.subject, s.site, s.consent, transfer, age,
                                   self.prof["female_rate"])
        self.subj.extra["u_birth"] = float(self.rng.random())
        self.bulky = False
        self.curves: C.LabCurves | None = None
        self.truth: dict[str, Any] = {
            "SUBJECT": s.subject, "SITEID": s.site.siteid, "disease": s.disease, "histology": s.histology,
            "screen_failure": s.screen_failure, "cohort": s.cohort, "dose_level": s.level,
            "esc_cohort": s.esc_cohort, "consent_date": C.iso(s.consent), "enrolment_date": None,
            "infused": False, "infusion_date": None, "death_date": None, "death_cause": None,
            "dlt": False, "dlt_type": None, "dlt_rules": [], "dlt_investigator": False,
            "dlt_disagreement": None, "end_date": None, "end_reason": None,
        }

    # -- entry point ------------------------------------------------------------------------------
    def simulate(self) -> dict:
        if self.s.screen_failure:
            self._screen_failure()
        else:
            self._enrolled()
        return self.truth

    # -- screen failures --------------------------------------------------------------------------
    def _screen_failure(self) -> None:
        s, subj, rng, rec = self.s, self.subj, self.rng, self.rec
        subj.end_date = s.sf_date
        scr_date = min(s.consent + dt.timedelta(days=int(rng.integers(0, 4))), s.sf_date)
        C.add_consent(rec, subj, "SCR", self.prof["consent_version"])
        C.add_demographics(rec, subj, "SCR", self.prof["birth_year_only_rate"])
        cd19 = "N" if s.sf_criterion == "IN02" and rng.random() < 0.6 else "Y"
        rec.add("ENR", subj, "SCR", {
            "ENRDAT": C.iso(s.sf_date), "ELIG": "N", "IECRIT": s.sf_criterion,
            "IESPEC": _IE_SPEC[s.sf_criterion], "DISEASE": s.disease, "HISTOL": s.histology,
            "CD19POS": cd19, "CD19MTH": "IHC" if s.disease == "B-NHL" else "FLOW"}, date=s.sf_date)
        if C.bernoulli(rng, self.prof["screen_failure_lab_rate"]):
            curves = self._baseline_only_curves()
            C.add_lab_panels(rec, subj, "SCR", scr_date, 0, ("HEM", "CHEM"), curves, rng)
        C.add_disposition(rec, subj, s.sf_date, "8", f"Screen failure: {s.sf_criterion}")
        self.truth.update(end_date=C.iso(s.sf_date), end_reason="SCREEN FAILURE")

    def _baseline_labs(self) -> dict[str, float]:
        spec = self.prof["baseline_labs"][self.s.disease]
        base = {k: C.lognormal(self.rng, v) for k, v in spec.items()}
        # Eligibility: counts good enough to lymphodeplete (ANC >= 0.5, platelets >= 30).
        base["NEUT"] = max(base["NEUT"], 0.6)
        base["PLAT"] = max(base["PLAT"], 32.0)
        base["HGB"] = float(np.clip(base["HGB"], 78, 165))
        return base

    def _baseline_only_curves(self) -> C.LabCurves:
        base = self._baseline_labs()
        drivers = C.LabDrivers(crs=np.zeros(1, dtype=np.int64))
        return C.build_lab_curves(self.rng, self.subj, self.s.disease, 0, 1, None, drivers, base)

    # -- enrolled subjects ------------------------------------------------------------------------
    def _enrolled(self) -> None:
        s, subj, rng = self.s, self.subj, self.rng
        subj.day0 = s.day0
        self.vd = dict(s.vdays)
        scr = subj.on(self.vd["SCR"])
        self.enr_date = min(scr + dt.timedelta(days=int(rng.integers(1, 5))), subj.on(-6))
        self._fc_block()
        self.dates = {f: subj.on(d) for f, d in self.vd.items()}
        self.z = float(rng.standard_normal())                 # expansion propensity
        self.truth.update(enrolment_date=C.iso(self.enr_date))
        if not s.infused:
            self._not_infused()
            return
        self.truth.update(infused=True, infusion_date=C.iso(s.day0), dlt_type=s.dlt_type)
        tox = self._toxicity_plan()
        eff = self._efficacy_plan()
        fate = self._fate(tox, eff)
        self._apply_fate(fate)
        self._write_all(tox, eff, fate)

    def _fc_block(self) -> None:
        """FC lymphodepletion days within their study.yaml window, moved together (the agents
        are given on three consecutive days), starting after enrolment; and the start time of
        each day's administration, after the morning's pre-dose labs (drawn 06:30-10:30).
        Drawn from the subject's timing generator so the main stream is unchanged."""
        trng = C.timing_rng(self.t.seed, self.s.order)
        ld = [v for v in self.study.visits if "LD" in v.assessments]
        first = min(v.day for v in ld)
        self.ld_offset = max(C.block_offset(trng, ld), self.subj.day_of(self.enr_date) + 1 - first)
        for v in ld:
            self.vd[v.folder] = v.day + self.ld_offset
        self.ld_times = {v.day: C.clock(trng, "11:00", "14:00") for v in ld}

    def _not_infused(self) -> None:
        """Enrolled and lymphodepleted, but clinical deterioration stopped the infusion."""
        subj, rng = self.subj, self.rng
        stop_day = int(rng.integers(-3, 0))
        subj.end_date = subj.on(stop_day)
        self.curves = self._baseline_only_curves()
        self._screening_records()
        self._lymphodepletion(stop_day=stop_day)
        C.add_disposition(self.rec, subj, subj.end_date, "5", "Clinical deterioration before RS001 infusion")
        self.truth.update(end_date=C.iso(subj.end_date), end_reason="NOT INFUSED")

    # ---------------------------------------------------------------------------------------------
    # Toxicity
    # ---------------------------------------------------------------------------------------------
    def _toxicity_plan(self) -> dict:
        s, rng, prof = self.s, self.rng, self.prof
        lv = s.level
        dtype = s.dlt_type
        tox: dict[str, Any] = {"episodes": [], "crs_runs": None, "crs_onset": None, "icans": None,
                               "prolonged": None, "alt_x_uln": None, "creat_x_base": None,
                               "hlh": None, "death_day": None, "fatal_pt": None}
        g5 = dtype == "G5-REL"
        fatal_kind = C.pick(rng, {_CRS: 0.7, _ICANS: 0.3}) if g5 else None
        # CRS
        crs_grade = 0
        if dtype == "CRS-G4" or (g5 and fatal_kind == _CRS):
            crs_grade = 4
        elif dtype == "CRS-G3-72H":
            crs_grade = 3
        else:
            p = _logistic(_logit(prof["crs"]["rate"][lv]) + 0.8 * self.z)
            if C.bernoulli(rng, p):
                crs_grade = int(C.pick(rng, {str(k): v for k, v in prof["crs"]["grade"][lv].items()}))
        if crs_grade:
            onset = int(np.clip(round(C.lognormal(rng, prof["crs"]["onset_day"])), 1, 10))
            fatal = g5 and fatal_kind == _CRS
            runs = C.crs_runs(rng, crs_grade, long_g3=dtype == "CRS-G3-72H", fatal=fatal)
            tox["crs_runs"], tox["crs_onset"] = runs, onset
            tox["crs_grade"] = crs_grade
            segs = self._segments(tox, runs, onset, fatal, _CRS)
            tox["episodes"].append(C.Episode(_CRS, segs, rel=C.pick(rng, {"4": 0.6, "5": 0.4}), rel_ld="1",
                                             scale="ASTCT", fatal=fatal, llt_index=int(rng.integers(0, 3))))
        crs_daily = C.daily_grades(tox["crs_runs"] or [], tox["crs_onset"] or 0, FIRST_DAY, N_DAYS)
        tox["crs_daily"] = crs_daily
        # ICANS
        icans_grade = 0
        if dtype == "ICANS-G3":
            icans_grade = int(C.pick(rng, {"3": 0.7, "4": 0.3}))
        elif g5 and fatal_kind == _ICANS:
            icans_grade = 4
        else:
            p = prof["icans"]["rate_with_crs"][lv] if crs_grade else prof["icans"]["rate_without_crs"]
            if C.bernoulli(rng, p):
                icans_grade = int(C.pick(rng, {str(k): v for k, v in prof["icans"]["grade"].items()}))
        if icans_grade:
            if crs_grade:
                onset = tox["crs_onset"] + C.uniform_int(rng, prof["icans"]["lag_after_crs_days"])
            else:
                onset = int(rng.integers(4, 13))
            fatal = g5 and fatal_kind == _ICANS
            runs = C.icans_runs(rng, icans_grade, fatal=fatal)
            segs = self._segments(tox, runs, onset, fatal, _ICANS)
            tox["icans"] = (icans_grade, onset, runs)
            tox["episodes"].append(C.Episode(_ICANS, segs, rel=C.pick(rng, {"4": 0.6, "5": 0.4}), rel_ld="1",
                                             scale="ASTCT", fatal=fatal, llt_index=int(rng.integers(0, 3))))
        # Severe CRS brings AKI and sometimes IEC-associated HLH with it.
        if crs_grade >= 3 and not tox["death_day"]:
            peak = tox["crs_onset"] + sum(d for g, d in tox["crs_runs"] if g < 3)
            if C.bernoulli(rng, prof["aki_with_severe_crs_rate"]):
                self._add_aki(tox, peak, grade=int(C.pick(rng, {"1": 0.6, "2": 0.4})), rel="3")
            if C.bernoulli(rng, prof["hlh_with_severe_crs_rate"]):
                start = peak + int(rng.integers(1, 4))
                days = int(rng.integers(5, 12))
                hlh = np.zeros(N_DAYS, dtype=np.int64)
                hlh[start - FIRST_DAY: start - FIRST_DAY + days] = 1
                tox["hlh"] = hlh
                tox["episodes"].append(C.Episode("Haemophagocytic lymphohistiocytosis",
                                                 C.runs_to_segments([(3, days)], self.subj.on(start)),
                                                 rel="4", rel_ld="1", llt_index=int(rng.integers(0, 2))))
        # Non-hematologic DLT
        if dtype == "NONHEM-G3-72H":
            kind = C.pick(rng, {"ALT": 0.5, "AKI": 0.3, "RASH": 0.2})
            onset = int(rng.integers(3, 21))
            if kind == "ALT":
                self._add_alt(tox, onset, [(2, int(rng.integers(1, 3))), (3, int(rng.integers(4, 8))),
                                           (2, int(rng.integers(2, 5))), (1, int(rng.integers(3, 8)))], rel="4")
            elif kind == "AKI":
                self._add_aki(tox, onset, grade=3, rel="4", g3_days=int(rng.integers(4, 8)))
            else:
                runs = [(2, int(rng.integers(1, 3))), (3, int(rng.integers(4, 9))), (1, int(rng.integers(3, 8)))]
                tox["episodes"].append(C.Episode("Rash maculo-papular", C.runs_to_segments(runs, self.subj.on(onset)),
                                                 rel="4", rel_ld="1", llt_index=int(rng.integers(0, 2))))
        if dtype == "GVHD-G2":
            onset = int(rng.integers(10, 22))
            g = int(C.pick(rng, {"2": 0.7, "3": 0.3}))
            runs = [(1, int(rng.integers(2, 5))), (g, int(rng.integers(10, 30))), (1, int(rng.integers(7, 21)))]
            tox["episodes"].append(C.Episode("Graft versus host disease", C.runs_to_segments(runs, self.subj.on(onset)),
                                             rel="4", rel_ld="1", scale="GVHD", llt_index=int(rng.integers(0, 2))))
        if dtype == "CYTO-G4-28D":
            tox["prolonged"] = C.pick(rng, {"NEUT": 0.5, "PLT": 0.5})
        self._background_aes(tox)
        return tox

    def _segments(self, tox: dict, runs, onset: int, fatal: bool, pt: str) -> list:
        """AE segments of a CRS/ICANS episode; a fatal one also sets the death day and cause."""
        onset_date = self.subj.on(onset)
        if not fatal:
            return C.runs_to_segments(runs, onset_date)
        segs, death = C.fatal_runs_to_segments(runs, onset_date)
        tox["death_day"], tox["fatal_pt"] = self.subj.day_of(death), pt
        return segs

    def _add_alt(self, tox: dict, onset: int, runs: list[tuple[int, int]], rel: str) -> None:
        """Transaminase elevation: the AE and the ALT/AST lab values come from the same course."""
        rng = self.rng
        arr = tox["alt_x_uln"] if tox["alt_x_uln"] is not None else np.zeros(N_DAYS)
        band = {1: (1.4, 2.6), 2: (3.3, 4.7), 3: (6.0, 12.0), 4: (22.0, 30.0)}
        d = onset
        for g, days in runs:
            lo = max(d - FIRST_DAY, 0)
            arr[lo: min(d + days - FIRST_DAY, N_DAYS)] = rng.uniform(*band[g])
            d += days
        tox["alt_x_uln"] = arr
        tox["episodes"].append(C.Episode("Alanine aminotransferase increased",
                                         C.runs_to_segments(runs, self.subj.on(onset)), rel=rel, rel_ld="1",
                                         llt_index=int(rng.integers(0, 2))))

    def _add_aki(self, tox: dict, onset: int, grade: int, rel: str, g3_days: int = 0) -> None:
        """Acute kidney injury with creatinine following it (CTCAE: G1 > 1.5x, G2 2-3x, G3 > 3x baseline)."""
        rng = self.rng
        mult = {1: (1.55, 1.9), 2: (2.1, 2.8), 3: (3.2, 4.0)}
        if grade == 3:
            runs = [(2, int(rng.integers(1, 3))), (3, g3_days), (2, int(rng.integers(2, 4))), (1, int(rng.integers(3, 7)))]
        else:
            runs = [(grade, int(rng.integers(2, 6)))]
        arr = tox["creat_x_base"] if tox["creat_x_base"] is not None else np.zeros(N_DAYS)
        d = onset
        for g, days in runs:
            arr[max(d - FIRST_DAY, 0): min(d + days - FIRST_DAY, N_DAYS)] = rng.uniform(*mult[g])
            d += days
        tox["creat_x_base"] = arr
        tox["episodes"].append(C.Episode("Acute kidney injury", C.runs_to_segments(runs, self.subj.on(onset)),
                                         rel=rel, rel_ld="1", llt_index=int(rng.integers(0, 2))))

    def _background_aes(self, tox: dict) -> None:
        rng = self.rng
        for pt, spec in self.prof["background_ae"].items():
            if spec.get("disease") and spec["disease"] != self.s.disease:
                continue
            if not C.bernoulli(rng, spec["rate"]):
                continue
            onset = C.uniform_int(rng, spec["onset"])
            grade = int(C.pick(rng, {str(k): v for k, v in spec["grade"].items()}))
            days = C.uniform_int(rng, spec["days"])
            rel = C.pick(rng, {str(k): v for k, v in spec["rel"].items()})
            rel_ld = ("4" if onset <= 7 else "2") if spec.get("ld") else ("3" if onset <= 7 else "1")
            if pt == "Alanine aminotransferase increased":
                self._add_alt(tox, onset, [(grade, days)], rel=rel)
                continue
            runs = [(grade, days)]
            if grade >= 3 and days > 2:
                # Investigators record the step down: a short grade-3 spell, then grade 2.
                g3 = int(rng.integers(1, 3))
                runs = [(grade, g3), (2, days - g3)]
            start = self.subj.on(onset)
            ep = C.Episode(pt, C.runs_to_segments(runs, start), rel=rel, rel_ld=rel_ld,
                           scale="GVHD" if pt == "Graft versus host disease" else "CTCAE",
                           llt_index=int(rng.integers(0, 4)), acn="1" if onset < 0 else "5")
            # Sites often learn of minor or later events at the next visit and know only the
            # month of onset; never for an event whose start day could decide a DLT call.
            late = onset > self.study.dlt.window_days + 3
            minor = grade <= 2 and not ep.term.aesi
            rate = self.prof["partial_ae_start_rate"]["late" if late else "minor"]
            ep.partial_start = (late or minor) and rng.random() < rate
            tox["episodes"].append(ep)

    # ---------------------------------------------------------------------------------------------
    # Efficacy
    # ---------------------------------------------------------------------------------------------
    def _tilted(self, weights: dict[str, float], good: tuple[str, ...]) -> dict[str, float]:
        """Response weights tilted by the subject's expansion propensity (exposure-response)."""
        eff = self.prof["propensity_effect"]
        return {k: v * (math.exp(eff * self.z) if k in good else 1.0) for k, v in weights.items()}

    def _efficacy_plan(self) -> dict:
        if self.s.disease == "B-NHL":
            return self._nhl_plan()
        return self._all_plan()

    def _resp_visits(self, assessment: str) -> list[tuple[str, int]]:
        return [(v.folder, self.vd[v.folder]) for v in self.study.visits_with(assessment)]

    def _nhl_plan(self) -> dict:
        """Assessment-by-assessment course: Lugano and LYRIC calls and lesion behaviour."""
        rng, p = self.rng, self.prof["nhl"]
        first = C.pick(rng, self._tilted(self.prof["response"]["B-NHL"][self.s.level], ("CR", "PR")))
        ir = None
        if first == "PD" and C.bernoulli(rng, p["lyric_ir_rate"]):
            ir = {"kind": "IR2" if rng.random() < p["ir2_share"] else "IR1",
                  "confirmed": C.bernoulli(rng, p["ir_confirmed_rate"])}
        visits = self._resp_visits("RESP_NHL")
        steps: list[dict] = []
        state = first
        prog_day = None
        if first in ("CR", "PR", "SD") and not C.bernoulli(rng, p["durable"][first]):
            prog_day = visits[0][1] + max(21, int(C.lognormal(rng, p["progression_day"][first])))
        pseudo_state = None
        if ir and not ir["confirmed"]:
            pseudo_state = C.pick(rng, {"PR": 0.7, "SD": 0.3})
            if not C.bernoulli(rng, p["durable"][pseudo_state]):
                prog_day = visits[1][1] + max(30, int(C.lognormal(rng, p["progression_day"][pseudo_state])))
        for k, (folder, day) in enumerate(visits):
            step = {"folder": folder, "day": day, "seq": 1}
            if k == 0:
                if first == "PD" and ir:
                    step.update(lugano="PD", lyric=ir["kind"], kind="FLARE" if ir["kind"] == "IR1" else "NEWONLY")
                    steps.append(step)
                    continue
                if first == "PD":
                    step.update(lugano="PD", lyric="PD", kind="PD", progression=True)
                    steps.append(step)
                    break
                step.update(lugano=first, lyric=first, kind=first)
                steps.append(step)
                continue
            if k == 1 and ir:
                if ir["confirmed"]:
                    step.update(lugano="PD", lyric="PD", kind="PD", progression=True, confirms_ir=True)
                    steps.append(step)
                    break
                state = pseudo_state
                step.update(lugano=state, lyric=state, kind=state, after_ir=ir["kind"])
                steps.append(step)
                continue
            if prog_day is not None and day >= prog_day:
                prev_day = steps[-1]["day"] if steps else 0
                if C.bernoulli(rng, p["unscheduled_progression_rate"]) and prog_day > prev_day:
                    uns_day = min(prog_day + int(rng.integers(0, 10)), day - 1)
                    if uns_day > prev_day:
                        steps.append({"folder": "UNS", "day": uns_day, "seq": None, "lugano": "PD",
                                      "lyric": "PD", "kind": "PD", "progression": True})
                        break
                step.update(lugano="PD", lyric="PD", kind="PD", progression=True)
                steps.append(step)
                break
            if state == "PR" and C.bernoulli(rng, p["deepen"]["PR"]):
                state = "CR"
            elif state == "SD" and C.bernoulli(rng, p["deepen"]["SD"]):
                state = "PR"
            step.update(lugano=state, lyric=state, kind=state)
            steps.append(step)
        # Missed scans and technically inadequate ones (never the one documenting progression).
        for st in steps:
            st["missed"] = not st.get("progression") and C.bernoulli(rng, p["missed_assessment_rate"])
            st["ne"] = (not st["missed"] and not st.get("progression") and "after_ir" not in st
                        and st["kind"] not in ("FLARE", "NEWONLY") and C.bernoulli(rng, p["ne_assessment_rate"]))
        prog = next((st for st in steps if st.get("progression")), None)
        lugano_pd = next((st for st in steps if st["lugano"] == "PD"), None)
        lyric_pd_day = None
        if prog is not None:
            lyric_pd_day = steps[0]["day"] if prog.get("confirms_ir") else prog["day"]
        off_day = prog["day"] if prog else None
        new_tx = None
        if prog is not None and C.bernoulli(rng, p["post_progression_therapy_rate"]):
            new_tx = (prog["day"] + int(rng.integers(14, 46)),
                      C.pick(rng, {"R-GemOx": 0.3, "Glofitamab": 0.3, "Polatuzumab-BR": 0.2,
                                   "Palliative radiotherapy": 0.2}))
        return {"disease": "B-NHL", "first": first, "ir": ir, "steps": steps, "off_day": off_day,
                "progression_day": prog["day"] if prog else None,
                "lugano_pd_day": lugano_pd["day"] if lugano_pd else None,
                "lyric_pd_day": lyric_pd_day, "new_tx": new_tx}

    def _all_plan(self) -> dict:
        rng, p = self.rng, self.prof["all"]
        remission = C.pick(rng, self._tilted(self.prof["response"]["B-ALL"][self.s.level], ("REM",))) == "REM"
        visits = self._resp_visits("RESP_ALL")
        mrd_neg = remission and C.bernoulli(rng, p["mrd_negative_rate"])
        relapse_day = None
        if remission and not C.bernoulli(rng, p["durable"]["MRDNEG" if mrd_neg else "MRDPOS"]):
            relapse_day = visits[0][1] + max(30, int(C.lognormal(rng, p["relapse_day"])))
        sct_day = None
        if remission and C.bernoulli(rng, p["allo_sct_rate"]):
            sct_day = C.uniform_int(rng, p["allo_sct_day"])
            if relapse_day is not None and relapse_day <= sct_day:
                sct_day = None
        steps = []
        for k, (folder, day) in enumerate(visits):
            if sct_day is not None and day > sct_day:
                break
            step = {"folder": folder, "day": day, "seq": 1, "missed": False}
            if not remission:
                step["state"] = "NR" if k == 0 else "PD"
                step["progression"] = k > 0
                steps.append(step)
                if k > 0 or C.bernoulli(rng, 0.6):
                    break
                continue
            if relapse_day is not None and day >= relapse_day:
                prev_day = steps[-1]["day"] if steps else 0
                if C.bernoulli(rng, 0.2) and relapse_day > prev_day:
                    uns_day = min(relapse_day + int(rng.integers(0, 10)), day - 1)
                    if uns_day > prev_day:
                        steps.append({"folder": "UNS", "day": uns_day, "seq": None, "state": "RELAPSE",
                                      "progression": True, "missed": False})
                        break
                step.update(state="RELAPSE", progression=True)
                steps.append(step)
                break
            step["state"] = "REM"
            step["missed"] = k > 0 and C.bernoulli(rng, p["missed_assessment_rate"])
            steps.append(step)
        prog = next((st for st in steps if st.get("progression")), None)
        off_day = prog["day"] if prog else (steps[-1]["day"] if not remission and steps else None)
        new_tx = None
        if sct_day is not None:
            new_tx = (sct_day, "Allogeneic haematopoietic stem-cell transplant")
        elif off_day is not None and C.bernoulli(rng, p["post_relapse_therapy_rate"]):
            new_tx = (off_day + int(rng.integers(7, 31)),
                      C.pick(rng, {"Inotuzumab ozogamicin": 0.4, "Blinatumomab": 0.3, "FLAG-IDA": 0.3}))
        return {"disease": "B-ALL", "remission": remission, "mrd_negative": mrd_neg, "steps": steps,
                "relapse_day": relapse_day, "sct_day": sct_day, "off_day": off_day,
                "progression_day": prog["day"] if prog else None, "new_tx": new_tx}

    # ---------------------------------------------------------------------------------------------
    # Fate: death, loss, withdrawal, completion
    # ---------------------------------------------------------------------------------------------
    def _fate(self, tox: dict, eff: dict) -> Fate:
        rng, prof = self.rng, self.prof
        f = Fate()
        deaths: list[tuple[int, str, str | None, str | None]] = []
        if tox["death_day"] is not None:
            deaths.append((tox["death_day"], "2", f"Fatal {tox['fatal_pt'].lower()}", tox["fatal_pt"]))
        prog_day = eff.get("progression_day")
        if prog_day is not None:
            key = ("nhl", "post_progression_death_days") if eff["disease"] == "B-NHL" else ("all", "post_relapse_death_days")
            if eff["disease"] == "B-ALL" and not eff["remission"]:
                key = ("all", "nr_death_days")
            deaths.append((prog_day + max(14, int(C.lognormal(rng, prof[key[0]][key[1]]))), "1", None, None))
        elif eff["disease"] == "B-ALL" and not eff["remission"] and eff["off_day"] is not None:
            deaths.append((eff["off_day"] + max(14, int(C.lognormal(rng, prof["all"]["nr_death_days"]))), "1", None, None))
        if C.bernoulli(rng, prof["non_relapse_death_rate"]):
            deaths.append((int(rng.integers(40, 300)), "2", "Fatal sepsis", "Sepsis"))
        # A DLT that lasts (prolonged cytopenia, GVHD) must be seen to last: other deaths and
        # losses of a DLT subject come after it has run its course.
        floor = 75 if self.s.dlt and self.s.dlt_type != "G5-REL" else 35
        deaths = [(max(d[0], floor + int(rng.integers(0, 30))) if d[1] == "1" or d[3] == "Sepsis" else d[0],
                   *d[1:]) for d in deaths]
        if deaths:
            day, cause, text, pt = min(deaths, key=lambda d: d[0])
            f.death_day, f.death_cause, f.death_text, f.fatal_pt = day, cause, text, pt
            if pt == "Sepsis":
                f.fatal_rel = C.pick(rng, {"1": 0.5, "2": 0.5})
        # Loss to follow-up and withdrawal happen after the DLT window (all escalation subjects
        # are DLT-evaluable) and before death.
        m24 = self.vd["M24"]
        for code, rate, term in (("3", prof["lost_to_follow_up_rate"], "Lost to follow-up"),
                                 ("4", prof["withdrawal_rate"], "Subject withdrew consent")):
            if C.bernoulli(rng, rate):
                day = int(rng.integers(floor, 650))
                if (f.death_day is None or day < f.death_day) and (f.end_day is None or day < f.end_day):
                    f.end_day, f.end_code, f.end_term = day, code, term
        if f.end_day is not None and f.death_day is not None and f.death_day > f.end_day:
            f.death_day = f.death_cause = f.death_text = f.fatal_pt = None   # died after leaving: unknown
        if f.death_day is None and f.end_day is None:
            f.end_day, f.end_code, f.end_term = m24, "1", "Completed 24-month follow-up"
        elif f.death_day is not None and f.death_day > m24:
            f.death_day = f.death_cause = f.death_text = f.fatal_pt = None
            f.end_day, f.end_code, f.end_term = m24, "1", "Completed 24-month follow-up"
        return f

    def _apply_fate(self, fate: Fate) -> None:
        subj = self.subj
        if fate.death_day is not None:
            subj.death_date = subj.on(fate.death_day)
        if fate.end_day is not None and fate.death_day is None:
            subj.end_date = subj.on(fate.end_day)

    # ---------------------------------------------------------------------------------------------
    # Records
    # ---------------------------------------------------------------------------------------------
    def _write_all(self, tox: dict, eff: dict, fate: Fate) -> None:
        subj, rng = self.subj, self.rng
        ck = C.draw_ck_params(rng, self.prof["ck"]["cmax_median"][self.s.level], self.prof["ck"]["cmax_sigma"],
                              z=self.z, tmax_median=self.prof["ck"]["tmax_median"],
                              alpha_half=self.prof["ck"]["alpha_half_days"],
                              beta_half=self.prof["ck"]["beta_half_days"])
        nhl_lesions = self._draw_lesions() if eff["disease"] == "B-NHL" else None
        curves = self._lab_curves(tox, eff, ck)
        self._cytopenia_episodes(tox, curves)
        self._fatal_nrm_episode(tox, fate)
        self._check_dlt(tox)
        self._screening_records()
        self._lymphodepletion()
        self._infusion()
        on_until = eff["off_day"] if eff["off_day"] is not None else 10 ** 6
        if eff.get("new_tx"):
            on_until = min(on_until, eff["new_tx"][0])
        self._scheduled_visits(tox, curves, ck, on_until)
        self._unscheduled_crs_visits(tox, curves)
        if eff["disease"] == "B-NHL":
            self._nhl_assessments(eff, nhl_lesions, curves)
        else:
            self._all_assessments(eff, curves)
        # An AE before a treatment's first dose is not related to it (RS001 cells on Day 0, FC
        # from the first lymphodepletion record).
        C.set_first_doses(subj, {"AEREL": subj.day0, "AERELLD": C.first_recorded(self.rec, subj, "LD", "LDDAT")})
        for ep in tox["episodes"]:
            C.add_ae_episode(self.rec, subj, ep, rng)
        self._conmeds(tox)
        self._survival(eff, fate)
        self._end_of_study(fate)
        self._finish_truth(tox, eff, fate, ck)

    # -- screening --------------------------------------------------------------------------------
    def _draw_lesions(self) -> list[C.Lesion]:
        p = self.prof["nhl"]
        self.bulky = C.bernoulli(self.rng, p["bulky_rate"])
        return C.draw_lesions(self.rng, C.uniform_int(self.rng, p["targets"]),
                              C.uniform_int(self.rng, p["nontargets"]), bulky=self.bulky)

    def _screening_records(self) -> None:
        s, subj, rng, rec = self.s, self.subj, self.rng, self.rec
        scr = self.dates["SCR"]
        C.add_consent(rec, subj, "SCR", self.prof["consent_version"])
        C.add_demographics(rec, subj, "SCR", self.prof["birth_year_only_rate"])
        rec.add("ENR", subj, "SCR", {
            "ENRDAT": C.iso(self.enr_date), "ELIG": "Y", "DISEASE": s.disease, "HISTOL": s.histology,
            "CD19POS": "Y", "CD19MTH": "IHC" if s.disease == "B-NHL" else "FLOW",
            "COHORT": s.cohort, "DOSELVL": s.level}, date=self.enr_date)
        self._disease_history(scr)
        C.add_medical_history(rec, subj, rng)
        C.add_lab_panels(rec, subj, "SCR", scr, self.vd["SCR"], LAB_PANELS_FULL, self.curves, rng)
        C.add_vitals(rec, subj, "SCR", scr, rng, weight=True, height=True)
        C.add_ecg(rec, subj, "SCR", scr, rng)

    def _disease_history(self, scr: dt.date) -> None:
        s, rng, prof = self.s, self.rng, self.prof
        n_lines = int(C.pick(rng, {str(k): v for k, v in prof["prior_lines"].items()}))
        rr = C.pick(rng, prof["refractory"])
        family = {"MCL": "MCL", "FL": "FL", "BALL": "ALL"}.get(s.histology, "NHL")
        years = {"NHL": (0.8, 4), "MCL": (2, 7), "FL": (3, 12), "ALL": (0.6, 3)}[family]
        if s.histology == "TFL":
            years = (3, 12)
        dx = s.consent - dt.timedelta(days=int(rng.uniform(*years) * 365.25))
        last_end = s.consent - dt.timedelta(days=int(rng.integers(28, 90)))
        lines = C.draw_prior_lines(rng, family, n_lines, dx, last_end, refractory_last=rr != "REL")
        if rr == "PRIREF":
            lines[0].best, lines[0].refractory = "PD", True
        C.add_prior_therapy(self.rec, self.subj, lines, rng)
        sct = "NONE"
        if any(ln.ptype == "4" for ln in lines):
            sct = "ALLO"
        elif any(ln.ptype == "3" for ln in lines):
            sct = "AUTO"
        nhl = s.disease == "B-NHL"
        self.bm_blast0 = None if nhl else float(np.clip(C.lognormal(rng, {"median": 45, "sigma": 0.6}), 6, 95))
        rel = last_end + dt.timedelta(days=int(rng.integers(7, 25)))
        self.rec.add("DX", self.subj, "SCR", {
            "DXDAT": C.partial_iso(dx, rng, p_day_unknown=0.15), "DXASDAT": C.iso(scr), "RRSTAT": rr,
            "RELDAT": C.iso(min(rel, scr)), "NPRIOR": n_lines, "PRSCT": sct,
            "STAGE": C.pick(rng, prof["nhl"]["stage"]) if nhl else None,
            "BULKY": ("Y" if self.bulky else "N") if nhl else None,
            "BMINV": ("Y" if rng.random() < 0.2 else "N") if nhl else "Y",
            "BMBLAST": None if nhl else round(self.bm_blast0, 1),
            "PHPOS": None if nhl else ("Y" if rng.random() < prof["ph_positive_rate"] else "N"),
            "ECOG": C.pick(rng, {"0": 0.35, "1": 0.55, "2": 0.10})}, date=scr)
        self.truth.update(n_prior_lines=n_lines, refractory=rr, diagnosis_date=C.iso(dx))

    # -- labs -------------------------------------------------------------------------------------
    def _lab_curves(self, tox: dict, eff: dict, ck: C.CkParams) -> C.LabCurves:
        rng = self.rng
        base = self._baseline_labs()
        marrow = eff["disease"] == "B-NHL" or eff["remission"]
        days = np.arange(FIRST_DAY, FIRST_DAY + N_DAYS)
        for attempt in range(4):
            plan = C.draw_cytopenia_plan(rng, self.s.disease, base["NEUT"], base["PLAT"],
                                         prolonged=tox["prolonged"], marrow_recovery=marrow)
            if attempt == 3:
                plan = C.shorten_cytopenia(plan)
            drivers = C.LabDrivers(crs=tox["crs_daily"], hlh=tox["hlh"], alt_x_uln=tox["alt_x_uln"],
                                   creat_x_base=tox["creat_x_base"], burden=self._burden(eff, days),
                                   car_lym=C.ck_curve(ck, days, "FLOW") / 1000.0)
            curves = C.build_lab_curves(rng, self.subj, self.s.disease, FIRST_DAY, N_DAYS, plan, drivers, base)
            if eff["disease"] == "B-ALL" and eff.get("progression_day") is not None:
                # Relapsing or refractory leukaemia takes the counts down again.
                i = max(eff["progression_day"] - 10 - FIRST_DAY, 0)
                for t, f in (("NEUT", 0.45), ("PLAT", 0.5), ("WBC", 0.6)):
                    curves.values[t][i:] = curves.values[t][i:] * f
                curves.values["NEUT"][i:] = np.maximum(curves.values["NEUT"][i:], 0.55)
                curves.values["PLAT"][i:] = np.maximum(curves.values["PLAT"][i:], 28.0)
            if tox["prolonged"] or not self._cyto_rule_hit(curves):
                break
        self.curves = curves
        return curves

    def _burden(self, eff: dict, days: np.ndarray) -> np.ndarray:
        """Relative tumour burden by day (LDH follows it)."""
        pts = [(FIRST_DAY, 1.0), (0, 1.0)]
        if eff["disease"] == "B-NHL":
            level = {"CR": 0.05, "PR": 0.35, "SD": 0.9, "PD": 1.5, "FLARE": 1.3, "NEWONLY": 1.1}
            for st in eff["steps"]:
                pts.append((st["day"], level.get(st["kind"], 1.0)))
        else:
            for st in eff["steps"]:
                pts.append((st["day"], {"REM": 0.02, "NR": 0.8, "PD": 1.3, "RELAPSE": 0.8}[st["state"]]))
        if eff.get("progression_day") is not None:
            pts.append((eff["progression_day"] + 30, 1.8))
        pts.sort()
        return np.interp(days, [p[0] for p in pts], [p[1] for p in pts])

    def _cyto_rule_hit(self, curves: C.LabCurves) -> bool:
        """Would the lab-derived cytopenia AEs meet the prolonged-cytopenia DLT rule?"""
        for test in ("NEUT", "PLAT"):
            for ep in self._cyto_episodes_for(test, curves):
                if C.dlt_rules_met(ep, self.subj.day0, self.study.dlt, self.subj.transfer_date):
                    return True
        return False

    def _cyto_episodes_for(self, test: str, curves: C.LabCurves) -> list[C.Episode]:
        sex, units = self.subj.sex, self.subj.site.lab_units
        v = curves.values[test]
        grader = {"NEUT": C.grade_neutrophils, "PLAT": C.grade_platelets, "WBC": C.grade_wbc,
                  "LYM": C.grade_lymphocytes, "HGB": C.grade_hemoglobin}[test]
        pt = {"NEUT": "Neutrophil count decreased", "PLAT": "Platelet count decreased",
              "WBC": "White blood cell count decreased", "LYM": "Lymphocyte count decreased",
              "HGB": "Anaemia"}[test]
        grades = grader(v, C.lln_si(test, sex, units))
        out = []
        for segs in C.segments_from_daily(grades, FIRST_DAY, self.subj.day0, min_grade=3, from_day=-5):
            out.append(C.Episode(pt, segs, rel="3", rel_ld="4"))
        return out

    def _cytopenia_episodes(self, tox: dict, curves: C.LabCurves) -> None:
        """Grade >= 3 cytopenia AEs from the same daily counts the lab results come from."""
        rng = self.rng
        report = self.prof["lab_ae_reporting"]
        dlt_test = {"NEUT": "NEUT", "PLT": "PLAT"}.get(tox["prolonged"])
        for test in ("NEUT", "PLAT", "HGB", "WBC", "LYM"):
            if not C.bernoulli(rng, report[test]) and test != dlt_test:
                continue
            for ep in self._cyto_episodes_for(test, curves):
                dur = ((ep.segments[-1].end or self.subj.transfer_date) - ep.segments[0].start).days
                ep.llt_index = int(rng.integers(0, 3))
                ep.rel = "4" if dur > 28 else C.pick(rng, {"2": 0.3, "3": 0.7})
                ep.rel_ld = "5" if ep.segments[0].start <= self.subj.on(14) else "2"
                ep.aesi = dur > 28          # prolonged cytopenia is an AESI
                tox["episodes"].append(ep)

    def _fatal_nrm_episode(self, tox: dict, fate: Fate) -> None:
        if fate.fatal_pt != "Sepsis" or fate.death_day is None:
            return
        rng = self.rng
        onset = fate.death_day - int(rng.integers(2, 8))
        runs = [(3, fate.death_day - onset - 1), (4, 1)]
        segs = C.runs_to_segments(runs, self.subj.on(onset))
        segs.append(C.Segment(5, self.subj.on(fate.death_day), self.subj.on(fate.death_day)))
        tox["episodes"].append(C.Episode("Sepsis", segs, rel=fate.fatal_rel, rel_ld="1", fatal=True,
                                         llt_index=int(rng.integers(0, 2))))

    # -- DLT truth and the investigator's flag ---------------------------------------------------
    def _check_dlt(self, tox: dict) -> None:
        """Make the AE data show exactly the drawn DLT status, then set AEDLT."""
        subj, dlt = self.subj, self.study.dlt
        limit = subj.last_date
        hits: list[tuple[C.Episode, int, str]] = []
        for ep in tox["episodes"]:
            for i, rule in C.dlt_rules_met(ep, subj.day0, dlt, limit):
                hits.append((ep, i, rule))
        if not self.s.dlt and hits:
            for ep, _, rule in hits:
                if ep.pt in (_CRS, _ICANS) or rule in ("G5-REL", "CYTO-G4-28D"):
                    raise AssertionError(f"{subj.subject}: non-DLT subject meets {rule} via {ep.pt}")
                _defuse(ep, self.s.day0, dlt.window_days)
            hits = [(ep, i, r) for ep in tox["episodes"] for i, r in C.dlt_rules_met(ep, subj.day0, dlt, limit)]
            assert not hits, f"{subj.subject}: could not keep a non-DLT subject free of DLT events"
        if self.s.dlt and not hits:
            raise AssertionError(f"{subj.subject}: designated DLT {self.s.dlt_type} not reproduced in AEs")
        qualifying = {(id(ep), i) for ep, i, _ in hits}
        for ep in tox["episodes"]:
            for i, seg in enumerate(ep.segments):
                day = subj.day_of(seg.start)
                if 0 <= day <= dlt.window_days:
                    seg.dlt = "Y" if (id(ep), i) in qualifying else "N"
        disagreement = None
        if C.bernoulli(self.rng, self.prof["dlt"]["investigator_disagreement_rate"]):
            if self.s.dlt:
                for ep in tox["episodes"]:
                    for seg in ep.segments:
                        if seg.dlt == "Y":
                            seg.dlt = "N"
                disagreement = "missed"
            else:
                cands = [seg for ep in tox["episodes"] for seg in ep.segments
                         if seg.dlt == "N" and seg.grade >= 3 and subj.day_of(seg.start) <= dlt.window_days
                         and ep.pt not in ("Lymphocyte count decreased", "White blood cell count decreased")]
                if cands:
                    cands[int(self.rng.integers(len(cands)))].dlt = "Y"
                    disagreement = "overcalled"
        self.truth.update(dlt=self.s.dlt, dlt_rules=sorted({r for _, _, r in hits}),
                          dlt_investigator=any(seg.dlt == "Y" for ep in tox["episodes"] for seg in ep.segments),
                          dlt_disagreement=disagreement)

    # -- treatment --------------------------------------------------------------------------------
    def _lymphodepletion(self, stop_day: int | None = None) -> None:
        """FC doses on the subject's FC days (nominal + `ld_offset`); with `stop_day` (the day
        deterioration stopped treatment) only the doses before that day."""
        subj, rng = self.subj, self.rng
        reg = self.study.regimen("FC")
        code = {"FLUDARABINE": "FLU", "CYCLOPHOSPHAMIDE": "CY"}
        # Fludarabine is cut by ~20% for reduced creatinine clearance (common practice).
        flu_reduced = rng.random() < 0.1
        bsa = subj.bsa
        folders = {v.day: v.folder for v in self.study.visits if "LD" in v.assessments}
        for agent in reg.agents:
            dose = agent.dose * (0.8 if agent.name == "FLUDARABINE" and flu_reduced else 1.0)
            reduced = agent.name == "FLUDARABINE" and flu_reduced
            for day in agent.days:
                actual = day + self.ld_offset
                if stop_day is not None and actual >= stop_day:
                    continue
                date = subj.on(actual)
                # Fludarabine (30-min infusion) first, cyclophosphamide after it.
                start = self.ld_times[day] if agent.name == "FLUDARABINE" else C.add_minutes(self.ld_times[day], 45)
                self.rec.add("LD", subj, folders[day], {
                    "LDAGENT": code[agent.name], "LDDAT": C.iso(date), "LDTIM": start, "LDDOSE": round(dose, 1),
                    "LDDOSU": agent.unit, "LDBSA": bsa, "LDTOT": round(dose * bsa, 1),
                    "LDADJ": "Y" if reduced else "N",
                    "LDADJR": "Reduced creatinine clearance" if reduced else None}, date=date)

    def _infusion(self) -> None:
        s, subj, rng = self.s, self.subj, self.rng
        date = subj.on(0)
        start = C.clock(rng, "09:30", "14:00")
        self.inf_time = start
        target = self.t.dose[s.level] / 1e6
        actual = round(target * float(rng.uniform(0.9, 1.08)), 2)
        interrupted = C.bernoulli(rng, self.prof["infusion_interrupted_rate"])
        weight = round(subj.weight_kg, 1)
        self.rec.add("INF", subj, "D0", {
            "INFDAT": C.iso(date), "INFSTTM": start,
            "INFENTM": C.add_minutes(start, int(rng.integers(15, 35)) + (30 if interrupted else 0)),
            "DOSELVL": s.level, "INFLOT": f"RS1-{s.day0.strftime('%y%m')}-{int(rng.integers(100, 999))}",
            "INFWT": weight, "INFTOT": round(actual * weight, 1), "INFCARKG": actual,
            "INFVOL": float(rng.choice([50.0, 70.0, 100.0])),
            "INFINT": "Y" if interrupted else "N",
            "INFINTR": "Chills and rigors, resumed after 30 minutes" if interrupted else None}, date=date)
        self.truth["infused_cells_per_kg"] = actual * 1e6

    # -- scheduled visits -------------------------------------------------------------------------
    def _scheduled_visits(self, tox: dict, curves: C.LabCurves, ck: C.CkParams, on_until: int) -> None:
        subj, rng, rec = self.subj, self.rng, self.rec
        crs = tox["crs_daily"]

        def crs_on(day: int) -> int:
            return int(crs[day - FIRST_DAY]) if 0 <= day - FIRST_DAY < len(crs) else 0

        for v in self.study.visits:
            if v.folder == "SCR":
                continue
            day = self.vd[v.folder]
            if day > on_until:
                continue
            date = subj.on(day)
            if "LAB" in v.assessments:
                panels = LAB_PANELS_FULL if day <= 28 else ("HEM", "CHEM")
                if v.folder in ("D21", "D28"):
                    panels = ("HEM", "CHEM", "INFL")
                t = C.clock(rng, "06:30", "09:00") if day == 0 else None
                C.add_lab_panels(rec, subj, v.folder, date, day, panels, curves, rng, time=t)
            if "VS" in v.assessments:
                if day == 0:
                    C.add_vitals(rec, subj, v.folder, date, rng, 0, tpt="PRE",
                                 time=C.add_minutes(self.inf_time, -30), weight=True)
                    C.add_vitals(rec, subj, v.folder, date, rng, 0, tpt="POST",
                                 time=C.add_minutes(self.inf_time, 60))
                else:
                    C.add_vitals(rec, subj, v.folder, date, rng, crs_on(day))
            if "ECG" in v.assessments:
                if day == 0:
                    C.add_ecg(rec, subj, v.folder, date, rng, 0, tpt="PRE")
                    C.add_ecg(rec, subj, v.folder, date, rng, 0, tpt="POST")
                else:
                    C.add_ecg(rec, subj, v.folder, date, rng, crs_on(day))
            if "CK" in v.assessments:
                self._ck_sample(v.folder, day, date, ck)

    def _ck_sample(self, folder: str, day: int, date: dt.date, ck: C.CkParams) -> None:
        rng = self.rng
        tpt = "PRE" if day == 0 and folder == "D0" else f"D{self.study.visit_by_folder[folder].day}"
        time = C.add_minutes(self.inf_time, -int(rng.integers(20, 90))) if tpt == "PRE" else C.clock(rng, "07:00", "11:00")
        missed = C.bernoulli(rng, self.prof["ck"]["missed_sample_rate"])
        for method in ("QPCR", "FLOW"):
            values = {"CKDAT": C.iso(date), "CKTIM": time, "CKTPT": tpt, "CKMETH": method,
                      "CKORRESU": C.CK_UNITS[method], "CKLLOQ": C.CK_LLOQ[method]}
            if missed:
                values.update(CKNDRSN="Sample not collected")
            else:
                r = C.ck_result(rng, ck, 0 if tpt == "PRE" else day, method)
                values.update(CKORRES=r.text, CKBLQ="Y" if r.blq else "N")
            self.rec.add("CK", self.subj, folder, values, date=date)

    def _next_uns(self) -> int:
        self.uns_seq = getattr(self, "uns_seq", 0) + 1
        return self.uns_seq

    def _unscheduled_crs_visits(self, tox: dict, curves: C.LabCurves) -> None:
        """Daily labs and vitals while CRS is grade >= 2, on days without a scheduled lab visit."""
        crs = tox["crs_daily"]
        lab_days = {self.vd[v.folder] for v in self.study.visits if "LAB" in v.assessments}
        n = 0
        for i in np.flatnonzero(crs >= 2):
            day = int(i) + FIRST_DAY
            if day in lab_days or n >= self.prof["unscheduled_labs_max"]:
                continue
            date = self.subj.on(day)
            if date > self.subj.last_date:
                break
            seq = self._next_uns()
            C.add_lab_panels(self.rec, self.subj, "UNS", date, day, LAB_PANELS_FULL, curves, self.rng, folderseq=seq)
            C.add_vitals(self.rec, self.subj, "UNS", date, self.rng, int(crs[i]), folderseq=seq)
            n += 1

    # -- response: B-NHL --------------------------------------------------------------------------
    def _nhl_assessments(self, eff: dict, lesions: list[C.Lesion], curves: C.LabCurves) -> None:
        subj, rng, rec = self.subj, self.rng, self.rec
        scr = self.dates["SCR"]
        base = [C.LesionReading(l, l.ldi if l.cat == "T" else None, l.sdi if l.cat == "T" else None,
                                "PRES" if l.cat == "NT" else None, int(rng.choice([4, 5]))) for l in lesions]
        self._write_lesions("SCR", 1, scr, base)
        rec.add("RSNHL", subj, "SCR", {"RSDAT": C.iso(scr), "RSMETH": "PETCT", "RSSPD": round(C.spd(base), 0),
                                       "DEAUV": str(max(r.deauville or 0 for r in base)), "RSEVAL": "INV"}, date=scr)
        base_spd = C.spd(base) or 1.0
        nadir = {l.lid: (l.ldi, l.sdi) for l in lesions if l.cat == "T"}
        last: list[C.LesionReading] = base
        prev_kind = None
        ir_new: list[C.LesionReading] = []
        ratio_prev = 1.0
        for st in eff["steps"]:
            folder, seq = st["folder"], st["seq"] or self._next_uns()
            date = subj.on(st["day"])
            if st["missed"]:
                continue
            if st["ne"]:
                rec.add("RSNHL", subj, folder, {"RSDAT": C.iso(date), "RSMETH": "CT", "LUGRESP": "NE",
                                                "LYRRESP": "NE", "RSEVAL": "INV"}, date=date, folderseq=seq)
                continue
            kind = st["kind"]
            course = kind
            ratio = None
            if kind == "PR":
                ratio = min(float(rng.uniform(0.15, 0.45)), ratio_prev)
                if prev_kind == "PR":
                    course = "STABLE"
            elif kind == "SD":
                ratio = float(np.clip(ratio_prev * rng.uniform(0.95, 1.05), 0.62, 1.15)) if prev_kind == "SD" \
                    else float(rng.uniform(0.62, 1.15))
            elif kind == "FLARE":
                ratio = float(rng.uniform(1.55, 1.9))
            elif kind == "PD" and st.get("confirms_ir"):
                # LYRIC confirmation: further growth from the flare, not from the old nadir.
                nadir = {r.lesion.lid: (r.ldi, r.sdi) for r in last if r.lesion.cat == "T"}
            new_lesion = kind == "PD" and (prev_kind == "CR" or rng.random() < 0.5)
            readings = C.measure_lesions(rng, lesions, course, nadir, ratio=ratio, new_lesion=new_lesion,
                                         n_new=1 if rng.random() < 0.8 else 2)
            if kind == "NEWONLY":
                ir_new = [r for r in readings if r.lesion.cat == "NEW"]
            elif ir_new and st.get("after_ir"):
                readings += [C.LesionReading(r.lesion, 0.0, 0.0, "ABS", 1) for r in ir_new]
                ir_new = []
            elif ir_new and kind == "PD":
                readings = [r for r in readings if r.lesion.cat != "NEW"]
                readings += [C.LesionReading(r.lesion, round((r.ldi or 16) * 1.4, 0), round((r.sdi or 10) * 1.4, 0),
                                             "UNEQ", 5) for r in ir_new]
            for r in readings:
                if r.lesion.cat == "T" and r.ppd < nadir[r.lesion.lid][0] * nadir[r.lesion.lid][1]:
                    nadir[r.lesion.lid] = (r.ldi, r.sdi)
            readings, deauv, method = self._pet_reading(readings, kind)
            self._write_lesions(folder, seq, date, readings)
            met = {"CR": "CMR", "PR": "PMR", "SD": "NMR", "PD": "PMD", "FLARE": "PMD", "NEWONLY": "PMD"}[kind]
            rec.add("RSNHL", subj, folder, {
                "RSDAT": C.iso(date), "RSMETH": method, "RSSPD": round(C.spd(readings), 0),
                "DEAUV": str(deauv) if deauv else None, "METRESP": met if method == "PETCT" else None,
                "RSNEWL": "Y" if any(r.lesion.cat == "NEW" and r.status != "ABS" for r in readings) else "N",
                "LUGRESP": st["lugano"], "LYRRESP": st["lyric"], "RSEVAL": "INV"}, date=date, folderseq=seq)
            last = readings
            prev_kind = kind
            if ratio is not None and kind in ("PR", "SD"):
                ratio_prev = C.spd(readings) / base_spd

    def _pet_reading(self, readings: list[C.LesionReading], kind: str) -> tuple[list[C.LesionReading], int | None, str]:
        """Lesion and overall Deauville scores for one scan: the overall score is the highest
        lesion score; a CT-only scan (no PET available) has none."""
        rng = self.rng
        if rng.random() >= 0.88:
            return [replace(r, deauville=None) for r in readings], None, "CT"
        state = {"CR": int(rng.integers(1, 4)), "PR": 4, "SD": int(rng.choice([4, 5])), "PD": 5,
                 "FLARE": 5, "NEWONLY": 5}[kind]
        out = []
        for r in readings:
            if r.lesion.cat != "NT" and r.deauville is None and r.status != "ABS":
                r = replace(r, deauville=state)
            out.append(r)
        scores = [r.deauville for r in out if r.deauville]
        return out, max(scores) if scores else state, "PETCT"

    def _write_lesions(self, folder: str, seq: int, date: dt.date, readings: list[C.LesionReading]) -> None:
        for r in readings:
            les = r.lesion
            measured = les.cat in ("T", "NEW")
            self.rec.add("TL", self.subj, folder, {
                "TLDAT": C.iso(date), "TLLNKID": les.lid, "TLCAT": les.cat, "TLLOC": les.loc,
                "TLNODAL": "Y" if les.nodal else "N",
                "TLLDI": float(r.ldi) if measured and r.ldi is not None else None,
                "TLSDI": float(r.sdi) if measured and r.sdi is not None else None,
                "TLNTSTAT": r.status if les.cat in ("NT", "NEW") else None,
                "TLDEAUV": str(r.deauville) if r.deauville else None,
                "TLNEW": "Y" if les.cat == "NEW" else "N"}, date=date, folderseq=seq)

    # -- response: B-ALL --------------------------------------------------------------------------
    def _all_assessments(self, eff: dict, curves: C.LabCurves) -> None:
        subj, rng, rec = self.subj, self.rng, self.rec
        scr = self.dates["SCR"]
        rec.add("RSALL", subj, "SCR", {
            "RSDAT": C.iso(scr), "BMBLAST": round(self.bm_blast0, 1),
            "MRDRES": f"{self.bm_blast0 * rng.uniform(0.7, 1.0):.1f}", "MRDNEG": "N",
            "EMD": "Y" if rng.random() < 0.08 else "N", "RSEVAL": "INV"}, date=scr)
        for st in eff["steps"]:
            if st["missed"]:
                continue
            folder, seq = st["folder"], st["seq"] or self._next_uns()
            day = st["day"]
            date = subj.on(day)
            anc, plt = curves.at("NEUT", day), curves.at("PLAT", day)
            anc_rec, plt_rec = anc >= 1.0, plt >= 100
            state = st["state"]
            if state == "REM":
                blasts = round(float(rng.uniform(0.2, 4.5)), 1)
                mrd_neg = eff["mrd_negative"]
                mrd = "<0.01" if mrd_neg else f"{float(np.exp(rng.uniform(np.log(0.012), np.log(0.8)))):.3f}"
                resp = "CR" if anc_rec and plt_rec else "CRI"
            elif state == "NR":
                blasts = round(float(np.clip(self.bm_blast0 * rng.uniform(0.3, 1.2), 6, 95)), 1)
                mrd, mrd_neg, resp = f"{blasts * rng.uniform(0.6, 1.0):.1f}", False, "NR"
            elif state == "PD":
                blasts = round(float(np.clip(self.bm_blast0 * rng.uniform(1.3, 1.8), 10, 97)), 1)
                mrd, mrd_neg, resp = f"{blasts * rng.uniform(0.6, 1.0):.1f}", False, "PD"
            else:
                blasts = round(float(rng.uniform(8, 60)), 1)
                mrd, mrd_neg, resp = f"{blasts * rng.uniform(0.6, 1.0):.1f}", False, "RELAPSE"
            rec.add("RSALL", subj, folder, {
                "RSDAT": C.iso(date), "BMBLAST": blasts, "MRDRES": mrd, "MRDNEG": "Y" if mrd_neg else "N",
                "EMD": "N", "ANCREC": "Y" if anc_rec else "N", "PLTREC": "Y" if plt_rec else "N",
                "ALLRESP": resp, "RSEVAL": "INV"}, date=date, folderseq=seq)
            st["response"] = resp

    # -- concomitant medications ------------------------------------------------------------------
    def _conmeds(self, tox: dict) -> None:
        subj, rng, rec = self.subj, self.rng, self.rec
        C.add_standard_prophylaxis(rec, subj, rng, subj.on(-5))
        if rng.random() < 0.6:
            C.add_conmed(rec, subj, "Levetiracetam", subj.on(0), subj.on(int(rng.integers(28, 32))), rng,
                         "Seizure prophylaxis", 500.0, "mg", "PO")
        for ep in tox["episodes"]:
            first = ep.segments[0].start
            if ep.pt == _CRS and ep.max_grade >= self.prof["crs"]["tocilizumab_from_grade"]:
                g2 = next(s.start for s in ep.segments if s.grade >= 2)
                dose = float(min(800.0, round(8 * subj.weight_kg)))
                n = 2 if ep.max_grade >= 3 else 1
                for k in range(n):
                    d = g2 + dt.timedelta(days=k)
                    C.add_conmed(rec, subj, "Tocilizumab", d, d, rng, "Cytokine release syndrome", dose, "mg", "IV")
            if (ep.pt == _ICANS and ep.max_grade >= 2) or (ep.pt == _CRS and ep.max_grade >= 3):
                s = next(seg.start for seg in ep.segments if seg.grade >= (2 if ep.pt == _ICANS else 3))
                C.add_conmed(rec, subj, "Dexamethasone", s, s + dt.timedelta(days=int(rng.integers(3, 7))), rng,
                             "ICANS" if ep.pt == _ICANS else "Cytokine release syndrome", 10.0, "mg", "IV")
            if ep.pt == "Febrile neutropenia":
                C.add_conmed(rec, subj, "Piperacillin/tazobactam", first,
                             first + dt.timedelta(days=int(rng.integers(5, 9))), rng, "Febrile neutropenia",
                             4.5, "g", "IV")
            if ep.pt in ("Pneumonia", "Sepsis"):
                C.add_conmed(rec, subj, "Meropenem", first, first + dt.timedelta(days=int(rng.integers(7, 15))),
                             rng, ep.pt, 1.0, "g", "IV")
            if ep.pt == "Hypogammaglobulinaemia":
                C.add_conmed(rec, subj, "Immunoglobulin (IVIG)", first, first, rng, "Hypogammaglobulinaemia",
                             float(round(0.4 * subj.weight_kg, 0)), "g", "IV")
            if ep.pt == "Cytomegalovirus infection reactivation":
                C.add_conmed(rec, subj, "Letermovir", first, first + dt.timedelta(days=int(rng.integers(21, 60))), rng,
                             "CMV reactivation", 480.0, "mg", "PO")
        if C.bernoulli(rng, self.prof["gcsf_rate"]):
            s = subj.on(int(rng.integers(5, 10)))
            C.add_conmed(rec, subj, "Filgrastim", s, s + dt.timedelta(days=int(rng.integers(3, 8))), rng,
                         "Neutropenia", 300.0, "ug", "SC")

    # -- survival follow-up and end of study ----------------------------------------------------
    def _survival(self, eff: dict, fate: Fate) -> None:
        subj, rec = self.subj, self.rec
        new_tx = eff.get("new_tx")
        if new_tx:
            # On the subsequent-therapy log when it starts, whatever the visit; its own stream
            # (end date) so the other draws of the subject stay as they were.
            own = np.random.default_rng([self.t.seed, self.s.order, 0x5B7])
            C.add_subsequent_therapy(rec, subj, subj.on(new_tx[0]), new_tx[1], own)
        last_contact = None
        for v in self.study.visits_with("SURV"):
            date = subj.on(self.vd[v.folder])
            if date > subj.last_date:
                break
            C.add_survival_contact(rec, subj, v.folder, date, "1")
            last_contact = date
        if fate.end_code == "3" and subj.end_date is not None and subj.end_date <= subj.transfer_date:
            C.add_survival_contact(rec, subj, "FUP", subj.end_date, "3")
        self.truth["last_survival_contact"] = C.iso(last_contact) if last_contact else None

    def _end_of_study(self, fate: Fate) -> None:
        subj, rec = self.subj, self.rec
        if subj.death_date is not None and subj.death_date <= subj.transfer_date:
            C.add_death(rec, subj, fate.death_cause, fate.death_text, rng=self.rng, fatal_pt=fate.fatal_pt)
            C.add_disposition(rec, subj, subj.death_date, "2", "Death")
            self.truth.update(death_date=C.iso(subj.death_date), death_cause=fate.death_cause,
                              end_date=C.iso(subj.death_date), end_reason="DEATH")
        elif subj.end_date is not None and subj.end_date <= subj.transfer_date:
            C.add_disposition(rec, subj, subj.end_date, fate.end_code, fate.end_term)
            self.truth.update(end_date=C.iso(subj.end_date), end_reason=fate.end_term)

    def _finish_truth(self, tox: dict, eff: dict, fate: Fate, ck: C.CkParams) -> None:
        subj = self.subj

        def date_of(day):
            if day is None:
                return None
            d = subj.on(day)
            return C.iso(d) if d <= subj.last_date else None

        crs_grade = max((ep.max_grade for ep in tox["episodes"] if ep.pt == _CRS), default=0)
        icans_grade = max((ep.max_grade for ep in tox["episodes"] if ep.pt == _ICANS), default=0)
        t = {"crs_max_grade": crs_grade, "icans_max_grade": icans_grade,
             "ck_cmax_true": ck.cmax, "ck_tmax_true": ck.tmax,
             "progression_date": date_of(eff.get("progression_day")),
             "new_therapy_date": date_of(eff["new_tx"][0]) if eff.get("new_tx") else None}
        if eff["disease"] == "B-NHL":
            done = [st for st in eff["steps"] if not st["missed"] and not st["ne"] and subj.on(st["day"]) <= subj.last_date]
            t.update(d28_response=eff["first"], lyric_ir=eff["ir"]["kind"] if eff["ir"] else None,
                     lyric_ir_confirmed=eff["ir"]["confirmed"] if eff["ir"] else None,
                     lugano_pd_date=date_of(eff["lugano_pd_day"]), lyric_pd_date=date_of(eff["lyric_pd_day"]),
                     lugano_responses=[st["lugano"] for st in done], lyric_responses=[st["lyric"] for st in done])
        else:
            done = [st for st in eff["steps"] if not st["missed"] and subj.on(st["day"]) <= subj.last_date]
            t.update(remission=eff["remission"], mrd_negative=eff["mrd_negative"],
                     relapse_date=date_of(eff["relapse_day"]) if eff["remission"] else None,
                     allo_sct_date=date_of(eff["sct_day"]),
                     all_responses=[st.get("response") for st in done])
        self.truth.update(t)


def _defuse(ep: C.Episode, day0: dt.date, window: int) -> None:
    """Keep a non-DLT subject's long, related, non-hematologic grade >= 3 event from meeting
    the rules the way investigators would document it: a short grade-3 spell, then grade 2."""
    new: list[C.Segment] = []
    for seg in ep.segments:
        in_window = 0 <= (seg.start - day0).days <= window
        if in_window and seg.grade >= 3 and seg.end is not None and (seg.end - seg.start).days > 2:
            cut = seg.start + dt.timedelta(days=2)
            new.append(C.Segment(seg.grade, seg.start, cut))
            new.append(C.Segment(2, cut, seg.end))
        elif in_window and seg.grade >= 3 and seg.end is None:
            cut = seg.start + dt.timedelta(days=2)
            new.append(C.Segment(seg.grade, seg.start, cut))
            new.append(C.Segment(2, cut, None))
        else:
            new.append(seg)
    ep.segments = new


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))
