"""GLOCART synthetic EDC: glofitamab-based salvage, then CAR-T alone or CAR-T + ASCT.

One subject at a time, in two steps:
1. `Planner` decides what happens and when (a `Plan`: dates, doses, responses, fate), using
   only the subject's own random generator, the study design (study.yaml) and the
   simulation profile (profiles/GLOCART.yaml);
2. `Emitter` (with `Safety` for AEs, labs, vital signs, ECG) turns the plan into EDC records
   through `simulate.common.Recorder`, which drops anything dated after the subject's death,
   end of study or the transfer date.

The design (visit days and windows, doses, regimens, consolidation rule, yield targets) is
read from the study configuration; nothing here restates it. The per-subject truth the plan
holds goes to `SimulatedStudy.truth["subjects"]` for tests.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clinpipe.config import StudyConfig, Visit
from clinpipe.yamlio import load_yaml
from edc.forms import FormsConfig
from simulate import common as c
from simulate.model import SimulatedStudy, StudyStream

PROFILE_PATH = Path(__file__).with_name("profiles") / "GLOCART.yaml"

CRS = "Cytokine release syndrome"
ICANS = "Immune effector cell-associated neurotoxicity syndrome"
RESPONDERS = ("CR", "PR")
CONSENT_VERSION = "GLOCART v2.0"


def load_profile(path: Path = PROFILE_PATH) -> dict[str, Any]:
    return load_yaml(path).data


# =============================================================================================
# Design look-ups: study.yaml resolved once into what the simulator needs
# =============================================================================================


@dataclass(frozen=True)
class DoseSlot:
    """One planned administration of a regimen agent, relative to its anchor."""
    agent: str          # regimen agent name (study.yaml), e.g. GLOFITAMAB
    day: int            # days from the anchor
    dose: float | None
    unit: str | None
    cycle: int
    cycle_day: int      # 1-based day within the cycle
    folder: str         # EDC folder the dose is recorded in


def _code_for(codelist: dict[str, str], name: str) -> str:
    """EDC code whose decode names the agent (`POLATUZUMAB VEDOTIN` -> `POLA`), so a new agent
    in study.yaml needs only a codelist entry, not code."""
    for code, decode in codelist.items():
        if decode.upper() == name.upper():
            return code
    raise ValueError(f"no code in the EDC codelist decodes to {name!r}; add it to forms.yaml")


class Design:
    """Schedule facts from study.yaml in the shape the planner uses."""

    def __init__(self, study: StudyConfig, forms: FormsConfig, prof: dict[str, Any]):
        self.study = study
        self.cycle_days = int(prof["phase1_cycle_days"])
        self.visits = study.visit_by_folder
        self.glofit = self._slots("GLOFIT")
        self.agent_x = {code: self._slots(code) for code in prof["agent_x"]["regimens"]}
        self.fc = self._slots("FC")
        self.cond_code = prof["conditioning_regimen"]
        self.cond = self._slots(self.cond_code)
        self.fc_lead = -min(s.day for s in self.fc)           # LD starts 5 days before CAR-T
        self.cond_lead = -min(s.day for s in self.cond)       # conditioning 6 days before ASCT
        # Visits of each multi-day regimen: their study.yaml window moves the regimen as a block.
        self.fc_visits = [v for v in study.visits if "LD" in v.assessments]
        self.cond_visits = [v for v in study.visits if "COND" in v.assessments]
        cons = study.consolidation
        self.cons = cons
        self.eos_folder = max(study.visits, key=lambda v: v.visitnum).folder
        self.cons_folders = [v.folder for v in sorted(
            (v for v in study.visits if v.anchor == "CONS"), key=lambda v: v.day)]
        self.mnc_target_e8 = study.collection_targets.mnc_per_kg / 1e8
        self.cd34_target_e6 = study.collection_targets.cd34_per_kg / 1e6
        # Response assessments after CAR-T (the Day-28 one first), in visit order.
        first = self.visits[cons.assessed_at].visitnum
        self.post_cart_rsp = [v for v in sorted(study.visits, key=lambda v: v.visitnum)
                              if "RSP" in v.assessments and v.visitnum >= first
                              and (v.anchor == "CART" or v.folder == self.eos_folder)]
        # Cohorts the end-of-phase-1 decision assigns; a shortened arm (stopped after phase 1) is
        # the trial design's record of not being assigned, not a cohort to draw.
        self.arm_codes = [a.armcd for a in study.arms if not a.shortened]
        self.cart_visits = [v for v in study.visits if v.anchor == "CART" and v.day >= 0]
        units = set(forms.codelists["DOSEU"])
        for slots in [self.glofit, self.fc, self.cond, *self.agent_x.values()]:
            for s in slots:
                if s.unit not in units:
                    raise ValueError(f"dose unit {s.unit!r} of {s.agent} is not in codelist DOSEU")

    def _slots(self, regimen: str) -> list[DoseSlot]:
        reg = self.study.regimen(regimen)
        out = []
        for agent in reg.agents:
            for day in agent.days:
                cycle, cday = divmod(day, self.cycle_days) if reg.anchor == "C1D1" else (0, day)
                out.append(DoseSlot(agent.name, day, agent.dose, agent.unit, cycle + 1, cday + 1,
                                    self.folder_at(reg.anchor, day)))
        return sorted(out, key=lambda s: (s.day, s.agent))

    def folder_at(self, anchor: str, day: int) -> str:
        """The visit folder a dose on `day` of `anchor` belongs to: the visit of that anchor on
        that day, else the latest one before it (a log folder for multi-day conditioning,
        the cycle's Day 1 folder for continuous oral dosing)."""
        cands = [v for v in self.study.visits if v.anchor == anchor and v.day <= day]
        if not cands:
            raise ValueError(f"no visit of anchor {anchor} on or before day {day}")
        return max(cands, key=lambda v: (v.day, -v.visitnum)).folder

    def visit(self, folder: str) -> Visit:
        return self.visits[folder]

    def visit_date(self, folder: str, anchor_date: dt.date, rng: np.random.Generator) -> dt.date:
        v = self.visits[folder]
        return c.add_days(anchor_date, v.day + c.window_offset(rng, v.window))


# =============================================================================================
# The plan: everything decided about one subject
# =============================================================================================


@dataclass
class Dose:
    slot: DoseSlot
    date: dt.date
    dose: float
    end: dt.date | None = None     # continuous oral dosing: last day of the cycle's run
    interrupted: bool = False
    delayed: bool = False


def phase1_rels(code: str) -> dict[str, str]:
    """A phase-1 AE the investigator attributes to the salvage therapy: glofitamab and agent X
    (if given) at `code`, the one obinutuzumab pretreatment dose unlikely."""
    return {"AERELGLO": code, "AERELAX": code, "AERELOBI": "2"}


@dataclass
class AeEvent:
    """An AE episode the plan decided on (CRS, ICANS, the AE ending phase 1, fatal events)."""
    episode: c.Episode
    phase: str


@dataclass
class Rsp:
    folder: str
    seq: int
    date: dt.date
    phase: str                 # RSPHASE: PRE (phase 1) / POST (after CAR-T)
    response: str
    deauville: int | None
    method: str
    readings: list[c.LesionReading]


@dataclass
class Plan:
    subj: c.Subject
    index: int
    histology: str = ""
    screen_failure: bool = False
    failed_criterion: str | None = None
    enr_date: dt.date | None = None
    c1d1: dt.date | None = None
    diagnosis: dt.date | None = None
    refractory: bool = False
    n_prior: int = 1
    ecog: str = "1"
    stage: str = "III"
    bulky: bool = False
    ldh_high: bool = False
    # apheresis and stem-cell collection
    aph_ci: bool = False
    aph_ci_reason: str | None = None
    aph_date: dt.date | None = None
    aph_mnc: float | None = None
    aph_cd3: float | None = None
    scc_mob: str | None = None
    scc_mob_start: dt.date | None = None
    scc_days: list[tuple[dt.date, float, float]] = field(default_factory=list)   # date, CD34+, MNC
    # phase 1
    agent_x: str | None = None
    x_reduced: bool = False
    gloex: list[Dose] = field(default_factory=list)
    agx: list[Dose] = field(default_factory=list)
    early_event: str | None = None
    early_date: dt.date | None = None
    eop1: Rsp | None = None
    dropout: str | None = None
    coh_date: dt.date | None = None
    # phase 2
    cohort: str | None = None
    phase2_start: dt.date | None = None
    ld: list[Dose] = field(default_factory=list)
    cond: list[Dose] = field(default_factory=list)
    timing: Any = None                  # c.timing_rng: schedule jitter and administration times
    ld_times: dict[dt.date, str] = field(default_factory=dict)   # FC start time per day
    dose_times: dict[dt.date, str] = field(default_factory=dict)  # first timed dose per day (labs go before)
    asct_date: dt.date | None = None
    asct_cd34: float | None = None
    anc_engraft: dt.date | None = None
    plt_engraft: dt.date | None = None
    cart_date: dt.date | None = None
    cart_dose: float | None = None
    cart_product: str | None = None
    cart_visits: dict[str, dt.date] = field(default_factory=dict)   # CAR-T calendar, Day 0 on
    d28: Rsp | None = None
    ctdna: str | None = None
    ctdna_value: float | None = None
    cons_indicated: bool = False
    cons_start: dt.date | None = None
    cons: list[Dose] = field(default_factory=list)
    # disease course and fate
    assessments: list[Rsp] = field(default_factory=list)
    pd_date: dt.date | None = None      # first progression (PFS-t)
    cart_pd: dt.date | None = None      # first progression after CAR-T (PFS-c; ends the scans)
    new_therapy: tuple[dt.date, str] | None = None
    death: dt.date | None = None        # latent: may fall after the transfer date
    death_cause: str | None = None
    off_study: tuple[dt.date, str] | None = None   # withdrawal / lost / screen failure: (date, DSDECOD)
    fu_from: dt.date | None = None      # survival contacts (FUP folder) run after this date
    y2_date: dt.date | None = None      # end-of-study visit (2 years from C1D1)
    events: list[AeEvent] = field(default_factory=list)
    lesions: list[c.Lesion] = field(default_factory=list)
    nadir: dict[str, tuple[float, float]] = field(default_factory=dict)
    last_ratio: float = 1.0
    # The subject's own generator for what issue 12 added (follow-up of phase-1 stoppers,
    # subsequent therapy details), so the draws of the original stream stay as they were.
    rng_fu: np.random.Generator | None = None

    @property
    def cd34_total(self) -> float:
        return round(sum(d[1] for d in self.scc_days), 2)


class Planner:
    """Decides one subject's course. Steps run in protocol order; each reads what earlier
    steps decided."""

    def __init__(self, design: Design, prof: dict[str, Any]):
        self.d = design
        self.p = prof

    def plan(self, plan: Plan, rng: np.random.Generator) -> Plan:
        p = self.p
        plan.histology = c.pick(rng, p["histology"])
        self._history(plan, rng)
        if c.bernoulli(rng, p["screen_failure_rate"]):
            plan.screen_failure = True
            plan.failed_criterion = c.pick(rng, p["screen_failure_criteria"])
            plan.enr_date = c.add_days(plan.subj.consent_date, c.uniform_int(rng, [3, 20]))
            plan.off_study = (plan.enr_date, "8")
            return plan
        plan.c1d1 = c.add_days(plan.subj.consent_date, c.uniform_int(rng, p["calendar"]["screening_days"]))
        plan.enr_date = max(plan.subj.consent_date, c.add_days(plan.c1d1, -c.uniform_int(rng, [1, 3])))
        plan.y2_date = self.d.visit_date(self.d.eos_folder, plan.c1d1, rng)
        t = p["tumour"]
        plan.lesions = c.draw_lesions(rng, c.uniform_int(rng, t["target_lesions"]),
                                      c.uniform_int(rng, t["non_target_lesions"]), plan.bulky)
        plan.nadir = {l.lid: (l.ldi, l.sdi) for l in plan.lesions if l.cat == "T"}
        self._early_event(plan, rng)
        self._apheresis(plan, rng)
        self._collection(plan, rng)
        self._phase1_doses(plan, rng)
        self._phase1_outcome(plan, rng)
        if plan.cohort:
            self._phase2(plan, rng)
            self._post_cart(plan, rng)
        self._fate_after_dropout(plan, rng)
        self._stopper_follow_up(plan)
        self._withdrawal_in_follow_up(plan, rng)
        return plan

    def _history(self, plan: Plan, rng: np.random.Generator) -> None:
        consent = plan.subj.consent_date
        plan.refractory = c.bernoulli(rng, self.p["refractory_rate"])
        plan.n_prior = int(c.pick(rng, self.p["prior_lines"]))
        plan.diagnosis = c.add_days(consent, -int(c.lognormal(rng, {"median": 420, "sigma": 0.6}) + 90))
        plan.ecog = c.pick(rng, {"0": 0.35, "1": 0.5, "2": 0.15})
        plan.stage = c.pick(rng, {"I": 0.05, "II": 0.15, "III": 0.25, "IV": 0.55})
        plan.bulky = c.bernoulli(rng, 0.2)
        plan.ldh_high = c.bernoulli(rng, 0.55)

    def _before_stop(self, plan: Plan, date: dt.date) -> bool:
        """Whether something dated `date` still happens in phase 1 (before an early exit)."""
        return plan.early_date is None or date < plan.early_date

    # -- apheresis and stem-cell collection ---------------------------------------------------
    def _apheresis(self, plan: Plan, rng: np.random.Generator) -> None:
        a = self.p["apheresis"]
        if c.bernoulli(rng, a["contraindicated_rate"]):
            # Collected after the glofitamab washout instead (T cells recover from the bispecific).
            plan.aph_ci = True
            plan.aph_ci_reason = c.pick(rng, a["contraindication_reasons"])
            c2d1 = next(s for s in self.d.glofit if s.cycle == 2).day
            date = c.add_days(plan.c1d1, c2d1 + c.uniform_int(rng, a["deferred_days_after_c2d1"]))
        else:
            # After eligibility is confirmed and before the first glofitamab dose (C1D8).
            date = max(c.add_days(plan.c1d1, c.uniform_int(rng, a["day_range"])), plan.enr_date)
        if not self._before_stop(plan, date):
            return
        plan.aph_date = date
        plan.aph_mnc = round(c.lognormal(rng, a["mnc_per_kg_e8"]), 2)
        plan.aph_cd3 = round(plan.aph_mnc * c.uniform(rng, a["cd3_fraction"]), 2)

    def _collection(self, plan: Plan, rng: np.random.Generator) -> None:
        """G-CSF (+/- plerixafor) mobilisation, then apheresis days until the CD34+ target is met
        (or the maximum number of days); poor mobilisers fall short."""
        s = self.p["stem_cell_collection"]
        if not c.bernoulli(rng, s["attempt_rate"]):
            return
        mob = c.add_days(plan.c1d1, c.uniform_int(rng, s["mobilisation_start_before_c1d1"]))
        if not c.bernoulli(rng, s["before_c1d1_rate"]) or mob <= plan.enr_date:
            mob = c.add_days(plan.c1d1, c.uniform_int(rng, s["mobilisation_start_cycle2"]))
        plan.scc_mob = c.pick(rng, s["mobilisation"])
        day = c.add_days(mob, c.uniform_int(rng, s["gcsf_days_to_collection"]))
        poor = c.bernoulli(rng, s["poor_mobiliser_rate"])
        days, total = [], 0.0
        for _ in range(int(s["max_days"])):
            if day == plan.aph_date:            # one apheresis procedure a day
                day = c.add_days(day, 1)
            cd34 = round(c.lognormal(rng, s["cd34_per_day_e6"]) * (s["cd34_poor_factor"] if poor else 1.0), 2)
            days.append((day, cd34, round(c.lognormal(rng, s["mnc_per_day_e8"]), 2)))
            total += cd34
            if total >= self.d.cd34_target_e6:
                break
            day = c.add_days(day, 1)
        days = [d for d in days if self._before_stop(plan, d[0])]
        if days and self._before_stop(plan, mob):
            plan.scc_mob_start, plan.scc_days = mob, days

    # -- phase 1: obinutuzumab/glofitamab +/- agent X ----------------------------------------
    def _early_event(self, plan: Plan, rng: np.random.Generator) -> None:
        """A subject may leave phase 1 before its end: progression, death, toxicity, withdrawal."""
        ph = self.p["phase1"]
        x = self.p["agent_x"]
        if c.bernoulli(rng, x["rate"]):
            plan.agent_x = c.pick(rng, x["regimens"])
            plan.x_reduced = c.bernoulli(rng, x["dose_reduction_rate"])
        u, acc = rng.random(), 0.0
        for reason, rate in ph["early_event_rates"].items():
            acc += rate
            if u < acc:
                plan.early_event = reason
                plan.early_date = c.add_days(plan.c1d1, c.uniform_int(rng, ph["early_event_day"]))
                return

    def _phase1_doses(self, plan: Plan, rng: np.random.Generator) -> None:
        final = self.d.glofit[-1]
        delay = 0      # days C2D1 is put off after CRS in cycle 1
        for slot in self.d.glofit:
            date = self.d.visit_date(slot.folder, plan.c1d1, rng)
            delayed = slot.cycle == 2 and delay > 0
            if delayed:
                date = c.add_days(plan.c1d1, slot.day + delay)
            if not self._before_stop(plan, date):
                break
            step = slot.agent == final.agent and slot.dose < final.dose
            beyond = delayed and delay > self.d.visit(slot.folder).window[1]
            plan.gloex.append(Dose(slot, date, float(slot.dose), delayed=beyond,
                                   interrupted=step and c.bernoulli(rng, self.p["dosing"]["step_up_interrupt_rate"])))
            delay = self._glofitamab_crs(plan, slot, date, rng) or delay
        if plan.agent_x:
            self._agent_x_doses(plan, rng)

    def _glofitamab_crs(self, plan: Plan, slot: DoseSlot, date: dt.date, rng: np.random.Generator) -> int:
        """CRS after a glofitamab dose; returns the days C2D1 is put off after CRS >= grade 2."""
        p = self.p["crs"]
        if not c.bernoulli(rng, p["glofitamab"].get(slot.folder, 0.0)):
            return 0
        grade = int(c.pick(rng, {str(k): v for k, v in p["glofitamab_grades"].items()}))
        onset = c.add_days(date, c.uniform_int(rng, [0, 1]))
        segs = c.runs_to_segments(c.crs_runs(rng, grade), onset)
        plan.events.append(AeEvent(c.Episode(CRS, segs, rel="1", rels={"AERELGLO": "4", "AERELOBI": "2"},
                                             scale="ASTCT", acn="1", llt_index=int(rng.integers(3))), "P1"))
        if c.bernoulli(rng, self.p["icans"]["glofitamab"]):
            ig = int(c.pick(rng, {str(k): v for k, v in self.p["icans"]["glofitamab_grades"].items()}))
            isegs = c.runs_to_segments(c.icans_runs(rng, ig), c.add_days(onset, c.uniform_int(rng, [1, 2])))
            plan.events.append(AeEvent(c.Episode(ICANS, isegs, rel="1", rels={"AERELGLO": "4", "AERELOBI": "2"},
                                                 scale="ASTCT", acn="1"), "P1"))
        dosing = self.p["dosing"]
        if grade >= 2 and slot.cycle == 1 and c.bernoulli(rng, dosing["c2d1_delay_after_crs_rate"]):
            hi = next(s for s in self.d.glofit if s.cycle == 2).folder
            return c.uniform_int(rng, [1, self.d.visit(hi).window[1] + dosing["c2d1_delay_beyond_window_days"]])
        return 0

    def _agent_x_doses(self, plan: Plan, rng: np.random.Generator) -> None:
        slots = self.d.agent_x[plan.agent_x]
        factor = self.p["agent_x"]["dose_reduction_factor"]
        reduce = lambda s: round(s.dose * (factor if plan.x_reduced and s.cycle == 2 else 1.0), 2)
        if len({s.day for s in slots}) > self.d.cycle_days:
            # Daily oral dosing: one record per cycle with start and end date.
            for cycle in sorted({s.cycle for s in slots}):
                days = [s for s in slots if s.cycle == cycle]
                start = c.add_days(plan.c1d1, days[0].day)
                if not self._before_stop(plan, start):
                    break
                end = c.add_days(plan.c1d1, days[-1].day)
                if plan.early_date is not None:
                    end = min(end, c.add_days(plan.early_date, -1))
                plan.agx.append(Dose(days[0], start, reduce(days[0]), end=end))
            return
        # IV partners: on the glofitamab visit of the same day, else on their own visit; every
        # agent of the regimen given that day shares the date.
        by_day = {g.slot.day: g.date for g in plan.gloex}
        for s in slots:
            if s.day not in by_day:
                by_day[s.day] = self.d.visit_date(s.folder, plan.c1d1, rng)
            date = by_day[s.day]
            if self._before_stop(plan, date):
                plan.agx.append(Dose(s, date, reduce(s), end=date))

    def _phase1_outcome(self, plan: Plan, rng: np.random.Generator) -> None:
        ph = self.p["phase1"]
        if plan.early_event:
            self._early_dropout(plan, rng)
            return
        pet = self.d.visit_date("EOP1", plan.c1d1, rng)
        response = c.pick(rng, ph["response"])
        decision = lambda when: c.add_days(when, c.uniform_int(rng, ph["decision_days_after_pet"]))
        if response == "PD" and c.bernoulli(rng, ph["pd_not_proceeding_rate"]):
            plan.eop1 = self._assess(plan, rng, "EOP1", 1, pet, "PRE", response)
            plan.pd_date = pet
            self._drop(plan, "PD", decision(pet))
            return
        # Phase 2 starts once the product is released and <= 14 days after the PET-CT; when the
        # product is late (deferred apheresis) the end-of-phase-1 PET-CT is done later as well.
        ready = c.add_days(plan.aph_date, c.uniform_int(rng, self.p["apheresis"]["manufacture_days"]))
        lead = c.uniform_int(rng, ph["lead_time_to_phase2_days"])
        start = max(c.add_days(pet, lead), ready)
        if c.days_between(pet, start) > ph["lead_time_to_phase2_days"][1]:
            pet = c.add_days(start, -lead)
        plan.eop1 = self._assess(plan, rng, "EOP1", 1, pet, "PRE", response)
        if response == "PD":
            plan.pd_date = pet
        if c.bernoulli(rng, ph["manufacturing_failure_rate"]):
            self._drop(plan, "MFG", decision(pet))
            return
        plan.coh_date = decision(pet)
        plan.phase2_start = start
        plan.cohort = self._cohort(plan, response, rng)

    def _early_dropout(self, plan: Plan, rng: np.random.Generator) -> None:
        reason, when = plan.early_event, plan.early_date
        if reason == "DEATH":
            plan.death = when
            if c.bernoulli(rng, 0.6):
                plan.death_cause = "2"
                self._fatal_infection(plan, when, rng, "P1")
            else:
                plan.death_cause = "1"       # clinical progression, no scan before death
            self._drop(plan, "DEATH", when)
            return
        if reason == "PD":
            self._assess(plan, rng, "UNS", 1, when, "PRE", "PD")
            plan.pd_date = when
        if reason == "AE":
            self._toxicity_stop(plan, when, rng)
        self._drop(plan, reason, c.add_days(when, c.uniform_int(rng, [0, 2])))

    def _drop(self, plan: Plan, reason: str, when: dt.date) -> None:
        plan.dropout = reason
        plan.coh_date = when
        plan.fu_from = when
        if reason == "WDR":
            plan.off_study = (when, "4")

    def _toxicity_stop(self, plan: Plan, when: dt.date, rng: np.random.Generator) -> None:
        pt = c.pick(rng, {"Pneumonia": 0.3, "Sepsis": 0.15, "Alanine aminotransferase increased": 0.2,
                          "Febrile neutropenia": 0.2, "Tumour flare": 0.15})
        grade = int(c.pick(rng, {"3": 0.7, "4": 0.3}))
        onset = c.add_days(when, -c.uniform_int(rng, [0, 3]))
        seg = c.Segment(grade, onset, c.add_days(onset, c.uniform_int(rng, [5, 20])))
        plan.events.append(AeEvent(c.Episode(pt, [seg], rel="1", rels=phase1_rels("3"), acn="3"), "P1"))

    def _fatal_infection(self, plan: Plan, death: dt.date, rng: np.random.Generator, phase: str) -> None:
        pt = c.pick(rng, {"Sepsis": 0.45, "Pneumonia": 0.35, "COVID-19": 0.2})
        onset = c.add_days(death, -c.uniform_int(rng, [2, 12]))
        segs = [c.Segment(3, onset, death), c.Segment(5, death, death)]
        rel, rels = ("1", phase1_rels("2")) if phase == "P1" else ("2", {})
        plan.events.append(AeEvent(c.Episode(pt, segs, rel=rel, rel_ld="2" if phase != "P1" else None, rels=rels,
                                             fatal=True, acn="3" if phase == "P1" else "5"), phase))

    def _cohort(self, plan: Plan, response: str, rng: np.random.Generator) -> str:
        """ASCT needs chemosensitive disease, enough CD34+ cells and fitness for high-dose therapy."""
        co = self.p["cohort"]
        eligible = (response in RESPONDERS and plan.cd34_total >= self.d.cd34_target_e6
                    and plan.subj.age <= co["asct_max_age"])
        alone, asct = self.d.arm_codes
        return asct if eligible and c.bernoulli(rng, co["asct_if_eligible_rate"]) else alone

    # -- phase 2: lymphodepletion or conditioning + ASCT, then CAR-T ---------------------------
    def _phase2(self, plan: Plan, rng: np.random.Generator) -> None:
        co = self.p["cohort"]
        start = plan.phase2_start
        # Phase 2 starts on the first FC / conditioning day; the regimen may start early within
        # its visit window (off <= 0 days), so the infusion or reinfusion follows after a rest.
        # Drawn from the subject's timing generator: the main stream is unchanged.
        trng = plan.timing if plan.timing is not None else c.timing_rng(0, plan.index)
        if plan.cohort == self.d.arm_codes[0]:
            off = c.block_offset(trng, self.d.fc_visits)
            plan.cart_date = c.add_days(start, self.d.fc_lead - off)
            plan.ld = [Dose(s, c.add_days(plan.cart_date, s.day + off), float(s.dose)) for s in self.d.fc]
            # FC start time per day, after the morning's pre-dose labs (drawn 06:30-10:30).
            plan.ld_times = {d.date: c.clock(trng, "11:00", "14:00") for d in plan.ld}
        else:
            off = c.block_offset(trng, self.d.cond_visits)
            plan.asct_date = c.add_days(start, self.d.cond_lead - off)
            plan.cond = [Dose(s, c.add_days(plan.asct_date, s.day + off), float(s.dose)) for s in self.d.cond]
            plan.asct_cd34 = round(min(plan.cd34_total, c.uniform(rng, co["asct_cd34_infused_e6"])), 2)
            plan.anc_engraft = c.add_days(plan.asct_date, c.uniform_int(rng, co["anc_engraftment_days"]))
            plan.plt_engraft = c.add_days(plan.asct_date, c.uniform_int(rng, co["plt_engraftment_days"]))
            after = int(c.pick(rng, {str(k): v for k, v in co["cart_after_asct_days"].items()}))
            plan.cart_date = c.add_days(plan.asct_date, after)
        plan.cart_dose = round(c.uniform(rng, co["cart_dose_e6_per_kg"]), 2)
        plan.cart_product = c.pick(rng, co["cart_products"])
        days = c.visit_days(self.d.cart_visits, rng)
        plan.cart_visits = {f: c.add_days(plan.cart_date, d) for f, d in days.items()}
        self._cart_crs_icans(plan, rng)

    def _cart_crs_icans(self, plan: Plan, rng: np.random.Generator) -> None:
        p_crs, p_icans = self.p["crs"], self.p["icans"]
        crs_onset = None
        if c.bernoulli(rng, p_crs["cart"][plan.cohort]):
            grade = int(c.pick(rng, {str(k): v for k, v in p_crs["cart_grades"].items()}))
            crs_onset = c.add_days(plan.cart_date, c.uniform_int(rng, [1, 6]))
            segs = c.runs_to_segments(c.crs_runs(rng, grade), crs_onset)
            plan.events.append(AeEvent(c.Episode(CRS, segs, rel="5", rel_ld="1", scale="ASTCT",
                                                 llt_index=int(rng.integers(3))), "CART"))
        if c.bernoulli(rng, p_icans["cart"][plan.cohort]):
            grade = int(c.pick(rng, {str(k): v for k, v in p_icans["cart_grades"].items()}))
            onset = c.add_days(crs_onset or plan.cart_date, c.uniform_int(rng, [2, 6]))
            segs = c.runs_to_segments(c.icans_runs(rng, grade), onset)
            plan.events.append(AeEvent(c.Episode(ICANS, segs, rel="5", rel_ld="1", scale="ASTCT",
                                                 llt_index=int(rng.integers(3))), "CART"))

    def _post_cart(self, plan: Plan, rng: np.random.Generator) -> None:
        fu = self.p["follow_up"]
        if c.bernoulli(rng, fu["nonrelapse_death_rate"][plan.cohort]):
            nrm = c.add_days(plan.cart_date, c.uniform_int(rng, [10, 180]))
            plan.death, plan.death_cause = nrm, "2"
            self._fatal_infection(plan, nrm, rng, "CART")
        if plan.death is not None and plan.death <= plan.cart_visits[self.d.cons.assessed_at]:
            return
        self._day28(plan, rng)
        self._consolidation(plan, rng)
        self._response_course(plan, rng)
        if plan.cart_pd is not None:
            if plan.cons_start is not None and plan.cart_pd > plan.cons_start:
                # Progression during consolidation ends it; a Day-28 PD does not (it is the trigger).
                plan.cons = [d for d in plan.cons if d.date <= plan.cart_pd]
            self._after_progression(plan, rng)

    def _day28(self, plan: Plan, rng: np.random.Generator) -> None:
        p = self.p
        folder = self.d.cons.assessed_at
        date = plan.cart_visits[folder]
        response = self._reachable(plan, c.pick(rng, p["day28_response"][plan.cohort]))
        plan.d28 = self._assess(plan, rng, folder, 1, date, "POST", response)
        if response == "PD":
            plan.cart_pd = date
            plan.pd_date = plan.pd_date or date
        ct = p["ctdna"]
        positive = c.bernoulli(rng, p["ctdna_positive"][response])
        plan.ctdna = "POS" if positive else "NEG"
        if positive:
            plan.ctdna_value = round(max(c.lognormal(rng, ct["positive_hge_per_ml"]), 2 * ct["lod_hge_per_ml"]), 1)
        cons = self.d.cons
        plan.cons_indicated = ((plan.d28.deauville or 0) >= cons.deauville_min
                               or (cons.ctdna_positive_triggers and positive))

    def _reachable(self, plan: Plan, response: str) -> str:
        """Responses are judged against the screening baseline and progression against the
        nadir, so after a CR only CR or PD can follow, and after a PR no SD."""
        prior = [a.response for a in plan.assessments if a.response in ("CR", "PR", "SD")]
        best = min(prior, key=["CR", "PR", "SD"].index) if prior else None
        if best == "CR" and response in ("PR", "SD"):
            return "CR"
        if best == "PR" and response == "SD":
            return "PR"
        return response

    def _consolidation(self, plan: Plan, rng: np.random.Generator) -> None:
        if not plan.cons_indicated:
            return
        cp, cons = self.p["consolidation"], self.d.cons
        plan.cons_start = c.add_days(plan.d28.date, c.uniform_int(rng, cp["start_days_after_day28"]))
        for cycle, folder in enumerate(self.d.cons_folders[: cons.cycles], start=1):
            date = self.d.visit_date(folder, plan.cons_start, rng)
            slot = DoseSlot(cons.agent, (cycle - 1) * cons.cycle_days, cons.dose, cons.unit, cycle, 1, folder)
            plan.cons.append(Dose(slot, date, float(cons.dose), interrupted=c.bernoulli(rng, cp["interrupt_rate"])))

    def _response_course(self, plan: Plan, rng: np.random.Generator) -> None:
        """Scheduled scans after Day 28 until progression: responses deepen, the uncured progress."""
        fu = self.p["follow_up"]
        consolidated = bool(plan.cons)
        r28 = plan.d28.response
        t_pd = None
        if r28 != "PD":
            cure = fu["cure_fraction"][r28] + (fu["consolidation_cure_bonus"] if consolidated else 0.0)
            if not c.bernoulli(rng, cure):
                t_pd = c.add_days(plan.d28.date, max(1, int(c.weibull_days(rng, fu["progression_median_days"]))))
        state = r28
        for v in self.d.post_cart_rsp[1:]:
            date = plan.y2_date if v.folder == self.d.eos_folder else plan.cart_visits[v.folder]
            last = plan.assessments[-1].date
            if plan.cart_pd is not None or date > plan.y2_date or (plan.death and date >= plan.death):
                break
            if date <= last:
                continue
            if t_pd is not None and t_pd <= date:
                if plan.death is not None and t_pd >= plan.death:
                    break
                # Symptoms bring some subjects in before the next scheduled scan.
                if t_pd > last and c.bernoulli(rng, fu["unscheduled_pd_rate"]):
                    rsp = self._assess(plan, rng, "UNS", 1, t_pd, "POST", "PD")
                else:
                    rsp = self._assess(plan, rng, v.folder, 1, date, "POST", "PD")
                plan.cart_pd = rsp.date
                plan.pd_date = plan.pd_date or rsp.date
                break
            state = self._evolve(state, consolidated, rng)
            self._assess(plan, rng, v.folder, 1, date, "POST", state)

    def _after_progression(self, plan: Plan, rng: np.random.Generator) -> None:
        fu = self.p["follow_up"]
        death = c.add_days(plan.cart_pd, max(7, int(c.weibull_days(rng, fu["death_after_pd_median_days"]))))
        if plan.death is None or death < plan.death:
            plan.death, plan.death_cause = death, "1"
        plan.fu_from = plan.cart_pd
        if c.bernoulli(rng, fu["new_therapy_after_pd_rate"]):
            # Consolidation a Day-28 progression triggered is protocol therapy: next line after it.
            after = plan.cons[-1].date if plan.cons and plan.cons[-1].date > plan.cart_pd else plan.cart_pd
            plan.new_therapy = (c.add_days(after, c.uniform_int(rng, [7, 35])),
                                fu["new_therapies"][int(rng.integers(len(fu["new_therapies"])))])

    def _evolve(self, state: str, consolidated: bool, rng: np.random.Generator) -> str:
        fu = self.p["follow_up"]
        bonus = fu["consolidation_convert_bonus"] if consolidated else 0.0
        if state in fu["convert_to_cr_per_assessment"]:
            if c.bernoulli(rng, fu["convert_to_cr_per_assessment"][state] + bonus):
                return "CR"
            if state == "SD" and c.bernoulli(rng, fu["sd_to_pr_per_assessment"]):
                return "PR"
        return state

    # -- assessments: lesions measured consistently with the response -------------------------
    def _assess(self, plan: Plan, rng: np.random.Generator, folder: str, seq: int, date: dt.date,
                phase: str, response: str) -> Rsp:
        """Record an assessment: lesion readings that support `response` (Lugano: response vs
        baseline SPD, progression vs each lesion's nadir) and a Deauville score to match."""
        t = self.p["tumour"]
        if response == "PR":
            # A continued PR does not grow back from its best: SPD ratio at or below the last.
            ratio = min(c.uniform(rng, t["pr_spd_ratio"]), plan.last_ratio)
            readings = c.measure_lesions(rng, plan.lesions, "PR", plan.nadir, ratio=ratio)
        elif response == "SD":
            readings = c.measure_lesions(rng, plan.lesions, "SD", plan.nadir, ratio=c.uniform(rng, t["sd_spd_ratio"]))
        elif response == "PD":
            readings = c.measure_lesions(rng, plan.lesions, "PD", plan.nadir,
                                         new_lesion=c.bernoulli(rng, t["new_lesion_at_pd_rate"]))
        else:
            readings = c.measure_lesions(rng, plan.lesions, "CR", plan.nadir)
        if response != "PD":
            base = sum(l.ldi * l.sdi for l in plan.lesions if l.cat == "T") or 1.0
            plan.last_ratio = min(plan.last_ratio, c.spd(readings) / base)
            for r in readings:
                old = plan.nadir.get(r.lesion.lid)
                if r.lesion.cat == "T" and (old is None or r.ppd < old[0] * old[1]):
                    plan.nadir[r.lesion.lid] = (r.ldi, r.sdi)
        # Late follow-up scans are sometimes plain CT (no Deauville); the others are PET-CT.
        late = folder in self.p["ct_allowed_folders"]
        method = "CT" if late and c.bernoulli(rng, self.p["ct_rate_late"]) else "PETCT"
        deauville = int(c.pick(rng, self.p["deauville"][response])) if method == "PETCT" else None
        rsp = Rsp(folder, seq, date, phase, response, deauville, method, readings)
        plan.assessments.append(rsp)
        return rsp

    # -- fate outside the CAR-T course ------------------------------------------------------------
    def _fate_after_dropout(self, plan: Plan, rng: np.random.Generator) -> None:
        if plan.dropout in (None, "DEATH", "WDR"):
            return
        fu = self.p["follow_up"]
        # Toxicity drop-outs still have responding disease more often: they live longer.
        median = fu["death_after_dropout_median_days"] * (2.5 if plan.dropout == "AE" else 1.0)
        plan.death = c.add_days(plan.coh_date, max(3, int(c.weibull_days(rng, median))))
        plan.death_cause = "1" if plan.dropout in ("PD", "MFG") else c.pick(rng, {"1": 0.6, "3": 0.25, "4": 0.15})
        if plan.dropout in ("PD", "MFG") and c.bernoulli(rng, fu["new_therapy_after_pd_rate"]):
            plan.new_therapy = (c.add_days(plan.coh_date, c.uniform_int(rng, [5, 30])),
                                fu["new_therapies"][int(rng.integers(len(fu["new_therapies"])))])

    def _stopper_follow_up(self, plan: Plan) -> None:
        """A subject who stops after phase 1 without progression (toxicity, CAR-T manufacturing
        failure) keeps the protocol's response assessments - the post-CAR-T calendar (Month 3
        to Month 18) counted from the end-of-phase-1 decision, and the 2-year visit - until
        progression, a new anti-cancer therapy or death; survival contacts every 3 months
        follow progression or the new therapy. A progression death is preceded by the
        progression scan. Draws come from `plan.rng_fu`."""
        if plan.dropout not in ("AE", "MFG") or plan.pd_date is not None:
            return
        rng, sf, fu = plan.rng_fu, self.p["phase1_stop_follow_up"], self.p["follow_up"]
        state = plan.eop1.response if plan.eop1 else c.pick(rng, sf["first_response"])
        t_pd = None
        if not c.bernoulli(rng, sf["cure_fraction"][state]):
            t_pd = c.add_days(plan.coh_date, max(14, int(c.weibull_days(rng, sf["progression_median_days"]))))
        if plan.death is not None and plan.death_cause == "1":
            latest = max(c.add_days(plan.death, -c.uniform_int(rng, [7, 45])), c.add_days(plan.coh_date, 1))
            t_pd = min(t_pd, latest) if t_pd else latest
        stop = plan.new_therapy[0] if plan.new_therapy else None
        for v in self.d.post_cart_rsp[1:]:
            date = (plan.y2_date if v.folder == self.d.eos_folder
                    else c.add_days(plan.coh_date, v.day + c.window_offset(rng, v.window)))
            last = plan.assessments[-1].date if plan.assessments else plan.coh_date
            if plan.death and date >= plan.death and t_pd is not None and last < t_pd < plan.death \
                    and not (stop and t_pd >= stop):
                # Progression before the next scan is due: documented at an unscheduled scan.
                plan.pd_date = self._assess(plan, rng, "UNS", 1, t_pd, "PRE", "PD").date
                break
            if date > plan.y2_date or (plan.death and date >= plan.death) or (stop and date >= stop):
                break
            if date <= last:
                continue
            if t_pd is not None and t_pd <= date:
                if plan.death is not None and t_pd >= plan.death:
                    break
                if stop is not None and t_pd >= stop:
                    break
                # Symptoms bring some subjects in before the next scheduled scan.
                if t_pd > last and c.bernoulli(rng, fu["unscheduled_pd_rate"]):
                    rsp = self._assess(plan, rng, "UNS", 1, t_pd, "PRE", "PD")
                else:
                    rsp = self._assess(plan, rng, v.folder, 1, date, "PRE", "PD")
                plan.pd_date = rsp.date
                break
            state = self._evolve(state, False, rng)
            self._assess(plan, rng, v.folder, 1, date, "PRE", state)
        if plan.pd_date is not None and plan.new_therapy is None and c.bernoulli(rng, fu["new_therapy_after_pd_rate"]):
            plan.new_therapy = (c.add_days(plan.pd_date, c.uniform_int(rng, [7, 35])),
                                fu["new_therapies"][int(rng.integers(len(fu["new_therapies"])))])
        # Survival contacts (FUP) once the scans end by progression or a new therapy; until
        # then the scheduled visits carry the contact (Emitter._follow_up).
        plan.fu_from = plan.pd_date or stop

    def _withdrawal_in_follow_up(self, plan: Plan, rng: np.random.Generator) -> None:
        if plan.off_study or plan.dropout == "DEATH":
            return
        fu = self.p["follow_up"]
        start = plan.cart_date or plan.coh_date
        for code, rate in (("4", fu["withdrawal_rate"]), ("3", fu["lost_to_follow_up_rate"])):
            if c.bernoulli(rng, rate):
                span = max(c.days_between(start, plan.y2_date) - 30, 1)
                when = c.add_days(start, 30 + int(rng.integers(span)))
                if plan.death is None or when < plan.death:
                    plan.off_study = (when, code)
                return



# =============================================================================================
# Emission: the plan as EDC records
# =============================================================================================


class Emitter:
    """Writes one planned subject's records. Every record goes through `Recorder.add`, which
    drops anything dated after the subject's last date."""

    def __init__(self, design: Design, prof: dict[str, Any], rec: c.Recorder, forms: FormsConfig):
        self.d = design
        self.p = prof
        self.rec = rec
        cl = forms.codelists
        self.gx_code = {name: _code_for(cl["GXAGENT"], name) for name in {s.agent for s in design.glofit}}
        self.ax_code = {s.agent: _code_for(cl["AXAGENT"], s.agent) for slots in design.agent_x.values() for s in slots}
        self.ld_code = {s.agent: _code_for(cl["LDAGENT"], s.agent) for s in design.fc}
        self.cd_code = {s.agent: _code_for(cl["CDAGENT"], s.agent) for s in design.cond}

    def emit(self, plan: Plan, rng: np.random.Generator) -> None:
        self._screening(plan, rng)
        if plan.screen_failure:
            c.add_disposition(self.rec, plan.subj, plan.enr_date, "8", "Screen failure")
            return
        self._apheresis(plan)
        self._collection(plan, rng)
        self._phase1_dosing(plan, rng)
        self._cohort(plan)
        self._phase2_dosing(plan, rng)
        self._consolidation(plan, rng)
        self._responses(plan)
        self._safety(plan, rng)
        self._follow_up(plan, rng)

    # -- screening ------------------------------------------------------------------------------
    def _screening(self, plan: Plan, rng: np.random.Generator) -> None:
        subj, rec = plan.subj, self.rec
        c.add_consent(rec, subj, "SCR", CONSENT_VERSION)
        c.add_demographics(rec, subj, "SCR")
        eligible = not plan.screen_failure
        rec.add("ENR", subj, "SCR", {
            "ENRDAT": c.iso(plan.enr_date), "ELIG": "Y" if eligible else "N",
            "IECRIT": plan.failed_criterion, "HISTOL": plan.histology,
            "XPLAN": None if not eligible else ("Y" if plan.agent_x else "N")}, date=plan.enr_date)
        ipi = int(min(5, (plan.subj.age > 60) + (plan.stage in ("III", "IV")) + plan.ldh_high
                      + (plan.ecog == "2") + (plan.stage == "IV" and rng.random() < 0.5)))
        transformed = plan.histology == "TFL"
        rec.add("DX", subj, "SCR", {
            "DXDAT": c.partial_iso(plan.diagnosis, rng, p_day_unknown=0.15),
            "DXASDAT": c.iso(subj.consent_date),   # staged and scored at the screening visit
            "DXHIST": "DLBCL" if transformed and rng.random() < 0.3 else plan.histology,
            "RRSTAT": "REF" if plan.refractory else "REL", "STAGE": plan.stage, "ECOG": plan.ecog,
            "IPI": ipi, "NPRIOR": plan.n_prior, "BULKY": "Y" if plan.bulky else "N",
            "CD19POS": c.pick(rng, {"Y": 0.93, "U": 0.07}), "LDHELEV": "Y" if plan.ldh_high else "N"},
            date=subj.consent_date)
        c.add_medical_history(rec, subj, rng)
        last_end = c.add_days(subj.consent_date, -c.uniform_int(rng, [21, 120]))
        lines = c.draw_prior_lines(rng, "NHL", plan.n_prior, plan.diagnosis, last_end, plan.refractory)
        c.add_prior_therapy(rec, subj, lines, rng)
        if plan.screen_failure:
            return
        scr = c.add_days(plan.c1d1, -c.uniform_int(rng, [3, 12]))
        scr = max(scr, subj.consent_date)
        plan.subj.extra["scr_date"] = scr
        self._lesion_rows(plan, "SCR", 1, scr, [c.LesionReading(l, l.ldi or None, l.sdi or None,
                                                                 "PRES" if l.cat != "T" else None, None)
                                                for l in plan.lesions])

    # -- apheresis and collection ---------------------------------------------------------------
    def _apheresis(self, plan: Plan) -> None:
        values = {"APHCI": "Y" if plan.aph_ci else "N", "APHCIR": plan.aph_ci_reason}
        done = plan.aph_date is not None and plan.aph_date <= plan.subj.last_date
        if done:
            r = self.rec.add("APH", plan.subj, "APH", {**values, "APHDAT": c.iso(plan.aph_date),
                                                       "APHMNC": plan.aph_mnc, "APHCD3": plan.aph_cd3},
                             date=plan.aph_date)
            if r is not None and plan.aph_ci and plan.c1d1 < plan.aph_date:
                # A transfer cut before the deferred apheresis has the contraindication only.
                self.rec.add_earlier("APH", r, plan.subj, values, date=plan.c1d1)
        elif plan.aph_ci:
            # The contraindication is on file from C1D1 even before the deferred apheresis.
            self.rec.add("APH", plan.subj, "APH", values, date=plan.c1d1)

    def _collection(self, plan: Plan, rng: np.random.Generator) -> None:
        for n, (date, cd34, mnc) in enumerate(plan.scc_days, start=1):
            self.rec.add("SCC", plan.subj, "SCC", {
                "SCMOBDAT": c.iso(plan.scc_mob_start), "SCMOB": plan.scc_mob, "SCCDAT": c.iso(date),
                "SCCNUM": n, "SCCCD34": cd34, "SCCMNC": mnc}, date=date)
        if plan.scc_days:
            gcsf_end = plan.scc_days[-1][0]
            c.add_conmed(self.rec, plan.subj, "Filgrastim", plan.scc_mob_start, gcsf_end, rng,
                         "Stem-cell mobilisation", 10.0, "ug/kg", "SC")
            if plan.scc_mob == "GCSFPLX":
                c.add_conmed(self.rec, plan.subj, "Plerixafor", c.add_days(plan.scc_days[0][0], -1),
                             c.add_days(plan.scc_days[0][0], -1), rng, "Stem-cell mobilisation", 0.24, "mg/kg", "SC")

    # -- phase 1 dosing -------------------------------------------------------------------------
    def _phase1_dosing(self, plan: Plan, rng: np.random.Generator) -> None:
        subj = plan.subj
        last_glo = self.d.glofit[-1]
        for dose in plan.gloex:
            s = dose.slot
            is_glo = s.agent == last_glo.agent
            tim = c.clock(rng, "08:30", "11:30")
            _first_time(plan.dose_times, dose.date, tim)
            self.rec.add("GLOEX", subj, s.folder, {
                "GXAGENT": self.gx_code[s.agent], "GXCYC": s.cycle, "GXDAY": s.cycle_day,
                "GXDAT": c.iso(dose.date), "GXSTTIM": tim,
                "GXDOSE": dose.dose, "GXDOSU": s.unit,
                "GXSTEP": ("Y" if s.dose < last_glo.dose else "N") if is_glo else None,
                "GXINT": "Y" if dose.interrupted else "N", "GXDELAY": "Y" if dose.delayed else "N"}, date=dose.date)
            if is_glo:
                # Premedication before every glofitamab dose (CRS mitigation).
                c.add_conmed(self.rec, subj, "Dexamethasone", dose.date, dose.date, rng,
                             "Premedication before glofitamab", 20.0, "mg", "IV")
        x = plan.agent_x
        if x:
            klass = self.p["agent_x"]["classes"][x]
            freq = self.p["agent_x"]["frequency"].get(x, "ONCE")
            for dose in plan.agx:
                s = dose.slot
                self.rec.add("AGX", subj, s.folder, {
                    "AXCLASS": klass, "AXAGENT": self.ax_code[s.agent], "AXCYC": s.cycle,
                    "AXSTDAT": c.iso(dose.date), "AXENDAT": c.iso(min(dose.end, subj.last_date)),
                    "AXDOSE": dose.dose, "AXDOSU": s.unit, "AXFRQ": freq}, date=dose.date)

    def _cohort(self, plan: Plan) -> None:
        proceed = plan.cohort is not None
        texts = self.p["dropout_texts"]
        self.rec.add("COH", plan.subj, "EOP1", {
            "COHDAT": c.iso(plan.coh_date), "COHPROC": "Y" if proceed else "N", "COHORT": plan.cohort,
            "NPRSN": None if proceed else plan.dropout,
            "NPRSNSP": None if proceed else texts.get(plan.dropout)}, date=plan.coh_date)

    # -- phase 2 dosing -------------------------------------------------------------------------
    def _phase2_dosing(self, plan: Plan, rng: np.random.Generator) -> None:
        if plan.cohort is None:
            return
        subj = plan.subj
        bsa = subj.bsa
        for dose in plan.ld:
            # Fludarabine (30-min infusion) first, cyclophosphamide after it.
            t0 = plan.ld_times.get(dose.date)
            tim = t0 if t0 is None or dose.slot.agent == "FLUDARABINE" else c.add_minutes(t0, 45)
            self.rec.add("LD", subj, dose.slot.folder, {
                "LDAGENT": self.ld_code[dose.slot.agent], "LDDAT": c.iso(dose.date), "LDTIM": tim,
                "LDDOSE": dose.dose, "LDDOSU": dose.slot.unit, "LDBSA": bsa}, date=dose.date)
        freq = self.p["conditioning_frequency"]
        for dose in plan.cond:
            self.rec.add("COND", subj, dose.slot.folder, {
                "CDREG": self.d.cond_code, "CDAGENT": self.cd_code[dose.slot.agent], "CDOTH": None,
                "CDDAT": c.iso(dose.date), "CDDOSE": dose.dose, "CDDOSU": dose.slot.unit,
                "CDFRQ": freq.get(dose.slot.agent, "ONCE")}, date=dose.date)
        if plan.asct_date:
            last = subj.last_date
            self.rec.add("ASCT", subj, "ASCT0", {
                "ASCTDAT": c.iso(plan.asct_date), "ASCTCD34": plan.asct_cd34,
                "ANCENGDT": c.iso(plan.anc_engraft) if plan.anc_engraft <= last else None,
                "PLTENGDT": c.iso(plan.plt_engraft) if plan.plt_engraft <= last else None},
                date=plan.asct_date)
        tim = c.clock(rng, "09:00", "15:00")
        _first_time(plan.dose_times, plan.cart_date, tim)
        self.rec.add("CART", subj, "D0", {
            "CARTDAT": c.iso(plan.cart_date), "CARTTIM": tim,
            "CARTPRD": plan.cart_product, "CARTLOT": f"L{plan.index:05d}{plan.cart_product[:2]}",
            "CARTDOSE": plan.cart_dose, "CARTCMP": "Y"}, date=plan.cart_date)
        start = plan.ld[0].date if plan.ld else plan.cond[0].date
        c.add_standard_prophylaxis(self.rec, subj, rng, start)

    def _consolidation(self, plan: Plan, rng: np.random.Generator) -> None:
        for dose in plan.cons:
            self.rec.add("CONS", plan.subj, dose.slot.folder, {
                "CSCYC": dose.slot.cycle, "CSDAT": c.iso(dose.date), "CSDOSE": dose.dose,
                "CSDOSU": dose.slot.unit, "CSINT": "Y" if dose.interrupted else "N"}, date=dose.date)
            c.add_conmed(self.rec, plan.subj, "Dexamethasone", dose.date, dose.date, rng,
                         "Premedication before glofitamab", 20.0, "mg", "IV")

    # -- response, lesions, ctDNA ---------------------------------------------------------------
    def _responses(self, plan: Plan) -> None:
        subj = plan.subj
        for a in plan.assessments:
            new = any(r.lesion.cat == "NEW" for r in a.readings)
            self.rec.add("RSP", subj, a.folder, {
                "RSDAT": c.iso(a.date), "RSPHASE": a.phase, "RSMETH": a.method, "RSOVR": a.response,
                "DEAUV": None if a.deauville is None else str(a.deauville),
                "RSNEWL": "Y" if new else "N"}, date=a.date, folderseq=a.seq)
            self._lesion_rows(plan, a.folder, a.seq, a.date, a.readings)
        if plan.d28 is not None:
            ct = self.p["ctdna"]
            self.rec.add("CTDNA", subj, plan.d28.folder, {
                "CTDAT": c.iso(plan.d28.date), "CTRES": plan.ctdna, "CTVAL": plan.ctdna_value,
                "CTLOD": ct["lod_hge_per_ml"]}, date=plan.d28.date)

    def _lesion_rows(self, plan: Plan, folder: str, seq: int, date: dt.date,
                     readings: list[c.LesionReading]) -> None:
        for r in readings:
            target = r.lesion.cat != "NT"
            self.rec.add("TL", plan.subj, folder, {
                "TLDAT": c.iso(date), "TLLNKID": r.lesion.lid, "TLCAT": r.lesion.cat, "TLLOC": r.lesion.loc,
                "TLLDI": r.ldi if target else None, "TLSDI": r.sdi if target else None,
                "TLNTSTAT": r.status}, date=date, folderseq=seq)

    # -- safety: AEs, labs, vital signs, ECG --------------------------------------------------
    def _safety(self, plan: Plan, rng: np.random.Generator) -> None:
        Safety(self, plan, rng).emit()

    # -- follow-up, death, disposition ----------------------------------------------------------
    def _follow_up(self, plan: Plan, rng: np.random.Generator) -> None:
        subj, rec = plan.subj, self.rec
        # Scheduled visits with a survival contact, while the subject is still scanned: after
        # CAR-T until progression, or (phase-1 stoppers followed up) until progression.
        scanned_until = plan.cart_pd if plan.cohort is not None else plan.pd_date
        for v in self.d.study.visits_with("SURV", plan.cohort):
            a = next((x for x in plan.assessments if x.folder == v.folder), None)
            if a is not None and (scanned_until is None or a.date <= scanned_until):
                c.add_survival_contact(rec, subj, v.folder, a.date)
        if plan.new_therapy is not None:
            # Logged when it starts (any visit), not only at a survival contact.
            c.add_subsequent_therapy(rec, subj, plan.new_therapy[0], plan.new_therapy[1], plan.rng_fu)
        if plan.fu_from is not None:
            step = int(self.p["follow_up"]["survival_contact_days"])
            when, seq = c.add_days(plan.fu_from, step), 1
            while when <= plan.y2_date:
                c.add_survival_contact(rec, subj, "FUP", when, folderseq=seq)
                when, seq = c.add_days(when, step + int(rng.integers(-7, 8))), seq + 1
        if subj.death_date is not None:
            if plan.death_cause == "3":
                # The "other" deaths drawn in follow-up are cardiac arrests: a death due to an
                # adverse event, recorded as such with its grade-5 AE (add_death writes it).
                plan.death_cause = "2"
                cause_text, fatal_pt = "Cardiac arrest", "Cardiac arrest"
            else:
                cause_text, fatal_pt = {"2": "Infection"}.get(plan.death_cause), None
            c.add_death(rec, subj, plan.death_cause, cause_text, rng=rng, fatal_pt=fatal_pt)
            c.add_disposition(rec, subj, subj.death_date, "2", "Death")
        elif plan.off_study is not None:
            when, code = plan.off_study
            term = {"4": "Withdrew consent", "3": "Lost to follow-up"}.get(code)
            c.add_disposition(rec, subj, when, code, term)
        elif plan.y2_date <= subj.last_date:
            c.add_disposition(rec, subj, plan.y2_date, "1", "Completed 2-year follow-up")


class Safety:
    """AEs, local labs, vital signs and ECGs for one subject, sharing one daily picture: the
    CRS grade of each day drives fever in VS, CRP/IL-6 in labs and the AE records alike."""

    def __init__(self, em: Emitter, plan: Plan, rng: np.random.Generator):
        self.em, self.plan, self.rng = em, plan, rng
        self.d, self.p, self.rec = em.d, em.p, em.rec
        subj = plan.subj
        # The shared lab model counts days from the cell infusion (lymphodepletion nadirs,
        # recovery), so Day 0 here is the CAR-T date; without CAR-T it is C1D1.
        subj.day0 = plan.cart_date or plan.c1d1
        self.first = c.days_between(subj.day0, subj.extra["scr_date"]) - 2
        last = min(subj.last_date, c.add_days(subj.day0, 400))
        self.n = max(c.days_between(subj.day0, last) - self.first + 3, 10)
        self.crs = np.zeros(self.n, dtype=np.int64)
        for ev in plan.events:
            if ev.episode.pt == CRS:
                for seg in ev.episode.segments:
                    lo = c.days_between(subj.day0, seg.start) - self.first
                    hi = c.days_between(subj.day0, seg.end or last) - self.first
                    lo, hi = max(lo, 0), min(hi, self.n)
                    if hi > lo:
                        self.crs[lo:hi] = np.maximum(self.crs[lo:hi], seg.grade)
        self.occasions = self._occasions()

    def emit(self) -> None:
        curves = self._curves()
        self._labs(curves)
        self._vitals_and_ecg()
        self._aes(curves)

    # -- lab curves -----------------------------------------------------------------------------
    def _curves(self) -> c.LabCurves:
        plan, rng = self.plan, self.rng
        subj = plan.subj
        base = {"NEUT": float(np.clip(c.lognormal(rng, {"median": 3.6, "sigma": 0.4}), 1.2, 12)),
                "PLAT": float(np.clip(c.lognormal(rng, {"median": 185, "sigma": 0.4}), 60, 500)),
                "HGB": float(np.clip(rng.normal(116 if subj.sex == "M" else 108, 13), 82, 165)),
                "LYM": float(np.clip(c.lognormal(rng, {"median": 0.9, "sigma": 0.45}), 0.2, 3.5)),
                "LDH": float(c.lognormal(rng, {"median": 390 if plan.ldh_high else 185, "sigma": 0.3}))}
        cyto = None
        if plan.cart_date is not None:
            cyto = c.draw_cytopenia_plan(rng, "B-NHL", base["NEUT"], base["PLAT"])
            if plan.asct_date is not None:
                self._asct_marrow(cyto, plan)
            else:
                cyto.ld_day = c.days_between(plan.subj.day0, plan.ld[0].date) if plan.ld else -self.d.fc_lead
        drivers = c.LabDrivers(crs=self.crs, burden=self._burden())
        curves = c.build_lab_curves(rng, subj, "B-NHL", self.first, self.n, cyto, drivers, base)
        self._chemo_dips(curves)
        return curves

    def _asct_marrow(self, cyto: c.CytopeniaPlan, plan: Plan) -> None:
        """BEAM ablates the marrow: deeper, longer cytopenias, recovering at engraftment."""
        day0, rng = plan.subj.day0, self.rng
        cyto.ld_day = c.days_between(day0, plan.cond[0].date)
        asct = c.days_between(day0, plan.asct_date)
        cyto.anc_nadir = float(rng.uniform(0.01, 0.08))
        cyto.anc_nadir_day = asct + int(rng.integers(3, 6))
        cyto.anc_recovery_day = max(cyto.anc_nadir_day + 1, c.days_between(day0, plan.anc_engraft) - 3)
        cyto.anc_recovery_len = 7
        cyto.plt_nadir = float(rng.uniform(6, 18))
        cyto.plt_nadir_day = asct + int(rng.integers(6, 9))
        cyto.plt_recovery_day = max(cyto.plt_nadir_day + 1, c.days_between(day0, plan.plt_engraft) - 2)
        cyto.plt_recovery_len = 14

    def _burden(self) -> np.ndarray:
        """Tumour burden for LDH: the SPD ratio of the latest assessment, stepping at each scan."""
        plan = self.plan
        out = np.ones(self.n)
        base = sum(l.ldi * l.sdi for l in plan.lesions if l.cat == "T") or 1.0
        for a in plan.assessments:
            i = max(c.days_between(plan.subj.day0, a.date) - self.first, 0)
            out[i:] = max(c.spd(a.readings) / base, 0.05)
        return out

    def _chemo_dips(self, curves: c.LabCurves) -> None:
        """Agent-X myelosuppression: a count nadir about 10 days after each dosing day, on top of
        the latent counts (the shared lab model only knows lymphodepletion)."""
        plan, rng = self.plan, self.rng
        depth = self.p["agent_x"]["myelosuppression"].get(plan.agent_x or "", 0.0)
        if not depth:
            return
        days = curves.days()
        seen = set()
        for dose in plan.agx:
            if dose.date in seen:
                continue
            seen.add(dose.date)
            d = c.days_between(plan.subj.day0, dose.date)
            tri = np.clip(1 - np.abs(days - (d + 10)) / 5.0, 0, 1)
            for test, k in (("NEUT", depth), ("PLAT", depth * 0.8)):
                curves.values[test] = curves.values[test] * (1 - k * rng.uniform(0.7, 1.0) * tri)
        curves.values["WBC"] = curves.values["NEUT"] + curves.values["LYM"] + 0.3

    def _occasions(self) -> list[tuple[str, dt.date]]:
        """(folder, date) of every visit the subject attended that can carry labs, VS or ECG."""
        plan = self.plan
        out = [("SCR", plan.subj.extra["scr_date"])]
        out += [(d.slot.folder, d.date) for d in plan.gloex]
        if plan.cohort is None:
            return out
        out += [(d.slot.folder, d.date) for d in plan.ld]
        if plan.cond:
            out.append((plan.cond[0].slot.folder, plan.cond[0].date))
            out.append((self.d.folder_at("ASCT", 0), plan.asct_date))
        off_schedule = c.add_days(plan.cart_pd, 30) if plan.cart_pd else None
        for folder, date in plan.cart_visits.items():
            if off_schedule is None or date <= off_schedule:
                out.append((folder, date))
        out += [(d.slot.folder, d.date) for d in plan.cons]
        # Several agents share a visit (fludarabine + cyclophosphamide): one occasion per folder.
        unique: dict[str, dt.date] = {}
        for folder, date in out:
            unique.setdefault(folder, date)
        return list(unique.items())

    def _labs(self, curves: c.LabCurves) -> None:
        panels = self.p["lab_panels"]
        subj = self.plan.subj
        for folder, date in self.occasions:
            if "LAB" in self.d.visit(folder).assessments:
                recs = c.add_lab_panels(self.rec, subj, folder, date, c.days_between(subj.day0, date),
                                        panels.get(folder, panels["default"]), curves, self.rng)
                self._before_dose(recs, date)

    def _before_dose(self, recs: list[dict], date: dt.date) -> None:
        """Labs on a dosing day are drawn before the dose (protocol pre-dose samples): a sample
        time the lab draw put after the first timed dose of that day moves to 15-60 minutes
        before it. The lab values (main stream) are untouched; the minutes come from the
        subject's timing generator."""
        dose = self.plan.dose_times.get(date)
        if not recs or dose is None or recs[0]["LBTIM"] < dose:
            return
        trng = self.plan.timing if self.plan.timing is not None else c.timing_rng(0, self.plan.index)
        tim = c.add_minutes(dose, -int(trng.integers(15, 61)))
        for r in recs:
            r["LBTIM"] = tim

    def _crs_on(self, date: dt.date) -> int:
        i = c.days_between(self.plan.subj.day0, date) - self.first
        return int(self.crs[i]) if 0 <= i < self.n else 0

    def _vitals_and_ecg(self) -> None:
        rng, rec, subj = self.rng, self.rec, self.plan.subj
        for folder, date in self.occasions:
            v = self.d.visit(folder)
            g = self._crs_on(date)
            if "VS" in v.assessments:
                c.add_vitals(rec, subj, folder, date, rng, crs_grade=g, weight=folder in ("SCR", "C1D1"),
                             height=folder == "SCR")
            if "ECG" in v.assessments:
                c.add_ecg(rec, subj, folder, date, rng, crs_grade=g)

    # -- adverse events -------------------------------------------------------------------------
    def _aes(self, curves: c.LabCurves) -> None:
        plan, rng, rec, subj = self.plan, self.rng, self.rec, self.plan.subj
        # An AE before a treatment's first dose is not related to it (add_ae_episode).
        first = lambda doses, agent=None: min((d.date for d in doses if agent is None or d.slot.agent == agent),
                                              default=None)
        c.set_first_doses(subj, {"AEREL": plan.cart_date, "AERELLD": first(plan.ld + plan.cond),
                                 "AERELOBI": first(plan.gloex, "OBINUTUZUMAB"),
                                 "AERELGLO": first(plan.gloex + plan.cons, "GLOFITAMAB"),
                                 "AERELAX": first(plan.agx)})
        for ev in plan.events:
            c.add_ae_episode(rec, subj, ev.episode, rng)
            if ev.episode.pt == CRS and ev.episode.max_grade >= 2:
                onset = ev.episode.segments[0].start
                c.add_conmed(rec, subj, "Tocilizumab", c.add_days(onset, 1), c.add_days(onset, 1), rng,
                             "Cytokine release syndrome", 8.0, "mg/kg", "IV")
            if ev.episode.pt == ICANS and ev.episode.max_grade >= 2:
                onset = ev.episode.segments[0].start
                c.add_conmed(rec, subj, "Dexamethasone", onset, c.add_days(onset, 4), rng,
                             "ICANS", 10.0, "mg", "IV")
        self._cytopenia_aes(curves)
        for phase, start, end in self._phases():
            self._other_aes(phase, start, end)

    def _cytopenia_aes(self, curves: c.LabCurves) -> None:
        """Grade >= 3 neutropenia / thrombocytopenia / anaemia from the same curves the labs
        sample, from the first dose on (screening values are medical history)."""
        plan, subj = self.plan, self.plan.subj
        units = subj.site.lab_units
        from_day = c.days_between(subj.day0, plan.c1d1)
        graders = (("Neutrophil count decreased", "NEUT", c.grade_neutrophils),
                   ("Platelet count decreased", "PLAT", c.grade_platelets),
                   ("Anaemia", "HGB", c.grade_hemoglobin))
        p2 = plan.phase2_start
        for pt, test, grader in graders:
            grades = grader(curves.values[test], c.lln_si(test, subj.sex, units))
            for segs in c.segments_from_daily(grades, self.first, subj.day0, 3, from_day=from_day):
                after_p2 = p2 is not None and segs[0].start >= p2
                # Phase-1 cytopenias: glofitamab and agent X (chemotherapy, ADC); after phase 2
                # starts: lymphodepletion / conditioning and CAR-T (never before its infusion).
                ep = c.Episode(pt, segs, rel="3" if after_p2 else "1", rel_ld="4" if after_p2 else None,
                               rels={} if after_p2 else {"AERELGLO": "3", "AERELAX": "4"},
                               acn="5" if after_p2 else "1")
                c.add_ae_episode(self.rec, subj, ep, self.rng)

    def _phases(self) -> list[tuple[str, dt.date, dt.date]]:
        plan = self.plan
        out = []
        p1_end = plan.phase2_start or plan.coh_date or c.add_days(plan.c1d1, 42)
        out.append(("phase1", plan.c1d1, p1_end))
        if plan.cond:
            out.append(("conditioning", plan.cond[0].date, plan.cart_date))
        if plan.cart_date:
            out.append(("post_cart", plan.cart_date, c.add_days(plan.cart_date, 90)))
            if plan.cons:
                out.append(("consolidation", plan.cons[0].date, c.add_days(plan.cons[-1].date, 21)))
            out.append(("follow_up", c.add_days(plan.cart_date, 91), plan.y2_date))
        return out

    def _other_aes(self, phase: str, start: dt.date, end: dt.date) -> None:
        """Background AEs of a treatment phase (Poisson count, catalogue of that phase)."""
        rng, subj = self.rng, self.plan.subj
        cat = self.p["other_ae"][phase]
        n = int(rng.poisson(cat["mean"]))
        span = max(c.days_between(start, end), 1)
        rel, rel_ld, acn = {"phase1": ("3", None, "1"), "conditioning": ("1", "4", "5"),
                            "post_cart": ("3", "2", "5"), "consolidation": ("3", None, "1"),
                            "follow_up": ("2", None, "5")}[phase]
        # `rel` is the investigator's causality for the phase's own treatment: glofitamab and
        # agent X in phase 1, CAR-T after the infusion, glofitamab again in consolidation.
        def attribution(code: str) -> tuple[str, dict[str, str]]:
            if phase == "phase1":
                return "1", phase1_rels(code)
            if phase == "consolidation":
                return "2", {"AERELGLO": code}
            return code, {}
        for _ in range(n):
            pt = c.pick(rng, cat["terms"])
            grade = max(int(c.pick(rng, self.p["other_ae"]["grades"])),
                        int(self.p["other_ae"]["min_grade"].get(pt, 1)))
            onset = c.add_days(start, int(rng.integers(span)))
            seg = c.Segment(grade, onset, c.add_days(onset, c.uniform_int(rng, [1, 21])))
            cart_rel, rels = attribution(rel if rng.random() < 0.7 else "2")
            ep = c.Episode(pt, [seg], rel=cart_rel, rel_ld=rel_ld, rels=rels, acn=acn,
                           llt_index=int(rng.integers(3)), partial_start=rng.random() < 0.02)
            c.add_ae_episode(self.rec, subj, ep, rng)


# =============================================================================================
# The study
# =============================================================================================


def _consents(rng: np.random.Generator, n: int, prof: dict[str, Any]) -> list[dt.date]:
    cal = prof["calendar"]
    start = dt.date.fromisoformat(cal["study_start"])
    offsets = np.sort(rng.integers(0, int(cal["accrual_days"]) + 1, size=n))
    return [c.add_days(start, int(o)) for o in offsets]


def _age(rng: np.random.Generator) -> int:
    """Relapsed aggressive lymphoma patients fit for CAR-T: median about 60, 18-80."""
    return int(np.clip(round(rng.normal(59, 11)), 18, 80))


def _truth(plan: Plan, design: Design) -> dict[str, Any]:
    subj = plan.subj
    mnc_target, cd34_target = design.mnc_target_e8, design.cd34_target_e6
    iso = lambda d: c.iso(d) if d else None        
    return {
        "SUBJECT": subj.subject, "SITEID": subj.siteid, "screen_failure": plan.screen_failure,
        "failed_criterion": plan.failed_criterion, "histology": plan.histology,
        "c1d1_date": iso(plan.c1d1), "agent_x": plan.agent_x,
        "aph_date": iso(plan.aph_date), "aph_contraindicated": plan.aph_ci, "aph_mnc_e8": plan.aph_mnc,
        "cd34_total_e6": plan.cd34_total if plan.scc_days else None,
        "mnc_target_met": plan.aph_mnc is not None and plan.aph_mnc >= mnc_target,
        "cd34_target_met": plan.cd34_total >= cd34_target,
        "early_event": plan.early_event, "eop1_response": plan.eop1.response if plan.eop1 else None,
        "eop1_date": iso(plan.eop1.date) if plan.eop1 else None,
        "dropout": plan.dropout, "cohort": plan.cohort, "phase2_start": iso(plan.phase2_start),
        "asct_date": iso(plan.asct_date), "cart_date": iso(plan.cart_date),
        "d28_response": plan.d28.response if plan.d28 else None,
        "deauville_d28": plan.d28.deauville if plan.d28 else None, "ctdna_d28": plan.ctdna,
        "consolidation_indicated": plan.cons_indicated, "cons_start": iso(plan.cons_start),
        "pd_date": iso(plan.pd_date), "pd_after_cart_date": iso(plan.cart_pd),
        "new_therapy_date": iso(plan.new_therapy[0]) if plan.new_therapy else None,
        "new_therapy": plan.new_therapy[1] if plan.new_therapy else None,
        "coh_date": iso(plan.coh_date),
        "death_date": iso(subj.death_date),
        "death_cause": plan.death_cause if subj.death_date else None,
        "end_date": iso(subj.end_date), "transfer_date": iso(subj.transfer_date),
    }


def run(study: StudyConfig, forms: FormsConfig, n_subjects: int, seed: int) -> SimulatedStudy:
    """Simulate `n_subjects` screened subjects (screen failures included) of GLOCART."""
    return stream(study, forms, n_subjects, seed).collect()


def stream(study: StudyConfig, forms: FormsConfig, n_subjects: int, seed: int) -> StudyStream:
    """`run` with the subjects still to simulate (their records come a group at a time)."""
    prof = load_profile()
    cal = prof["calendar"]
    transfer = c.add_days(dt.date.fromisoformat(cal["study_start"]), int(cal["transfer_after_start_days"]))
    study_rng = np.random.default_rng(np.random.SeedSequence([seed, 0x6C0CA7]))
    consents = _consents(study_rng, n_subjects, prof)
    # A subject consenting after the transfer is not in it (and not simulated).
    first_consent = min((d for d in consents if d <= transfer), default=None)

    def subjects(per_chunk: int):
        design = Design(study, forms, prof)
        rec = c.Recorder(forms, transfer, np.random.default_rng(np.random.SeedSequence([seed, 0xE7A1])),
                         entry_lag=cal["entry_lag"])
        planner = Planner(design, prof)
        emitter = Emitter(design, prof, rec, forms)
        numbering = c.SubjectNumbering(c.SubjectNumbering.width_for(n_subjects))
        rngs = c.subject_rngs(seed, n_subjects)
        truths = []
        given: set[str] = set()
        for i, (consent, rng) in enumerate(zip(consents, rngs)):
            site = c.draw_site(rng, study.sites, prof["site_weights"])
            subj = c.draw_subject(rng, numbering.next(site.siteid), site, consent, transfer, _age(rng))
            if consent > transfer:
                continue
            plan = planner.plan(Plan(subj, i, timing=c.timing_rng(seed, i), rng_fu=np.random.default_rng([seed, i, 0x5B7])), rng)
            _settle_fate(plan, transfer)
            emitter.emit(plan, rng)
            truths.append(_truth(plan, design))
            if len(truths) % per_chunk == 0:
                given |= _consolidated(rec.records)
                yield rec.take()
        if len(truths) % per_chunk:
            given |= _consolidated(rec.records)
            yield rec.take()
        for t in truths:
            t["consolidation"] = t["SUBJECT"] in given
        return {"subjects": truths}

    return StudyStream(study.study.studyid, seed, transfer, first_consent, subjects)


def _first_time(times: dict[dt.date, str], date: dt.date, tim: str) -> None:
    if date not in times or tim < times[date]:
        times[date] = tim


def _settle_fate(plan: Plan, transfer: dt.date) -> None:
    """The subject's end as the EDC knows it at transfer: the first of death, leaving the study
    and the end-of-study visit, if it has happened by then (later ones have not, yet)."""
    subj = plan.subj
    ends = [(d, kind) for d, kind in ((plan.death, "death"), (plan.off_study and plan.off_study[0], "off"),
                                      (plan.y2_date, "completed")) if d is not None]
    when, kind = min(ends, key=lambda e: e[0])
    if when > transfer:
        return
    subj.end_date = when
    if kind == "death":
        subj.death_date = when


def _consolidated(records: dict[str, list[dict]]) -> set[str]:
    """Subjects with a consolidation record."""
    return {r["SUBJECT"] for r in records.get("CONS", ())}
