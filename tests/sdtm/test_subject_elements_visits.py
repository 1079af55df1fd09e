"""Golden tests for SE and SV on small literal inputs."""
import pandas as pd
import pytest

from clinpipe.config import load_study
from clinpipe.errors import ConfigError
from edc.forms import load_forms
from sdtm.subject_elements import build_se, load_element_rules
from sdtm.subject_visits import build_sv


def _raw(**forms):
    return {name: pd.DataFrame(rows, columns=["SUBJECT", *{k for r in rows for k in r if k != "SUBJECT"}])
            for name, rows in forms.items()}


def _dm(*rows):
    cols = ["STUDYID", "USUBJID", "SUBJID", "ARMCD", "ACTARMCD", "ARMNRS", "RFSTDTC", "RFPENDTC"]
    return pd.DataFrame(rows, columns=cols)


@pytest.fixture(scope="module")
def rs001():
    study = load_study("RS001")
    return study, load_element_rules(study, load_forms("RS001"))


def test_se_treated_subject_follows_arm_and_ends_at_next_start(rs001):
    study, rules = rs001
    raw = _raw(IC=[{"SUBJECT": "1", "ICDAT": "2025-01-01"}],
               LD=[{"SUBJECT": "1", "LDDAT": "2025-01-20"}, {"SUBJECT": "1", "LDDAT": "2025-01-21"}],
               INF=[{"SUBJECT": "1", "INFDAT": "2025-01-25"}])
    dm = _dm(("RS001", "RS001-1", "1", "ESC_DL2", "ESC_DL2", "", "2025-01-25", "2025-06-30"))
    se = build_se(study, rules, dm, raw)
    assert se[["ETCD", "SESTDTC", "SEENDTC", "EPOCH"]].values.tolist() == [
        ["SCRN", "2025-01-01", "2025-01-20", "SCREENING"],
        ["FC", "2025-01-20", "2025-01-25", "TREATMENT"],
        ["RS001DL2", "2025-01-25", "2025-02-22", "TREATMENT"],      # 28 days after infusion
        ["FU", "2025-02-22", "2025-06-30", "FOLLOW-UP"]]
    assert se["TAETORD"].tolist() == [1, 2, 3, 4] and se["SESEQ"].tolist() == [1, 2, 3, 4]
    assert se["SESTDY"].tolist() == [-24, -5, 1, 29]              # no day 0


def test_se_screen_failure_and_death_before_follow_up(rs001):
    study, rules = rs001
    raw = _raw(IC=[{"SUBJECT": "2", "ICDAT": "2025-02-01"}, {"SUBJECT": "3", "ICDAT": "2025-02-01"}],
               LD=[{"SUBJECT": "3", "LDDAT": "2025-02-10"}], INF=[{"SUBJECT": "3", "INFDAT": "2025-02-15"}])
    dm = _dm(("RS001", "RS001-2", "2", "", "", "SCREEN FAILURE", "", "2025-02-12"),
             ("RS001", "RS001-3", "3", "ESC_DL4", "ESC_DL4", "", "2025-02-15", "2025-03-01"))
    se = build_se(study, rules, dm, raw)
    sf = se[se.USUBJID == "RS001-2"]
    assert sf[["ETCD", "SESTDTC", "SEENDTC"]].values.tolist() == [["SCRN", "2025-02-01", "2025-02-12"]]
    died = se[se.USUBJID == "RS001-3"]
    assert died["ETCD"].tolist() == ["SCRN", "FC", "RS001DL4"]     # died on Day 14: no follow-up
    assert died["SEENDTC"].tolist()[-1] == "2025-03-01"


def test_se_glocart_stopper_follows_the_shortened_arm_from_the_decision():
    """Arm GLOFIT (stopped after phase 1): SCRN, GLOX, then FU from the end-of-phase-1 decision
    (by_arm rule), with the stage epochs; a CAR-T subject's FU still starts 28 days after CAR-T."""
    study = load_study("GLOCART")
    rules = load_element_rules(study, load_forms("GLOCART"))
    raw = _raw(IC=[{"SUBJECT": "1", "ICDAT": "2025-01-01"}, {"SUBJECT": "2", "ICDAT": "2025-01-01"}],
               GLOEX=[{"SUBJECT": "1", "GXDAT": "2025-01-10"}, {"SUBJECT": "2", "GXDAT": "2025-01-10"}],
               COH=[{"SUBJECT": "1", "COHDAT": "2025-01-25"}, {"SUBJECT": "2", "COHDAT": "2025-02-18"}],
               LD=[{"SUBJECT": "2", "LDDAT": "2025-02-25"}], COND=[], ASCT=[],
               CART=[{"SUBJECT": "2", "CARTDAT": "2025-03-02"}], CONS=[])
    for form, fld in (("COND", "CDDAT"), ("ASCT", "ASCTDAT"), ("CONS", "CSDAT")):
        raw[form] = pd.DataFrame(columns=["SUBJECT", fld])
    dm = _dm(("GLOCART", "GLOCART-1", "1", "GLOFIT", "GLOFIT", "", "2025-01-10", "2025-06-30"),
             ("GLOCART", "GLOCART-2", "2", "CART", "CART", "", "2025-01-10", "2025-09-30"))
    se = build_se(study, rules, dm, raw)
    stop = se[se.USUBJID == "GLOCART-1"]
    assert stop[["ETCD", "SESTDTC", "SEENDTC", "EPOCH"]].values.tolist() == [
        ["SCRN", "2025-01-01", "2025-01-10", "SCREENING"],
        ["GLOX", "2025-01-10", "2025-01-25", "INDUCTION TREATMENT"],
        ["FU", "2025-01-25", "2025-06-30", "FOLLOW-UP"]]
    assert stop["TAETORD"].tolist() == [1, 2, 3]
    cart = se[se.USUBJID == "GLOCART-2"]
    assert cart[["ETCD", "SESTDTC", "EPOCH"]].values.tolist() == [
        ["SCRN", "2025-01-01", "SCREENING"], ["GLOX", "2025-01-10", "INDUCTION TREATMENT"],
        ["FC", "2025-02-25", "CONDITIONING"], ["CART", "2025-03-02", "CELLULAR THERAPY"],
        ["FU", "2025-03-30", "FOLLOW-UP"]]


