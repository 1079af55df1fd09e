"""ADEX from EX datasets built by hand (standard SDTMIG 3.4 EX variables only, no SUPP--):
administration records, RS001 dose received vs planned, GLOCART counts."""
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from adam.adex import build_adex
from adam.cutoff import CutoffView
from adam.merged import RuleError
from adam.metadata import load_spec
from adam.read import read_sdtm
from adam.write import conform
from clinpipe.config import load_study

CUT = dt.date(2025, 5, 27)


def _adsl(study, subjects, armcd):
    # by hand, so ADEX is tested apart from the ADSL builder
    n = len(subjects)
    return pd.DataFrame({"STUDYID": study, "USUBJID": subjects, "SUBJID": [s[-7:] for s in subjects],
                         "SITEID": "101", "ARMCD": armcd, "TRT01P": "", "TRT01PN": np.nan, "TRT01A": "",
                         "TRT01AN": np.nan, "TRTSDT": [pd.Timestamp("2024-01-10")] * n})


def _frames(tmp_path, ex, study):
    folder = tmp_path / "sdtm"
    folder.mkdir()
    pd.DataFrame({"STUDYID": study, "DOMAIN": "DM", "USUBJID": sorted(set(ex.USUBJID))}).to_parquet(folder / "dm.parquet")
    ex = ex.assign(STUDYID=study, DOMAIN="EX")
    ex["EXSEQ"] = ex.groupby("USUBJID").cumcount() + 1.0
    ex.to_parquet(folder / "ex.parquet")
    return CutoffView(read_sdtm(folder), CUT)


def _rs001_ex():
    fc = []
    for s in ("RS001-101-001", "RS001-101-002", "RS001-101-003", "RS001-101-004", "RS001-101-005"):
        for d in ("2024-01-05", "2024-01-06", "2024-01-07"):
            fc.append((s, "FLUDARABINE", "LYMPHODEPLETION", 30.0, "mg/m2", d, ""))
            fc.append((s, "CYCLOPHOSPHAMIDE", "LYMPHODEPLETION", 300.0, "mg/m2", d, ""))
    fc[0] = ("RS001-101-001", "FLUDARABINE", "LYMPHODEPLETION", 24.0, "mg/m2", "2024-01-05", "Reduced creatinine clearance")
    inf = [  # planned DL2 = 3x10^6/kg: 2.9 (97%), 2.2 (73%), 3.6 (120%: the boundary), 2.39 (just outside)
        ("RS001-101-001", "RS001", "CELL THERAPY", 2.9, "10^6/kg", "2024-01-10T10:00", ""),
        ("RS001-101-002", "RS001", "CELL THERAPY", 2.2, "10^6/kg", "2024-01-10T10:00", ""),
        ("RS001-101-003", "RS001", "CELL THERAPY", 3.6, "10^6/kg", "2024-01-10T10:00", ""),
        ("RS001-101-004", "RS001", "CELL THERAPY", 2.39, "10^6/kg", "2024-01-10T10:00", ""),
    ]   # RS001-101-005: FC only, never infused
    return pd.DataFrame(fc + inf, columns=["USUBJID", "EXTRT", "EXCAT", "EXDOSE", "EXDOSU", "EXSTDTC", "EXADJ"])


@pytest.fixture
def rs001(tmp_path):
    ex = _rs001_ex()
    adsl = _adsl("RS001", sorted(set(ex.USUBJID)), "ESC_DL2")
    adex = build_adex(_frames(tmp_path, ex, "RS001"), load_study("RS001"), adsl)
    return conform(adex, load_spec("ADEX", "RS001"))


def _summary(adex, code):
    return adex[adex.PARAMCD == code].set_index("USUBJID")


def test_one_record_per_administration(rs001):
    adm = rs001[rs001.PARCAT1 == "INDIVIDUAL"]
    assert len(adm) == 34 and (adm.SRCDOM == "EX").all() and adm.SRCSEQ.notna().all()
    inf = adm[adm.PARAMCD == "RS1DOSE"].set_index("USUBJID")
    assert inf.loc["RS001-101-001", "AVAL"] == 2.9 and inf.PARAM.unique().tolist() == ["RS001 Dose (10^6 CAR+ cells/kg)"]
    assert inf.loc["RS001-101-001", "ASTDTM"] == pd.Timestamp("2024-01-10T10:00")
    assert inf.loc["RS001-101-001", "ASTDY"] == 1
    flu = adm[(adm.PARAMCD == "FLUDOSE") & (adm.USUBJID == "RS001-101-001")]
    assert flu.PARAM.iloc[0] == "Fludarabine Dose (mg/m2)" and flu.ASTDY.tolist() == [-5, -4, -3]
    assert pd.isna(flu.ASTDTM).all()        # no time collected: no datetime invented
    assert flu.EXADJ.iloc[0] == "Reduced creatinine clearance"


def test_dose_received_vs_planned(rs001):
    planned, received = _summary(rs001, "RS1PLDOS"), _summary(rs001, "RS1DOSA")
    pct, flag = _summary(rs001, "RS1PCT"), _summary(rs001, "RS1ASGFL")
    assert (planned.AVAL == 3.0e6).all() and planned.PARAM.iloc[0] == "RS001 Planned Dose (CAR+ cells/kg)"
    assert received.loc["RS001-101-001", "AVAL"] == pytest.approx(2.9e6)
    assert received.loc["RS001-101-005", "AVAL"] == 0
    assert pct.loc["RS001-101-002", "AVAL"] == pytest.approx(100 * 2.2 / 3)
    assert flag.AVALC.to_dict() == {"RS001-101-001": "Y", "RS001-101-002": "N", "RS001-101-003": "Y",
                                    "RS001-101-004": "N", "RS001-101-005": "N"}
    assert flag.loc["RS001-101-001", "AVAL"] == 1 and flag.loc["RS001-101-002", "AVAL"] == 0


