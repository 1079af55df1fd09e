"""Findings domains LB, VS, EG (both studies) and PC (RS001): the algorithms on tiny literal
frames, then each domain built from the committed sample export, reconciled with the raw
records, CT-checked, and compared with values read by hand from the raw CSV."""
import re
from functools import cache

import numpy as np
import pandas as pd
import pytest

import sdtm.algorithms  # noqa: F401  (registers the plug-in algorithms before the module below)
from clinpipe.config import load_study
from clinpipe.errors import ConfigError
from edc.read import read_transfer
from sdtm import metadata
from sdtm.alg_findings import (
    conversion_table,
    last_before_exposure,
    normal_range_indicator,
    standardize,
)
from sdtm.algorithms import ALGORITHMS, Context
from sdtm.build import build_sdtm
from sdtm.spec import VarSpec

TRANSFERS = {"RS001": "data/raw/RS001/2025-05-27/csv", "GLOCART": "data/raw/GLOCART/2026-09-21/csv"}
ISO_DTC = re.compile(r"^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2})?)?)?)?$")
S = pd.Series


# -- algorithms on literal frames --------------------------------------------------------------

@pytest.fixture(scope="module")
def labs():
    return conversion_table("lab_units.yaml")


def test_standardize_converts_to_si_and_keeps_limits_as_text(labs):
    result = S(["8.2", "0.82", "0.86", "<0.5", "3.50", "NEGATIVE", "", "362"])
    unit = S(["g/dL", "mg/dL", "mg/dL", "mg/dL", "10^9/L", "", "", "mg/dL"])
    test = S(["HGB", "BILI", "CREAT", "CRP", "WBC", "CRP", "ALB", "FIBRINO"])
    out, problem = standardize(result, unit, test, labs)
    assert out["STRESC"].tolist() == ["82", "14.022", "76.024", "<5", "3.50", "NEGATIVE", "", "3.62"]
    assert out["STRESN"].tolist()[:3] == pytest.approx([82.0, 14.022, 76.024])
    assert np.isnan(out["STRESN"][3]) and np.isnan(out["STRESN"][5]) and np.isnan(out["STRESN"][6])
    assert out["STRESN"][4] == 3.5 and out["STRESN"][7] == pytest.approx(3.62)
    assert out["STRESU"].tolist() == ["g/L", "umol/L", "umol/L", "mg/L", "10^9/L", "", "", "g/L"]
    assert (problem == "").all()


def test_standardize_reports_unknown_units_instead_of_guessing(labs):
    out, problem = standardize(S(["5.1", "5.1", "7", "7"]), S(["mmol/L", "", "U/L", "g/L"]),
                               S(["HGB", "HGB", "XYZ", "HGB"]), labs)
    assert out["STRESC"].tolist() == ["", "", "", "7"]
    assert out["STRESU"].tolist() == ["", "", "", "g/L"]
    assert "no factor to the standard unit 'g/L'" in problem[0]
    assert "without a unit" in problem[1]
    assert "no standard unit" in problem[2]
    assert problem[3] == ""


def test_standardize_without_table_keeps_the_collected_unit():
    out, problem = standardize(S(["36.9", "<LLOQ", ""]), S(["C", "cells/uL", "C"]))
    assert out["STRESC"].tolist() == ["36.9", "<LLOQ", ""]
    assert out["STRESN"][0] == 36.9 and out["STRESN"][1:].isna().all()
    assert out["STRESU"].tolist() == ["C", "", ""]
    assert (problem == "").all()


def test_conversion_table_synonyms_are_one_unit(labs):
    # CT synonyms are read as their submission value: ng/mL is ug/L, pg/mL is ng/L
    assert labs.standard["FERRITIN"] == "ug/L" and labs.standard["INTLK6"] == "ng/L"
    assert labs.factors[("HGB", "g/dL")] == 10 and labs.factors[("CREAT", "mg/dL")] == 88.4
    assert labs.factors[("BILI", "mg/dL")] == 17.1 and labs.factors[("WBC", "10^9/L")] == 1


