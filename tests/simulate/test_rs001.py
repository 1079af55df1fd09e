"""RS001 simulator: determinism, the 3+3 run by its rules, DLT truth vs AE data, dating rules,
screen failures, cellular kinetics, and conformance of every record to forms.yaml.

The checks here are written independently of the simulator's own helpers (the 3+3 replay,
the DLT rule evaluation, date handling) so a shared bug cannot hide itself.
"""
from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict

import pytest

from clinpipe.config import load_study
from edc.forms import load_forms
from simulate import rs001

N = 40
SEED = 20250301
ISO = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
TIME = re.compile(r"^\d{2}:\d{2}$")
SYSTEM_KEYS = {"SITEID", "SUBJECT", "FOLDER", "FOLDERSEQ", "_ENTRY"}


@pytest.fixture(scope="module")
def study():
    return load_study("RS001")


@pytest.fixture(scope="module")
def forms():
    return load_forms("RS001")


@pytest.fixture(scope="module")
def sim(study, forms):
    return rs001.run(study, forms, N, SEED)


@pytest.fixture(scope="module")
def sims(study, forms):
    """A few more trials, so several 3+3 paths are exercised (n=30: some stop early)."""
    return [rs001.run(study, forms, 30, seed) for seed in (1, 2, 3, 5, 8)]


def _date(s: str) -> dt.date:
    return dt.date.fromisoformat(s)


def _by_subject(records):
    out = defaultdict(list)
    for r in records:
        out[r["SUBJECT"]].append(r)
    return out


# ---------------------------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------------------------

def test_same_seed_gives_identical_records(study, forms, sim):
    again = rs001.run(study, forms, N, SEED)
    assert again.records == sim.records
    assert again.truth == sim.truth
    assert again.transfer_date == sim.transfer_date


def test_different_seed_gives_different_records(study, forms, sim):
    other = rs001.run(study, forms, N, SEED + 1)
    assert other.records != sim.records


# ---------------------------------------------------------------------------------------------
# 3+3
# ---------------------------------------------------------------------------------------------

def _replay_3plus3(cohorts, levels):
    """Independent replay of STUDIES.md 3+3: returns (expected MTD, expected recommended dose).
    Asserts each cohort is at the level the rules call for, and that escalation stops when
    (and only when) the rules say so."""
    n = {lv: 0 for lv in levels}
    d = {lv: 0 for lv in levels}
    exceeded = []
    current = 0
    stopped = False
    for k, c in enumerate(cohorts):
        assert not stopped, f"cohort {k + 1} enrolled after the rules stopped escalation"
        assert c["level"] == levels[current], f"cohort {k + 1}: expected {levels[current]}, got {c['level']}"
        assert len(c["subjects"]) == 3
        lv = c["level"]
        n[lv] += 3
        d[lv] += c["n_dlt"]
        if d[lv] >= 2:                               # >= 2/3 or >= 2/6: level exceeds the MTD
            exceeded.append(lv)
            if current == 0 or n[levels[current - 1]] == 6:
                stopped = True
            else:
                current -= 1
        elif n[lv] == 3 and d[lv] == 1:
            pass                                      # add 3 at the same level
        else:                                         # 0/3 or <= 1/6
            nxt = current + 1
            if nxt == len(levels) or levels[nxt] in exceeded:
                stopped = True
            else:
                current = nxt
    if exceeded:
        lowest_bad = min(levels.index(lv) for lv in exceeded)
        ok = [lv for lv in levels[:lowest_bad] if n[lv] == 6 and d[lv] <= 1]
        mtd = ok[-1] if ok else None
        recommended = mtd
    else:
        mtd = None
        tested = [lv for lv in levels if n[lv]]
        recommended = tested[-1] if tested else None
    return stopped, mtd, recommended


