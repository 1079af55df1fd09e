import datetime as dt
import re

import pytest

from clinpipe.config import load_study
from clinpipe.errors import ConfigError
from edc.forms import load_forms
from sdtm.metadata import CT_VERSION, codelist, domain
from sdtm.trial_design import build_trial_design, build_ts, planned_study_day, split_text

STUDIES = ["RS001", "GLOCART"]
RUN = {"data_cutoff": dt.date(2025, 3, 1), "first_subject_date": dt.date(2022, 9, 5), "actual_subjects": 37}

# FDA Technical Conformance Guide / SDTMIG 3.4 TS appendix parameters every submission carries.
REQUIRED_TS = {
    "ADDON", "AGEMAX", "AGEMIN", "LENGTH", "PLANSUB", "RANDOM", "SEXPOP", "STOPRULE", "TBLIND",
    "TCNTRL", "TDIGRP", "TINDTP", "TITLE", "TPHASE", "TTYPE", "CURTRT", "INDIC", "TRT", "REGID",
    "PCLAS", "FCNTRY", "ADAPT", "INTMODEL", "INTTYPE", "NARMS", "STYPE", "SSTDTC", "SENDTC",
    "ACTSUB", "HLTSUBJI", "SDTIGVER", "SDTMVER", "THERAREA", "DCUTDTC", "DCUTDESC", "OBJPRIM",
    "OBJSEC", "OUTMSPRI", "OUTMSSEC", "SPONSOR", "COMPTRT", "EXTTIND",
}
# Parameters whose value is CDISC CT, with their value codelist (SDTMIG TS appendix).
CT_VALUED = {
    "TPHASE": "C66737", "TTYPE": "C66739", "TINDTP": "C66736", "TBLIND": "C66735",
    "TCNTRL": "C66785", "SEXPOP": "C66732", "INTMODEL": "C99076", "INTTYPE": "C99078",
    "STYPE": "C99077", "ADDON": "C66742", "RANDOM": "C66742", "ADAPT": "C66742",
    "HLTSUBJI": "C66742", "EXTTIND": "C66742",
}
ISO_8601_VALUED = {"AGEMIN", "AGEMAX", "LENGTH", "SSTDTC", "SENDTC", "DCUTDTC"}
ISO_21090_NULL_FLAVORS = {"NI", "NA", "UNK", "ASKU", "NAV", "NASK", "PINF", "NINF", "OTH", "MSK", "INV"}


@pytest.fixture(scope="module", params=STUDIES)
def design(request):
    study = load_study(request.param)
    return request.param, study, build_trial_design(study, load_forms(request.param), **RUN)


def _ts(design, parmcd):
    ts = design[2]["TS"]
    return ts[ts.TSPARMCD == parmcd]


# -- every dataset ----------------------------------------------------------------------------

def test_columns_are_the_ig_variables(design):
    _, study, ds = design
    assert set(ds) == {"TA", "TE", "TV", "TI", "TS"}
    for name, df in ds.items():
        extra = [c for c in df.columns if c not in domain(name).names]
        assert [c for c in df.columns if c not in extra] == domain(name).names
        assert all(re.fullmatch(r"TSVAL\d+", c) for c in extra) and (not extra or name == "TS")
        assert (df.STUDYID == study.study.studyid).all() and (df.DOMAIN == name).all()


def test_required_variables_are_populated(design):
    for name, df in design[2].items():
        for var in domain(name).required():
            assert df[var].notna().all() and (df[var].astype(str) != "").all(), f"{name}.{var}"


def test_character_values_fit_xpt(design):
    for name, df in design[2].items():
        for var in domain(name).variables:
            if var.type == "Char":
                values = df[var.name]
                assert values.str.len().max() <= 200, f"{name}.{var.name}"
                assert values.map(str.isascii).all(), f"{name}.{var.name}"


# -- TE / TA ----------------------------------------------------------------------------------

def test_ta_elements_and_epochs_agree_with_te(design):
    _, study, ds = design
    ta, te = ds["TA"], ds["TE"]
    assert te.ETCD.is_unique
    element_of = dict(zip(te.ETCD, te.ELEMENT))
    assert set(ta.ETCD) <= set(te.ETCD)
    assert (ta.ELEMENT == ta.ETCD.map(element_of)).all()
    # CT terms, or the sponsor terms the study declares for stages CT has no term for.
    assert set(ta.EPOCH) <= set(codelist("C99079").terms) | set(study.trial_summary.design.epoch_extensions)
    for armcd, rows in ta.groupby("ARMCD"):
        assert list(rows.TAETORD) == list(range(1, len(rows) + 1))
        assert list(rows.ETCD) == study.arm(armcd).elements
    assert set(ta.ARMCD) == {a.armcd for a in study.arms}