def test_se_glocart_follow_up_starts_21_days_after_the_last_consolidation_dose():
    """Consolidation stopped after 2 cycles (progression): follow-up from the last dose + 21, not
    from the planned 4 cycles (day 84)."""
    study = load_study("GLOCART")
    rules = load_element_rules(study, load_forms("GLOCART"))
    raw = _raw(IC=[{"SUBJECT": "3", "ICDAT": "2025-01-01"}], GLOEX=[{"SUBJECT": "3", "GXDAT": "2025-01-10"}],
               COH=[{"SUBJECT": "3", "COHDAT": "2025-02-18"}], LD=[{"SUBJECT": "3", "LDDAT": "2025-02-25"}],
               CART=[{"SUBJECT": "3", "CARTDAT": "2025-03-02"}],
               CONS=[{"SUBJECT": "3", "CSDAT": "2025-04-10"}, {"SUBJECT": "3", "CSDAT": "2025-05-01"}])
    for form, fld in (("COND", "CDDAT"), ("ASCT", "ASCTDAT")):
        raw[form] = pd.DataFrame(columns=["SUBJECT", fld])
    dm = _dm(("GLOCART", "GLOCART-3", "3", "CART", "CART", "", "2025-01-10", "2025-12-31"))
    se = build_se(study, rules, dm, raw).set_index("ETCD")
    assert se.loc["CONS", "SEENDTC"] == se.loc["FU", "SESTDTC"] == "2025-05-22"
    assert se.loc["CONS", "EPOCH"] == "CONSOLIDATION TREATMENT"


def test_by_arm_rule_must_name_a_known_arm(mappings_copy):
    path = mappings_copy / "GLOCART" / "subject_elements.yaml"
    path.write_text(path.read_text().replace("      GLOFIT: {first: [COH.COHDAT]}", "      NOPE: {first: [COH.COHDAT]}"))
    with pytest.raises(ConfigError, match="unknown arm 'NOPE'"):
        load_element_rules(load_study("GLOCART"), load_forms("GLOCART"), root=mappings_copy)


def test_element_rules_are_checked(mappings_copy):
    path = mappings_copy / "RS001" / "subject_elements.yaml"
    path.write_text(path.read_text().replace("FC:       {first: [LD.LDDAT]}", "FC:       {first: [LD.LDDATE]}"))
    with pytest.raises(ConfigError, match="LD.LDDATE"):
        load_element_rules(load_study("RS001"), load_forms("RS001"), root=mappings_copy)


def test_sv_spans_the_visit_records():
    lb = pd.DataFrame({"STUDYID": "S", "USUBJID": ["S-1"] * 4, "VISITNUM": [1.0, 1.0, 2.0, 2.01],
                       "VISIT": ["SCREENING", "SCREENING", "DAY 1", "UNSCHEDULED 2.01"],
                       "LBDTC": ["2025-01-02", "2025-01-03T10:00", "2025-01-10", "2025-01-12"]})
    vs = pd.DataFrame({"STUDYID": "S", "USUBJID": ["S-1"], "VISITNUM": [1.0], "VISIT": ["SCREENING"],
                       "VSDTC": ["2025-01-01"]})
    dm = pd.DataFrame({"USUBJID": ["S-1"], "RFSTDTC": ["2025-01-10"]})
    sv = build_sv({"LB": lb, "VS": vs}, dm)
    assert sv[["VISITNUM", "SVSTDTC", "SVENDTC"]].values.tolist() == [
        [1.0, "2025-01-01", "2025-01-03"], [2.0, "2025-01-10", "2025-01-10"], [2.01, "2025-01-12", "2025-01-12"]]
    assert sv["SVSTDY"].tolist() == [-9, 1, 3]
    assert sv["SVUPDES"].tolist() == ["", "", "Unscheduled visit"]