def _check_escalation(sim, study):
    levels = [d.code for d in study.dose_levels]
    truth = sim.truth
    complete_cohorts = [c for c in truth["escalation"] if c["n_dlt"] is not None]
    stopped, mtd, recommended = _replay_3plus3(complete_cohorts, levels)
    if truth["escalation_complete"]:
        assert stopped, "simulator ended escalation before the rules did"
        assert truth["mtd"] == mtd
        assert truth["recommended_dose"] == recommended
    else:
        assert not stopped and truth["recommended_dose"] is None
    subjects = {s["SUBJECT"]: s for s in truth["subjects"]}
    # Sequential cohorts: the next cohort consents only after the previous DLT window closed.
    for prev, nxt in zip(truth["escalation"], truth["escalation"][1:]):
        window_end = max(_date(subjects[s]["infusion_date"]) for s in prev["subjects"]) + dt.timedelta(days=28)
        assert min(_date(subjects[s]["consent_date"]) for s in nxt["subjects"]) > window_end
    for c in truth["escalation"]:
        for sid in c["subjects"]:
            s = subjects[sid]
            assert s["cohort"] == "ESCALATION" and s["dose_level"] == c["level"] and s["infused"]
    # Expansion runs at the recommended dose, after escalation.
    exp = [s for s in truth["subjects"] if s["cohort"] == "EXPANSION"]
    if exp:
        assert {s["dose_level"] for s in exp} == {truth["recommended_dose"]}
        last_esc = max(_date(subjects[s]["infusion_date"]) for c in truth["escalation"] for s in c["subjects"])
        assert min(_date(s["consent_date"]) for s in exp) > last_esc + dt.timedelta(days=28)


def test_escalation_follows_3plus3_rules(sim, sims, study):
    for s in [sim, *sims]:
        _check_escalation(s, study)
    # The seeds above take more than one path through the rules.
    assert len({tuple(c["decision"] for c in s.truth["escalation"]) for s in [sim, *sims]}) > 1


def test_screened_count_and_screen_failure_share(sim):
    subs = sim.truth["subjects"]
    assert len(subs) == N == len(sim.records["IC"]) == len(sim.records["ENR"])
    sf = sum(s["screen_failure"] for s in subs)
    assert 1 <= sf <= 0.3 * N


# ---------------------------------------------------------------------------------------------
# DLT truth vs the AE records
# ---------------------------------------------------------------------------------------------

def _ae_grade(ae):
    g = ae["AEASTCT"] or ae["AETOXGR"]
    return int(g) if g else 0


def _rule_hits(ae, day0, limit, rules):
    """Rules an AE record meets (window: start on Day 0-28; duration: end - start, or until
    `limit` when ongoing; related = AEREL 3-5; hematologic by SOC / HLGT)."""
    if len(ae["AESTDAT"]) != 10:
        return []
    start = _date(ae["AESTDAT"])
    day = (start - day0).days
    if not 0 <= day <= 28:
        return []
    end = _date(ae["AEENDAT"]) if ae["AEENDAT"] else limit
    hours = (min(end, limit) - start).days * 24
    grade = _ae_grade(ae)
    heme = ae["AESOC"] == "Blood and lymphatic system disorders" or \
        ae["AEHLGT"] == "Haematology investigations (incl blood groups)"
    hits = []
    for r in rules:
        if r.terms and ae["AEPT"] not in r.terms:
            continue
        if ae["AEPT"] in r.exclude_terms:
            continue
        if r.category == "non-hematologic" and heme or r.category == "hematologic" and not heme:
            continue
        if r.grade_scale == "ASTCT" and not ae["AEASTCT"]:
            continue
        if not r.min_grade <= grade <= r.max_grade:
            continue
        if r.related_required and ae["AEREL"] not in ("3", "4", "5"):
            continue
        if hours < r.min_duration_hours:
            continue
        hits.append(r.id)
    return hits