def test_ta_branch_sits_on_the_assignment_element(design):
    _, study, ds = design
    ta = ds["TA"]
    branch = study.trial_summary.design.branch_element
    branched = ta[ta.TABRANCH != ""]
    assert set(branched.ETCD) == {branch}
    assert sorted(branched.ARMCD) == sorted(a.armcd for a in study.arms)


def test_te_durations_are_iso8601(design):
    te = design[2]["TE"]
    durations = te.TEDUR[te.TEDUR != ""]
    assert len(durations) and durations.str.fullmatch(r"P\d+[YMWD]").all()


def test_glocart_consolidation_is_a_planned_skip():
    study = load_study("GLOCART")
    ta = build_trial_design(study, load_forms("GLOCART"))["TA"]
    cart = ta[ta.ETCD == "CART"]
    assert len(cart) == 2 and cart.TATRANS.str.contains("Follow-up").all()
    assert set(ta[ta.TABRANCH != ""].TABRANCH) == {"Assigned to CAR-T alone", "Assigned to CAR-T + ASCT",
                                                  "Not assigned to a later stage"}


def test_glocart_shortened_arm_for_subjects_stopping_after_phase_1():
    """SDTMIG 3.4 DM assumption 4b: the part of the path completed is an arm of TA (GLOFIT),
    not a planned arm (NARMS 2); its path ends with follow-up after the salvage."""
    study = load_study("GLOCART")
    ds = build_trial_design(study, load_forms("GLOCART"))
    ta = ds["TA"]
    glofit = ta[ta.ARMCD == "GLOFIT"]
    assert glofit.ETCD.tolist() == ["SCRN", "GLOX", "FU"]
    assert glofit.ARM.unique().tolist() == ["Glofitamab-based salvage only"]
    assert glofit.EPOCH.tolist() == ["SCREENING", "INDUCTION TREATMENT", "FOLLOW-UP"]
    assert ds["TS"].set_index("TSPARMCD").loc["NARMS", "TSVAL"] == "2"


def test_glocart_epochs_distinguish_the_stages():
    ta = build_trial_design(load_study("GLOCART"), load_forms("GLOCART"))["TA"]
    asct = ta[ta.ARMCD == "CARTASCT"]
    assert asct.EPOCH.tolist() == ["SCREENING", "INDUCTION TREATMENT", "CONDITIONING", "CELLULAR THERAPY",
                                   "CELLULAR THERAPY", "CONSOLIDATION TREATMENT", "FOLLOW-UP"]
    cart = ta[ta.ARMCD == "CART"].set_index("ETCD").EPOCH
    assert cart["FC"] == "CONDITIONING" and cart["CART"] == "CELLULAR THERAPY"


def test_epoch_extension_must_be_declared_and_not_a_ct_term():
    study = load_study("GLOCART")
    rules = study.trial_summary.design
    undeclared = study.model_copy(update={"trial_summary": study.trial_summary.model_copy(
        update={"design": rules.model_copy(update={"epoch_extensions": []})})})
    with pytest.raises(ConfigError, match="CONDITIONING"):
        build_trial_design(undeclared, load_forms("GLOCART"))
    ct_term = study.model_copy(update={"trial_summary": study.trial_summary.model_copy(
        update={"design": rules.model_copy(update={"epoch_extensions": [*rules.epoch_extensions, "SCREENING"]})})})
    with pytest.raises(ConfigError, match="is a term of"):
        build_trial_design(ct_term, load_forms("GLOCART"))


# -- TV ---------------------------------------------------------------------------------------

def test_planned_study_day_has_no_day_zero():
    assert [planned_study_day(d) for d in (-5, -1, 0, 1, 28)] == [-5, -1, 1, 2, 29]


def test_tv_keys_and_study_days(design):
    _, study, ds = design
    tv, ta = ds["TV"], ds["TA"]
    assert not tv.duplicated(["VISITNUM", "ARMCD"]).any()
    # One row per visit, or one per arm for a visit restricted to arms.
    rows_per_visit = tv.VISITNUM.value_counts().to_dict()
    assert rows_per_visit == {v.visitnum: len(v.arms or [None]) for v in study.visits}
    assert (tv.groupby("VISITNUM").VISIT.nunique() == 1).all()
    assert not (tv.VISITDY == 0).any()
    assert set(tv.ARMCD) - {""} <= set(ta.ARMCD)
    assert (tv.TVSTRL != "").all()


