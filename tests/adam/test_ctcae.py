"""CTCAE v5.0 laboratory grading: one case per grade boundary per direction, and the cases that
must give no grade. Boundary values are those of NCI CTCAE v5.0 (27 Nov 2017), cited per term;
admiral's worst-case readings (e.g. hypokalemia "symptomatic") are kept."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from adam.ctcae import (
    compute_ctcae_grade,
    criteria,
    derive_var_atoxgr,
    derive_var_atoxgr_dir,
    derive_var_btoxgr,
    derive_vars_atoxdsc,
    lab_terms,
    signif,
)

NA = None
REPO = Path(__file__).resolve().parents[2]


def grade(term, aval, anrlo=None, anrhi=None, base=None, unit=None, **kw):
    return compute_ctcae_grade([term], [aval], [anrlo], [anrhi], [base], unit=[unit], **kw).iloc[0]


# CTCAE v5.0 (NCI, 27 Nov 2017) Neutrophil count decreased: G1 <LLN-1.5, G2 <1.5-1.0,
# G3 <1.0-0.5, G4 <0.5 x 10e9/L.
@pytest.mark.parametrize("aval, expected", [
    (2.0, "0"), (1.99, "1"), (1.5, "1"), (1.49, "2"), (1.0, "2"), (0.99, "3"), (0.5, "3"),
    (0.49, "4")])
def test_neutrophils(aval, expected):
    assert grade("Neutrophil count decreased", aval, anrlo=2.0, unit="10^9/L") == expected


def test_neutrophils_without_lln_absolute_grades_only():
    # grades 2-4 are absolute values; grade 1 (<LLN) needs the LLN (admiral order of rules)
    assert grade("Neutrophil count decreased", 1.2, unit="10^9/L") == "2"
    assert grade("Neutrophil count decreased", 1.6, unit="10^9/L") is NA


# CTCAE v5.0 (NCI, 27 Nov 2017) Platelet count decreased: G1 <LLN-75.0, G2 <75.0-50.0,
# G3 <50.0-25.0, G4 <25.0 x 10e9/L.
@pytest.mark.parametrize("aval, expected", [
    (150, "0"), (149, "1"), (75, "1"), (74.9, "2"), (50, "2"), (49.9, "3"), (25, "3"),
    (24.9, "4")])
def test_platelets(aval, expected):
    assert grade("Platelet count decreased", aval, anrlo=150, unit="10^9/L") == expected


# CTCAE v5.0 (NCI, 27 Nov 2017) Anemia: G1 Hgb <LLN-100 g/L, G2 <100-80 g/L, G3 <80 g/L.
@pytest.mark.parametrize("aval, expected", [
    (120, "0"), (119, "1"), (100, "1"), (99, "2"), (80, "2"), (79, "3")])
def test_anemia(aval, expected):
    assert grade("Anemia", aval, anrlo=120, unit="g/L") == expected


# CTCAE v5.0 (NCI, 27 Nov 2017) Hemoglobin increased: G1 >0-2 g/dL above ULN, G2 >2-4 g/dL,
# G3 >4 g/dL above ULN (20 and 40 g/L).
@pytest.mark.parametrize("aval, expected", [
    (160, "0"), (161, "1"), (180, "1"), (180.1, "2"), (200, "2"), (200.1, "3")])
def test_hemoglobin_increased(aval, expected):
    assert grade("Hemoglobin increased", aval, anrhi=160, unit="g/L") == expected


# CTCAE v5.0 (NCI, 27 Nov 2017) Alanine aminotransferase increased, baseline normal:
# G1 >ULN-3.0 x ULN, G2 >3.0-5.0 x ULN, G3 >5.0-20.0 x ULN, G4 >20.0 x ULN.
@pytest.mark.parametrize("aval, expected", [
    (40, "0"), (41, "1"), (120, "1"), (121, "2"), (200, "2"), (201, "3"), (800, "3"),
    (801, "4")])
@pytest.mark.parametrize("bnrind", ["NORMAL", None])   # missing BNRIND: as normal (admiral)
def test_alt_baseline_normal(aval, expected, bnrind):
    assert grade("Alanine aminotransferase increased", aval, anrhi=40, base=30, unit="U/L",
                 bnrind=[bnrind]) == expected


# ... baseline abnormal: G1 1.5-3.0 x baseline, G2 >3.0-5.0, G3 >5.0-20.0, G4 >20.0 x baseline.
@pytest.mark.parametrize("aval, expected", [
    (89, "0"), (90, "1"), (180, "1"), (181, "2"), (300, "2"), (301, "3"), (1200, "3"),
    (1201, "4")])
def test_alt_baseline_abnormal(aval, expected):
    assert grade("Alanine aminotransferase increased", aval, anrhi=40, base=60, unit="U/L",
                 bnrind=["HIGH"]) == expected


def test_alt_abnormal_baseline_without_base_or_without_uln_gives_no_grade():
    assert grade("Alanine aminotransferase increased", 500, anrhi=40, bnrind=["HIGH"]) is NA
    assert grade("Alanine aminotransferase increased", 500, base=30, bnrind=["NORMAL"]) is NA


def test_alt_abnormal_baseline_from_base_when_no_bnrind_given():
    # no BNRIND argument at all: BASE > ANRHI is an abnormal baseline
    assert grade("Alanine aminotransferase increased", 89, anrhi=40, base=60) == "0"
    assert grade("Alanine aminotransferase increased", 89, anrhi=40, base=30) == "1"


def test_values_are_compared_at_8_significant_digits():
    # 3 x 0.7 is 2.0999999999999996 in binary floating point; signif(., 8) makes it 2.1, so
    # 2.1 is not > 3.0 x ULN (CTCAE v5.0 ALT G2 >3.0 x ULN) and stays grade 1.
    assert 3 * 0.7 < 2.1
    assert grade("Alanine aminotransferase increased", 2.1, anrhi=0.7, base=0.5,
                 bnrind=["NORMAL"]) == "1"
    assert signif([2.0999999999999996, 123456789.4, 0.0, np.nan])[:3].tolist() == \
        [2.1, 123456790.0, 0.0]


# CTCAE v5.0 (NCI, 27 Nov 2017) Creatinine increased: G1 >ULN-1.5 x ULN; G2 >1.5-3.0 x baseline;
# >1.5-3.0 x ULN; G3 >3.0 baseline; >3.0-6.0 x ULN; G4 >6.0 x ULN.
@pytest.mark.parametrize("aval, expected", [
    (100, "0"), (101, "1"), (150, "1"), (151, "2"), (300, "2"), (301, "3"), (600, "3"),
    (601, "4")])
def test_creatinine_uln_multiples(aval, expected):
    assert grade("Creatinine increased", aval, anrhi=100, unit="umol/L") == expected


@pytest.mark.parametrize("aval, anrhi, expected", [
    (75, 100, "0"), (76, 100, "2"),      # >1.5 x baseline 50, below ULN
    (150, 100, "2"), (151, 100, "3"),    # >3.0 x baseline
    (160, None, "3"),                    # baseline criterion needs no ULN
    (60, None, NA)])                     # grade 1 (>ULN) does
def test_creatinine_baseline_multiples(aval, anrhi, expected):
    assert grade("Creatinine increased", aval, anrhi=anrhi, base=50, unit="umol/L") == expected


# CTCAE v5.0 (NCI, 27 Nov 2017) Hyperkalemia: G1 >ULN-5.5, G2 >5.5-6.0, G3 >6.0-7.0,
# G4 >7.0 mmol/L.
@pytest.mark.parametrize("aval, expected", [
    (5.1, "0"), (5.2, "1"), (5.5, "1"), (5.51, "2"), (6.0, "2"), (6.01, "3"), (7.0, "3"),
    (7.01, "4")])
def test_hyperkalemia(aval, expected):
    assert grade("Hyperkalemia", aval, anrlo=3.5, anrhi=5.1, unit="mmol/L") == expected


# CTCAE v5.0 (NCI, 27 Nov 2017) Hypokalemia: G1 <LLN-3.0 mmol/L; G2 symptomatic with <LLN-3.0
# (worst case, admiral: <LLN is G2); G3 <3.0-2.5; G4 <2.5 mmol/L.
@pytest.mark.parametrize("aval, expected", [
    (3.5, "0"), (3.4, "2"), (3.0, "2"), (2.99, "3"), (2.5, "3"), (2.49, "4")])
def test_hypokalemia(aval, expected):
    assert grade("Hypokalemia", aval, anrlo=3.5, anrhi=5.1, unit="mmol/L") == expected


# CTCAE v5.0 (NCI, 27 Nov 2017) Fibrinogen decreased: G1 <1.0-0.75 x LLN, G2 <0.75-0.5 x LLN,
# G3 <0.5-0.25 x LLN, G4 <0.25 x LLN or absolute <50 mg/dL (0.5 g/L); if abnormal, the
# decrease from baseline: 25 - <50% G2, 50 - <75% G3, 75% G4.
@pytest.mark.parametrize("aval, base, expected", [
    (2.0, None, "0"), (1.99, None, "1"), (1.5, None, "1"), (1.49, None, "2"), (1.0, None, "2"),
    (0.99, None, "3"), (0.5, None, "3"), (0.49, None, "4"),
    (1.9, 3.0, "2"),     # -36.7% from baseline
    (1.6, 4.0, "3"),     # -60%
    (0.7, 3.0, "4")])    # -76.7%
def test_fibrinogen(aval, base, expected):
    assert grade("Fibrinogen decreased", aval, anrlo=2.0, base=base, unit="g/L") == expected


@pytest.mark.parametrize("term, aval, anrlo, anrhi, unit", [
    ("Neutrophil count decreased", None, 2.0, 7.5, "10^9/L"),    # missing AVAL
    ("Anemia", 110, None, 160, "g/L"),                           # grade 1 needs LLN
    ("Hemoglobin increased", 170, 120, None, "g/L"),             # needs ULN
    ("Blood lactate dehydrogenase increased", 300, 100, None, "U/L"),
    ("C-reactive protein increased", 50, 0, 5, "mg/L"),          # not a CTCAE v5.0 term
    (None, 1.0, 2.0, 7.5, "10^9/L"),
    ("Anemia", 9.0, 12.0, 16.0, "g/dL"),                         # criteria are in g/L
    ("Neutrophil count decreased", 0.4, 2.0, 7.5, None),         # unit unknown
])
def test_no_grade(term, aval, anrlo, anrhi, unit):
    assert grade(term, aval, anrlo=anrlo, anrhi=anrhi, unit=unit) is NA


def test_us_conventional_criteria_and_direction_filter():
    assert grade("Anemia", 9.0, anrlo=12.0, unit="g/dL", system="CV") == "2"   # <10.0-8.0 g/dL
    assert grade("Anemia", 90, anrlo=120, unit="g/L", direction="H") is NA
    assert grade("Hyperkalemia", 6.5, anrhi=5.1, unit="MMOL/L", direction="H") == "3"


def test_vectorised_over_mixed_terms():
    g = compute_ctcae_grade(pd.Series(["Anemia", "Platelet count decreased", "Hypokalemia", None]),
                            pd.Series([79.0, 24.0, 3.4, 5.0]), [120, 150, 3.5, 1],
                            [160, 400, 5.1, 9], unit=["g/L", "10^9/L", "mmol/L", "x"])
    assert g.tolist() == ["3", "4", "2", None]


def adlb() -> pd.DataFrame:
    return pd.DataFrame({
        "STUDYID": "S1", "USUBJID": ["S1-1"] * 4 + ["S1-2"] * 2,
        "PARAMCD": ["HGB", "HGB", "ALT", "ALT", "CRP", "NEUT"],
        "PARAM": ["Hemoglobin (g/L)", "Hemoglobin (g/L)", "Alanine Aminotransferase (U/L)",
                  "Alanine Aminotransferase (U/L)", "C Reactive Protein (mg/L)",
                  "Neutrophils (10^9/L)"],
        "AVAL": [115.0, 75.0, 30.0, 130.0, 80.0, np.nan],
        "ANRLO": [120, 120, 0, 0, 0, 2.0], "ANRHI": [160, 160, 40, 40, 5, 7.5],
        "BASE": [115.0, 115.0, 30.0, 30.0, 80.0, np.nan],
        "BNRIND": ["LOW", "LOW", "NORMAL", "NORMAL", "HIGH", None],
        "ABLFL": ["Y", None, "Y", None, "Y", None]})


def test_adlb_derivations_in_admiral_grammar():
    d = derive_vars_atoxdsc(adlb())
    assert d["ATOXDSCL"].tolist() == ["Anemia", "Anemia", None, None, None, None]  # NEUT: no AVAL
    assert d["ATOXDSCH"].tolist() == ["Hemoglobin increased"] * 2 + [
        "Alanine aminotransferase increased"] * 2 + [None, None]
    d = derive_var_atoxgr_dir(d, "ATOXGRL", "ATOXDSCL", "L")
    d = derive_var_atoxgr_dir(d, "ATOXGRH", "ATOXDSCH", "H")
    assert d["ATOXGRL"].tolist() == ["1", "3", None, None, None, None]
    assert d["ATOXGRH"].tolist() == ["0", "0", "0", "2", None, None]   # ALT 130 > 3 x ULN 40
    d = derive_var_atoxgr(d)
    assert d["ATOXGR"].tolist() == ["-1", "-3", "0", "2", None, None]
    d = derive_var_btoxgr(d, "ATOXGRL", "BTOXGRL")
    d = derive_var_btoxgr(d, "ATOXGRH", "BTOXGRH")
    assert d["BTOXGRL"].tolist() == ["1", "1", None, None, None, None]
    assert d["BTOXGRH"].tolist() == ["0", "0", "0", "0", None, None]


def test_lab_term_mapping_matches_criteria_and_study_units():
    crit = criteria()
    si = crit[crit["system"] == "SI"].drop_duplicates("term").set_index("term")
    std = yaml.safe_load((REPO / "mappings/common/lab_units.yaml").read_text())["tests"]
    terms = lab_terms()
    assert not terms.duplicated(["LBTESTCD", "direction"]).any()
    for row in terms.itertuples():
        assert si.loc[row.term, "direction"] == row.direction
        assert row.unit == std[row.LBTESTCD]["standard"]
        need = si.loc[row.term, "unit"]
        assert not need or need.upper() == row.unit.upper()
    assert {"CRP", "FERRITIN", "INTLK6"}.isdisjoint(terms["LBTESTCD"])


def test_criteria_rows_are_well_formed():
    crit = criteria()
    assert set(crit["comparison"]) <= {"<", "<=", ">", ">=", "missing"}
    assert set(crit["reference"]) <= {"", "value", "LLN", "ULN", "BASE", "ULN+"}
    assert set(crit["grade"]) <= {"", "1", "2", "3", "4"}
    assert set(crit["baseline"]) <= {"", "normal", "abnormal"}
    assert crit.groupby("system")["term"].nunique().to_dict() == {"CV": 40, "SI": 40}
    graded = crit[crit["grade"] != ""]
    assert (graded["grade_text"] != "").all()
