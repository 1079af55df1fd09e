"""AE events, relationships, outcome and deaths in the generator output of both studies.

One event = one AEGRPID (a record per grade); relationships are attributed only to treatments
already given at onset; outcome agrees with the end date; a death due to an AE has its grade-5
AE. Checked on the committed-sample configuration (same subjects and seeds as `make samples`)
and on a second seed.
"""
from __future__ import annotations

import pandas as pd
import pytest

from clinpipe.config import load_study
from edc.forms import load_forms
from simulate import glocart, rs001

RUNS = [("RS001", rs001, 36, 1), ("GLOCART", glocart, 40, 1), ("RS001", rs001, 30, 7), ("GLOCART", glocart, 40, 7)]
RELATED = {"3", "4", "5"}
CRS = "Cytokine release syndrome"


@pytest.fixture(scope="module")
def sims():
    return {(st, seed): mod.run(load_study(st), load_forms(st), n, seed) for st, mod, n, seed in RUNS}


def _ae(sim) -> pd.DataFrame:
    return pd.DataFrame(sim.records["AE"])


def _truth(sim) -> pd.DataFrame:
    return pd.DataFrame(sim.truth["subjects"]).set_index("SUBJECT")


@pytest.mark.parametrize("key", [(st, seed) for st, _, _, seed in RUNS], ids=str)
def test_no_ae_before_the_cell_infusion_is_related_to_it(sims, key):
    sim = sims[key]
    ae, truth = _ae(sim), _truth(sim)
    infusion = ae["SUBJECT"].map(truth["cart_date" if key[0] == "GLOCART" else "infusion_date"]).fillna("9999")
    start = ae["AESTDAT"].str.pad(10, "right", "9")      # a partial date counts as its latest day
    before = start.str[:10] < infusion
    # Subjects never infused (no date) have nothing related to the cell therapy.
    assert before.sum() > 20
    assert not ae.loc[before, "AEREL"].isin(RELATED).any(), ae.loc[before & ae["AEREL"].isin(RELATED)]


def test_glocart_relationship_to_each_treatment(sims):
    sim = sims[("GLOCART", 1)]
    ae, truth = _ae(sim), _truth(sim)
    for col in ("AERELOBI", "AERELGLO"):
        assert ae[col].notna().all()
    # CRS before CAR-T (after a glofitamab step-up dose) is glofitamab's, not CAR-T's.
    cart = ae["SUBJECT"].map(truth["cart_date"]).fillna("9999")
    early_crs = ae[(ae["AEPT"] == CRS) & (ae["AESTDAT"] < cart)]        # CRS dates are never partial
    assert len(early_crs) > 5
    assert early_crs["AERELGLO"].isin(RELATED).all() and (early_crs["AEREL"] == "1").all()
    # CRS after CAR-T is CAR-T's.
    late_crs = ae[(ae["AEPT"] == CRS) & (ae["AESTDAT"] >= cart)]
    assert len(late_crs) > 5 and late_crs["AEREL"].isin(RELATED).all()
    # Agent X is answered only for subjects given agent X, and never related before it was given.
    no_x = ae["SUBJECT"].map(truth["agent_x"]).isna()
    assert ae.loc[no_x, "AERELAX"].isna().all() and ae.loc[~no_x, "AERELAX"].notna().all()
    before_c1d1 = ae["AESTDAT"].str.pad(10, "right", "9") < ae["SUBJECT"].map(truth["c1d1_date"])
    assert not ae.loc[before_c1d1, ["AERELOBI", "AERELGLO"]].isin(RELATED).any().any()


@pytest.mark.parametrize("key", [(st, seed) for st, _, _, seed in RUNS], ids=str)
def test_grade_records_of_one_event_share_aegrpid(sims, key):
    ae = _ae(sims[key])
    assert ae["AEGRPID"].notna().all()
    grade = ae["AETOXGR"].fillna(ae["AEASTCT"]).astype(int)
    ae = ae.assign(GRADE=grade)
    n_multi = 0
    for _, ev in ae.groupby(["SUBJECT", "AEGRPID"], sort=False):
        assert ev["AEPT"].nunique() == 1 and ev["AETERM"].nunique() == 1
        # consecutive records: the next grade starts the day the previous one ended, at a new grade
        assert (ev["AESTDAT"].iloc[1:].to_numpy() == ev["AEENDAT"].iloc[:-1].to_numpy()).all(), ev
        assert (ev["GRADE"].diff().iloc[1:] != 0).all(), ev
        # only the last record of an event may still be ongoing
        assert ev["AEENDAT"].iloc[:-1].notna().all()
        n_multi += len(ev) > 1
    assert n_multi > 10
    # event ids are per subject and the events outnumber none of the records
    assert ae.groupby("SUBJECT")["AEGRPID"].nunique().sum() < len(ae)


def test_seriousness_can_change_within_an_event(sims):
    changed = 0
    for sim in sims.values():
        ae = _ae(sim)
        changed += int((ae.groupby(["SUBJECT", "AEGRPID"])["AESER"].nunique() > 1).sum())
    assert changed >= 5


@pytest.mark.parametrize("key", [(st, seed) for st, _, _, seed in RUNS], ids=str)
def test_outcome_agrees_with_end_date(sims, key):
    ae = _ae(sims[key])
    ongoing = ae["AEOUT"].isin(["2", "3"])          # recovering / not recovered
    assert ongoing.any() and ae.loc[ongoing, "AEENDAT"].isna().all()
    assert (ae.loc[ae["AEENDAT"].isna(), "AEOUT"].isin(["2", "3"])).all()
    assert (ae.loc[ae["AEENDAT"].isna(), "AEONGO"] == "Y").all()


@pytest.mark.parametrize("key", [(st, seed) for st, _, _, seed in RUNS], ids=str)
def test_death_due_to_ae_has_its_grade5_ae(sims, key):
    sim = sims[key]
    ae = _ae(sim)
    for d in sim.records["DTH"]:
        fatal = ae[(ae["SUBJECT"] == d["SUBJECT"]) & (ae["AEOUT"] == "5")]
        if d["DTHCAUS"] == "2":
            assert len(fatal) == 1, d
            f = fatal.iloc[0]
            assert (f["AESDTH"], f["AESER"], f["AEENDAT"]) == ("Y", "Y", d["DTHDAT"])
            assert "5" in (f["AETOXGR"], f["AEASTCT"])
        else:
            assert fatal.empty, d
    assert all(d["DTHCAUS"] != "3" for d in sim.records["DTH"]) or key[0] != "GLOCART"


def test_glocart_cardiac_arrest_deaths_have_their_ae(sims):
    """GLOCART's sudden deaths in follow-up (e.g. GLOCART-203-004 in the sample) are cardiac
    arrests: a death due to an AE with a grade-5 Cardiac arrest AE on the death date."""
    n = 0
    for seed in (1, 7):
        sim = sims[("GLOCART", seed)]
        ae, truth = _ae(sim), _truth(sim)
        for d in (d for d in sim.records["DTH"] if d["DTHCAUSO"] == "Cardiac arrest"):
            assert d["DTHCAUS"] == "2" and truth.loc[d["SUBJECT"], "death_cause"] == "2"
            (f,) = ae[(ae["SUBJECT"] == d["SUBJECT"]) & (ae["AEOUT"] == "5")].to_dict("records")
            assert (f["AEPT"], f["AETOXGR"], f["AESTDAT"], f["AEENDAT"]) == (
                "Cardiac arrest", "5", d["DTHDAT"], d["DTHDAT"])
            n += 1
    assert n >= 1