def test_rs001_visit_days_follow_the_infusion():
    tv = build_trial_design(load_study("RS001"), load_forms("RS001"))["TV"].set_index("VISIT")
    assert tv.loc["Day -5", "VISITDY"] == -5
    assert tv.loc["Day 0", "VISITDY"] == 1      # infusion = RFSTDTC = study day 1
    assert tv.loc["Day 28", "VISITDY"] == 29
    assert tv.loc["Day 7", "TVSTRL"] == "7 days after RS001 infusion (Day 0), window -1 to +1 days"
    assert tv.loc["Day 7", "TVENRL"] == "8 days after RS001 infusion (Day 0)"
    assert (tv.ARMCD == "").all()


def test_glocart_only_reference_anchor_visits_have_a_study_day():
    study = load_study("GLOCART")
    tv = build_trial_design(study, load_forms("GLOCART"))["TV"]
    anchor_of = {v.visitnum: v.anchor for v in study.visits}
    on_ref = tv.VISITNUM.map(anchor_of) == study.trial_summary.design.study_day_anchor
    assert tv[on_ref].VISITDY.notna().all() and tv[~on_ref].VISITDY.isna().all()
    c1d1 = tv.set_index("VISIT").loc["Cycle 1 Day 1"]
    assert c1d1.VISITDY == 1 and c1d1.ARMCD == ""
    lymphodepletion = tv[tv.VISIT == "Day -5"]
    assert list(lymphodepletion.ARMCD) == ["CART"] and list(lymphodepletion.ARM) == ["CAR-T alone"]


# -- TI ---------------------------------------------------------------------------------------

def test_ti_from_eligibility_codelist(design):
    name, _, ds = design
    ti = ds["TI"]
    criteria = load_forms(name).codelists["IECRIT"]
    assert list(ti.IETESTCD) == list(criteria) and ti.IETESTCD.is_unique
    assert set(ti.IECAT) <= {"INCLUSION", "EXCLUSION"}
    assert (ti.IECAT == ti.IETESTCD.str[:2].map({"IN": "INCLUSION", "EX": "EXCLUSION"})).all()
    assert not ti.IETEST.str.match(r"(?i)(inclusion|exclusion)\s*\d").any()
    assert (ti.TIVERS != "").all()


def test_rs001_ti_text():
    ti = build_trial_design(load_study("RS001"), load_forms("RS001"))["TI"].set_index("IETESTCD")
    assert ti.loc["IN01", "IETEST"] == "Age 18-75 years"
    assert ti.loc["EX01", "IECAT"] == "EXCLUSION"


# -- TS ---------------------------------------------------------------------------------------

def test_ts_parameters_are_ct(design):
    ts = design[2]["TS"]
    parmcd, parm = codelist("C66738").terms, codelist("C67152").terms
    name_by_code = {code: name for name, code in parm.items()}
    assert set(ts.TSPARMCD) <= set(parmcd)
    assert (ts.TSPARM == ts.TSPARMCD.map(lambda p: name_by_code[parmcd[p]])).all()
    assert (ts.TSPARM.str.len() <= 40).all()


def test_ts_required_parameters_present(design):
    assert REQUIRED_TS <= set(design[2]["TS"].TSPARMCD)


def test_ts_seq_numbers_each_parameter(design):
    ts = design[2]["TS"]
    for _, rows in ts.groupby("TSPARMCD", sort=False):
        assert list(rows.TSSEQ) == list(range(1, len(rows) + 1))


def test_ts_ct_values_and_codes(design):
    ts = design[2]["TS"]
    for parmcd, ref in CT_VALUED.items():
        rows = _ts(design, parmcd)
        assert len(rows), parmcd
        assert (rows.TSVCDREF == "CDISC CT").all() and (rows.TSVCDVER == CT_VERSION).all()
        terms = codelist(ref).terms
        assert rows.TSVAL.isin(list(terms)).all(), parmcd
        assert (rows.TSVALCD == rows.TSVAL.map(terms)).all(), parmcd
    # Nothing else claims to be CT.
    assert set(ts[ts.TSVCDREF == "CDISC CT"].TSPARMCD) <= set(CT_VALUED)


def test_ts_value_or_null_flavor(design):
    ts = design[2]["TS"]
    assert ((ts.TSVAL != "") ^ (ts.TSVALNF != "")).all()
    assert set(ts.TSVALNF) - {""} <= ISO_21090_NULL_FLAVORS
    nulls = ts[ts.TSVALNF != ""]
    assert (nulls[["TSVALCD", "TSVCDREF", "TSVCDVER"]] == "").all().all()


def test_ts_iso8601_values(design):
    ts = design[2]["TS"]
    dated = ts[ts.TSPARMCD.isin(ISO_8601_VALUED) & (ts.TSVAL != "")]
    assert (dated.TSVCDREF == "ISO 8601").all()
    assert dated.TSVAL.str.fullmatch(r"P\d+[YMWD]|\d{4}-\d{2}-\d{2}").all()
    countries = _ts(design, "FCNTRY")
    assert countries.TSVAL.str.fullmatch(r"[A-Z]{3}").all() and (countries.TSVCDREF == "ISO 3166").all()
    assert set(countries.TSVAL) == {s.country for s in design[1].sites}