@pytest.mark.parametrize("entry,expect", [
    ("HGB: {standard: g/L, from: {furlongs: 2}}", "unit 'furlongs' is not a term of codelist UNIT"),
    ("HGB: {standard: g/L, from: {g/dL: -10}}", "must be a positive number"),
    ("WBC: {standard: 10^9/L, from: {10^3/uL: 1000}}", "its factor must be 1"),
    ("HEMOGLOBIN: {standard: g/L}", "not a submission value of codelist LBTESTCD"),
])
def test_conversion_table_errors_name_the_line(tmp_path, monkeypatch, entry, expect):
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "bad_units.yaml").write_text(
        f"codelists: {{test: LBTESTCD, unit: UNIT}}\ntests:\n  ALT: {{standard: U/L}}\n  {entry}\n")
    monkeypatch.setenv("CLINPIPE_MAPPINGS", str(tmp_path))
    conversion_table.cache_clear()
    try:
        with pytest.raises(ConfigError) as err:
            conversion_table("bad_units.yaml")
    finally:
        conversion_table.cache_clear()
    assert expect in str(err.value) and "line 4" in str(err.value)


def test_normal_range_indicator_exact_and_limit_results():
    result = S(["3", "5", "7", "12", "<5", "<5", "<5", ">100", ">100", "NEG", "4", "4"])
    low = S([4, 4, 4, 4, np.nan, 5, 3, np.nan, 4, 4, np.nan, np.nan])
    high = S([10, 10, 10, 10, 10, 10, 10, 100, np.nan, 10, 10, np.nan])
    got = normal_range_indicator(result, low, high).tolist()
    # "<5": NORMAL with no lower limit; LOW when the lower limit is 5; undecidable above 3;
    # ">100" against upper limit 100 is HIGH; no range at all gives nothing.
    assert got == ["LOW", "NORMAL", "NORMAL", "HIGH", "NORMAL", "LOW", "", "HIGH", "NORMAL", "", "NORMAL", ""]


def test_last_before_exposure_rules():
    subj = S(["A"] * 7 + ["B", "B"])
    test = S(["HGB"] * 5 + ["ALB", "ALB", "HGB", "HGB"])
    dtc = S(["2025-01-01", "2025-01-05T08:00", "2025-01-10T07:00", "2025-01-10", "2025-01-12",
             "2025-01-09", "2025-01", "2025-02-01", "2025-02-01"])
    ref = S(["2025-01-10T09:00"] * 7 + ["2025-02-01", "2025-02-01"])
    has = S([True, True, True, True, True, True, True, True, False])
    same_day = S([False] * 7 + [True, True])
    got = last_before_exposure(subj, test, dtc, ref, has, same_day).tolist()
    # A/HGB: 07:00 on the reference day is before 09:00 (the date-only record that day is not:
    # no time, no same-day rule); A/ALB: the partial date is never flagged; B: the same-day
    # pre-dose record counts, but not one without a result.
    assert got == ["", "", "Y", "", "", "Y", "", "Y", ""]


def _ctx(src, out=None):
    return Context(study=load_study("RS001"), src=src, out=out if out is not None else pd.DataFrame(index=src.index))


def test_ct_paired_gives_the_test_name_of_the_code():
    out = pd.DataFrame({"LBTESTCD": ["INTLK6", "HGB", "", "ZZZ"]})
    ctx = _ctx(pd.DataFrame(index=out.index), out)
    got = ALGORITHMS["ct_paired"].run(ctx, VarSpec("LBTEST", "ct_paired", "LBTESTCD", {"codelist": "LBTEST"}, None))
    assert got.tolist() == ["Interleukin 6", "Hemoglobin", "", ""]
    assert [(i[1], i[2]) for i in ctx.issues] == [(3, "ZZZ")]


def test_split_ct_checks_item_values():
    items = [{"field": "SPO2", "testcd": "OXYSAT"}, {"field": "X", "testcd": "SPO2"}]
    src = pd.DataFrame({"_ITEM": [0, 1, 0]})
    ctx = _ctx(src)
    ctx.spec_split = items
    got = ALGORITHMS["split_ct"].run(ctx, VarSpec("VSTESTCD", "split_ct", "testcd", {"codelist": "VSTESTCD"}, None))
    assert got.tolist() == ["OXYSAT", "SPO2", "OXYSAT"]
    assert [(i[1], i[2]) for i in ctx.issues] == [(1, "SPO2")]


def test_number_with_code_map():
    src = pd.DataFrame({"T": ["PRE", "D1", "", "UNS", "D9"]})
    ctx = _ctx(src)
    got = ALGORITHMS["number"].run(ctx, VarSpec("PCTPTNUM", "number", "T",
                                                {"map": {"PRE": 1, "D1": 2, "UNS": None}}, None))
    assert got.tolist()[:2] == [1.0, 2.0] and got[2:].isna().all()
    assert [(i[1], i[2]) for i in ctx.issues] == [(4, "D9")]


