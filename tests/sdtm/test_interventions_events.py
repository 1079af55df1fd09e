"""EX, PR, CM, MH, DS and IE for both studies, built from the committed sample transfers.

Each domain builds, accounts for every raw record of its forms, has unique keys, holds only
CDISC CT values in CT-controlled variables and ISO 8601 dates; a few literal values were
checked by hand against the raw CSV. Golden tests for the `ie_criterion` algorithm.
"""
import re

import pandas as pd
import pytest

from clinpipe.config import load_study
from edc.read import read_transfer
from sdtm import metadata
from sdtm.algorithms import ALGORITHMS, Context
from sdtm.build import build_sdtm
from sdtm.spec import VarSpec

TRANSFERS = {"RS001": "data/raw/RS001/2025-05-27/csv", "GLOCART": "data/raw/GLOCART/2026-09-21/csv"}
DOMAINS = ["EX", "PR", "CM", "MH", "DS", "IE"]
# The raw forms these domains read (directly or, for DTH, as the DEATH disposition source).
FORMS = {
    "RS001": ["IC", "MH", "PRIOR", "CM", "DS", "DTH", "ENR", "DX", "LD", "INF", "SUBTX"],
    "GLOCART": ["IC", "MH", "PRIOR", "CM", "DS", "DTH", "ENR", "DX", "APH", "SCC", "GLOEX", "AGX",
                "COH", "LD", "COND", "ASCT", "CART", "CONS", "SUBTX"],
}
ISO8601 = re.compile(r"^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2})?)?)?)?$")


@pytest.fixture(scope="module")
def built():
    out = {}
    for study, path in TRANSFERS.items():
        raw = read_transfer(path, study=study)
        out[study] = (raw, build_sdtm(raw))
    return out


def _raw(built, study, form):
    return built[study][0].frames[form]


def _ds(built, study):
    return built[study][1].datasets()


def _one(df: pd.DataFrame, **where) -> pd.Series:
    rows = df
    for col, value in where.items():
        rows = rows[rows[col] == value]
    assert len(rows) == 1, f"{where}: {len(rows)} rows"
    return rows.iloc[0]


def _supp(built, study, domain, usubjid, seq) -> dict:
    supp = _ds(built, study)[f"SUPP{domain}"]
    rows = supp[(supp["USUBJID"] == usubjid) & (supp["IDVARVAL"] == f"{seq:.0f}")]
    return dict(zip(rows["QNAM"], rows["QVAL"]))


# -- every record accounted for -----------------------------------------------------------

@pytest.mark.parametrize("study", TRANSFERS)
def test_forms_reconcile(built, study):
    rec = built[study][1].reconciliation.set_index("FORM")
    for form in FORMS[study]:
        row = rec.loc[form]
        unmapped = {f for f in row["FIELDS_UNMAPPED"].split(", ") if f}
        assert row["STATUS"] == "mapped" and not unmapped, (form, unmapped)
        assert row["UNACCOUNTED"] == 0, form
        assert row["MAPPED"] + row["REJECTED"] == row["RECORDS"], form


@pytest.mark.parametrize("study", TRANSFERS)
def test_record_counts_follow_the_raw_forms(built, study):
    rejected = built[study][1].rejections
    assert not rejected["FORM"].isin(FORMS[study]).any()   # so raw counts are the accepted counts

    def raw(form):
        return _raw(built, study, form)

    ds = _ds(built, study)
    proc = raw("PRIOR")["PTTYPE"].isin(["2", "3", "4"])
    # subsequent anti-cancer therapy: drug therapy in CM, procedures in PR (cm_subtx / pr_subtx)
    sub_proc = raw("SUBTX")["STXTYPE"].isin(["2", "3", "4"])
    assert len(ds["CM"]) == len(raw("CM")) + (~proc).sum() + (~sub_proc).sum()
    # RS001 screen failures have no DX form: their diagnosis comes from ENR (mh_enr.yaml)
    sf_without_dx = ~raw("ENR")["SUBJECT"].isin(raw("DX")["SUBJECT"]) & (raw("ENR")["ELIG"] == "N")
    assert len(ds["MH"]) == len(raw("MH")) + len(raw("DX")) + (sf_without_dx.sum() if study == "RS001" else 0)
    assert len(ds["IE"]) == (raw("ENR")["ELIG"] == "N").sum()
    # GLOCART: one more disposition event per end-of-phase-1 decision (COH, ds_coh.yaml).
    assert len(ds["DS"]) == (len(raw("IC")) + len(raw("ENR")) + (raw("DS")["DSDECOD"] != "2").sum()
                             + len(raw("DTH")) + (len(raw("COH")) if study == "GLOCART" else 0))
    if study == "RS001":
        assert len(ds["EX"]) == len(raw("INF")) + len(raw("LD"))
        assert len(ds["PR"]) == proc.sum() + sub_proc.sum()
    else:
        ex_forms = ["GLOEX", "AGX", "LD", "COND", "CART", "CONS"]
        assert len(ds["EX"]) == sum(len(raw(f)) for f in ex_forms)
        assert len(ds["PR"]) == (proc.sum() + sub_proc.sum() + len(raw("APH")) + len(raw("SCC"))
                                 + len(raw("ASCT")))


