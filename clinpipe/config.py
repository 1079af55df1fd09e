"""Study configuration: everything STUDIES.md marks "(assumed)", loaded from
`mappings/<STUDY>/study.yaml` into typed, validated objects.

Derivation code reads design facts (dose levels, schedule, DLT rules, regimens, cut-off)
from here and never hard-codes them, so a sponsor changes the YAML, not the Python.
"""
from __future__ import annotations

import datetime as dt
import re
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from clinpipe.paths import mappings_dir
from clinpipe.yamlio import load_yaml, validation_error


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Site(Strict):
    siteid: str
    name: str
    country: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 3166-1 alpha-3")
    lab_units: Literal["SI", "conventional"] = "SI"


class DoseLevel(Strict):
    code: str
    label: str
    dose: float = Field(gt=0)
    unit: str


class Element(Strict):
    etcd: str = Field(max_length=8)
    element: str = Field(max_length=40)
    epoch: str
    start_rule: str
    end_rule: str = ""


class Arm(Strict):
    armcd: str = Field(max_length=20)
    arm: str = Field(max_length=200)
    elements: list[str] = Field(min_length=1)
    dose_level: str | None = None
    cohort: str | None = None
    # A shortened arm (SDTMIG 3.4 DM assumption 4b, multistage assignment): the part of a
    # planned path completed by subjects who stop before a later stage. In TA, not a planned arm.
    shortened: bool = False


class Visit(Strict):
    folder: str = Field(pattern=r"^[A-Z][A-Z0-9_]{0,19}$")
    name: str
    visitnum: float
    anchor: str
    day: int
    window: tuple[int, int] = (0, 0)
    assessments: list[str] = []
    arms: list[str] | None = None  # None: every arm

    @field_validator("window")
    @classmethod
    def _window(cls, w):
        if w[0] > 0 or w[1] < 0:
            raise ValueError("window is [days before (<=0), days after (>=0)]")
        return w


class Agent(Strict):
    name: str
    dose: float | None = None
    unit: str | None = None
    route: str
    days: list[int] = []


class Regimen(Strict):
    code: str
    name: str
    anchor: str
    agents: list[Agent] = Field(min_length=1)


class Disease(Strict):
    code: str
    label: str
    histologies: dict[str, str] = {}
    response_criteria: list[str] = Field(min_length=1)


class ResponseValue(Strict):
    code: str
    label: str
    rank: int = Field(ge=1, description="1 = best; used for best-overall-response ordering")
    responder: bool = False


class ResponseCriteria(Strict):
    code: str
    name: str
    reference: str
    responses: list[ResponseValue] = Field(min_length=2)


class DltRule(Strict):
    id: str
    text: str
    terms: list[str] = []
    category: Literal["any", "non-hematologic", "hematologic"] = "any"
    grade_scale: Literal["ASTCT", "CTCAE", "GVHD"] = "CTCAE"
    min_grade: int = Field(ge=1, le=5)
    max_grade: int = Field(default=5, ge=1, le=5)
    related_required: bool = False
    min_duration_hours: float = 0
    exclude_terms: list[str] = []


class Dlt(Strict):
    window_days: int = Field(gt=0)
    rules: list[DltRule] = Field(min_length=1)


class Escalation(Strict):
    design: Literal["3+3"]
    cohort_size: int = 3
    max_per_level: int = 6


class Expansion(Strict):
    max_subjects: dict[str, int]


class Consolidation(Strict):
    agent: str
    cycles: int = Field(gt=0)
    cycle_days: int = Field(gt=0)
    dose: float
    unit: str
    deauville_min: int = Field(ge=1, le=5)
    ctdna_positive_triggers: bool = True
    assessed_at: str


class CollectionTargets(Strict):
    mnc_per_kg: float = Field(gt=0)
    cd34_per_kg: float = Field(gt=0)


class Cutoff(Strict):
    rule: Literal["transfer_date", "fixed"] = "transfer_date"
    date: dt.date | None = None

    @model_validator(mode="after")
    def _fixed_needs_date(self):
        if self.rule == "fixed" and self.date is None:
            raise ValueError("rule 'fixed' needs a date")
        return self


class EdcFolders(Strict):
    """EDC folders that are not scheduled visits (log forms, unscheduled, end of study)."""
    unscheduled: str = "UNS"
    names: dict[str, str] = {"UNS": "Unscheduled"}


class StudyInfo(Strict):
    studyid: str = Field(pattern=r"^[A-Z0-9]{1,20}$")
    title: str
    phase: str
    sponsor: str
    indication: str
    registration: str
    products: list[str]
    day0: str


# ISO 8601 duration in years, months, weeks or days (P18Y, P25M, P28D); at least one part.
ISO8601_DURATION = r"^P(\d+Y(\d+M)?(\d+W)?(\d+D)?|\d+M(\d+W)?(\d+D)?|\d+W(\d+D)?|\d+D)$"


