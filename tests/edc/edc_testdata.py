"""A tiny study, its forms (from the sponsor library) and simulated records for the EDC tests.

Built in a temporary mappings root so the tests depend on mappings/common only, never on the
study folders other parts of the project are writing.
"""
from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np

from clinpipe.config import StudyConfig, load_study
from clinpipe.paths import REPO_ROOT
from edc.forms import FormsConfig, load_forms
from simulate.model import SimulatedStudy

STUDY = "TST"
COMMON_FORMS = ["IC", "DM", "MH", "AE", "LB", "VS", "DS"]

STUDY_YAML = """
study:
  studyid: TST
  title: Test study for the EDC export layer
  phase: PHASE I TRIAL
  sponsor: Test sponsor
  indication: testing
  registration: none
  products: [TST cells]
  day0: TST infusion
ct_version: "2025-03-28"
anchors: {INFUSION: TST infusion (Day 0)}
sites:
  - {siteid: "101", name: Site 101, country: USA}
  - {siteid: "102", name: Site 102, country: FRA}
diseases:
  - {code: B-NHL, label: B-cell NHL, response_criteria: [LUGANO2014]}
response_criteria:
  - code: LUGANO2014
    name: Lugano 2014
    reference: Cheson 2014
    responses:
      - {code: CR, label: Complete response, rank: 1, responder: true}
      - {code: PD, label: Progressive disease, rank: 2}
elements:
  - {etcd: SCRN, element: Screening, epoch: SCREENING, start_rule: consent}
arms:
  - {armcd: A, arm: Arm A, elements: [SCRN]}
visits:
  - {folder: SCR, name: Screening, visitnum: 1, anchor: INFUSION, day: -28, window: [-7, 0]}
  - {folder: D0, name: Day 0, visitnum: 2, anchor: INFUSION, day: 0}
  - {folder: D28, name: Day 28, visitnum: 3, anchor: INFUSION, day: 28, window: [-3, 3]}
edc_folders:
  unscheduled: UNS
  names: {UNS: Unscheduled, LOG: Log forms, EOS: End of study}
follow_up_months: 12
"""


def write_config(root: Path) -> tuple[StudyConfig, FormsConfig]:
    """study.yaml + forms.yaml (common forms) under `root`, loaded the way the pipeline loads them."""
    shutil.copytree(REPO_ROOT / "mappings" / "common", root / "common", dirs_exist_ok=True)
    (root / STUDY).mkdir(parents=True, exist_ok=True)
    (root / STUDY / "study.yaml").write_text(STUDY_YAML, encoding="utf-8")
    (root / STUDY / "forms.yaml").write_text(
        f"enrolment_form: IC\ncommon: [{', '.join(COMMON_FORMS)}]\n", encoding="utf-8")
    return load_study(STUDY, root=root), load_forms(STUDY, root=root)


LONG_TERM = ("Cytokine release syndrome with " + "persistent fever and hypotension " * 7).strip()  # > 200


def _rec(site, subject, folder, entry, **fields):
    return {"SITEID": site, "SUBJECT": subject, "FOLDER": folder, "_ENTRY": entry, **fields}