# -- structure: keys, CT, dates, lengths ----------------------------------------------------

@pytest.mark.parametrize("study", TRANSFERS)
@pytest.mark.parametrize("domain", DOMAINS)
def test_keys_unique_and_supp_points_to_records(built, study, domain):
    ds = _ds(built, study)
    df = ds[domain]
    seq = f"{domain}SEQ"
    assert not df.duplicated(["STUDYID", "USUBJID", seq]).any()
    assert df[seq].notna().all()
    supp = ds.get(f"SUPP{domain}")
    if supp is not None:
        assert not supp.duplicated(["USUBJID", "IDVAR", "IDVARVAL", "QNAM"]).any()
        keys = set(zip(df["USUBJID"], df[seq].map(lambda v: f"{v:.0f}")))
        assert set(zip(supp["USUBJID"], supp["IDVARVAL"])) <= keys
        assert (supp["QNAM"].str.len() <= 8).all() and (supp["QLABEL"].str.len() <= 40).all()


@pytest.mark.parametrize("study", TRANSFERS)
@pytest.mark.parametrize("domain", DOMAINS)
def test_ct_controlled_values_are_ct(built, study, domain):
    df = _ds(built, study)[domain]
    for var in metadata.domain(domain).variables:
        if not var.codelists or var.name not in df.columns:
            continue
        lists = [metadata.codelist(c) for c in var.codelists]
        values = set(df[var.name].dropna().astype(str)) - {""}
        bad = {v for v in values if not any(cl.lookup(v) == v for cl in lists)}
        if var.name == "EPOCH":     # sponsor epochs the study declares (C99079 is extensible)
            bad -= set(load_study(study).trial_summary.design.epoch_extensions)
        assert not bad, f"{domain}.{var.name}: {sorted(bad)}"


@pytest.mark.parametrize("study", TRANSFERS)
@pytest.mark.parametrize("domain", DOMAINS)
def test_dates_iso8601_and_text_lengths(built, study, domain):
    df = _ds(built, study)[domain]
    for col in df.columns:
        values = df[col].dropna()
        if values.empty:
            continue
        if col.endswith("DTC"):
            text = values.astype(str)
            assert text[text != ""].str.match(ISO8601).all(), col
        elif values.map(lambda v: isinstance(v, str)).all():
            assert (values.str.len() <= 200).all(), col


def test_no_issues_in_these_domains(built):
    for study in TRANSFERS:
        issues = built[study][1].issues
        assert issues[issues["DOMAIN"].isin(DOMAINS)].empty, study


# -- DS: milestones, disposition and death ----------------------------------------------------

@pytest.mark.parametrize("study", TRANSFERS)
def test_ds_one_death_record_per_dead_subject_on_the_death_date(built, study):
    ds, dm = _ds(built, study)["DS"], _ds(built, study)["DM"]
    # The study-participation DEATH; GLOCART's phase-1 disposition (DSSCAT STUDY TREATMENT,
    # ds_coh.yaml) also says DEATH for a subject who died in phase 1, on the same date.
    deaths = ds[(ds["DSDECOD"] == "DEATH") & (ds["DSSCAT"] == "STUDY PARTICIPATION")]
    assert not deaths["USUBJID"].duplicated().any()
    dead = dm[dm["DTHFL"] == "Y"].set_index("USUBJID")["DTHDTC"]
    assert set(deaths["USUBJID"]) == set(dead.index)
    assert (deaths.set_index("USUBJID")["DSSTDTC"] == dead.reindex(deaths["USUBJID"])).all()


