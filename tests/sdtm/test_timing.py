"""Issue 12, timing items: DM reference dates (RFPENDTC from every dated record, RFENDTC null
for screen failures, RFXSTDTC/RFXENDTC with EX's times, DMDY), EX (dose form, EXADJ, visits),
SV (SVPRESP/SVOCCUR, dosing visits), LB (Day -5 pre-dose baseline, MRD method, ctDNA one
record per test, STRESN without float noise), SUPPIE QNAM and MH study days.

Checks on the committed sample transfers are written against the raw frames, not against
the algorithms under test; literal-frame tests pin each algorithm's rule.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sdtm.algorithms  # noqa: F401  (registers the plug-in algorithms before the module below)
from edc.read import read_transfer
from sdtm import dates, metadata
from sdtm.alg_findings import ConversionTable, standardize
from sdtm.algorithms import ALGORITHMS, Context
from sdtm.build import build_sdtm
from sdtm.spec import VarSpec, load_specs
from sdtm.subject_visits import build_sv

TRANSFERS = {"RS001": "data/raw/RS001/2025-05-27/csv", "GLOCART": "data/raw/GLOCART/2026-09-21/csv"}


@pytest.fixture(scope="module", params=list(TRANSFERS))
def built(request):
    study = request.param
    raw = read_transfer(TRANSFERS[study], study=study)
    return study, raw, build_sdtm(raw)


def _active(raw, form):
    df = raw.frames[form]
    return df[df["RECORDACTIVE"] != "0"]


# -- DM -----------------------------------------------------------------------------------------

def test_rfpendtc_is_the_last_date_of_any_record(built):
    """RFPENDTC = the latest date of any date field of any form of the subject (AE and CM end
    dates included), computed here from the raw frames independently of the algorithm."""
    study, raw, b = built
    dm = b.datasets()["DM"].set_index("USUBJID")
    latest = {}
    for form, df in raw.frames.items():
        df = _active(raw, form)
        for col in [c for c in df.columns if f"{c}_RAW" in df.columns]:
            for subj, dtc in zip(df["SUBJECT"], df[col]):
                if dtc and dtc > latest.get(subj, ""):
                    latest[subj] = dtc
    expected = pd.Series(latest).rename(lambda s: f"{study}-{s}")
    assert (dm["RFPENDTC"] == expected.reindex(dm.index).fillna("")).all()
    # Some subject's last contact is an AE or CM date later than every visit or disposition
    # form (the case the old list of forms missed).
    visit_forms = {"IC", "ENR", "INF", "GLOEX", "CART", "CONS", "SURV", "DS", "DTH"}
    old = {}
    for form in visit_forms & set(raw.frames):
        df = _active(raw, form)
        for col in [c for c in df.columns if f"{c}_RAW" in df.columns]:
            for subj, dtc in zip(df["SUBJECT"], df[col]):
                if dtc and dtc > old.get(subj, ""):
                    old[subj] = dtc
    old = pd.Series(old).rename(lambda s: f"{study}-{s}").reindex(dm.index).fillna("")
    assert (dm["RFPENDTC"] > old).any()
    assert (dm["RFPENDTC"] >= dm["RFENDTC"]).all()


def test_rfendtc_null_for_screen_failures(built):
    _, _, b = built
    dm = b.datasets()["DM"]
    sf = dm["ARMNRS"] == "SCREEN FAILURE"
    assert sf.any()
    assert (dm.loc[sf, "RFENDTC"] == "").all()
    assert (dm.loc[~sf & (dm["RFSTDTC"] != ""), "RFENDTC"] != "").all()


def test_rfxstdtc_rfxendtc_equal_ex_with_time(built):
    """SDTMIG 3.4 DM: RFXSTDTC = earliest EXSTDTC, RFXENDTC = latest EXENDTC (or EXSTDTC),
    as the full ISO text: the time EX carries is kept."""
    _, _, b = built
    ds = b.datasets()
    dm, ex = ds["DM"].set_index("USUBJID"), ds["EX"]
    first = ex.groupby("USUBJID")["EXSTDTC"].min()
    end = ex["EXENDTC"].where(ex["EXENDTC"] != "", ex["EXSTDTC"])
    last = end.groupby(ex["USUBJID"]).max()
    assert (dm.loc[first.index, "RFXSTDTC"] == first).all()
    assert (dm.loc[last.index, "RFXENDTC"] == last).all()
    assert dm["RFXSTDTC"].str.contains("T").sum() >= len(first) // 2


def test_dmdy_is_study_day_of_dmdtc(built):
    _, _, b = built
    dm = b.datasets()["DM"]
    expected = dates.study_day(dm["DMDTC"], dm["RFSTDTC"])
    pd.testing.assert_series_equal(dm["DMDY"], expected, check_names=False)
    assert dm["DMDY"].notna().any() and (dm["DMDY"] != 0).all()


def _ctx(raw: dict, src: pd.DataFrame) -> Context:
    out = pd.DataFrame({"USUBJID": "S-" + src["SUBJECT"]}, index=src.index)
    return Context(study=None, src=src, out=out, raw=raw)


def test_last_participation_and_timed_subject_date_literal():
    ae = pd.DataFrame({"SUBJECT": ["1", "1", "2"], "AESTDAT": ["2025-01-02", "2025-01-05", "2025-02"],
                       "AESTDAT_RAW": ["x", "x", "x"], "AEENDAT": ["2025-03-01", "", ""],
                       "AEENDAT_RAW": ["x", "", ""], "AETERM": ["2099-01-01", "", ""]})
    ld = pd.DataFrame({"SUBJECT": ["1", "1", "2"], "LDDAT": ["2025-01-01", "2025-01-01", "2025-01-09"],
                       "LDDAT_RAW": ["x", "x", "x"], "LDTIM": ["11:30", "11:00", ""]})
    src = pd.DataFrame({"SUBJECT": ["1", "2", "3"]})
    ctx = _ctx({"AE": ae, "LD": ld}, src)
    got = ALGORITHMS["last_participation"].run(ctx, VarSpec("RFPENDTC", "last_participation", "all", {}, None))
    # AETERM is no date field (no _RAW twin), so its date-like text is ignored.
    assert got.tolist() == ["2025-03-01", "2025-02", ""]
    first = VarSpec("RFXSTDTC", "subject_date", [{"date": "LD.LDDAT", "time": "LD.LDTIM"}], {}, None)
    assert ALGORITHMS["subject_date"].run(ctx, first).tolist() == ["2025-01-01T11:00", "2025-01-09", ""]


# -- EX -----------------------------------------------------------------------------------------

def test_ex_dose_form_adjustment_and_visits(built):
    study, raw, b = built
    ds = b.datasets()
    ex = ds["EX"]
    frm = metadata.codelist("FRM")
    assert (ex["EXDOSFRM"] != "").all()
    assert ex["EXDOSFRM"].map(lambda v: frm.lookup(v) == v).all()
    assert ex["VISITNUM"].notna().all() and (ex["VISIT"] != "").all()
    ld = ex[ex["EXCAT"] == "LYMPHODEPLETION"]
    assert ld["EXSTDTC"].str.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$").all()
    sv = ds["SV"]
    visits = set(sv["VISIT"])
    assert {"DAY -4", "DAY -3"} <= visits
    if study == "GLOCART":
        assert "CYCLE 1 DAY 2" in visits
    else:
        raw_ld = _active(raw, "LD")
        assert (ld["EXADJ"] != "").sum() == (raw_ld["LDADJ"] == "Y").sum() > 0
        assert set(ld.loc[ld["EXADJ"] != "", "EXADJ"]) == set(raw_ld.loc[raw_ld["LDADJ"] == "Y", "LDADJR"])
        assert "DOSRED" not in set(ds["SUPPEX"]["QNAM"])
    # every EX visit is an SV visit of the subject, dated on the dosing day
    keys = sv.set_index(["USUBJID", "VISITNUM"])
    for (u, v), grp in ex.groupby(["USUBJID", "VISITNUM"]):
        row = keys.loc[(u, v)]
        assert row["SVSTDTC"] <= grp["EXSTDTC"].str[:10].min()


# -- SV -----------------------------------------------------------------------------------------

def test_sv_presp_occur_literal():
    dm = pd.DataFrame({"USUBJID": ["S1"], "RFSTDTC": ["2025-01-10"]})
    ex = pd.DataFrame({"STUDYID": "X", "USUBJID": "S1", "VISITNUM": [2.0, 3.0],
                       "VISIT": ["DAY -5", "UNSCHEDULED 2.01"], "EXSTDTC": ["2025-01-05T11:00", "2025-01-06"]})
    sv = build_sv({"EX": ex}, dm)
    assert sv["VISIT"].tolist() == ["DAY -5", "UNSCHEDULED 2.01"]
    assert sv["SVPRESP"].tolist() == ["Y", ""] and sv["SVOCCUR"].tolist() == ["Y", ""]
    assert sv["SVSTDTC"].tolist() == ["2025-01-05", "2025-01-06"]


def test_sv_presp_occur_on_samples(built):
    _, _, b = built
    sv = b.datasets()["SV"]
    unplanned = sv["VISIT"].str.startswith("UNSCHEDULED")
    assert (sv.loc[~unplanned, ["SVPRESP", "SVOCCUR"]] == "Y").all().all()
    assert (sv.loc[unplanned, ["SVPRESP", "SVOCCUR"]] == "").all().all()


# -- LB -----------------------------------------------------------------------------------------

def test_predose_labs_on_first_treatment_day_are_baseline(built):
    """First treatment carries its time, so the labs drawn that morning before it are the last
    values before first treatment (LBLOBXFL), not the screening ones: RS001's Day -5 labs
    before FC, GLOCART's Cycle 1 Day 1 labs before obinutuzumab."""
    study, _, b = built
    visit = {"RS001": "DAY -5", "GLOCART": "CYCLE 1 DAY 1"}[study]
    ds = b.datasets()
    lb, dm = ds["LB"], ds["DM"].set_index("USUBJID")
    flagged = lb[lb["LBLOBXFL"] == "Y"]
    assert (flagged["VISIT"] == visit).sum() > len(flagged) * 0.75
    first_day = flagged[flagged["VISIT"] == visit]
    ref = first_day["USUBJID"].map(dm["RFXSTDTC"])
    assert (first_day["LBDTC"].str[:10] == ref.str[:10]).all()
    assert (first_day["LBDTC"] < ref).all() and (first_day["LBDTC"].str.len() == 16).all()