def test_dlt_truth_agrees_with_ae_records(sim, sims, study):
    for s in [sim, *sims]:
        aes = _by_subject(s.records["AE"])
        inf = {r["SUBJECT"]: _date(r["INFDAT"]) for r in s.records["INF"]}
        dth = {r["SUBJECT"]: _date(r["DTHDAT"]) for r in s.records["DTH"]}
        derived = {}
        for t in s.truth["subjects"]:
            sid = t["SUBJECT"]
            if not t["infused"]:
                assert not t["dlt"] and not aes.get(sid)
                continue
            limit = min(dth.get(sid, s.transfer_date), s.transfer_date)
            rule_dlt = any(_rule_hits(ae, inf[sid], limit, study.dlt.rules) for ae in aes[sid])
            inv_dlt = any(ae["AEDLT"] == "Y" for ae in aes[sid])
            assert rule_dlt == t["dlt"], sid
            assert inv_dlt == t["dlt_investigator"], sid
            assert (rule_dlt != inv_dlt) == (t["dlt_disagreement"] is not None), sid
            if t["dlt"]:
                assert t["dlt_type"] in t["dlt_rules"]
            derived[sid] = rule_dlt
            # AEDLT is answered exactly for records starting in the window
            for ae in aes[sid]:
                if len(ae["AESTDAT"]) < 10:          # day unknown: only minor events, never a DLT
                    assert ae["AEDLT"] in (None, "N") and _ae_grade(ae) <= 2 or ae["AEDLT"] is None
                elif 0 <= (_date(ae["AESTDAT"]) - inf[sid]).days <= 28:
                    assert ae["AEDLT"] in ("Y", "N")
                else:
                    assert ae["AEDLT"] is None
        for c in s.truth["escalation"]:
            if c["n_dlt"] is not None:
                assert c["n_dlt"] == sum(derived[x] for x in c["subjects"])


def test_escalation_subjects_are_dlt_evaluable(sim):
    for t in sim.truth["subjects"]:
        if t["cohort"] != "ESCALATION":
            continue
        d0 = _date(t["infusion_date"])
        for key in ("death_date", "end_date"):
            if t[key] and not t["dlt"]:
                assert _date(t[key]) > d0 + dt.timedelta(days=28), (t["SUBJECT"], key)


# ---------------------------------------------------------------------------------------------
# Dating rules
# ---------------------------------------------------------------------------------------------

def test_no_record_after_death_or_transfer(sim, forms):
    deaths = {r["SUBJECT"]: r["DTHDAT"] for r in sim.records["DTH"]}
    transfer = sim.transfer_date.isoformat()
    truth_deaths = {t["SUBJECT"]: t["death_date"] for t in sim.truth["subjects"] if t["death_date"]}
    assert deaths == truth_deaths
    n_checked = 0
    for form in forms.forms:
        date_fields = [f.oid for f in form.fields if f.type == "date"]
        for r in sim.records[form.oid]:
            assert r["_ENTRY"] <= transfer
            limit = min(deaths.get(r["SUBJECT"], transfer), transfer)
            for oid in date_fields:
                v = r[oid]
                if v is None:
                    continue
                n_checked += 1
                assert ISO.match(v), (form.oid, oid, v)
                # A partial date is "after" only if its known part is after the limit.
                assert v <= limit[: len(v)], (form.oid, r["SUBJECT"], oid, v, limit)
    assert n_checked > 20 * len(sim.truth["subjects"])


def test_death_has_ds_and_fatal_ae_when_due_to_ae(sim):
    ds = {r["SUBJECT"]: r for r in sim.records["DS"]}
    aes = _by_subject(sim.records["AE"])
    for r in sim.records["DTH"]:
        sid = r["SUBJECT"]
        assert ds[sid]["DSDECOD"] == "2" and ds[sid]["DSSTDAT"] == r["DTHDAT"]
        fatal = [ae for ae in aes[sid] if ae["AEOUT"] == "5"]
        if r["DTHCAUS"] == "2":
            assert len(fatal) == 1 and fatal[0]["AEENDAT"] == r["DTHDAT"] and fatal[0]["AESDTH"] == "Y"
        else:
            assert not fatal