@pytest.mark.parametrize("study", TRANSFERS)
def test_ds_consent_and_eligibility_milestones(built, study):
    ds, dm = _ds(built, study)["DS"], _ds(built, study)["DM"]
    consent = ds[ds["DSDECOD"] == "INFORMED CONSENT OBTAINED"].set_index("USUBJID")["DSSTDTC"]
    assert (consent.reindex(dm["USUBJID"]).values == dm["RFICDTC"].values).all()
    elig = ds[ds["DSDECOD"].str.startswith("ELIGIBILITY")]
    assert set(elig["USUBJID"]) == set(dm["USUBJID"])
    failed = elig.loc[elig["DSDECOD"] == "ELIGIBILITY CRITERIA NOT MET", "USUBJID"]
    assert set(failed) == set(_ds(built, study)["IE"]["USUBJID"])
    assert set(failed) == set(dm.loc[dm["ARMNRS"] == "SCREEN FAILURE", "USUBJID"])


def test_ds_golden_rs001(built):
    ds = _ds(built, "RS001")["DS"]
    done = _one(ds, USUBJID="RS001-101-001", DSCAT="DISPOSITION EVENT")
    assert (done["DSDECOD"], done["DSTERM"], done["DSSTDTC"]) == ("COMPLETED", "Completed 24-month follow-up",
                                                                 "2024-10-19")
    death = _one(ds, USUBJID="RS001-102-003", DSDECOD="DEATH")
    assert (death["DSSTDTC"], death["DSSCAT"], death["DSTERM"]) == ("2023-03-30", "STUDY PARTICIPATION", "Death")
    # Cause of death and autopsy are Death Details (DD), no longer SUPPDS qualifiers.
    assert _supp(built, "RS001", "DS", "RS001-102-003", death["DSSEQ"]) == {}
    dd = _ds(built, "RS001")["DD"].query("USUBJID == 'RS001-102-003'")
    assert dd[["DDTESTCD", "DDTEST", "DDORRES", "DDSTRESC", "DDRESCAT"]].values.tolist() == [
        ["AUTOPIND", "Autopsy Indicator", "No", "N", ""],
        ["PRCDTH", "Primary Cause of Death", "Disease progression", "DISEASE PROGRESSION", "DISEASE PROGRESSION"]]
    sf = _one(ds, USUBJID="RS001-102-012", DSCAT="DISPOSITION EVENT")
    assert (sf["DSDECOD"], sf["DSTERM"], sf["DSSTDTC"]) == ("SCREEN FAILURE", "Screen failure: IN02", "2024-02-20")


# -- IE -----------------------------------------------------------------------------------

def test_ie_golden(built):
    ie = _ds(built, "RS001")["IE"]
    rec = _one(ie, USUBJID="RS001-102-012")
    assert (rec["IETESTCD"], rec["IECAT"], rec["IEORRES"], rec["IESTRESC"], rec["IEDTC"]) == (
        "IN02", "INCLUSION", "N", "N", "2024-02-20")
    assert rec["IETEST"] == "CD19-positive B-NHL or B-ALL, relapsed or refractory after >= 2 lines of therapy"
    assert (rec["VISITNUM"], rec["VISIT"]) == (1, "SCREENING")
    assert _supp(built, "RS001", "IE", "RS001-102-012", rec["IESEQ"]) == {"IECRTSPC": "CD19 negative on repeat biopsy"}
    ex = _one(_ds(built, "GLOCART")["IE"], USUBJID="GLOCART-201-001")
    assert (ex["IETESTCD"], ex["IETEST"], ex["IECAT"], ex["IEORRES"]) == (
        "EX01", "Active central nervous system lymphoma", "EXCLUSION", "Y")


@pytest.mark.parametrize("study", TRANSFERS)
def test_ie_matches_trial_inclusion_exclusion(built, study):
    trial_design = pytest.importorskip("sdtm.trial_design")
    ti = trial_design.build_ti(load_study(study), built[study][0].forms).set_index("IETESTCD")
    ie = _ds(built, study)["IE"]
    assert (ie["IETEST"].values == ti.loc[ie["IETESTCD"], "IETEST"].values).all()
    assert (ie["IECAT"].values == ti.loc[ie["IETESTCD"], "IECAT"].values).all()