def test_mrd_method_and_ctdna_one_record_per_test(built):
    study, raw, b = built
    lb = b.datasets()["LB"]
    if study == "RS001":
        mrd = lb[lb["LBTESTCD"] == "MRD"]
        assert len(mrd) and (mrd["LBMETHOD"] == "FLOW CYTOMETRY").all()
        return
    ct = lb[lb["LBCAT"] == "CIRCULATING TUMOR DNA"]
    assert set(ct["LBTESTCD"]) == {"CTDNA", "CTDNACON"}
    assert not ct.duplicated(["USUBJID", "VISITNUM", "LBTESTCD"]).any()
    assert (ct["LBSPEC"] == "PLASMA").all()
    calls = ct[ct["LBTESTCD"] == "CTDNA"]
    assert set(calls["LBSTRESC"]) <= {"POSITIVE", "NEGATIVE", "INDETERMINATE"}
    level = ct[ct["LBTESTCD"] == "CTDNACON"]
    assert level["LBSTRESN"].notna().all() and (level["LBSTRESU"] == "genEq/mL").all()
    rawct = _active(raw, "CTDNA")
    assert len(calls) == (rawct["CTRES"] != "").sum() and len(level) == (rawct["CTVAL"] != "").sum()


def test_stresn_is_the_number_stresc_shows_literal():
    table = ConversionTable(Path("lab_units.yaml"), {"CREAT": "umol/L"},
                            {("CREAT", "umol/L"): 1.0, ("CREAT", "mg/dL"): 88.4})
    out, _ = standardize(pd.Series(["1.3", "1.2", "<0.5"]), pd.Series(["mg/dL"] * 3),
                         pd.Series(["CREAT"] * 3), table)
    assert 1.3 * 88.4 != 114.92               # 114.92000000000002: the float noise removed
    assert out["STRESC"].tolist() == ["114.92", "106.08", "<44.2"]
    assert out["STRESN"].iloc[0] == 114.92 and out["STRESN"].iloc[1] == 106.08
    assert np.isnan(out["STRESN"].iloc[2])