def test_ae_outcome_and_seriousness_consistent(sim, sims):
    crit = ("AESDTH", "AESLIFE", "AESHOSP", "AESDISAB", "AESCONG", "AESMIE")
    partial = 0
    for ae in (ae for s in [sim, *sims] for ae in s.records["AE"]):
        if ae["AEENDAT"] is None:
            assert ae["AEONGO"] == "Y" and ae["AEOUT"] in ("2", "3", "6")
        else:
            assert ae["AEONGO"] == "N" and ae["AEENDAT"] >= ae["AESTDAT"]
        if ae["AEOUT"] == "5":
            assert ae["AEENDAT"] and (ae["AETOXGR"] == "5" or ae["AEASTCT"] == "5")
        assert (ae["AESER"] == "Y") == any(ae[c] == "Y" for c in crit)
        assert (ae["AEASTCT"] is None) != (ae["AETOXGR"] is None)
        partial += len(ae["AESTDAT"]) < 10
    assert partial >= 1, "some AE start dates should be known only to the month"


# ---------------------------------------------------------------------------------------------
# Screen failures
# ---------------------------------------------------------------------------------------------

def test_screen_failures_stop_at_screening(sim):
    sf = {t["SUBJECT"]: t for t in sim.truth["subjects"] if t["screen_failure"]}
    assert sf
    allowed = {"IC", "DM", "ENR", "LB", "DS"}
    for form, recs in sim.records.items():
        for r in recs:
            if r["SUBJECT"] in sf:
                assert form in allowed, (form, r["SUBJECT"])
    enr = {r["SUBJECT"]: r for r in sim.records["ENR"]}
    ds = {r["SUBJECT"]: r for r in sim.records["DS"]}
    for sid, t in sf.items():
        assert enr[sid]["ELIG"] == "N" and enr[sid]["IECRIT"] and enr[sid]["DOSELVL"] is None
        assert ds[sid]["DSDECOD"] == "8" and ds[sid]["DSSTDAT"] == enr[sid]["ENRDAT"] == t["end_date"]


# ---------------------------------------------------------------------------------------------
# Cellular kinetics
# ---------------------------------------------------------------------------------------------

def test_ck_peak_after_infusion(sim):
    inf = {r["SUBJECT"]: _date(r["INFDAT"]) for r in sim.records["INF"]}
    qpcr = defaultdict(list)
    for r in sim.records["CK"]:
        if r["CKMETH"] != "QPCR" or r["CKORRES"] is None:
            continue
        if r["CKTPT"] == "PRE":
            assert r["CKBLQ"] == "Y" and r["CKORRES"] == "<LLOQ"
        if r["CKBLQ"] == "N":
            qpcr[r["SUBJECT"]].append(((_date(r["CKDAT"]) - inf[r["SUBJECT"]]).days, float(r["CKORRES"])))
    assert len(qpcr) >= 0.8 * len(inf)
    tmax = [max(v, key=lambda x: x[1])[0] for v in qpcr.values()]
    assert all(t > 0 for t in tmax)
    assert sum(4 <= t <= 21 for t in tmax) >= 0.75 * len(tmax)
    assert any(r["CKBLQ"] == "Y" and r["CKTPT"] != "PRE" for r in sim.records["CK"]), "late samples fall below LLOQ"


# ---------------------------------------------------------------------------------------------
# Conformance to forms.yaml and the schedule
# ---------------------------------------------------------------------------------------------