# -- EX -----------------------------------------------------------------------------------

def test_ex_golden_rs001(built):
    ex = _ds(built, "RS001")["EX"]
    inf = _one(ex, USUBJID="RS001-101-001", EXTRT="RS001")
    assert (inf["EXDOSE"], inf["EXDOSU"], inf["EXROUTE"], inf["EXDOSFRM"], inf["EXLOT"]) == (
        "0.99", "10^6/kg", "INTRAVENOUS", "SUSPENSION", "RS1-2210-238")
    assert (inf["EXSTDTC"], inf["EXENDTC"], inf["EXSTDY"]) == ("2022-10-30T12:45", "2022-10-30T13:11", 1)
    assert _supp(built, "RS001", "EX", "RS001-101-001", inf["EXSEQ"]) == {
        "DOSELVL": "DL1", "TOTCELL": "50.8", "WTDOSE": "51.3", "INFVOL": "70", "INFINT": "N"}
    # ld.csv record 71: FC started 2 days early (Day -7, within the Day -5 visit window) at
    # 12:00, fludarabine reduced for creatinine clearance (EXADJ, not SUPPEX).
    flu = _one(ex, USUBJID="RS001-101-001", EXTRT="FLUDARABINE", EXSTDTC="2022-10-23T12:00")
    assert (flu["EXCAT"], flu["EXDOSE"], flu["EXDOSU"], flu["EXSTDY"]) == ("LYMPHODEPLETION", "24", "mg/m2", -7)
    assert (flu["EXDOSFRM"], flu["EXADJ"], flu["VISIT"], flu["VISITNUM"]) == (
        "INJECTION, SOLUTION", "Reduced creatinine clearance", "DAY -5", 2)
    assert _supp(built, "RS001", "EX", "RS001-101-001", flu["EXSEQ"]) == {"BSA": "1.49", "TOTDOSE": "35.8"}


def test_ex_golden_glocart(built):
    ex = _ds(built, "GLOCART")["EX"]
    obi = _one(ex, USUBJID="GLOCART-201-003", EXTRT="OBINUTUZUMAB")
    assert (obi["EXDOSE"], obi["EXDOSU"], obi["EXSTDTC"], obi["EXSTDY"], obi["EXCAT"]) == (
        "1000", "mg", "2023-07-31T10:25", 1, "SALVAGE")
    glo = _one(ex, USUBJID="GLOCART-201-003", EXTRT="GLOFITAMAB", EXSTDTC="2023-08-07T11:05")
    assert glo["EXDOSE"] == "2.5"
    assert _supp(built, "GLOCART", "EX", "GLOCART-201-003", glo["EXSEQ"]) == {
        "CYCLE": "1", "CYCDAY": "8", "STEPUP": "Y", "INFINT": "N", "DOSDELAY": "N"}
    gem = ex[(ex["USUBJID"] == "GLOCART-201-003") & (ex["EXTRT"] == "GEMCITABINE")]
    assert gem["EXSTDTC"].tolist() == ["2023-08-01", "2023-08-22"]
    assert set(gem["EXSCAT"]) == {"AGENT X"} and set(gem["EXROUTE"]) == {"INTRAVENOUS"}
    assert set(gem["EXDOSFRM"]) == {"INJECTION, POWDER, LYOPHILIZED, FOR SOLUTION"}
    assert gem["VISIT"].tolist() == ["CYCLE 1 DAY 2", "CYCLE 2 DAY 1"]
    # 201-004's FC started on 2023-10-30 and the CAR-T followed after a 4-day rest (FC moved
    # 2 days early within its window, issue 12), so CAR-T Day 0 is 2023-11-06.
    cart = _one(ex, USUBJID="GLOCART-201-004", EXCAT="CELL THERAPY")
    assert (cart["EXTRT"], cart["EXDOSE"], cart["EXSTDTC"], cart["EXLOT"]) == (
        "AUTOLOGOUS ANTI-CD19 CAR-T CELLS", "3.46", "2023-11-06T11:35", "L00007CD")
    fc = ex[(ex["USUBJID"] == "GLOCART-201-004") & (ex["EXCAT"] == "LYMPHODEPLETION")]
    assert fc["EXSTDTC"].str[:10].min() == "2023-10-30" and (fc["EXSTDTC"].str.len() == 16).all()
    # RFSTDTC is the first glofitamab-based dose: no GLOCART exposure precedes study day 1
    assert (ex["EXSTDY"].dropna() >= 1).all()


