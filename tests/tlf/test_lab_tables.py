"""Lab (t-14-3-4-1/-2/-3) and vital-sign/ECG (t-14-3-4-4) abnormality tables against a
direct recomputation from ADSL, ADLB, ADVS and ADEG."""
from __future__ import annotations

import pandas as pd
import pytest

DIRS = {"L": ("ATOXDSCL", "ATOXGRLN", "BTOXGRLN"), "H": ("ATOXDSCH", "ATOXGRHN", "BTOXGRHN")}


def _safety(s):
    adsl = s.adam("ADSL")
    pop = adsl.loc[adsl.SAFFL == "Y", ["USUBJID", "TRT01A"]]
    return pd.concat([pop, pop.assign(TRT01A="All subjects")], ignore_index=True)


def _worst(s, flag):
    """Per subject, parameter, direction: worst graded post-baseline grade and baseline grade."""
    lb = s.adam("ADLB")
    lb = lb[(lb[flag] == "Y") & lb.AVAL.notna()]
    out = []
    for d, (term, grade, base) in DIRS.items():
        g = lb[lb[term].fillna("") != ""].dropna(subset=[grade])
        w = g.groupby(["USUBJID", "PARAMCD"]).agg(WORST=(grade, "max"), BASE=(base, "first"))
        out.append(w.reset_index().assign(CODE=lambda x, d=d: x.PARAMCD + "-" + d))
    return pd.concat(out, ignore_index=True)


def _ard_n(ard, **keys):
    m = ard.STAT == "n"
    for k, v in keys.items():
        m &= ard[k] == v
    return ard[m].set_index("GRP1LVL")["STATVAL"]


@pytest.mark.parametrize("outid, flag", [("t-14-3-4-1", "ONTRTFL"), ("t-14-3-4-2", "PRIMWFL")])
def test_grade3_counts(sample_tlf, outid, flag):
    s = sample_tlf["RS001"]
    ard = s.ard(outid)
    w = _worst(s, flag).merge(_safety(s), on="USUBJID")
    ge3 = w[w.WORST >= 3]
    assert len(ge3), "the sample has grade >= 3 lab values (neutropenia at least)"
    want = ge3.groupby(["CODE", "TRT01A"]).USUBJID.nunique()
    got = ard[(ard.STAT == "n") & (ard.VARLVL == "GRADE >=3")].set_index(
        ["PARAMCD", "GRP1LVL"])["STATVAL"]
    pd.testing.assert_series_equal(got.sort_index(), want.sort_index().astype(float),
                                   check_names=False)
    want4 = w[w.WORST == 4].groupby(["CODE", "TRT01A"]).USUBJID.nunique()
    got4 = ard[(ard.STAT == "n") & (ard.VARLVL == "WORST GRADE 4")].set_index(
        ["PARAMCD", "GRP1LVL"])["STATVAL"]
    pd.testing.assert_series_equal(got4.sort_index(), want4.sort_index().astype(float),
                                   check_names=False)
    # percentages of the safety population N of the level
    N = _safety(s).groupby("TRT01A").USUBJID.nunique()
    pct = ard[(ard.STAT == "pct") & (ard.VARLVL == "GRADE >=3")].set_index(
        ["PARAMCD", "GRP1LVL"])["STATVAL"].sort_index()
    assert pct.to_numpy() == pytest.approx(
        (100 * want.sort_index() / N.reindex(want.sort_index().index.get_level_values(1)).to_numpy()
         ).to_numpy())


def test_shift_counts(sample_tlf):
    s = sample_tlf["RS001"]
    ard = s.ard("t-14-3-4-3")
    w = _worst(s, "ONTRTFL").merge(_safety(s), on="USUBJID")
    w["B"] = w.BASE.map(lambda v: "BASELINE MISSING" if pd.isna(v) else f"BASELINE GRADE {int(v)}")
    w["V"] = "WORST GRADE " + w.WORST.astype(int).astype(str)
    want = w.groupby(["TRT01A", "CODE", "B", "V"]).USUBJID.nunique()
    cells = ard[(ard.STAT == "n") & (ard.VARLVL != "ANY WORST GRADE")]
    got = cells.set_index(["GRP1LVL", "PARAMCD", "GRP2LVL", "VARLVL"])["STATVAL"]
    pd.testing.assert_series_equal(got.sort_index(), want.sort_index().astype(float),
                                   check_names=False)
    # N: subjects of the level with a graded post-baseline value of the parameter
    wantN = w.groupby(["TRT01A", "CODE"]).USUBJID.nunique().sort_index().astype(float)
    gotN = ard[ard.STAT == "N"].set_index(["GRP1LVL", "PARAMCD"])["STATVAL"].sort_index()
    pd.testing.assert_series_equal(gotN, wantN, check_names=False)


def test_vital_sign_and_ecg_abnormalities(sample_tlf):
    s = sample_tlf["RS001"]
    ard = s.ard("t-14-3-4-4")
    pop = _safety(s)
    for name, ys in (("ADVS", 3), ("ADEG", 5)):
        df = s.adam(name)
        for y in range(1, ys + 1):
            met = df[(df.ONTRTFL == "Y") & (df[f"CRIT{y}FL"] == "Y")].merge(pop, on="USUBJID")
            want = met.groupby(["PARAMCD", "TRT01A"]).USUBJID.nunique()
            sub = ard[(ard.STAT == "n") & (ard.VARLVL == f"CRIT{y}") &
                      ard.PARAMCD.isin(df.PARAMCD.unique())]
            got = sub.set_index(["PARAMCD", "GRP1LVL"])["STATVAL"]
            pd.testing.assert_series_equal(got.sort_index(), want.sort_index().astype(float),
                                           check_names=False)
    # every criterion of the ADaM has a table row, worded as the ADaM's CRITy
    layout_crit = set(ard.loc[ard.STAT == "n", "VARLVL"])
    assert {"CRIT1", "CRIT2", "CRIT3", "CRIT4", "CRIT5"} <= layout_crit


def test_lab_cells_trace_to_the_worst_records(sample_tlf):
    s = sample_tlf["RS001"]
    ard, lin, lb = s.ard("t-14-3-4-1"), s.lineage(), s.adam("ADLB")
    row = ard[(ard.STAT == "n") & (ard.VARLVL == "WORST GRADE 4")].iloc[0]
    k = row.name + 1
    got = lin[(lin.OUTID == "t-14-3-4-1") & (lin.ARDROW == k)]
    code, d = row.PARAMCD.rsplit("-", 1)
    _, grade, _ = DIRS[d]
    recs = lb[(lb.PARAMCD == code) & (lb.ONTRTFL == "Y") & (lb[grade] == 4)]
    assert set(got.USUBJID) == set(recs.USUBJID[recs.USUBJID.isin(got.USUBJID)])
    assert set(zip(got.USUBJID, got.ADSEQ.astype(float))) <= set(zip(recs.USUBJID, recs.ASEQ))
    assert got.USUBJID.nunique() == row.STATVAL