def test_stresn_equals_stresc_on_samples(built):
    _, _, b = built
    lb = b.datasets()["LB"]
    num = lb["LBSTRESN"].notna()
    assert num.any()
    assert (pd.to_numeric(lb.loc[num, "LBSTRESC"]) == lb.loc[num, "LBSTRESN"]).all()
    assert (lb.loc[num, "LBSTRESN"].map(repr).str.len() <= 14).all()


# -- SUPP QNAMs, MH -----------------------------------------------------------------------------

def _ig_names() -> tuple[set[str], set[str]]:
    path = metadata.METADATA_DIR / f"sdtmig_{metadata.IG_VERSION}_variables.csv"
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    names = {r["variable"] for r in rows}
    suffixes = {r["variable"][2:] for r in rows
                if r["dataset"] not in ("SUPPQUAL", "RELREC") and r["variable"][:2] == r["dataset"][:2]}
    return names, suffixes


@pytest.mark.parametrize("study", list(TRANSFERS))
def test_supp_qnams_are_no_model_variable(study):
    """A QNAM that is a standard variable (IESPEC = IE + --SPEC) would read as one."""
    from edc.forms import load_forms

    names, suffixes = _ig_names()
    specs = load_specs(study, load_forms(study))
    clash = [(s.path.name, q.qnam) for group in specs.values() for s in group for q in s.supp
             if q.qnam in names or (q.qnam.startswith(s.domain) and q.qnam[len(s.domain):] in suffixes)]
    assert not [c for c in clash if c[0] == "ie.yaml"], clash
    if study == "RS001":
        qnams = {q.qnam for s in specs["IE"] for q in s.supp}
        assert qnams == {"IECRTSPC"}


def test_mh_study_days(built):
    _, _, b = built
    ds = b.datasets()
    mh, dm = ds["MH"], ds["DM"].set_index("USUBJID")
    ref = mh["USUBJID"].map(dm["RFSTDTC"])
    for dtc, dy in (("MHSTDTC", "MHSTDY"), ("MHENDTC", "MHENDY")):
        if dy not in mh.columns:
            continue
        pd.testing.assert_series_equal(mh[dy], dates.study_day(mh[dtc], ref), check_names=False)
    assert "MHSTDY" in mh.columns and mh["MHSTDY"].notna().any()
    assert metadata.domain("MH").has("MHENDY") and metadata.domain("EX").has("VISITNUM")