class CodedText(Strict):
    """A trial-summary value and, where the sponsor has it, its code in an external dictionary
    (SNOMED CT for indications, UNII for substances, MED-RT for classes, a registry for ids).
    A bare string in YAML is the value alone."""
    value: str = Field(min_length=1)
    code: str | None = None
    dictionary: str | None = None   # becomes TSVCDREF
    version: str | None = None      # becomes TSVCDVER

    @model_validator(mode="before")
    @classmethod
    def _bare_text(cls, data):
        return {"value": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _code_needs_dictionary(self):
        if bool(self.code) != bool(self.dictionary):
            raise ValueError("code and dictionary go together")
        return self


class TrialDesignRules(Strict):
    """Trial-design facts TA/TE/TV need that the elements, arms and visits do not hold."""
    # The anchor whose date is RFSTDTC: its Day 0 is SDTM study day 1.
    study_day_anchor: str
    # Element at whose end subjects are assigned to their arm (TA.TABRANCH); None: no branch.
    branch_element: str | None = None
    transitions: dict[str, str] = {}     # ETCD -> TA.TATRANS (a planned skip or early move)
    element_durations: dict[str, str] = {}   # ETCD -> TE.TEDUR, where the protocol fixes it
    # Sponsor-defined EPOCH terms (CT C99079 is extensible) used where CT has no term.
    epoch_extensions: list[str] = []

    @field_validator("element_durations")
    @classmethod
    def _iso_durations(cls, durations):
        bad = {k: v for k, v in durations.items() if not re.match(ISO8601_DURATION, v)}
        if bad:
            raise ValueError(f"not ISO 8601 durations (e.g. P28D): {bad}")
        return durations


class TrialSummary(Strict):
    """Study-level facts for SDTM TS that the rest of the configuration does not hold.
    Coded parameters hold CDISC CT submission values; the TS builder checks them against CT."""
    study_type: str                          # STYPE
    trial_types: list[str] = Field(min_length=1)          # TTYPE
    intent_types: list[str] = Field(min_length=1)         # TINDTP
    therapeutic_areas: list[str] = Field(min_length=1)    # THERAREA
    intervention_model: str                  # INTMODEL
    intervention_types: list[str] = Field(min_length=1)   # INTTYPE
    control_type: str                        # TCNTRL
    blinding: str                            # TBLIND
    randomized: bool                         # RANDOM
    add_on: bool                             # ADDON
    adaptive: bool                           # ADAPT
    healthy_subjects: bool                   # HLTSUBJI
    extension_trial: bool                    # EXTTIND
    planned_subjects: int = Field(gt=0)      # PLANSUB
    min_age: str = Field(pattern=ISO8601_DURATION)               # AGEMIN
    max_age: str | None = Field(default=None, pattern=ISO8601_DURATION)  # AGEMAX; None: no limit
    sex: str                                 # SEXPOP
    planned_length: str = Field(pattern=ISO8601_DURATION)        # LENGTH
    indications: list[CodedText] = Field(min_length=1)          # INDIC
    diagnosis_groups: list[CodedText] = Field(min_length=1)     # TDIGRP
    investigational_treatments: list[CodedText] = Field(min_length=1)  # TRT
    pharmacological_classes: list[CodedText] = []   # PCLAS; empty: unknown
    current_treatments: list[CodedText] = []        # CURTRT; empty: none protocol-specified
    comparators: list[CodedText] = []               # COMPTRT; empty: no comparator
    registry_ids: list[CodedText] = []              # REGID; empty: unknown
    stopping_rules: list[str] = Field(min_length=1)           # STOPRULE ("NONE" if none)
    objectives_primary: list[str] = Field(min_length=1)       # OBJPRIM
    objectives_secondary: list[str] = []                      # OBJSEC
    outcomes_primary: list[str] = Field(min_length=1)         # OUTMSPRI
    outcomes_secondary: list[str] = []                        # OUTMSSEC
    data_cutoff_description: str                              # DCUTDESC
    criteria_version: str = Field(min_length=1)               # TI.TIVERS
    design: TrialDesignRules


class StudyConfig(Strict):
    study: StudyInfo
    ct_version: str
    anchors: dict[str, str]
    sites: list[Site] = Field(min_length=1)
    diseases: list[Disease] = Field(min_length=1)
    response_criteria: list[ResponseCriteria] = Field(min_length=1)
    elements: list[Element] = Field(min_length=1)
    arms: list[Arm] = Field(min_length=1)
    regimens: list[Regimen] = []
    visits: list[Visit] = Field(min_length=1)
    edc_folders: EdcFolders = EdcFolders()
    follow_up_months: int = Field(gt=0)
    cutoff: Cutoff = Cutoff()
    dose_levels: list[DoseLevel] = []
    escalation: Escalation | None = None
    expansion: Expansion | None = None
    dlt: Dlt | None = None
    consolidation: Consolidation | None = None
    collection_targets: CollectionTargets | None = None
    trial_summary: TrialSummary | None = None

    @model_validator(mode="after")
    def _trial_design_refs(self):
        if self.trial_summary is None:
            return self
        rules = self.trial_summary.design
        if rules.study_day_anchor not in self.anchors:
            raise ValueError(f"trial_summary.design names unknown anchor {rules.study_day_anchor!r}")
        etcds = {e.etcd for e in self.elements}
        named = [*rules.transitions, *rules.element_durations]
        for etcd in named + ([rules.branch_element] if rules.branch_element else []):
            if etcd not in etcds:
                raise ValueError(f"trial_summary.design names unknown element {etcd!r}")
        if rules.branch_element:
            for arm in self.arms:
                if rules.branch_element not in arm.elements:
                    raise ValueError(f"branch element {rules.branch_element!r} is not in arm {arm.armcd}")
        return self

    @model_validator(mode="after")
    def _cross_refs(self):
        def unique(items, key, what):
            seen = set()
            for it in items:
                k = getattr(it, key)
                if k in seen:
                    raise ValueError(f"{what} {k!r} is defined twice")
                seen.add(k)
        unique(self.elements, "etcd", "element")
        unique(self.arms, "armcd", "arm")
        unique(self.visits, "folder", "visit folder")
        unique(self.visits, "visitnum", "VISITNUM")
        unique(self.dose_levels, "code", "dose level")
        etcds = {e.etcd for e in self.elements}
        levels = {d.code for d in self.dose_levels}
        armcds = {a.armcd for a in self.arms}
        crits = {c.code for c in self.response_criteria}
        for arm in self.arms:
            for e in arm.elements:
                if e not in etcds:
                    raise ValueError(f"arm {arm.armcd} names unknown element {e!r}")
            if arm.dose_level and arm.dose_level not in levels:
                raise ValueError(f"arm {arm.armcd} names unknown dose level {arm.dose_level!r}")
        for v in self.visits:
            if v.anchor not in self.anchors:
                raise ValueError(f"visit {v.folder} names unknown anchor {v.anchor!r}")
            for a in v.arms or []:
                if a not in armcds:
                    raise ValueError(f"visit {v.folder} names unknown arm {a!r}")
        for r in self.regimens:
            if r.anchor not in self.anchors:
                raise ValueError(f"regimen {r.code} names unknown anchor {r.anchor!r}")
        for d in self.diseases:
            for c in d.response_criteria:
                if c not in crits:
                    raise ValueError(f"disease {d.code} names unknown response criteria {c!r}")
        if self.expansion:
            diseases = {d.code for d in self.diseases}
            for k in self.expansion.max_subjects:
                if k not in diseases:
                    raise ValueError(f"expansion names unknown disease {k!r}")
        if self.escalation and not self.dose_levels:
            raise ValueError("escalation needs dose_levels")
        return self

    # -- look-ups used across layers ---------------------------------------------------------
    @cached_property
    def visit_by_folder(self) -> dict[str, Visit]:
        return {v.folder: v for v in self.visits}

    def folder_name(self, folder: str) -> str:
        """FOLDERNAME an export shows for a folder OID (visit or other EDC folder)."""
        if folder in self.visit_by_folder:
            return self.visit_by_folder[folder].name
        return self.edc_folders.names[folder]

    def visits_with(self, assessment: str, arm: str | None = None) -> list[Visit]:
        return [v for v in self.visits if assessment in v.assessments
                and (v.arms is None or arm is None or arm in v.arms)]

    def regimen(self, code: str) -> Regimen:
        return _by(self.regimens, "code", code, "regimen")

    def disease(self, code: str) -> Disease:
        return _by(self.diseases, "code", code, "disease")

    def criteria(self, code: str) -> ResponseCriteria:
        return _by(self.response_criteria, "code", code, "response criteria")

    def arm(self, armcd: str) -> Arm:
        return _by(self.arms, "armcd", armcd, "arm")

    def cutoff_date(self, transfer_date: dt.date) -> dt.date:
        return self.cutoff.date if self.cutoff.rule == "fixed" else transfer_date


def _by(items, key, value, what):
    for it in items:
        if getattr(it, key) == value:
            return it
    raise KeyError(f"unknown {what} {value!r}")


def study_dir(study: str, root: Path | None = None) -> Path:
    return (root or mappings_dir()) / study


def load_study(study: str | Path, root: Path | None = None) -> StudyConfig:
    """Load `mappings/<study>/study.yaml` (or a path to a study.yaml)."""
    path = Path(study) if str(study).endswith((".yaml", ".yml")) else study_dir(str(study), root) / "study.yaml"
    loaded = load_yaml(path)
    try:
        return StudyConfig.model_validate(loaded.data)
    except ValidationError as exc:
        raise validation_error(loaded, exc) from None


def available_studies(root: Path | None = None) -> list[str]:
    base = root or mappings_dir()
    return sorted(p.parent.name for p in base.glob("*/study.yaml"))