def test_fc_summaries(rs001):
    assert (_summary(rs001, "FLUN").AVAL == 3).all() and (_summary(rs001, "CYCN").AVAL == 3).all()
    cum = _summary(rs001, "FLUCUM")
    assert cum.loc["RS001-101-001", "AVAL"] == 84 and cum.loc["RS001-101-002", "AVAL"] == 90
    assert _summary(rs001, "FCADJN").AVAL.to_dict()["RS001-101-001"] == 1
    params = rs001.drop_duplicates(["PARAMCD", "PARAM"])
    assert params.PARAMCD.is_unique and params.PARAMCD.str.len().max() <= 8
    assert rs001.groupby("USUBJID").ASEQ.apply(lambda a: a.tolist() == list(range(1, len(a) + 1))).all()


def _glocart_ex():
    s = "GLOCART-201-001"
    rows = [
        (s, "OBINUTUZUMAB", "SALVAGE", "GLOFITAMAB REGIMEN", 1000.0, "mg", "2024-01-01"),
        (s, "GEMCITABINE", "SALVAGE", "AGENT X", 1000.0, "mg/m2", "2024-01-02"),   # GemOx: two records,
        (s, "OXALIPLATIN", "SALVAGE", "AGENT X", 100.0, "mg/m2", "2024-01-02"),     # one day
        (s, "GLOFITAMAB", "SALVAGE", "GLOFITAMAB REGIMEN", 2.5, "mg", "2024-01-08"),
        (s, "GLOFITAMAB", "SALVAGE", "GLOFITAMAB REGIMEN", 10.0, "mg", "2024-01-15"),
        (s, "BENDAMUSTINE", "SALVAGE", "AGENT X", 90.0, "mg/m2", "2024-01-22"),     # not in the table
        (s, "AUTOLOGOUS ANTI-CD19 CAR-T CELLS", "CELL THERAPY", "", 2.5, "10^6/kg", "2024-03-01"),
        (s, "GLOFITAMAB", "CONSOLIDATION", "GLOFITAMAB REGIMEN", 30.0, "mg", "2024-04-01"),
        (s, "GLOFITAMAB", "CONSOLIDATION", "GLOFITAMAB REGIMEN", 30.0, "mg", "2024-04-22"),
        ("GLOCART-201-002", "OBINUTUZUMAB", "SALVAGE", "GLOFITAMAB REGIMEN", 1000.0, "mg", "2024-02-01"),
        ("GLOCART-201-002", "AUTOLOGOUS ANTI-CD19/CD22 CAR-T CELLS", "CELL THERAPY", "", 4.5, "10^6/kg", "2024-03-01"),
    ]
    return pd.DataFrame(rows, columns=["USUBJID", "EXTRT", "EXCAT", "EXSCAT", "EXDOSE", "EXDOSU", "EXSTDTC"])


def test_glocart_counts(tmp_path):
    ex = _glocart_ex()
    adsl = _adsl("GLOCART", ["GLOCART-201-001", "GLOCART-201-002"], "CART")
    adex = conform(build_adex(_frames(tmp_path, ex, "GLOCART"), load_study("GLOCART"), adsl),
                   load_spec("ADEX", "GLOCART"))

    def val(code, s="GLOCART-201-001"):
        return _summary(adex, code).loc[s]

    assert val("GLON").AVAL == 2 and val("GLON", "GLOCART-201-002").AVAL == 0
    assert val("OBIFL").AVALC == "Y" and val("AGXFL", "GLOCART-201-002").AVALC == "N"
    assert val("AGXN").AVAL == 2                    # GemOx day + bendamustine day
    assert val("CONSN").AVAL == 2 and val("CARTDOSA").AVAL == 2.5
    assert val("CARTRGFL").AVALC == "Y" and val("CARTRGFL", "GLOCART-201-002").AVALC == "N"
    cart = adex[adex.PARAMCD == "CARTDOSE"]
    assert len(cart) == 2 and cart.PARAM.unique().tolist() == ["CAR-T Dose (10^6 cells/kg)"]
    benda = adex[adex.EXTRT == "BENDAMUSTINE"]
    assert benda.PARAMCD.tolist() == ["BENDDOSE"] and benda.PARAM.tolist() == ["Bendamustine Dose (mg/m2)"]


def test_one_treatment_in_two_units_is_an_error(tmp_path):
    ex = _glocart_ex()
    ex.loc[3, "EXDOSU"] = "mg/kg"
    adsl = _adsl("GLOCART", ["GLOCART-201-001", "GLOCART-201-002"], "CART")
    with pytest.raises(RuleError, match="more than one unit"):
        build_adex(_frames(tmp_path, ex, "GLOCART"), load_study("GLOCART"), adsl)


def test_ex_subject_not_in_adsl_is_an_error(tmp_path):
    ex = _rs001_ex()
    adsl = _adsl("RS001", ["RS001-101-001"], "ESC_DL2")
    with pytest.raises(RuleError, match="not in DM/ADSL"):
        build_adex(_frames(tmp_path, ex, "RS001"), load_study("RS001"), adsl)
