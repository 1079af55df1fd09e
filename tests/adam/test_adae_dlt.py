"""ADAE derivations and the DLT rules of STUDIES.md §1 on small literal frames: one case per
rule and boundary; the 3+3 summary; and on generator output, the derived DLT flags, dose
levels and MTD against what the simulator drew."""
import datetime as dt

import pandas as pd
import pytest

from adam.adae import derive_var_trtemfl, derive_vars_ae_dates, load_categories
from adam.dlt import compute_dlt_rules, derive_vars_dlt_subject
from adam.escalation import compute_escalation_summary, decide, mtd_level
from clinpipe.config import load_study

T0 = pd.Timestamp("2025-01-10")          # infusion (Day 0)
RS001 = load_study("RS001")
CAT = load_categories()


def _ae(**cols):
    n = len(next(iter(cols.values())))
    base = {"USUBJID": ["S-1"] * n, "AESEQ": list(range(1, n + 1)), "AEDECOD": ["Pyrexia"] * n,
            "AEBODSYS": ["General disorders and administration site conditions"] * n, "AEHLGT": [""] * n,
            "AEREL": ["PROBABLY RELATED"] * n, "ATOXSCL": ["CTCAE V5.0"] * n, "ATOXGRN": [3.0] * n,
            "ASTDT": [T0 + pd.Timedelta(days=1)] * n, "AENDT": [T0 + pd.Timedelta(days=10)] * n,
            "TRTSDT": [T0] * n}
    base.update(cols)
    df = pd.DataFrame(base)
    for c in ("ASTDT", "AENDT", "TRTSDT"):
        df[c] = pd.to_datetime(df[c])
    return df


LAST = pd.Timestamp("2025-06-30")


def _rules(df, last=LAST):
    return compute_dlt_rules(df, RS001.dlt, CAT, pd.Series(last, index=df.index)).tolist()


def D(n):
    return T0 + pd.Timedelta(days=n)


CRS, ICANS = "Cytokine release syndrome", "Immune effector cell-associated neurotoxicity syndrome"


def test_crs_grade_4_astct_any_duration():
    df = _ae(AEDECOD=[CRS, CRS], ATOXSCL=["ASTCT 2019", "CTCAE V5.0"], ATOXGRN=[4.0, 4.0],
             AEBODSYS=["Immune system disorders"] * 2, AENDT=[D(2), D(2)])
    assert _rules(df) == ["CRS-G4", ""]          # the CRS rules are on the ASTCT scale


def test_crs_grade_3_needs_72_hours_without_improving():
    df = _ae(AEDECOD=[CRS] * 3, ATOXSCL=["ASTCT 2019"] * 3, ATOXGRN=[3.0] * 3,
             AEBODSYS=["Immune system disorders"] * 3, ASTDT=[D(1)] * 3, AENDT=[D(4), D(3), None],
             AEREL=["NOT RELATED"] * 3)    # related, it would meet the non-hematologic rule too
    # 3 days = 72 h: met (at least the rule's hours); 2 days: not; ongoing to the last date: met
    assert _rules(df) == ["CRS-G3-72H", "", "CRS-G3-72H"]


def test_icans_grade_3_or_more():
    df = _ae(AEDECOD=[ICANS] * 3, ATOXSCL=["ASTCT 2019"] * 3, ATOXGRN=[2.0, 3.0, 4.0],
             AEBODSYS=["Nervous system disorders"] * 3, AEREL=["NOT RELATED"] * 3)
    assert _rules(df) == ["", "ICANS-G3", "ICANS-G3"]
    assert _rules(df.assign(AEREL="PROBABLY RELATED"))[1] == "ICANS-G3,NONHEM-G3-72H"   # both rules hold


def test_non_hematologic_grade_3_related_over_72_hours_excluding_fever():
    df = _ae(AEDECOD=["Hypoxia", "Hypoxia", "Hypoxia", "Pyrexia", "Hypoxia"],
             AEBODSYS=["Respiratory, thoracic and mediastinal disorders"] * 3 + ["General"] + ["Respiratory"],
             AEREL=["PROBABLY RELATED", "NOT RELATED", "POSSIBLY RELATED", "PROBABLY RELATED", "DEFINITELY RELATED"],
             ASTDT=[D(1)] * 5, AENDT=[D(4), D(10), D(3), D(10), D(5)], ATOXGRN=[3.0, 3.0, 3.0, 3.0, 2.0])
    assert _rules(df) == ["NONHEM-G3-72H", "", "", "", ""]


