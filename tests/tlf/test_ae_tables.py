"""RS001 AE tables (mappings/RS001/tlf/safety.yaml) against a direct recomputation from ADSL
and ADAE, their lineage, and the AE kernels on small literal frames."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tlf.analyses import ae
from tlf.analyses.base import ALL, subject_groups
from tlf.catalog import OutputSpec, load_catalog
from tlf.context import TlfContext, TlfInputError

RELATED = ["RELATED", "PROBABLY RELATED", "POSSIBLY RELATED"]


def _pop(adsl: pd.DataFrame, by: str = "TRT01A") -> pd.DataFrame:
    """Safety population, USUBJID -> GRP1LVL (own level and All subjects)."""
    pop = adsl[adsl["SAFFL"] == "Y"]
    own = pop.loc[pop[by].fillna("") != "", ["USUBJID", by]].rename(columns={by: "GRP1LVL"})
    return pd.concat([own, pop[["USUBJID"]].assign(GRP1LVL=ALL)], ignore_index=True)


def _teae(s) -> pd.DataFrame:
    adae = s.adam("ADAE")
    return adae[adae["TRTEMFL"] == "Y"]


def _ard_n(ard: pd.DataFrame, **keys) -> pd.Series:
    m = ard["STAT"] == "n"
    for k, v in keys.items():
        m &= ard[k] == v
    return ard.loc[m].set_index("GRP1LVL")["STATVAL"]


def _expected(records: pd.DataFrame, pop: pd.DataFrame, keys: list[str]) -> pd.Series:
    return (records.merge(pop, on="USUBJID").groupby(["GRP1LVL", *keys])["USUBJID"].nunique())


def test_soc_pt_counts_match_adae(sample_tlf):
    s = sample_tlf["RS001"]
    pop = _pop(s.adam("ADSL"))
    ard = s.ard("t-14-3-1-3")
    exp = _expected(_teae(s), pop, ["AEBODSYS", "AEDECOD"])
    got = (ard[(ard["STAT"] == "n") & (ard["VARLVL"] != "") & (ard["GRP2"] == "")]
           .set_index(["GRP1LVL", "PARAMCD", "VARLVL"])["STATVAL"])
    got.index.names = exp.index.names
    pd.testing.assert_series_equal(got.sort_index().astype(int), exp.sort_index(),
                                   check_names=False)
    soc = _expected(_teae(s), pop, ["AEBODSYS"])
    got_soc = (ard[(ard["STAT"] == "n") & (ard["VARLVL"] == "") & (ard["PARAMCD"] != "TEAE")]
               .set_index(["GRP1LVL", "PARAMCD"])["STATVAL"])
    assert dict(got_soc.astype(int)) == dict(soc)
    # percentages of the column's N
    n_col = pop.groupby("GRP1LVL")["USUBJID"].nunique()
    pct = ard[ard["STAT"] == "pct"].merge(
        ard[ard["STAT"] == "n"], on=["GRP1LVL", "PARAMCD", "VARLVL", "GRP2LVL"])
    np.testing.assert_allclose(pct["STATVAL_x"],
                               100 * pct["STATVAL_y"] / pct["GRP1LVL"].map(n_col))


def test_soc_pt_sorted_by_total_frequency(sample_tlf):
    s = sample_tlf["RS001"]
    ctx = TlfContext.open("RS001", s.base / "adam", load_catalog("RS001"))
    spec = ctx.catalog.output("t-14-3-1-3")
    body = ae.soc_pt(ctx, spec).table.body
    pop = _pop(s.adam("ADSL"))
    te = _teae(s).merge(pop[pop["GRP1LVL"] == ALL], on="USUBJID")
    soc_n = te.groupby("AEBODSYS")["USUBJID"].nunique()
    socs = [lab for lab in body["LABEL"] if lab in soc_n.index]
    assert socs == sorted(soc_n.index, key=lambda v: (-soc_n[v], v))
    totals = body.loc[body["LABEL"].isin(socs), ALL].str.split(" ").str[0].astype(int)
    assert list(totals) == sorted(totals, reverse=True)


def test_worst_grade_per_pt(sample_tlf):
    s = sample_tlf["RS001"]
    pop = _pop(s.adam("ADSL"))
    te = _teae(s).merge(pop[pop["GRP1LVL"] == ALL], on="USUBJID")
    worst = te.groupby(["USUBJID", "AEBODSYS", "AEDECOD"])["ATOXGRN"].max().reset_index()
    exp = worst.groupby(["AEBODSYS", "AEDECOD", "ATOXGRN"])["USUBJID"].nunique()
    ard = s.ard("t-14-3-1-4")
    got = ard[(ard["STAT"] == "n") & (ard["GRP2"] == "ATOXGR") & (ard["VARLVL"] != "")]
    got = got.assign(G=got["GRP2LVL"].astype(float)).set_index(
        ["PARAMCD", "VARLVL", "G"])["STATVAL"]
    assert dict(got.astype(int)) == {k: v for k, v in exp.items()}
    # every subject of a PT sits in exactly one worst-grade band
    anyg = _ard_n(ard[ard["GRP2"] == ""], PARAMCD="TEAE")
    bands = ard[(ard["STAT"] == "n") & (ard["GRP2"] == "ATOXGR") & (ard["PARAMCD"] == "TEAE")]
    assert bands["STATVAL"].sum() == anyg[ALL]


def test_sae_table_only_serious(sample_tlf):
    s = sample_tlf["RS001"]
    pop = _pop(s.adam("ADSL"))
    te = _teae(s)
    exp = _expected(te[te["AESER"] == "Y"], pop, ["AEDECOD"])
    ard = s.ard("t-14-3-1-5")
    got = (ard[(ard["STAT"] == "n") & (ard["VARLVL"] != "")].groupby(["GRP1LVL", "VARLVL"])
           ["STATVAL"].sum())
    assert dict(got.astype(int)) == dict(exp)


@pytest.mark.parametrize("outid, window", [("t-14-3-1-1", 28), ("t-14-3-1-2", None)])
def test_overview_matches_adae(sample_tlf, outid, window):
    s = sample_tlf["RS001"]
    pop = _pop(s.adam("ADSL"))
    te = _teae(s)
    if window is not None:  # Day 0 = TRTSDT: onset at most `window` days after it
        days = (pd.to_datetime(te["ASTDT"]) - pd.to_datetime(te["TRTSDT"])).dt.days
        te = te[days.isna() | (days <= window)]
        assert (te["ASTDY"].dropna() <= window + 1).all()   # ASTDY has no day 0
    rel = te["AEREL"].isin(RELATED)
    masks = {"ANY": te["USUBJID"].notna(), "REL": rel, "GE3": te["ATOXGRN"] >= 3,
             "SER": te["AESER"] == "Y", "SERREL": rel & (te["AESER"] == "Y"),
             "DTH": (te["AESDTH"] == "Y") | (te["ATOXGRN"] == 5), "AESI": te["AESIFL"] == "Y"}
    ard = s.ard(outid)
    for code, mask in masks.items():
        exp = te[mask].merge(pop, on="USUBJID").groupby("GRP1LVL")["USUBJID"].nunique()
        got = _ard_n(ard, PARAMCD=code)
        assert dict(got.astype(int)) == dict(exp), code


def test_window_changes_counts(sample_tlf):
    """The Day 0-28 overview counts no more subjects than the whole-study one."""
    s = sample_tlf["RS001"]
    a, b = s.ard("t-14-3-1-1"), s.ard("t-14-3-1-2")
    for code in ("ANY", "GE3", "SER", "AESI"):
        assert (_ard_n(a, PARAMCD=code) <= _ard_n(b, PARAMCD=code).reindex(
            _ard_n(a, PARAMCD=code).index)).all()


def test_astct_grades_onset_duration(sample_tlf):
    s = sample_tlf["RS001"]
    adsl = s.adam("ADSL")
    pop = _pop(adsl)
    te = _teae(s)
    ard = s.ard("t-14-3-1-6")
    for cat in ("CRS", "ICANS"):
        ev = te[(te["AESICAT"] == cat) & (te["ATOXSCL"] == "ASTCT 2019")]
        ev = ev[ev["USUBJID"].isin(pop["USUBJID"])]
        worst = ev.groupby("USUBJID")["ATOXGRN"].max()
        for g in range(1, 6):
            got = _ard_n(ard, PARAMCD=cat, VARLVL=f"GRADE {g}").get(ALL, 0)
            assert got == (worst == g).sum(), (cat, g)
        assert _ard_n(ard, PARAMCD=cat, VARLVL="ANY")[ALL] == ev["USUBJID"].nunique()
        onset = ((pd.to_datetime(ev["ASTDT"]) - pd.to_datetime(ev["TRTSDT"])).dt.days
                 .groupby(ev["USUBJID"]).min())
        med = ard[(ard["PARAMCD"] == cat) & (ard["VARLVL"] == "ONSET") & (ard["STAT"] == "median")
                  & (ard["GRP1LVL"] == ALL)]
        if len(onset):
            assert med["STATVAL"].iloc[0] == pytest.approx(onset.median())
            assert (med["UNIT"] == "DAYS").all()
        dur = ard[(ard["PARAMCD"] == cat) & (ard["VARLVL"] == "DURATION") & (ard["GRP1LVL"] == ALL)]
        if ev["ADURN"].notna().any():
            stat = dur.set_index("STAT")["STATVAL"]
            assert stat["n"] == ev["ADURN"].notna().sum()
            assert stat["max"] == ev["ADURN"].max()


def test_aesi_by_category(sample_tlf):
    s = sample_tlf["RS001"]
    pop = _pop(s.adam("ADSL"))
    te = _teae(s)
    te = te[(te["AESIFL"] == "Y") & te["USUBJID"].isin(pop["USUBJID"])]
    exp = te.groupby("AESICAT")["USUBJID"].nunique()
    ard = s.ard("t-14-3-1-7")
    got = ard[(ard["STAT"] == "n") & (ard["VARLVL"] == "") & (ard["GRP2"] == "")
              & (ard["PARAMCD"] != "AESI")].set_index("PARAMCD")["STATVAL"]
    assert dict(got.astype(int)) == dict(exp)


def test_lineage_of_a_pt_count_is_its_subjects(sample_tlf):
    s = sample_tlf["RS001"]
    ard = s.ard("t-14-3-1-3").reset_index(drop=True)
    pop = _pop(s.adam("ADSL"))
    te = _teae(s).merge(pop[pop["GRP1LVL"] == ALL], on="USUBJID")
    top = te.groupby("AEDECOD")["USUBJID"].nunique().idxmax()
    row = ard.index[(ard["STAT"] == "n") & (ard["VARLVL"] == top) & (ard["GRP1LVL"] == ALL)][0]
    lin = s.lineage()
    lin = lin[(lin["OUTID"] == "t-14-3-1-3") & (lin["ARDROW"] == row + 1)]
    assert set(lin["USUBJID"]) == set(te.loc[te["AEDECOD"] == top, "USUBJID"])
    assert len(lin) and (lin["ADDSN"] == "ADAE").all() and (lin["SRCDOM"] == "AE").all()
    # each lineage record is a TEAE record of that PT
    recs = te[te["AEDECOD"] == top][["USUBJID", "AESEQ"]].astype({"AESEQ": float})
    assert set(map(tuple, lin[["USUBJID", "ADSEQ"]].to_numpy())) == set(map(tuple,
                                                                           recs.to_numpy()))


# ---- literal frames -------------------------------------------------------------------------

class _Ctx:
    """Just what the AE analyses read, over literal frames."""

    def __init__(self, adsl, adae):
        self._d = {"ADSL": adsl, "ADAE": adae}
        self.adam_dir = Path("/nonexistent")

    @property
    def adsl(self):
        return self._d["ADSL"]

    def dataset(self, name, columns=None):
        df = self._d[name]
        missing = [c for c in columns or [] if c not in df]
        if missing:
            raise TlfInputError(f"{name} has no variable(s) {missing}")
        return df[columns] if columns else df

    def groups(self, spec):
        return subject_groups(self.adsl, spec.population, spec.by, spec.total, spec.where)


def _spec(analysis, **params):
    return OutputSpec(id="t-99", type="table", title="x", population="SAFFL",
                      datasets=["ADAE"], analysis=analysis, params=params, by="TRT01A",
                      total=True)


def _literal():
    d0 = pd.Timestamp("2025-01-10")
    adsl = pd.DataFrame({"USUBJID": ["S1", "S2", "S3", "S4"], "SAFFL": ["Y", "Y", "Y", "N"],
                         "TRT01A": ["A", "A", "B", ""], "TRT01AN": [1, 1, 2, np.nan],
                         "TRTSDT": [d0] * 3 + [pd.NaT]})
    rows = [  # USUBJID, PT, grade, TRTEMFL, onset day after Day 0
        ("S1", "Nausea", 2, "Y", 1), ("S1", "Nausea", 4, "Y", 40), ("S1", "Fever", 1, "", -2),
        ("S2", "Nausea", 1, "Y", 3), ("S3", "Fever", 3, "Y", 28), ("S4", "Nausea", 5, "Y", 1)]
    adae = pd.DataFrame(rows, columns=["USUBJID", "AEDECOD", "ATOXGRN", "TRTEMFL", "DAY"])
    adae = adae.assign(AESEQ=range(1, len(adae) + 1), AEBODSYS="SOC",
                       TRTSDT=d0, ASTDT=d0 + pd.to_timedelta(adae["DAY"], unit="D"),
                       AEREL="NOT RELATED", AESER="N", AESDTH="", AESIFL="")
    return _Ctx(adsl, adae)


def test_literal_worst_grade_and_window():
    ctx = _literal()
    res = ae.soc_pt(ctx, _spec("ae.soc_pt", grades=["1-2", "3", "4", "5"]))
    ard = res.ard
    # S1 counts once for Nausea, at grade 4; S4 is not in the safety population
    bands = ard[(ard["STAT"] == "n") & (ard["VARLVL"] == "Nausea") & (ard["GRP2"] == "ATOXGR")
                & (ard["GRP1LVL"] == ALL)].set_index("GRP2LVL")["STATVAL"]
    assert dict(bands) == {"1-2": 1.0, "4": 1.0}
    assert _ard_n(ard[ard["GRP2"] == ""], VARLVL="Nausea").to_dict() == {"A": 2.0, ALL: 2.0}
    fever = _ard_n(ard[ard["GRP2"] == ""], VARLVL="Fever")
    assert dict(fever) == {"B": 1.0, ALL: 1.0}     # S1's pre-infusion fever is not a TEAE
    win = ae.overview(ctx, _spec("ae.overview", window_days=28)).ard
    assert dict(_ard_n(win, PARAMCD="GE3")) == {"B": 1.0, ALL: 1.0}   # S1's day-40 grade 4 out
    whole = ae.overview(ctx, _spec("ae.overview")).ard
    assert dict(_ard_n(whole, PARAMCD="GE3")) == {"A": 1.0, "B": 1.0, ALL: 2.0}


def test_literal_no_events_and_bad_params():
    ctx = _literal()
    none = ae.soc_pt(ctx, _spec("ae.soc_pt", filter={"AESER": "Y"}))
    assert list(none.table.body["LABEL"]) == ["Subjects with at least one TEAE"]
    assert set(none.table.body[ALL]) == {"0"}
    with pytest.raises(TlfInputError, match="grade band"):
        ae.soc_pt(ctx, _spec("ae.soc_pt", grades=["high"]))
    with pytest.raises(TlfInputError, match="filter"):
        ae.soc_pt(ctx, _spec("ae.soc_pt", filter=["AESER"]))
    with pytest.raises(TlfInputError, match="NOPE"):
        ae.soc_pt(ctx, _spec("ae.soc_pt", filter={"NOPE": "Y"}))


def test_literal_day0_from_another_date():
    """GLOCART-like: Day 0 is a later ADSL date (CAR-T), events before it are left out."""
    ctx = _literal()
    ctx._d["ADSL"] = ctx.adsl.assign(CARTDT=pd.Timestamp("2025-01-20"))   # 10 days after TRTSDT
    spec = _spec("ae.overview", day0="CARTDT", from_day0=True, window_days=28)
    got = ae.overview(ctx, spec).ard
    # S1's and S2's early events precede CAR-T, S1's day-40 one is CAR-T day 30: only S3 (18)
    assert dict(_ard_n(got, PARAMCD="ANY")) == {"B": 1.0, ALL: 1.0}
    assert "Day 0 = CARTDT" in ae.overview(ctx, spec).method


def test_grade_bands():
    assert ae.grade_bands(True) == [(g, [int(g)]) for g in "12345"]
    assert ae.grade_bands(["1-2", ">=3"]) == [("1-2", [1, 2]), (">=3", [3, 4, 5])]