# -- the domains from the sample exports -------------------------------------------------------

@cache
def _build(study):
    raw = read_transfer(TRANSFERS[study], study=study)
    return study, raw, build_sdtm(raw)


@pytest.fixture(params=list(TRANSFERS))
def built(request):
    return _build(request.param)     # once per study for the whole module


def _raw(raw, form):
    df = raw.frames[form]
    return df[df["RECORDACTIVE"] != "0"]


DOMAIN_FORMS = {"LB": "LB", "VS": "VS", "EG": "EG", "PC": "CK"}


def _mine(b, dom):
    """The domain's records that come from this module's form (other forms may feed the same
    domain, e.g. RS001 marrow results from RSALL into LB), found through the build's trace."""
    res = b.results[dom]
    trace = res.trace[res.trace["FORM"] == DOMAIN_FORMS[dom]]
    keys = set(zip(trace["USUBJID"], trace["SEQ"]))
    data = res.data
    return data[[k in keys for k in zip(data["USUBJID"], data[f"{dom}SEQ"])]]


def _domains(study):
    return ["LB", "VS", "EG", "PC"] if study == "RS001" else ["LB", "VS", "EG"]


def test_every_record_accounted_for(built):
    study, raw, b = built
    rec = b.reconciliation.set_index("FORM")
    for dom in _domains(study):
        form = DOMAIN_FORMS[dom]
        row = rec.loc[form]
        assert row["UNACCOUNTED"] == 0 and dom in row["DOMAINS"], (study, form)
        assert row["MAPPED"] + row["REJECTED"] == row["RECORDS"] == len(raw.frames[form])
        assert b.issues[b.issues["DOMAIN"] == dom].empty, b.issues[b.issues["DOMAIN"] == dom]
    if study == "GLOCART":
        assert "PC" not in b.datasets()


def test_record_counts(built):
    study, raw, b = built
    ds = {dom: _mine(b, dom) for dom in _domains(study)}
    assert len(ds["LB"]) == len(_raw(raw, "LB"))            # one test per LB record
    vs = _raw(raw, "VS")
    items = ["SYSBP", "DIABP", "PULSE", "TEMP", "RESP", "SPO2", "WEIGHT", "HEIGHT"]
    assert len(ds["VS"]) == int((vs[items] != "").to_numpy().sum())
    eg = _raw(raw, "EG")
    assert len(ds["EG"]) == int((eg[["EGHR", "QTCF", "EGINTP"]] != "").to_numpy().sum())
    if study == "RS001":
        assert len(ds["PC"]) == len(_raw(raw, "CK"))


def test_keys_unique_and_dates_iso(built):
    study, _, b = built
    for dom in _domains(study):
        df = b.datasets()[dom]
        assert not df.duplicated(["STUDYID", "USUBJID", f"{dom}SEQ"]).any()
        assert (df["DOMAIN"] == dom).all() and (df["STUDYID"] == study).all()
        mine = _mine(b, dom)
        assert mine[f"{dom}DTC"].map(lambda v: bool(ISO_DTC.match(v))).all()
        assert (df[f"{dom}TESTCD"].str.len() <= 8).all() and (df[f"{dom}TEST"].str.len() <= 40).all()
    if study == "RS001":
        pc = b.datasets()["PC"]
        assert pc["PCRFTDTC"].map(lambda v: bool(ISO_DTC.match(v))).all()
        assert pc["PCELTM"].str.fullmatch(r"(P\d+D|PT0H)?").all()
        # the pre-infusion sample is planned at the infusion start; only unscheduled ones have no plan
        assert (pc.loc[pc["PCTPT"] == "PRE-INFUSION", "PCELTM"] == "PT0H").all()
        assert (pc.loc[pc["PCELTM"] == "", "PCTPT"] == "UNSCHEDULED").all()
        assert set(pc["PCNAM"]) == {"RS001 CENTRAL CELLULAR KINETICS LABORATORY"}


