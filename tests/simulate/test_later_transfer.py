"""Two transfers of one simulated study: `simulate_study(..., transfer_date=...)` cuts the same
histories at an earlier date.

The expectations are written from the records themselves (their own date fields, the later
transfer's values), not from the cut's helpers: a record dated on or before the earlier cut is
the same in both transfers except what a real EDC changes with time (an end date entered
later, the entry date), nothing after the cut is in the earlier one, subjects who consented
after it are absent.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from clinpipe.errors import ClinpipeError
from clinpipe.paths import REPO_ROOT
from edc.forms import load_forms
from simulate.run import deliver, simulate_study

RS_CUT = dt.date(2024, 3, 1)            # mid-trial: subjects still to consent, DLT windows open
SAMPLE_CUT = dt.date(2025, 2, 27)       # the committed interim transfer
GLO_CUT = dt.date(2025, 6, 20)          # 201-021 (seed 1, 60 subjects): apheresis deferred

# What the EDC may hold differently for one record at a later transfer.
MAY_CHANGE = {"_ENTRY", "AEENDAT", "AEONGO", "AEOUT", "AESDTH", "AESER", "AESLIFE", "AESHOSP",
              "AESDISAB", "AESCONG", "AESMIE", "CMENDAT", "CMONGO", "STXENDAT", "STXONGO",
              "AXENDAT", "ANCENGDT", "PLTENGDT"}
# Forms whose own date is their date field: what is dated before a cut is in that transfer.
DATED = {"LB": "LBDAT", "VS": "VSDAT", "EG": "EGDAT", "CK": "CKDAT", "TL": "TLDAT",
         "DTH": "DTHDAT", "DS": "DSSTDAT", "INF": "INFDAT", "LD": "LDDAT", "AE": "AESTDAT",
         "SURV": "SVDAT"}


@pytest.fixture(scope="module")
def rs_full():
    return simulate_study("RS001", 36, 1)


@pytest.fixture(scope="module")
def rs_early():
    return simulate_study("RS001", 36, 1, transfer_date=RS_CUT)


@pytest.fixture(scope="module")
def glo_full():
    return simulate_study("GLOCART", 60, 1)


@pytest.fixture(scope="module")
def glo_early():
    return simulate_study("GLOCART", 60, 1, transfer_date=GLO_CUT)


def _stable(rec: dict) -> tuple:
    return tuple(sorted((k, v) for k, v in rec.items() if k not in MAY_CHANGE))


def _after(value, cut: dt.date) -> bool:
    """A (possibly partial) ISO date after the cut."""
    text = cut.isoformat()
    return isinstance(value, str) and value > text and not text.startswith(value)


def _consented(sim, cut: dt.date) -> set[str]:
    return {r["SUBJECT"] for r in sim.records["IC"] if r["ICDAT"] <= cut.isoformat()}


@pytest.mark.parametrize("pair", [("rs_full", "rs_early", RS_CUT), ("glo_full", "glo_early", GLO_CUT)])
def test_earlier_transfer_is_the_later_one_cut(pair, request):
    full, early, cut = request.getfixturevalue(pair[0]), request.getfixturevalue(pair[1]), pair[2]
    assert early.transfer_date == cut and early.seed == full.seed
    subjects = _consented(full, cut)
    dates = {f.oid: [fd.oid for fd in f.fields if fd.type == "date"] for f in load_forms(full.study).forms}
    assert {r["SUBJECT"] for recs in early.records.values() for r in recs} == subjects
    for form, recs in early.records.items():
        later: dict[tuple, list[dict]] = {}
        for r in full.records[form]:
            later.setdefault(_stable(r), []).append(r)
        for r in recs:
            assert r["_ENTRY"] <= cut.isoformat(), (form, r)
            assert not [k for k in dates[form] if _after(r[k], cut)], (form, r)
            if form == "APH" and r["APHDAT"] is None:
                continue            # the contraindication on file before the apheresis
            match = later.get(_stable(r))
            assert match, f"{form} record of the earlier transfer not in the later one: {r}"
            other = match.pop(0)
            for key in MAY_CHANGE & set(r) - {"_ENTRY"}:
                if r[key] != other[key] and key.endswith(("ENDAT", "ENGDT")):
                    assert r[key] is None or key == "AXENDAT", (form, key, r, other)
                    assert _after(other[key], cut), (form, key, r, other)


@pytest.mark.parametrize("pair", [("rs_full", "rs_early", RS_CUT), ("glo_full", "glo_early", GLO_CUT)])
def test_everything_dated_before_the_cut_is_there(pair, request):
    full, early, cut = request.getfixturevalue(pair[0]), request.getfixturevalue(pair[1]), pair[2]
    subjects = _consented(full, cut)
    for form, field in DATED.items():
        if form not in full.records:
            continue
        want = Counter(_stable(r) for r in full.records[form] if r["SUBJECT"] in subjects
                       and r[field] is not None and len(r[field]) == 10 and r[field] <= cut.isoformat())
        got = Counter(_stable(r) for r in early.records[form])
        assert not want - got, f"{form}: records dated before {cut} missing from the earlier transfer"
        assert want, form
        late = [r for r in early.records[form] if r[field] and _after(r[field], cut)]
        assert not late, late


def test_subjects_consented_after_the_cut_are_absent(rs_full, rs_early):
    later_only = {r["SUBJECT"] for r in rs_full.records["IC"]} - _consented(rs_full, RS_CUT)
    assert later_only                       # the cut is mid-accrual
    assert not later_only & {r["SUBJECT"] for r in rs_early.records["DM"]}
    assert len(rs_early.truth["subjects"]) == len(_consented(rs_full, RS_CUT))


def test_an_ae_open_at_the_cut_ends_later(rs_full, rs_early):
    closed_later = {(r["SUBJECT"], r["AEGRPID"], r["AESTDAT"]): r for r in rs_full.records["AE"]
                    if r["AEENDAT"] and _after(r["AEENDAT"], RS_CUT)}
    opened = [r for r in rs_early.records["AE"]
              if (r["SUBJECT"], r["AEGRPID"], r["AESTDAT"]) in closed_later]
    assert opened
    for r in opened:
        assert r["AEENDAT"] is None and r["AEONGO"] == "Y" and r["AEOUT"] in ("2", "3")
        assert r["AESDTH"] != "Y"


def test_a_deferred_apheresis_shows_only_its_contraindication(glo_full, glo_early):
    full = [r for r in glo_full.records["APH"] if r["SUBJECT"] == "201-021"]
    early = [r for r in glo_early.records["APH"] if r["SUBJECT"] == "201-021"]
    assert full and full[0]["APHCI"] == "Y" and _after(full[0]["APHDAT"], GLO_CUT)
    assert len(early) == 1
    assert early[0]["APHCI"] == "Y" and early[0]["APHCIR"] == full[0]["APHCIR"]
    assert early[0]["APHDAT"] is None and early[0]["APHMNC"] is None


def test_default_transfer_unchanged_and_committed_interim_reproduced(rs_full, tmp_path):
    """The committed samples are what the generator makes, the default one byte for byte as
    before the option existed, the interim one from the same seed at its date."""
    raw = REPO_ROOT / "data" / "raw" / "RS001"
    assert simulate_study("RS001", 36, 1, transfer_date=rs_full.transfer_date).records == rs_full.records
    for sim, name in ((rs_full, "2025-05-27"), (simulate_study("RS001", 36, 1, transfer_date=SAMPLE_CUT),
                                                 "2025-02-27")):
        assert sim.transfer_date.isoformat() == name
        out = deliver(sim, "csv", tmp_path / name)
        committed = sorted(p.name for p in (raw / name / "csv").iterdir())
        assert sorted(p.name for p in out.outdir.iterdir()) == committed
        for f in committed:
            assert (out.outdir / f).read_bytes() == (raw / name / "csv" / f).read_bytes(), f


def test_dates_outside_the_simulated_span_are_refused(rs_full):
    with pytest.raises(ClinpipeError, match="after RS001's simulated data cut-off 2025-05-27"):
        simulate_study("RS001", 36, 1, transfer_date=rs_full.transfer_date + dt.timedelta(days=1))
    with pytest.raises(ClinpipeError, match="before RS001's first consent"):
        simulate_study("RS001", 36, 1, transfer_date=dt.date(2020, 1, 1))
