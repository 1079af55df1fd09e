"""GLOCART simulator: the records follow the protocol and the EDC dictionary.

One small simulated study (module fixture) is checked against the study design read from
mappings/GLOCART/study.yaml and against the simulator's own truth; no value of the design is
restated here except through the configuration.
"""
from __future__ import annotations

import datetime as dt
import re

import pytest

from clinpipe.config import load_study
from edc.forms import load_forms
from simulate import glocart
from simulate.model import SYSTEM_KEYS

N, SEED = 60, 20240611
ISO = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


@pytest.fixture(scope="module")
def study():
    return load_study("GLOCART")


@pytest.fixture(scope="module")
def forms():
    return load_forms("GLOCART")


@pytest.fixture(scope="module")
def sim(study, forms):
    return glocart.run(study, forms, N, SEED)


@pytest.fixture(scope="module")
def truth(sim):
    return {t["SUBJECT"]: t for t in sim.truth["subjects"]}


def _d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def _by_subject(sim, form):
    out: dict[str, list[dict]] = {}
    for r in sim.records[form]:
        out.setdefault(r["SUBJECT"], []).append(r)
    return out


def _window(study, folder):
    v = study.visit_by_folder[folder]
    return v.day + v.window[0], v.day + v.window[1]


# -- the study as a whole --------------------------------------------------------------------

def test_deterministic_for_a_seed(study, forms, sim):
    again = glocart.run(study, forms, N, SEED)
    assert again.records == sim.records
    assert again.truth == sim.truth
    other = glocart.run(study, forms, N, SEED + 1)
    assert other.records != sim.records


def test_every_subject_screened_and_branches_exercised(sim, truth):
    assert len(truth) == N
    assert len(sim.records["ENR"]) == N
    t = list(truth.values())
    assert any(s["screen_failure"] for s in t)
    assert any(s["dropout"] for s in t)
    cohorts = {s["cohort"] for s in t}
    assert {"CART", "CARTASCT"} <= cohorts
    assert any(s["consolidation"] for s in t) and any(s["cart_date"] and not s["consolidation"] for s in t)


def test_records_match_the_dictionary(sim, forms, study):
    """Every field is declared for its form, codes are in their codelists, dates are ISO 8601
    (partial allowed), numbers are numbers, folders are the study's."""
    folders = set(study.visit_by_folder) | set(study.edc_folders.names)
    for oid, records in sim.records.items():
        form = forms.form(oid)
        declared = set(form.field_by_oid) | set(SYSTEM_KEYS)
        for r in records:
            assert set(r) <= declared, (oid, set(r) - declared)
            for f in form.fields:
                v = r.get(f.oid)
                if v is None:
                    continue
                if f.codelist:
                    assert v in forms.codelists[f.codelist], (oid, f.oid, v)
                if f.type == "date":
                    assert ISO.match(v), (oid, f.oid, v)
                if f.type in ("integer", "float"):
                    assert isinstance(v, (int, float)), (oid, f.oid, v)
                if f.type == "integer":
                    assert isinstance(v, int), (oid, f.oid, v)
            assert r["FOLDER"] in folders, (oid, r["FOLDER"])


def test_nothing_after_death_end_of_study_or_transfer(sim, truth, forms):
    transfer = sim.transfer_date.isoformat()
    for oid, records in sim.records.items():
        dates = [f.oid for f in forms.form(oid).fields if f.type == "date"]
        for r in records:
            t = truth[r["SUBJECT"]]
            limit = min(x for x in (transfer, t["death_date"], t["end_date"]) if x)
            assert r["_ENTRY"] <= transfer
            for f in dates:
                v = r.get(f)
                if v:
                    # a partial date is late only when all of it is after the limit
                    assert v <= limit or limit.startswith(v), (oid, r["SUBJECT"], f, v, limit)