CT_VARS = {
    "LB": {"LBTESTCD": "LBTESTCD", "LBTEST": "LBTEST", "LBORRESU": "UNIT", "LBSTRESU": "UNIT",
           "LBNRIND": "NRIND", "LBSTAT": "ND", "LBSPEC": "SPECTYPE", "LBLOBXFL": "NY"},
    "VS": {"VSTESTCD": "VSTESTCD", "VSTEST": "VSTEST", "VSORRESU": "VSRESU", "VSSTRESU": "VSRESU",
           "VSLOBXFL": "NY"},
    "EG": {"EGTESTCD": "EGTESTCD", "EGTEST": "EGTEST", "EGORRESU": "UNIT", "EGSTRESU": "UNIT",
           "EGMETHOD": "EGMETHOD", "EGCLSIG": "NY", "EGLOBXFL": "NY"},
    "PC": {"PCORRESU": "PKUNIT", "PCSTRESU": "PKUNIT", "PCSTAT": "ND", "PCSPEC": "SPECTYPE",
           "PCMETHOD": "METHOD"},
}
# Terms of CDISC Unit (C71620) outside its PK subset PKUNIT, documented in the spec that uses
# them: no sponsor-made unit is left (the flow unit cells/uL is CT 10^6/L, synonym /uL).
EXTENSIONS = {("PC", "PCORRESU"): {"10^6/L"}, ("PC", "PCSTRESU"): {"10^6/L"}}


def test_unit_extensions_are_cdisc_unit_terms():
    unit = metadata.codelist("UNIT")
    for terms in EXTENSIONS.values():
        assert all(unit.lookup(t) == t for t in terms)
    assert unit.lookup("/uL") == "10^6/L"          # the collected cells/uL, as CT spells it


def test_controlled_terms(built):
    study, _, b = built
    for dom in _domains(study):
        df = _mine(b, dom)
        for var, cl_name in CT_VARS[dom].items():
            cl = metadata.codelist(cl_name)
            values = set(df[var]) - {""} - EXTENSIONS.get((dom, var), set())
            bad = {v for v in values if cl.lookup(v) != v}
            assert not bad, (study, var, bad)
    eg = b.datasets()["EG"]
    intp = eg[eg["EGTESTCD"] == "INTP"]
    assert set(intp["EGSTRESC"]) <= set(metadata.codelist("NORMABNM").terms)
    assert (eg.loc[eg["EGTESTCD"] != "INTP", "EGCLSIG"] == "").all()


def test_one_last_observation_before_exposure(built):
    _, _, b = built
    ref = b.datasets()["DM"].set_index("USUBJID")["RFXSTDTC"]
    for dom in ["LB", "VS", "EG"]:
        df = _mine(b, dom)
        flagged = df[df[f"{dom}LOBXFL"] == "Y"]
        assert not flagged.duplicated(["USUBJID", f"{dom}TESTCD"]).any()
        assert len(flagged) > 0
        start = flagged["USUBJID"].map(ref)
        day = flagged[f"{dom}DTC"].str[:10]
        tpt = flagged.get(f"{dom}TPT", pd.Series("", index=flagged.index))
        # Same day as the first treatment: only a sample timed before the dosing time (e.g.
        # the Day -5 pre-dose labs before FC) or a pre-infusion timepoint.
        timed = (flagged[f"{dom}DTC"].str.len() == 16) & (start.str.len() == 16)
        same_day = day == start.str[:10]
        assert ((day < start.str[:10]) | (same_day & (tpt == "PRE-INFUSION"))
                | (same_day & timed & (flagged[f"{dom}DTC"] < start))).all()
        assert (flagged[f"{dom}ORRES"] != "").all()


def _one(df, **where):
    rows = df
    for k, v in where.items():
        rows = rows[rows[k] == v]
    assert len(rows) == 1, where
    return rows.iloc[0]