# -- PR, CM, MH ---------------------------------------------------------------------------

def test_pr_golden(built):
    pr = _one(_ds(built, "RS001")["PR"], USUBJID="RS001-101-004")
    assert (pr["PRTRT"], pr["PRDECOD"], pr["PRCAT"], pr["PRSTDTC"], pr["PRENDTC"]) == (
        "Autologous SCT (BEAM conditioning)", "AUTOLOGOUS STEM CELL TRANSPLANT", "PRIOR ANTI-CANCER THERAPY",
        "2022-06-08", "2022-07-04")
    assert _supp(built, "RS001", "PR", "RS001-101-004", pr["PRSEQ"]) == {
        "LINE": "3", "BESTRESP": "SD", "REFRACT": "Y"}
    g = _ds(built, "GLOCART")["PR"]
    asct = _one(g, USUBJID="GLOCART-202-005", PRCAT="TRANSPLANT")
    assert (asct["PRDOSE"], asct["PRDOSU"], asct["PRSTDTC"], asct["PRDECOD"]) == (
        "3.51", "10^6/kg", "2023-12-28", "AUTOLOGOUS STEM CELL TRANSPLANT")
    assert _supp(built, "GLOCART", "PR", "GLOCART-202-005", asct["PRSEQ"]) == {
        "ANCENGDT": "2024-01-10", "PLTENGDT": "2024-01-10"}
    aph = _one(g, USUBJID="GLOCART-201-003", PRTRT="LYMPHOCYTE APHERESIS")
    assert (aph["PRPRESP"], aph["PROCCUR"], aph["PRSTDTC"], aph["VISIT"]) == ("Y", "Y", "2023-07-29",
                                                                                "LYMPHOCYTE APHERESIS")
    assert _supp(built, "GLOCART", "PR", "GLOCART-201-003", aph["PRSEQ"]) == {
        "APHPRECI": "N", "MNCYLD": "3.14", "CD3YLD": "1.75"}
    day2 = _one(g, USUBJID="GLOCART-201-004", PRSTDTC="2023-10-12")
    assert _supp(built, "GLOCART", "PR", "GLOCART-201-004", day2["PRSEQ"]) == {
        "COLDAY": "2", "CD34YLD": "0.47", "MNCYLD": "4.29", "MOBREG": "G-CSF ALONE", "MOBSTDTC": "2023-10-06"}


def test_cm_golden(built):
    cm = _ds(built, "RS001")["CM"]
    prior = _one(cm, USUBJID="RS001-101-001", CMTRT="R-GemOx")
    assert (prior["CMCAT"], prior["CMSCAT"], prior["CMSTDTC"], prior["CMENDTC"]) == (
        "PRIOR ANTI-CANCER THERAPY", "CHEMOTHERAPY / IMMUNOCHEMOTHERAPY", "2022-04-27", "2022-07-18")
    assert _supp(built, "RS001", "CM", "RS001-101-001", prior["CMSEQ"]) == {
        "LINE": "2", "BESTRESP": "UNKNOWN", "REFRACT": "N"}
    flu = _one(cm, USUBJID="RS001-101-001", CMTRT="Fluconazole")
    assert (flu["CMCAT"], flu["CMDOSE"], flu["CMDOSU"], flu["CMROUTE"], flu["CMSTDTC"], flu["CMSTDY"]) == (
        "CONCOMITANT MEDICATION", "200", "mg", "ORAL", "2022-10-23", -7)
    # no prior transplant is in CM: it is a procedure (PR)
    assert not cm["CMTRT"].str.contains("SCT").any()