def small_study() -> SimulatedStudy:
    """Every case the export layer must carry: partial and impossible dates, unknown codes,
    an inactivated record, a duplicate, non-ASCII and long text, quoting hazards, an
    unscheduled repeat, an orphan subject, numbers as int/float/text, and a form (DS) with
    no records."""
    ae_common = {"AETERM": "Nausea", "AESTDAT": "2025-02-10", "AEONGO": "N", "AETOXGR": "2",
                 "AESER": "N", "AEREL": "1", "AELLT": "Nausea", "AELLTCD": "10028813", "AEPT": "Nausea",
                 "AEPTCD": "10028813", "MEDDRAV": "27.1"}
    records = {
        "IC": [
            _rec("101", "101-001", "SCR", "2025-01-11", ICDAT="2025-01-10", ICVER="v2.0"),
            _rec("101", "101-002", "SCR", "2025-01-12", ICDAT="2025-01", ICVER="v2.0"),
            _rec("102", "102-001", "SCR", dt.date(2025, 1, 15), ICDAT=dt.date(2025, 1, 14), ICVER="v2.1"),
        ],
        "DM": [
            _rec("101", "101-001", "SCR", "2025-01-11", BRTHDAT="1960-05-03", AGE=64, SEX="F", RACE="3",
                 ETHNIC="2"),
            _rec("101", "101-002", "SCR", "2025-01-12", BRTHDAT="1955", AGE=95, SEX="M", RACE="7",
                 RACEOTH="Zoë Ångström, née \"Ås\""),
            _rec("102", "102-001", "SCR", "2025-01-15", BRTHDAT="1970-02-30", AGE=54.0, SEX=None, RACE="1"),
        ],
        "MH": [
            _rec("101", "101-001", "SCR", "2025-01-11", MHTERM='Hypertension, "essential"', MHSTDAT="2019",
                 MHONGO="Y"),
            _rec("101", "101-001", "SCR", "2025-01-11", MHTERM="Hépatite B\nresolved", MHSTDAT="2010-06",
                 MHONGO="N", MHENDAT="2011-01-20"),
            _rec("101", "101-001", "SCR", "2025-01-11", MHTERM="Asthma\r\nchildhood; a<b & c>d",
                 MHSTDAT=None, MHONGO="X"),
            _rec("102", "102-001", "SCR", "2025-01-15", MHTERM=None, MHSTDAT="2024-13-01"),
        ],
        "AE": [
            _rec("101", "101-001", "LOG", "2025-02-12", **ae_common),
            _rec("101", "101-001", "LOG", "2025-02-13", **ae_common),                      # duplicate
            _rec("101", "101-001", "LOG", "2025-02-14", **{**ae_common, "AETERM": "Headache", "AEOUT": "99"},
                 RECORDACTIVE=0),                       # inactivated: its unknown code is not reported
            _rec("101", "101-002", "LOG", "2025-03-01", AETERM=LONG_TERM, AESTDAT="2025-02-30",
                 AETOXGR="3", AEASTCT="2", AESER="Y", AESHOSP="Y", AEREL="4", AEOUT="1",
                 AEDLT="Y", AESI="Y"),
            _rec("102", "102-001", "LOG", "2025-03-05", AETERM="Übelkeit", AESTDAT="2025-03",
                 AETOXGR="9", AESER="N", AEREL=None),
        ],
        "LB": [
            _rec("101", "101-001", "D0", "2025-02-01", LBDAT="2025-02-01", LBTIM="14:30", LBCAT="HEM",
                 LBTESTCD="WBC", LBORRES="5.2", LBORRESU="10^9/L", LBORNRLO="4", LBORNRHI="10"),
            _rec("101", "101-001", "D0", "2025-02-01", LBDAT="2025-02-01", LBTIM="14:30", LBCAT="CHEM",
                 LBTESTCD="CREAT", LBORRES="<0.5", LBORRESU="mg/dL"),
            _rec("102", "102-001", "D28", "2025-03-01", LBDAT="2025-03-01", LBCAT="HEM", LBTESTCD="HGB",
                 LBORRES="", LBNDRSN="Sample haemolysed"),
        ],
        "VS": [
            _rec("101", "101-001", "D0", "2025-02-01", VSDAT="2025-02-01", VSTPT="PRE", SYSBP=120, DIABP=80,
                 TEMP=37.0, WEIGHT=70.25, HEIGHT=172.5, SPO2=98),
            _rec("101", "101-001", "D0", "2025-02-01", VSDAT="2025-02-01", VSTPT="POST", SYSBP=300,
                 TEMP=38.15, WEIGHT=0.1 + 0.2),
            _rec("101", "101-001", "UNS", "2025-02-20", FOLDERSEQ=1, VSDAT="2025-02-19", SYSBP="abc"),
            _rec("101", "101-001", "UNS", "2025-02-27", FOLDERSEQ=2, VSDAT="2025-02-26", PULSE=72.5,
                 TEMP=1e-05),
            _rec("102", "102-099", "D0", "2025-02-02", VSDAT="2025-02-02", SYSBP=110),  # orphan subject
        ],
    }
    return SimulatedStudy(study=STUDY, seed=7, transfer_date=dt.date(2025, 3, 31), records=records)