def test_golden_rs001():
    _, _, b = _build("RS001")
    ds = b.datasets()
    lb = _mine(b, "LB")
    # lb.csv record 711: 103-001 screening bilirubin 0.82 mg/dL (0.10-1.20) -> SI x 17.1
    r = _one(lb, USUBJID="RS001-103-001", LBTESTCD="BILI", VISIT="SCREENING")
    assert (r.LBORRES, r.LBORRESU, r.LBSTRESC, r.LBSTRESU, r.LBNRIND) == ("0.82", "mg/dL", "14.022", "umol/L", "NORMAL")
    assert (r.LBSTRESN, r.LBSTNRLO, r.LBSTNRHI) == pytest.approx((14.022, 1.71, 20.52))
    assert (r.LBDTC, r.LBTEST, r.LBCAT, r.LBSPEC) == ("2023-01-06T09:40", "Bilirubin", "CHEMISTRY", "SERUM OR PLASMA")
    # record 707: hemoglobin 8.2 g/dL (13.5-17.5) -> 82 g/L, LOW
    r = _one(lb, USUBJID="RS001-103-001", LBTESTCD="HGB", VISIT="SCREENING")
    assert (r.LBSTRESC, r.LBSTRESN, r.LBSTNRLO, r.LBNRIND) == ("82", 82.0, 135.0, "LOW")
    # record 3195: 103-002 screening CRP "<0.5" mg/dL, upper limit 0.90 -> "<5" mg/L, NORMAL
    r = _one(lb, USUBJID="RS001-103-002", LBTESTCD="CRP", VISIT="SCREENING")
    assert (r.LBORRES, r.LBSTRESC, r.LBSTRESU, r.LBNRIND) == ("<0.5", "<5", "mg/L", "NORMAL")
    assert np.isnan(r.LBSTRESN) and np.isnan(r.LBSTNRLO) and r.LBSTNRHI == 9.0
    # record 151: 101-001 Day 0 fibrinogen not done, sample clotted
    r = _one(lb, USUBJID="RS001-101-001", LBTESTCD="FIBRINO", VISIT="DAY 0")
    assert (r.LBSTAT, r.LBREASND, r.LBORRES, r.LBSTRESC, r.LBNRIND) == ("NOT DONE", "Sample clotted", "", "", "")
    # 103-001's first exposure (RFXSTDTC) is the Day -5 fludarabine dose at 13:05 (ld.csv
    # record 796); the Day -5 samples were drawn at 09:20 that morning, so they are the last
    # before exposure for each of the 15 tests of the LB form.
    dm = ds["DM"].set_index("USUBJID")
    flagged = lb[(lb.USUBJID == "RS001-103-001") & (lb.LBLOBXFL == "Y")]
    day_m5 = lb[(lb.USUBJID == "RS001-103-001") & (lb.VISIT == "DAY -5")]
    assert dm.at["RS001-103-001", "RFXSTDTC"] == "2023-01-10T13:05"
    assert day_m5.LBDTC.eq("2023-01-10T09:20").all()
    assert set(flagged.VISIT) == {"DAY -5"} and len(flagged) == 15

    vs = ds["VS"]
    # vs.csv record 155: 101-001 Day 0 pre-infusion 12:15, SYSBP 113, weight 51.9; after the
    # first lymphodepletion dose (RFXSTDTC), so not the last observation before exposure
    r = _one(vs, USUBJID="RS001-101-001", VSTESTCD="SYSBP", VSTPT="PRE-INFUSION")
    assert (r.VSORRES, r.VSORRESU, r.VSSTRESN, r.VSDTC, r.VSDY, r.VSTPTNUM, r.VSLOBXFL) == \
        ("113", "mmHg", 113.0, "2022-10-30T12:15", 1.0, 1.0, "")
    post = _one(vs, USUBJID="RS001-101-001", VSTESTCD="SYSBP", VSTPT="POST-INFUSION")
    assert post.VSLOBXFL == ""
    # height only at screening (record 18): 155.5 cm, the last before exposure
    r = _one(vs, USUBJID="RS001-101-001", VSTESTCD="HEIGHT")
    assert (r.VSSTRESC, r.VSSTRESU, r.VISIT, r.VSLOBXFL) == ("155.5", "cm", "SCREENING", "Y")
    assert _one(vs, USUBJID="RS001-101-001", VSTESTCD="OXYSAT", VISIT="SCREENING").VSTEST == "Oxygen Saturation"

    eg = ds["EG"]
    # eg.csv record 48: 102-001 screening HR 76, QTcF 440, "Abnormal, not clinically significant"
    sub = eg[(eg.USUBJID == "RS001-102-001") & (eg.VISIT == "SCREENING")]
    assert sub.EGTESTCD.tolist() == ["EGHRMN", "QTCFAG", "INTP"]
    assert sub.EGSTRESN.tolist()[:2] == [76.0, 440.0] and sub.EGSTRESU.tolist() == ["beats/min", "ms", ""]
    r = sub.iloc[2]
    assert (r.EGORRES, r.EGSTRESC, r.EGCLSIG, r.EGDTC) == ("Abnormal, not clinically significant", "ABNORMAL", "N",
                                                          "2022-10-19")

    pc = ds["PC"]
    # ck.csv records 113/114: 101-001 Day 4 at 10:50, qPCR 138 copies/ug gDNA; flow <LLOQ (0.5)
    r = _one(pc, USUBJID="RS001-101-001", PCTESTCD="CARTGENE", PCTPT="DAY 4")
    assert (r.PCORRES, r.PCORRESU, r.PCSTRESC, r.PCSTRESN, r.PCSTRESU) == \
        ("138", "DNA copies/ug", "138", 138.0, "DNA copies/ug")
    assert (r.PCMETHOD, r.PCSPEC, r.PCELTM, r.PCTPTREF, r.PCRFTDTC, r.PCDTC, r.PCDY) == \
        ("REAL-TIME POLYMERASE CHAIN REACTION ASSAY", "BLOOD", "P4D", "RS001 INFUSION", "2022-10-30T12:45",
         "2022-11-03T10:50", 5.0)
    r = _one(pc, USUBJID="RS001-101-001", PCTESTCD="CARDNT", PCTPT="DAY 4")
    assert (r.PCORRES, r.PCSTRESC, r.PCSTRESU, float(r.PCLLOQ), r.PCMETHOD) == \
        ("<LLOQ", "BLQ", "10^6/L", 0.5, "FLOW CYTOMETRY")
    assert np.isnan(r.PCSTRESN)
    # ck.csv: 101-009 pre-infusion sample not collected
    r = _one(pc, USUBJID="RS001-101-009", PCTESTCD="CARTGENE", PCTPT="PRE-INFUSION")
    assert (r.PCSTAT, r.PCREASND, r.PCSTRESC, r.PCORRESU, r.PCELTM) == ("NOT DONE", "Sample not collected", "", "",
                                                                        "PT0H")