def test_mh_golden(built):
    mh = _ds(built, "RS001")["MH"]
    dx = _one(mh, USUBJID="RS001-101-001", MHCAT="PRIMARY DIAGNOSIS")
    assert (dx["MHTERM"], dx["MHSCAT"], dx["MHSTDTC"], dx["MHEVDTYP"]) == (
        "Diffuse large B-cell lymphoma", "B-CELL NON-HODGKIN LYMPHOMA", "2018-10-30", "INITIAL DIAGNOSIS")
    supp = _supp(built, "RS001", "MH", "RS001-101-001", dx["MHSEQ"])
    assert (supp["RRSTAT"], supp["RELDTC"], supp["NPRIOR"]) == ("RELAPSED AFTER LAST LINE", "2022-08-01", "2")
    assert "BMBLAST" not in supp                     # not collected for B-NHL: no SUPP record
    # baseline classifications are RS records now (rs_dx.yaml), not SUPPMH
    assert not {"STAGE", "ECOG", "BULKY", "IPI", "LDHELEV"} & set(supp)
    assert (dx["MHDECOD"], dx["MHBODSYS"]) == (
        "Diffuse large B-cell lymphoma", "Neoplasms benign, malignant and unspecified (incl cysts and polyps)")
    g = _ds(built, "GLOCART")["MH"]
    ongoing = g[g["MHCAT"] == "GENERAL MEDICAL HISTORY"]
    assert set(ongoing["MHENRTPT"].dropna()) - {""} == {"ONGOING"}
    assert (g["MHCAT"] == "PRIMARY DIAGNOSIS").sum() == len(_raw(built, "GLOCART", "DX"))


# -- ie_criterion algorithm (golden, literal frames) --------------------------------------------

def _run_criterion(part, codes, decodes):
    src = pd.DataFrame({"C": codes, "C_DEC": decodes})
    ctx = Context(study=None, src=src, out=pd.DataFrame(index=src.index))
    return ALGORITHMS["ie_criterion"].run(ctx, VarSpec("X", "ie_criterion", "C", {"part": part}, None)), ctx


def test_ie_criterion_text_and_category():
    codes = ["IN03", "EX1", "ZZ9", ""]
    decodes = ["Inclusion 3: measurable disease", "exclusion 1:  active CNS lymphoma", "Other rule", ""]
    text, _ = _run_criterion("IETEST", codes, decodes)
    assert text.tolist() == ["Measurable disease", "Active CNS lymphoma", "Other rule", ""]
    cat, ctx = _run_criterion("IECAT", codes, decodes)
    assert cat.tolist() == ["INCLUSION", "EXCLUSION", "", ""]
    assert [(i[1], i[2]) for i in ctx.issues] == [(2, "ZZ9")]


# -- issue 12: coding, screen-failure diagnosis, SUPPDM, apheresis contraindication ----------------

@pytest.mark.parametrize("study", TRANSFERS)
def test_mh_and_cm_are_coded(built, study):
    """The coding module's MedDRA-style MH coding (MHDECOD / MHBODSYS) and the drug dictionary's
    standardised name and ATC-style class (CMDECOD / CMCLAS / CMCLASCD) reach SDTM."""
    ds = _ds(built, study)
    mh, cm = ds["MH"], ds["CM"]
    assert (mh["MHDECOD"] != "").all() and (mh["MHBODSYS"] != "").all()
    hyp = mh[mh["MHTERM"] == "Peripheral neuropathy"]
    assert set(zip(hyp["MHDECOD"], hyp["MHBODSYS"])) <= {("Neuropathy peripheral", "Nervous system disorders")}
    con = cm[cm["CMCAT"] == "CONCOMITANT MEDICATION"]
    # every record, prior anti-cancer regimens included (coded as multi-ingredient entries)
    assert (cm[["CMDECOD", "CMCLAS", "CMCLASCD"]] != "").all().all()
    rchop = cm[cm["CMTRT"] == "R-CHOP"]
    assert set(rchop["CMDECOD"]) <= {"RITUXIMAB;CYCLOPHOSPHAMIDE;DOXORUBICIN;VINCRISTINE;PREDNISONE"}
    # one class per class code, codes in the made-up ATC shape (anatomical group X, not ATC's)
    assert (cm.groupby("CMCLASCD")["CMCLAS"].nunique() == 1).all()
    assert cm["CMCLASCD"].str.fullmatch(r"X\d\d[A-Z]{2}").all()
    acy = con[con["CMTRT"] == "Acyclovir"]
    assert set(acy["CMDECOD"]) == {"ACICLOVIR"} and set(acy["CMCLAS"]) == {"NUCLEOSIDE ANTIVIRALS"}