_AE_TERMS = ["Nausea", "Pyrexia", "Cytokine release syndrome", "Neutropenia", "Headache", "Fatigue"]
_LB_TESTS = [("HEM", "WBC"), ("HEM", "NEUT"), ("HEM", "HGB"), ("HEM", "PLAT"), ("CHEM", "ALT"),
             ("CHEM", "AST"), ("CHEM", "CREAT"), ("INFL", "CRP"), ("INFL", "FERRITIN"), ("INFL", "IL6")]


def synthetic_study(n_subjects: int, seed: int = 1, records_per_subject: int = 300) -> SimulatedStudy:
    """A large, plausible-looking study for timing (about `records_per_subject` records per
    subject, mostly labs, as real cell-therapy data are)."""
    rng = np.random.default_rng(seed)
    start = dt.date(2024, 1, 1)
    visits = ["SCR", "D0", "D28"]
    n_lab_visits = max(1, (records_per_subject - 40) // len(_LB_TESTS))
    out: dict[str, list] = {k: [] for k in ("IC", "DM", "MH", "AE", "LB", "VS")}
    for s in range(n_subjects):
        site = f"{101 + s % 3}"
        subject = f"{site}-{s:05d}"
        day0 = start + dt.timedelta(days=int(rng.integers(0, 700)))

        def iso(days: int, day0: dt.date = day0) -> str:
            return (day0 + dt.timedelta(days=days)).isoformat()

        out["IC"].append(_rec(site, subject, "SCR", iso(-27), ICDAT=iso(-28), ICVER="v2.0"))
        out["DM"].append(_rec(site, subject, "SCR", iso(-27), BRTHDAT=f"{int(rng.integers(1940, 2000))}",
                              AGE=int(rng.integers(18, 85)), SEX=str(rng.choice(["F", "M"])), RACE="1"))
        for k in range(5):
            out["MH"].append(_rec(site, subject, "SCR", iso(-27), MHTERM=f"Condition {k}",
                                  MHSTDAT=f"{int(rng.integers(1990, 2023))}-0{k + 1}", MHONGO="Y"))
        for k in range(10):
            out["AE"].append(_rec(site, subject, "LOG", iso(k * 3 + 2), AETERM=_AE_TERMS[k % 6],
                                  AESTDAT=iso(k * 3), AETOXGR=str(1 + k % 4), AESER="N", AEREL=str(1 + k % 5),
                                  AEPT=_AE_TERMS[k % 6], AEPTCD=f"100{k:05d}", MEDDRAV="27.1"))
        for v in range(n_lab_visits):
            day = v * 7 - 7
            folder = visits[min(v, 2)] if v < 3 else "UNS"
            seq = 1 if v < 3 else v - 2
            for cat, test in _LB_TESTS:
                out["LB"].append(_rec(site, subject, folder, iso(day + 1), FOLDERSEQ=seq, LBDAT=iso(day),
                                      LBTIM="08:15", LBCAT=cat, LBTESTCD=test,
                                      LBORRES=f"{rng.normal(5, 1):.2f}", LBORRESU="10^9/L"))
        for v in range(24):
            out["VS"].append(_rec(site, subject, "UNS", iso(v + 1), FOLDERSEQ=v + 1, VSDAT=iso(v),
                                  SYSBP=int(rng.integers(90, 160)), TEMP=round(float(rng.normal(37, 0.5)), 1),
                                  WEIGHT=round(float(rng.normal(75, 10)), 1)))
    return SimulatedStudy(study=STUDY, seed=seed, transfer_date=dt.date(2026, 1, 31), records=out)