def test_records_use_declared_fields_and_codes(sim, forms, study):
    folders = {v.folder for v in study.visits} | set(study.edc_folders.names)
    assert set(sim.records) <= {f.oid for f in forms.forms}
    for form in forms.forms:
        fields = form.field_by_oid
        for r in sim.records.get(form.oid, []):
            assert {"SITEID", "SUBJECT", "FOLDER"} <= r.keys()
            assert set(r) - SYSTEM_KEYS <= set(fields), (form.oid, set(r) - SYSTEM_KEYS - set(fields))
            assert r["FOLDER"] in folders, (form.oid, r["FOLDER"])
            assert isinstance(r.get("FOLDERSEQ", 1), int) and r.get("FOLDERSEQ", 1) >= 1
            assert r["SUBJECT"].startswith(r["SITEID"] + "-")
            for oid, f in fields.items():
                v = r.get(oid)
                if v is None:
                    continue
                if f.codelist:
                    assert v in forms.codelists[f.codelist], (form.oid, oid, v)
                elif f.type in ("integer", "float"):
                    assert isinstance(v, (int, float)) and not isinstance(v, bool), (form.oid, oid, v)
                    if f.range:
                        assert f.range[0] <= v <= f.range[1], (form.oid, oid, v)
                elif f.type == "time":
                    assert TIME.match(v), (form.oid, oid, v)
                elif f.type == "text":
                    assert isinstance(v, str) and len(v) <= f.length, (form.oid, oid, v)
            for oid, f in fields.items():
                if f.required:
                    assert r.get(oid) is not None or (form.oid == "LB" and r.get("LBNDRSN")), (form.oid, oid)


def test_unscheduled_visits_are_numbered(sim):
    seqs = defaultdict(set)
    for recs in sim.records.values():
        for r in recs:
            if r["FOLDER"] == "UNS":
                seqs[r["SUBJECT"]].add(r["FOLDERSEQ"])
    assert seqs, "CRS >= grade 2 should bring unscheduled labs"
    for s in seqs.values():
        assert s == set(range(1, max(s) + 1))


def test_lab_units_follow_site_unit_system(sim, study):
    units = {s.siteid: s.lab_units for s in study.sites}
    want = {"SI": {"HGB": "g/L", "CREAT": "umol/L", "PLAT": "10^9/L"},
            "conventional": {"HGB": "g/dL", "CREAT": "mg/dL", "PLAT": "10^3/uL"}}
    seen = set()
    for r in sim.records["LB"]:
        if r["LBTESTCD"] in ("HGB", "CREAT", "PLAT") and r["LBORRES"] is not None:
            assert r["LBORRESU"] == want[units[r["SITEID"]]][r["LBTESTCD"]]
            seen.add(units[r["SITEID"]])
    assert seen == {"SI", "conventional"}


def test_lesion_measurements_match_lugano_calls(sim):
    tl = defaultdict(list)
    for r in sim.records["TL"]:
        tl[(r["SUBJECT"], r["TLDAT"])].append(r)
    baseline = {}
    for r in sim.records["RSNHL"]:
        if r["FOLDER"] == "SCR":
            baseline[r["SUBJECT"]] = r["RSSPD"]
    for r in sim.records["RSNHL"]:
        if r["FOLDER"] == "SCR" or r["LUGRESP"] == "NE":
            continue
        lesions = tl[(r["SUBJECT"], r["RSDAT"])]
        targets = [x for x in lesions if x["TLCAT"] == "T"]
        spd = sum(x["TLLDI"] * x["TLSDI"] for x in targets)
        assert abs(spd - r["RSSPD"]) <= 1
        lesion_scores = [int(x["TLDEAUV"]) for x in lesions if x["TLDEAUV"]]
        if r["RSMETH"] == "CT":
            assert r["DEAUV"] is None and not lesion_scores
        else:
            assert int(r["DEAUV"]) == max(lesion_scores)
        if r["LUGRESP"] == "CR":
            assert all(x["TLLDI"] <= 15 for x in targets)
            assert all(x["TLNTSTAT"] == "ABS" for x in lesions if x["TLCAT"] == "NT")
        if r["LUGRESP"] == "PR":
            assert spd <= 0.5 * baseline[r["SUBJECT"]] + 1
        if r["LYRRESP"] == "IR1":
            assert spd >= 1.5 * baseline[r["SUBJECT"]] - 1
        if r["LUGRESP"] == "PD" and r["LYRRESP"] == "PD":
            assert r["RSNEWL"] == "Y" or any(x["TLNTSTAT"] == "UNEQ" for x in lesions) or targets