def test_screen_failure_diagnosis_rs001(built):
    """RS001 screen failures have no DX form: their disease and histology (ENR) are an MH
    primary-diagnosis record, no longer lost."""
    enr = _raw(built, "RS001", "ENR")
    mh = _ds(built, "RS001")["MH"]
    sf = enr[enr["ELIG"] == "N"]
    assert len(sf) > 0
    dx = mh[(mh["MHCAT"] == "PRIMARY DIAGNOSIS") & mh["USUBJID"].isin("RS001-" + sf["SUBJECT"])]
    assert len(dx) == len(sf)
    got = dict(zip(dx["USUBJID"], zip(dx["MHTERM"], dx["MHSCAT"])))
    for r in sf.itertuples():
        disease = {"B-NHL": "B-CELL NON-HODGKIN LYMPHOMA", "B-ALL": "B-CELL ACUTE LYMPHOBLASTIC LEUKEMIA"}[r.DISEASE]
        assert got["RS001-" + r.SUBJECT] == (r.HISTOL_DEC, disease)
    # exactly one primary diagnosis per subject
    assert not mh[mh["MHCAT"] == "PRIMARY DIAGNOSIS"].duplicated("USUBJID").any()


@pytest.mark.parametrize("study", TRANSFERS)
def test_suppdm_raceoth_and_xplan(built, study):
    dm_raw = _raw(built, study, "DM")
    ds = _ds(built, study)
    supp = ds.get("SUPPDM", pd.DataFrame(columns=["USUBJID", "QNAM", "QVAL", "IDVAR", "IDVARVAL"]))
    race = supp[supp["QNAM"] == "RACEOTH"]
    other = dm_raw[dm_raw["RACEOTH"] != ""]
    assert dict(zip(race["USUBJID"], race["QVAL"])) == dict(zip(study + "-" + other["SUBJECT"], other["RACEOTH"]))
    assert (supp["IDVAR"] == "").all() and (supp["IDVARVAL"] == "").all()     # DM: the subject is the key
    if study == "RS001":
        assert len(race) >= 1 and set(ds["DM"].set_index("USUBJID").loc[race["USUBJID"], "RACE"]) == {"OTHER"}
    else:
        enr = _raw(built, study, "ENR")
        xplan = supp[supp["QNAM"] == "XPLAN"]
        planned = enr[enr["XPLAN"] != ""]
        assert dict(zip(xplan["USUBJID"], xplan["QVAL"])) == dict(zip(study + "-" + planned["SUBJECT"], planned["XPLAN"]))


def test_apheresis_contraindication_reason_is_mapped():
    """APHCIR (reason apheresis before glofitamab was contraindicated) lands in SUPPPR with the
    contraindication, for a deferred (done later) and a not-yet-done apheresis. The sample has no
    contraindicated subject (5 %), so two of its records are edited the way the EDC would hold them."""
    import dataclasses

    from sdtm.engine import map_domain
    from sdtm.spec import load_specs

    raw = read_transfer(TRANSFERS["GLOCART"], study="GLOCART")
    aph = raw.frames["APH"].copy()
    aph.loc[0, ["APHCI", "APHCI_DEC", "APHCIR", "APHCIR_DEC"]] = ["Y", "Yes", "CYTO", "Insufficient blood counts"]
    aph.loc[1, ["APHCI", "APHCI_DEC", "APHCIR", "APHCIR_DEC", "APHDAT", "APHDAT_RAW", "APHMNC", "APHCD3"]] = [
        "Y", "Yes", "INF", "Active infection", "", "", "", ""]
    raw = dataclasses.replace(raw, frames={**raw.frames, "APH": aph})
    study = load_study("GLOCART")
    spec = next(s for s in load_specs("GLOCART", raw.forms)["PR"] if s.source == "APH")
    res, _ = map_domain(spec, raw, study)
    pr, supp = res.data, res.supp
    for i, (reason, occur) in enumerate([("Insufficient blood counts", "Y"), ("Active infection", "N")]):
        usubjid = "GLOCART-" + aph.at[i, "SUBJECT"]
        rec = pr[pr["USUBJID"] == usubjid].iloc[0]
        assert rec["PROCCUR"] == occur
        q = supp[(supp["USUBJID"] == usubjid) & (supp["IDVARVAL"] == f"{rec['PRSEQ']:.0f}")]
        got = dict(zip(q["QNAM"], q["QVAL"]))
        assert (got["APHPRECI"], got["APHCIRSN"]) == ("Y", reason)
    assert "PRREASOC" not in set(supp["QNAM"])     # not a model-variable name as QNAM