def test_golden_glocart():
    _, _, b = _build("GLOCART")
    lb = _mine(b, "LB")
    # lb.csv record 5: 203-001 screening WBC 4.43 x10^3/uL (4.50-11.00): 10^3/uL is CT 10^9/L
    r = _one(lb, USUBJID="GLOCART-203-001", LBTESTCD="WBC", VISIT="SCREENING")
    assert (r.LBORRESU, r.LBSTRESC, r.LBSTRESN, r.LBSTRESU, r.LBNRIND, r.LBTEST) == \
        ("10^9/L", "4.43", 4.43, "10^9/L", "LOW", "Leukocytes")
    # record 19: IL-6 4.5 pg/mL, upper limit 5.0 -> INTLK6, ng/L, NORMAL
    r = _one(lb, USUBJID="GLOCART-203-001", LBTESTCD="INTLK6", VISIT="SCREENING")
    assert (r.LBORRES, r.LBORRESU, r.LBSTRESU, r.LBNRIND, r.LBTEST) == ("4.5", "ng/L", "ng/L", "NORMAL", "Interleukin 6")
    # records 14, 16, 18: albumin 3.9 g/dL -> 39 g/L; fibrinogen 358 mg/dL -> 3.58 g/L;
    # ferritin 494 ng/mL -> 494 ug/L, above 336
    assert _one(lb, USUBJID="GLOCART-203-001", LBTESTCD="ALB", VISIT="SCREENING").LBSTRESC == "39"
    fib = _one(lb, USUBJID="GLOCART-203-001", LBTESTCD="FIBRINO", VISIT="SCREENING")
    assert (fib.LBSTRESC, fib.LBSTNRLO, fib.LBSTNRHI, fib.LBNRIND) == ("3.58", 2.0, 4.0, "NORMAL")
    fer = _one(lb, USUBJID="GLOCART-203-001", LBTESTCD="FERRITIN", VISIT="SCREENING")
    assert (fer.LBORRESU, fer.LBSTRESN, fer.LBNRIND) == ("ug/L", 494.0, "HIGH")

    vs = b.datasets()["VS"]
    # 204-001: first obinutuzumab dose 2024-06-14 11:00, Cycle 1 Day 1 vital signs 11:10 the same
    # day (record 3106); without a time in DM's reference date the screening record of
    # 2024-06-03 (record 3868, weight 100.7 kg, height 181.7 cm) is the last before exposure.
    c1 = _one(vs, USUBJID="GLOCART-204-001", VSTESTCD="SYSBP", VISIT="CYCLE 1 DAY 1")
    assert (c1.VSORRES, c1.VSDTC, c1.VSTPT, c1.VSLOBXFL) == ("150", "2024-06-14T11:10", "", "")
    scr = _one(vs, USUBJID="GLOCART-204-001", VSTESTCD="WEIGHT", VISIT="SCREENING")
    assert (scr.VSSTRESN, scr.VSLOBXFL) == (100.7, "Y")