def test_hematologic_grade_4_cytopenia_over_28_days():
    heminv = "Haematology investigations (incl blood groups)"
    df = _ae(AEDECOD=["Neutrophil count decreased"] * 3 + ["Anaemia"], AEBODSYS=["Investigations"] * 3 + [
        "Blood and lymphatic system disorders"], AEHLGT=[heminv] * 3 + [""], ATOXGRN=[4.0, 4.0, 3.0, 4.0],
             AEREL=["NOT RELATED"] * 4, ASTDT=[D(2)] * 4, AENDT=[D(30), D(29), D(40), D(40)])
    # 28 days = 672 h: met; 27 days: not; grade 3: not; anaemia is not a rule term
    assert _rules(df) == ["CYTO-G4-28D", "", "", ""]
    # and the hematologic category keeps it out of the non-hematologic rule
    assert "NONHEM" not in ",".join(_rules(df.assign(AEREL="PROBABLY RELATED")))


def test_grade_5_related_and_gvhd_grade_2():
    df = _ae(AEDECOD=["Sepsis", "Sepsis", "Graft versus host disease", "Graft versus host disease"],
             AEBODSYS=["Infections and infestations"] * 2 + ["Immune system disorders"] * 2,
             ATOXGRN=[5.0, 5.0, 2.0, 1.0], AEREL=["POSSIBLY RELATED", "UNLIKELY RELATED", "NOT RELATED", "NOT RELATED"],
             AENDT=[D(1)] * 4)
    assert _rules(df) == ["G5-REL", "", "GVHD-G2", ""]


def test_window_is_day_0_to_28():
    df = _ae(AEDECOD=[ICANS] * 4, ATOXSCL=["ASTCT 2019"] * 4, ATOXGRN=[3.0] * 4,
             AEBODSYS=["Nervous system disorders"] * 4, ASTDT=[D(-1), D(0), D(28), D(29)],
             AENDT=[D(5), D(5), D(30), D(31)], AEREL=["NOT RELATED"] * 4)
    assert _rules(df) == ["", "ICANS-G3", "ICANS-G3", ""]


def test_ongoing_duration_stops_at_the_last_date():
    df = _ae(AEDECOD=["Hypoxia"], AEBODSYS=["Respiratory"], ASTDT=[D(1)], AENDT=[None])
    assert _rules(df, last=D(3)) == [""] and _rules(df, last=D(4)) == ["NONHEM-G3-72H"]


def test_partial_dates_imputed_within_treatment_death_and_cutoff():
    df = pd.DataFrame({"AESTDTC": ["2025-01", "2025-01", "2024-12", "2025-02-03"],
                       "AEENDTC": ["2025-01-20", "2025-03", "", "2025-02"],
                       "TRTSDT": [T0] * 4, "DTHDT": [pd.NaT, pd.Timestamp("2025-03-12"), pd.NaT, pd.NaT],
                       "DCUTDT": [pd.Timestamp("2025-05-27")] * 4})
    out = derive_vars_ae_dates(df)
    assert out.ASTDT.dt.strftime("%Y-%m-%d").tolist() == ["2025-01-10", "2025-01-10", "2024-12-01", "2025-02-03"]
    assert out.ASTDTF.tolist() == ["D", "D", "D", ""]
    # end: last of the month, never after death
    assert out.AENDT.dt.strftime("%Y-%m-%d").fillna("").tolist() == ["2025-01-20", "2025-03-12", "", "2025-02-28"]
    assert out.ASTDY.tolist()[:3] == [1.0, 1.0, -40.0]            # no day 0
    assert out.ADURN.tolist()[0] == 11.0
    after = derive_vars_ae_dates(df.assign(DCUTDT=pd.Timestamp("2025-01-15")))
    assert pd.isna(after.AENDT[0]) and after.AENDTF[0] == ""       # ended after the cut-off: ongoing at it


def test_treatment_emergence():
    df = pd.DataFrame({"ASTDT": pd.to_datetime(["2025-01-09", "2025-01-10", None, None]),
                       "AENDT": pd.to_datetime(["2025-01-12", None, "2025-01-01", None]), "TRTSDT": [T0] * 4})
    assert derive_var_trtemfl(df).TRTEMFL.tolist() == ["", "Y", "", "Y"]


def _adsl(**cols):
    base = {"USUBJID": ["S-1", "S-2", "S-3", "S-4"], "TRTSDT": [T0, T0, T0, pd.NaT],
            "LSTALVDT": [D(40), D(10), D(12), pd.NaT], "DTHDT": [pd.NaT, pd.NaT, D(12), pd.NaT],
            "DCUTDT": [D(200)] * 4}
    base.update(cols)
    return pd.DataFrame(base)