def test_death_and_disposition_agree_with_truth(sim, truth):
    dth = _by_subject(sim, "DTH")
    ds = _by_subject(sim, "DS")
    for subj, t in truth.items():
        if t["death_date"]:
            assert [r["DTHDAT"] for r in dth[subj]] == [t["death_date"]]
            assert ds[subj][0]["DSDECOD"] == "2"
        else:
            assert subj not in dth
        if t["screen_failure"]:
            assert ds[subj][0]["DSDECOD"] == "8"


# -- screening, phase 1 ------------------------------------------------------------------------

DOSING = ("GLOEX", "AGX", "LD", "COND", "ASCT", "CART", "CONS")


def test_screen_failures_have_no_dosing(sim, truth):
    enr = {r["SUBJECT"]: r for r in sim.records["ENR"]}
    failures = {s for s, t in truth.items() if t["screen_failure"]}
    for s in failures:
        assert enr[s]["ELIG"] == "N" and enr[s]["IECRIT"]
    for form in DOSING + ("APH", "SCC", "COH", "RSP"):
        assert not failures & {r["SUBJECT"] for r in sim.records[form]}, form


def test_phase1_dosing_on_schedule(sim, study, truth):
    """Obinutuzumab on C1D1; glofitamab step-up on C1D8 / C1D15 and C2D1 within the visit
    windows (a C2D1 delayed past its window is flagged GXDELAY=Y)."""
    regimen = {(a.name, a.dose): a.days[0] for a in study.regimen("GLOFIT").agents}
    checked = 0
    for r in sim.records["GLOEX"]:
        c1d1 = _d(truth[r["SUBJECT"]]["c1d1_date"])
        agent = "OBINUTUZUMAB" if r["GXAGENT"] == "OBI" else "GLOFITAMAB"
        day = regimen[(agent, r["GXDOSE"])]
        lo, hi = _window(study, r["FOLDER"])
        assert study.visit_by_folder[r["FOLDER"]].day == day
        actual = (_d(r["GXDAT"]) - c1d1).days
        if r["GXDELAY"] == "Y":
            assert actual > hi
        else:
            assert lo <= actual <= hi, (r["SUBJECT"], r["FOLDER"], actual)
        assert (r["GXCYC"], r["GXDAY"]) == (day // 21 + 1, day % 21 + 1)
        assert r["GXSTEP"] == (None if agent == "OBINUTUZUMAB" else ("Y" if r["GXDOSE"] < 30 else "N"))
        checked += 1
    assert checked


def test_apheresis_before_first_glofitamab_unless_contraindicated(sim, truth):
    glo = {}
    for r in sim.records["GLOEX"]:
        if r["GXAGENT"] == "GLO":
            glo[r["SUBJECT"]] = min(glo.get(r["SUBJECT"], r["GXDAT"]), r["GXDAT"])
    for r in sim.records["APH"]:
        if r["APHCI"] == "N" and r["SUBJECT"] in glo:
            assert r["APHDAT"] < glo[r["SUBJECT"]]
        if r["APHCI"] == "Y" and r["APHDAT"] and r["SUBJECT"] in glo:
            assert r["APHDAT"] > glo[r["SUBJECT"]]


def test_agent_x_given_with_its_regimen(sim, truth):
    for r in sim.records["AGX"]:
        t = truth[r["SUBJECT"]]
        assert t["agent_x"]
        assert r["AXSTDAT"] <= r["AXENDAT"]
        assert r["AXSTDAT"] >= t["c1d1_date"]


# -- phase 2 -------------------------------------------------------------------------------------

def test_dropouts_have_no_phase2_records(sim, truth):
    coh = {r["SUBJECT"]: r for r in sim.records["COH"]}
    dropouts = {s for s, t in truth.items() if t["dropout"]}
    assert dropouts
    for s in dropouts:
        if s in coh:
            assert coh[s]["COHPROC"] == "N" and coh[s]["NPRSN"] == truth[s]["dropout"]
    for form in ("LD", "COND", "ASCT", "CART", "CONS", "CTDNA"):
        assert not dropouts & {r["SUBJECT"] for r in sim.records[form]}, form


def test_cart_on_day0_or_asct_plus_3(sim, study, truth):
    """CAR-T alone: fludarabine/cyclophosphamide on Days -5..-3 moved together within the FC
    visits' window (study.yaml), CAR-T on Day 0. CAR-T + ASCT: conditioning before ASCT Day 0,
    CAR-T on ASCT Day +3 (+/-1)."""
    cart = {r["SUBJECT"]: _d(r["CARTDAT"]) for r in sim.records["CART"]}
    asct = {r["SUBJECT"]: _d(r["ASCTDAT"]) for r in sim.records["ASCT"]}
    ld = _by_subject(sim, "LD")
    cond = _by_subject(sim, "COND")
    fc_days = sorted({d for a in study.regimen("FC").agents for d in a.days})
    assert cart
    for s, when in cart.items():
        t = truth[s]
        assert t["cohort"] in ("CART", "CARTASCT")
        if t["cohort"] == "CART":
            assert s not in asct and s not in cond
            days = sorted({(_d(r["LDDAT"]) - when).days for r in ld[s]})
            shift = days[0] - fc_days[0]
            assert days == [d + shift for d in fc_days]
            assert study.visit_by_folder["LDM5"].window[0] <= shift <= 0
        else:
            assert s not in ld
            assert 2 <= (when - asct[s]).days <= 4
            assert all(-7 <= (_d(r["CDDAT"]) - asct[s]).days <= -1 for r in cond[s])
    assert set(asct) <= set(cart)


def test_end_of_phase1_assessment_within_14_days_of_phase2(sim, truth):
    """The pre-CAR-T response (CR/ORR before CAR-T) is the last scan <= 14 days before the
    first lymphodepletion or conditioning dose."""
    eop1 = {r["SUBJECT"]: _d(r["RSDAT"]) for r in sim.records["RSP"] if r["FOLDER"] == "EOP1"}
    first = {}
    for form, field in (("LD", "LDDAT"), ("COND", "CDDAT")):
        for r in sim.records[form]:
            first[r["SUBJECT"]] = min(first.get(r["SUBJECT"], _d(r[field])), _d(r[field]))
    assert first
    for s, start in first.items():
        assert 0 < (start - eop1[s]).days <= 14, s
        assert truth[s]["phase2_start"] == start.isoformat()


def test_consolidation_exactly_when_deauville_4_5_or_ctdna_positive(sim, study, truth):
    cons_cfg = study.consolidation
    d28 = {r["SUBJECT"]: r for r in sim.records["RSP"] if r["FOLDER"] == cons_cfg.assessed_at}
    ct = {r["SUBJECT"]: r["CTRES"] for r in sim.records["CTDNA"]}
    given = _by_subject(sim, "CONS")
    transfer = sim.transfer_date.isoformat()
    for s, rsp in d28.items():
        trigger = int(rsp["DEAUV"]) >= cons_cfg.deauville_min or ct[s] == "POS"
        t = truth[s]
        assert t["consolidation_indicated"] == trigger
        if s in given:
            assert trigger
            assert len(given[s]) <= cons_cfg.cycles
            assert min(r["CSDAT"] for r in given[s]) > rsp["RSDAT"]
            assert all(r["CSDOSE"] == cons_cfg.dose for r in given[s])
        elif trigger:
            # indicated but not (yet) given: the subject died, left or data were cut first
            limit = min(x for x in (transfer, t["death_date"], t["end_date"]) if x)
            assert t["cons_start"] > limit
    assert any(truth[s]["consolidation"] for s in given)


def test_responses_have_lesion_measurements(sim):
    tl = {}
    for r in sim.records["TL"]:
        tl.setdefault((r["SUBJECT"], r["FOLDER"], r["FOLDERSEQ"]), []).append(r)
    baseline = {r["SUBJECT"]: r for r in sim.records["TL"] if r["FOLDER"] == "SCR"}
    for r in sim.records["RSP"]:
        rows = tl[(r["SUBJECT"], r["FOLDER"], r["FOLDERSEQ"])]
        targets = [x for x in rows if x["TLCAT"] == "T"]
        assert targets and all(x["TLDAT"] == r["RSDAT"] for x in rows)
        if r["RSOVR"] == "CR":
            assert all(x["TLLDI"] <= 15 for x in targets)
            assert r["DEAUV"] in (None, "1", "2", "3")
        if r["RSNEWL"] == "Y":
            assert any(x["TLCAT"] == "NEW" for x in rows)
        assert r["SUBJECT"] in baseline


def test_truth_cart_subjects_have_day28_tests_or_an_early_exit(sim, truth):
    ct = {r["SUBJECT"] for r in sim.records["CTDNA"]}
    for s, t in truth.items():
        if t["cart_date"] and s not in ct:
            limit = min(x for x in (sim.transfer_date.isoformat(), t["death_date"], t["end_date"]) if x)
            assert (_d(limit) - _d(t["cart_date"])).days < 32, s


def test_phase2_regimens_jitter_within_their_windows(study):
    """Issue 12: lymphodepletion and conditioning do not all start on their nominal day; every
    start stays inside the study.yaml window of its visit, and FC has a start time after the
    morning's Day -5 labs (so those labs are pre-dose)."""
    sim = glocart.run(study, load_forms("GLOCART"), 120, 7)
    cart = {r["SUBJECT"]: _d(r["CARTDAT"]) for r in sim.records["CART"]}
    asct = {r["SUBJECT"]: _d(r["ASCTDAT"]) for r in sim.records["ASCT"]}
    ld_start, cond_start = {}, {}
    for r in sim.records["LD"]:
        ld_start[r["SUBJECT"]] = min(ld_start.get(r["SUBJECT"], _d(r["LDDAT"])), _d(r["LDDAT"]))
        assert re.match(r"^\d{2}:\d{2}$", r["LDTIM"] or ""), r
    for r in sim.records["COND"]:
        cond_start[r["SUBJECT"]] = min(cond_start.get(r["SUBJECT"], _d(r["CDDAT"])), _d(r["CDDAT"]))
    lo, hi = _window(study, "LDM5")
    ld_days = {(d - cart[s]).days for s, d in ld_start.items()}
    assert ld_days <= set(range(lo, hi + 1)) and len(ld_days) > 1
    lo, hi = _window(study, "COND")
    cond_days = {(d - asct[s]).days for s, d in cond_start.items()}
    assert cond_days <= set(range(lo, hi + 1)) and len(cond_days) > 1
    first_fc = {}
    for r in sim.records["LD"]:
        if _d(r["LDDAT"]) == ld_start[r["SUBJECT"]]:
            first_fc[r["SUBJECT"]] = min(first_fc.get(r["SUBJECT"], r["LDTIM"]), r["LDTIM"])
    day5 = [r for r in sim.records["LB"] if r["FOLDER"] == "LDM5"]
    assert day5
    for r in day5:
        assert _d(r["LBDAT"]) == ld_start[r["SUBJECT"]]
        assert r["LBTIM"] < first_fc[r["SUBJECT"]]


def test_labs_on_dosing_days_are_pre_dose(sim):
    """Labs on a day with a timed dose (obinutuzumab/glofitamab, CAR-T) are drawn before it, so
    the C1D1 labs are the last values before first treatment (LBLOBXFL) and D0 the last before
    CAR-T."""
    first: dict[tuple[str, str], str] = {}
    for form, dat, tim in (("GLOEX", "GXDAT", "GXSTTIM"), ("CART", "CARTDAT", "CARTTIM")):
        for r in sim.records[form]:
            key = (r["SUBJECT"], r[dat])
            first[key] = min(first.get(key, r[tim]), r[tim])
    on_dosing_days = [r for r in sim.records["LB"] if (r["SUBJECT"], r["LBDAT"]) in first]
    assert len({r["FOLDER"] for r in on_dosing_days}) >= 3
    for r in on_dosing_days:
        assert r["LBTIM"] < first[(r["SUBJECT"], r["LBDAT"])], r


# -- follow-up after phase 1, subsequent therapy (issue 12) ------------------------------------

def test_phase1_stoppers_keep_response_follow_up_until_progression_or_death(sim, truth):
    rsp = _by_subject(sim, "RSP")
    followed = 0
    for s, t in truth.items():
        if t["dropout"] not in ("AE", "MFG"):
            continue
        after = sorted((r for r in rsp.get(s, []) if r["RSDAT"] > t["coh_date"]), key=lambda r: r["RSDAT"])
        followed += bool(after)
        for k, r in enumerate(after):
            assert r["RSPHASE"] == "PRE", s              # never had CAR-T
            if r["RSOVR"] == "PD":
                assert k == len(after) - 1, s            # scans end at progression
                assert t["pd_date"] == r["RSDAT"], s
            if t["new_therapy_date"]:
                assert r["RSDAT"] < t["new_therapy_date"], s   # ... or at a new therapy
            if t["death_date"]:
                assert r["RSDAT"] < t["death_date"], s
        if t["pd_date"] and t["pd_date"] > t["coh_date"]:
            assert any(r["RSOVR"] == "PD" and r["RSDAT"] == t["pd_date"] for r in after), s
    assert followed, "no phase-1 stopper was followed with scans"


def test_more_seeds_follow_stoppers_and_record_progression_before_a_progression_death(study, forms):
    followed = pd_seen = 0
    for seed in (1, 2, 3):
        sim = glocart.run(study, forms, 40, seed)
        truth = {t["SUBJECT"]: t for t in sim.truth["subjects"]}
        rsp = _by_subject(sim, "RSP")
        for s, t in truth.items():
            if t["dropout"] not in ("AE", "MFG") or not t["coh_date"]:
                continue
            after = [r for r in rsp.get(s, []) if r["RSDAT"] > t["coh_date"]]
            followed += bool(after)
            if after and t["death_date"] and t["death_cause"] == "1":
                assert any(r["RSOVR"] == "PD" for r in after), s
                pd_seen += 1
    assert followed >= 2 and pd_seen >= 1


def test_subsequent_therapy_after_progression_and_before_death(sim, truth):
    from simulate.common import SUBSEQUENT_THERAPY_TYPES

    logged = _by_subject(sim, "SUBTX")
    assert logged
    for s, rows in logged.items():
        t = truth[s]
        assert len(rows) == 1, s
        r = rows[0]
        assert r["STXSTDAT"] == t["new_therapy_date"], s
        assert r["STXTYPE"] == SUBSEQUENT_THERAPY_TYPES[r["STXTRT"]]
        # after progression; a CAR-T manufacturing failure may move to another therapy without it
        if t["dropout"] == "MFG" and (not t["pd_date"] or t["pd_date"] > r["STXSTDAT"]):
            assert r["STXSTDAT"] > t["coh_date"], s
        else:
            assert t["pd_date"] and r["STXSTDAT"] > t["pd_date"], s
        if t["death_date"]:
            assert r["STXSTDAT"] < t["death_date"], s
        assert r["STXSTDAT"] <= sim.transfer_date.isoformat()
    # every planned therapy that started before the subject's last date is logged
    for s, t in truth.items():
        last = min(x for x in (sim.transfer_date.isoformat(), t["death_date"], t["end_date"]) if x)
        if t["new_therapy_date"] and t["new_therapy_date"] < last:
            assert s in logged, s