def test_ts_run_facts(design):
    assert _ts(design, "DCUTDTC").TSVAL.tolist() == ["2025-03-01"]
    assert _ts(design, "SSTDTC").TSVAL.tolist() == ["2022-09-05"]
    assert _ts(design, "ACTSUB").TSVAL.tolist() == ["37"]
    assert _ts(design, "SENDTC").TSVALNF.tolist() == ["NAV"]     # ongoing
    assert _ts(design, "NARMS").TSVAL.tolist() == [str(sum(not a.shortened for a in design[1].arms))]


def test_ts_golden_values():
    rs = build_ts(load_study("RS001"), last_subject_date=dt.date(2026, 1, 31)).set_index("TSPARMCD")
    gl = build_ts(load_study("GLOCART")).set_index("TSPARMCD")
    assert (rs.loc["TPHASE", "TSVAL"], rs.loc["TPHASE", "TSVALCD"]) == ("PHASE I TRIAL", "C15600")
    assert rs.loc["SDTIGVER", "TSVAL"] == "3.4" and rs.loc["SDTMVER", "TSVAL"] == "2.0"
    assert (rs.loc["AGEMIN", "TSVAL"], rs.loc["AGEMAX", "TSVAL"]) == ("P18Y", "P75Y")
    assert rs.loc["SENDTC", "TSVAL"] == "2026-01-31"
    assert rs.loc["DCUTDTC", "TSVALNF"] == "NAV"
    assert (gl.loc["TPHASE", "TSVAL"], gl.loc["TPHASE", "TSVALCD"]) == ("PHASE II TRIAL", "C15601")
    assert gl.loc["AGEMAX", "TSVALNF"] == "PINF"
    assert gl.loc["COMPTRT", "TSVALNF"] == "NA" and gl.loc["REGID", "TSVALNF"] == "UNK"
    assert gl.loc["TBLIND", "TSVAL"] == "OPEN LABEL" and gl.loc["TCNTRL", "TSVAL"] == "NONE"


def test_split_text_breaks_between_words():
    text = " ".join(f"word{i}" for i in range(100))
    pieces = split_text(text)
    assert all(len(p) <= 200 for p in pieces) and " ".join(pieces) == text
    assert split_text("x" * 450) == ["x" * 200, "x" * 200, "x" * 50]


def _with_summary(study, **changes):
    return study.model_copy(update={"trial_summary": study.trial_summary.model_copy(update=changes)})


def test_long_ts_value_continues_in_tsval1():
    study = load_study("GLOCART")
    long_objective = "To evaluate " + "the complete response rate after CAR-T " * 10
    ts = build_ts(_with_summary(study, objectives_primary=[long_objective]))
    cols = list(ts.columns)
    assert cols[cols.index("TSVAL") + 1] == "TSVAL1"
    row = ts[ts.TSPARMCD == "OBJPRIM"].iloc[0]
    assert " ".join(filter(None, [row.TSVAL, row.TSVAL1, row.get("TSVAL2", "")])) == " ".join(long_objective.split())
    assert (ts[ts.TSPARMCD != "OBJPRIM"].TSVAL1 == "").all()


def test_non_ct_value_is_a_config_error():
    study = _with_summary(load_study("RS001"), blinding="Open Label")
    with pytest.raises(ConfigError, match="did you mean 'OPEN LABEL'"):
        build_ts(study)


def test_study_without_trial_summary_is_a_config_error():
    study = load_study("RS001").model_copy(update={"trial_summary": None})
    with pytest.raises(ConfigError, match="no trial_summary"):
        build_ts(study)


def test_design_rules_must_name_known_anchor_and_elements(mappings_copy):
    path = mappings_copy / "RS001" / "study.yaml"
    text = path.read_text()
    path.write_text(text.replace("study_day_anchor: INFUSION", "study_day_anchor: DOSE", 1))
    with pytest.raises(ConfigError, match="unknown anchor 'DOSE'"):
        load_study("RS001", root=mappings_copy)
    path.write_text(text.replace("      FC: P5D", "      LD: P5D", 1))
    with pytest.raises(ConfigError, match="unknown element 'LD'"):
        load_study("RS001", root=mappings_copy)
    path.write_text(text.replace("      FC: P5D", "      FC: 5 days", 1))
    with pytest.raises(ConfigError, match="ISO 8601"):
        load_study("RS001", root=mappings_copy)