def test_dlt_evaluable():
    adae = pd.DataFrame({"USUBJID": ["S-1", "S-2", "S-3"], "DLTFL": ["N", "N", "Y"], "DLTINVFL": ["N", "Y", "Y"]})
    out = derive_vars_dlt_subject(_adsl(), adae, 28)
    # S-1 followed past Day 28; S-2 last seen Day 10 but the cut-off is later and alive: followed
    # (data not yet entered are not missed days); S-3 died on Day 12 with a DLT: evaluable by the DLT
    assert out.DLTEVLFL.tolist() == ["Y", "Y", "Y", "N"]
    assert out.DLTFL.tolist() == ["N", "N", "Y", ""] and out.DLTINVFL.tolist() == ["N", "Y", "Y", ""]
    died = derive_vars_dlt_subject(_adsl(), adae.assign(DLTFL="N"), 28)
    assert died.DLTEVLFL.tolist()[2] == "N"          # died on Day 12 without a DLT: not evaluable
    not_as_assigned = derive_vars_dlt_subject(_adsl(), adae, 28, assigned_dose=pd.Series({"S-1": "N", "S-2": "Y"}))
    assert not_as_assigned.DLTEVLFL.tolist()[:2] == ["N", "Y"]


@pytest.mark.parametrize("n_eval, n_dlt, decision", [
    (3, 0, "escalate"), (3, 1, "expand to 6"), (3, 2, "exceeds MTD"), (6, 1, "tolerated"),
    (6, 2, "exceeds MTD"), (2, 0, "incomplete"), (2, 2, "exceeds MTD"), (6, 0, "tolerated"),
])
def test_3_plus_3_decisions(n_eval, n_dlt, decision):
    assert decide(n_eval, n_dlt, 3, 6) == decision


def _esc(levels_dlt):
    rows = []
    for level, n, k in levels_dlt:
        label = next(d.label for d in RS001.dose_levels if d.code == level)
        rows += [{"USUBJID": f"{level}-{i}", "COHORT": "ESCALATION", "TRT01A": f"{level} {label}", "SAFFL": "Y",
                  "DLTEVLFL": "Y", "DLTFL": "Y" if i < k else "N"} for i in range(n)]
    return pd.DataFrame(rows)


def test_mtd_statement():
    table, text = compute_escalation_summary(_esc([("DL1", 3, 0), ("DL2", 6, 1), ("DL3", 3, 2)]), RS001)
    assert table["DECISION"].tolist() == ["escalate", "tolerated", "exceeds MTD"]
    assert mtd_level(text) == "DL2"
    _, text = compute_escalation_summary(_esc([("DL1", 3, 0), ("DL2", 3, 2)]), RS001)
    assert mtd_level(text) is None and "MTD not determined" in text   # DL1 has only 3 evaluable
    _, text = compute_escalation_summary(_esc([("DL1", 3, 0), ("DL4", 6, 1)]), RS001)
    assert text.startswith("MTD not reached; highest dose level tested DL4")


@pytest.fixture(scope="module")
def simulated(simulated_adam):
    """RS001 simulated (another seed than the committed sample), exported, mapped and analysed."""
    sim, run, _ = simulated_adam("RS001", 36, 7)
    return sim.truth, run


def test_derived_dlt_and_dose_levels_agree_with_the_simulator(simulated):
    truth, run = simulated
    adsl = run.datasets["ADSL"].set_index("SUBJID")
    infused = [s for s in truth["subjects"] if s["infused"]]
    assert infused
    for s in infused:
        row = adsl.loc[s["SUBJECT"]]
        assert (row.DLTFL == "Y") == s["dlt"], s
        assert (row.DLTINVFL == "Y") == s["dlt_investigator"], s
        assert row.TRT01A.split(" ")[0] == s["dose_level"], s


def test_mtd_agrees_with_the_simulator(simulated):
    truth, run = simulated
    _, text = compute_escalation_summary(run.datasets["ADSL"], RS001)
    assert mtd_level(text) == truth["mtd"], (text, truth["mtd"], truth["escalation"])


def test_disagreement_report_lists_what_the_simulator_made_the_investigator_get_wrong(simulated):
    from adam.escalation import dlt_disagreements

    truth, run = simulated
    listed = set(dlt_disagreements(run.datasets["ADAE"], RS001).USUBJID.str.split("-", n=1).str[1])
    wrong = {s["SUBJECT"] for s in truth["subjects"] if s["infused"] and s["dlt_disagreement"]}
    assert listed == wrong
    assert isinstance(RS001.cutoff_date(dt.date(2025, 1, 1)), dt.date)