def test_lymphodepletion_jitters_within_window_with_times(sim, sims, study):
    """Issue 12: FC runs on three consecutive days starting within the study.yaml window of
    the Day -5 visit (not always on Day -5), after enrolment; each dose has a start time, and
    the Day -5 labs of that morning are drawn before the first dose (pre-dose)."""
    ld_visits = [v for v in study.visits if "LD" in v.assessments]
    lo = max(v.window[0] for v in ld_visits)
    hi = min(v.window[1] for v in ld_visits)
    starts = set()
    for s in [sim, *sims]:
        inf = {r["SUBJECT"]: _date(r["INFDAT"]) for r in s.records["INF"]}
        enr = {r["SUBJECT"]: _date(r["ENRDAT"]) for r in s.records["ENR"]}
        by = _by_subject(s.records["LD"])
        for subj, recs in by.items():
            assert all(TIME.match(r["LDTIM"]) for r in recs)
            days = sorted({_date(r["LDDAT"]) for r in recs})
            assert days == [days[0] + dt.timedelta(days=k) for k in range(len(days))]
            assert days[0] > enr[subj]
            first_time = min(r["LDTIM"] for r in recs if _date(r["LDDAT"]) == days[0])
            for lab in (r for r in s.records["LB"] if r["SUBJECT"] == subj and r["FOLDER"] == "LDM5"):
                assert _date(lab["LBDAT"]) == days[0] and lab["LBTIM"] < first_time
            if subj in inf:
                shift = (days[0] - inf[subj]).days - min(v.day for v in ld_visits)
                assert lo <= shift <= hi
                starts.add(shift)
            adj = [r for r in recs if r["LDADJ"] == "Y"]
            assert all(r["LDADJR"] for r in adj) and not any(r.get("LDADJR") for r in recs if r["LDADJ"] != "Y")
    assert len(starts) > 1


# ---------------------------------------------------------------------------------------------
# Subsequent anti-cancer therapy (issue 12): a SUBTX log record whenever one starts
# ---------------------------------------------------------------------------------------------

def test_subsequent_therapy_logged_after_progression_and_before_death(sim, sims):
    from simulate.common import SUBSEQUENT_THERAPY_TYPES

    n = 0
    for trial in [sim, *sims]:
        truth = {t["SUBJECT"]: t for t in trial.truth["subjects"]}
        logged = _by_subject(trial.records.get("SUBTX", []))
        for subj, t in truth.items():
            rows = logged.get(subj, [])
            assert len(rows) <= 1, subj
            if not rows:
                # not logged only when it starts after the subject's last date (or never)
                last = min(x for x in (trial.transfer_date.isoformat(), t["death_date"], t["end_date"]) if x)
                assert t.get("new_therapy_date") is None or t["new_therapy_date"] > last \
                    or t["new_therapy_date"] == t["death_date"], subj
                continue
            r = rows[0]
            n += 1
            assert r["STXSTDAT"] == t["new_therapy_date"], subj
            assert r["STXTYPE"] == SUBSEQUENT_THERAPY_TYPES[r["STXTRT"]]
            assert r["STXSTDAT"] > t["infusion_date"], subj
            if t["progression_date"]:
                assert r["STXSTDAT"] > t["progression_date"], subj
            else:     # B-ALL: allogeneic SCT in remission, or no remission at all
                assert r["STXTYPE"] == "4" or not t.get("remission"), subj
            if t["death_date"]:
                assert r["STXSTDAT"] < t["death_date"], subj
            assert (r["STXENDAT"] is None) == (r["STXONGO"] == "Y")
            assert r["STXENDAT"] is None or r["STXENDAT"] >= r["STXSTDAT"]
    assert n >= 5
