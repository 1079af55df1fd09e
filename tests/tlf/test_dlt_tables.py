"""DLT by dose level (t-14-3-5-1): counts against ADSL/ADAE recomputed here, the 3+3
decisions and MTD against adam.escalation on the same data, and a small literal study where
the MTD is not reached."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import beta

from adam.escalation import compute_escalation_summary
from clinpipe.config import load_study
from tlf.analyses import dlt
from tlf.catalog import load_catalog
from tlf.context import TlfContext

OUT = "t-14-3-5-1"


def _rows(ard, **keys):
    m = pd.Series(True, index=ard.index)
    for k, v in keys.items():
        m &= ard[k] == v
    return ard[m]


def test_dlt_counts_match_adsl_and_adae(sample_tlf):
    s = sample_tlf["RS001"]
    ard, adsl, adae = s.ard(OUT), s.adam("ADSL"), s.adam("ADAE")
    ev = adsl[adsl.DLTEVLFL == "Y"]
    dlt_subj = set(adae.loc[adae.DLTFL == "Y", "USUBJID"])
    expected = (ev.assign(D=ev.USUBJID.isin(dlt_subj)).groupby("TRT01A")
                .agg(N=("USUBJID", "nunique"), n=("D", "sum")))
    expected.loc["All subjects"] = [ev.USUBJID.nunique(), ev.USUBJID.isin(dlt_subj).sum()]
    # ADSL's DLTFL says the same as the ADAE records
    assert (ev.DLTFL == "Y").sum() == expected.loc["All subjects", "n"]
    for level, row in expected.iterrows():
        N = _rows(ard, GRP1LVL=level, STAT="N", PARAMCD="")["STATVAL"].item()
        n = _rows(ard, GRP1LVL=level, STAT="n", PARAMCD="DLT", GRP2="")["STATVAL"].item()
        assert (N, n) == (row.N, row.n), level
        pct = _rows(ard, GRP1LVL=level, STAT="pct", PARAMCD="DLT", GRP2="")["STATVAL"].item()
        assert pct == pytest.approx(100 * row.n / row.N)
        # Clopper & Pearson (1934), Biometrika 26:404-413: the exact interval's bounds are
        # the beta quantiles B(0.025; x, n-x+1) and B(0.975; x+1, n-x)
        lo = 0.0 if row.n == 0 else beta.ppf(0.025, row.n, row.N - row.n + 1)
        hi = 1.0 if row.n == row.N else beta.ppf(0.975, row.n + 1, row.N - row.n)
        lcl = _rows(ard, GRP1LVL=level, STAT="lcl", PARAMCD="DLT")["STATVAL"].item()
        ucl = _rows(ard, GRP1LVL=level, STAT="ucl", PARAMCD="DLT")["STATVAL"].item()
        assert (lcl, ucl) == pytest.approx((100 * lo, 100 * hi), abs=1e-6)


def test_zero_of_three_prints_its_exact_upper_bound(sample_tlf):
    ard = sample_tlf["RS001"].ard(OUT)
    zero = ard[(ard.PARAMCD == "DLT") & (ard.STAT == "n") & (ard.STATVAL == 0)]
    for level in zero.GRP1LVL:
        N = _rows(ard, GRP1LVL=level, STAT="N")["STATVAL"].item()
        ucl = _rows(ard, GRP1LVL=level, STAT="ucl", PARAMCD="DLT")["STATVAL"].item()
        assert ucl == pytest.approx(100 * (1 - 0.025 ** (1 / N)))   # closed form of 0/N


def test_decisions_and_mtd_are_adam_escalations(sample_tlf):
    s = sample_tlf["RS001"]
    ard = s.ard(OUT)
    table, statement = compute_escalation_summary(s.adam("ADSL"), load_study("RS001"))
    dec = _rows(ard, PARAMCD="ESCDEC")
    got = dict(zip(dec.GRP1LVL.str.split(" ").str[0], dec.STATC))
    assert got == dict(zip(table["DOSE LEVEL"], table["DECISION"]))
    assert dec.STATVAL.isna().all() and set(dec.STAT) == {"n"}
    for col, code in (("DLT-EVALUABLE", "ESCEVAL"), ("WITH DLT", "ESCDLT")):
        r = _rows(ard, PARAMCD=code)
        assert dict(zip(r.GRP1LVL.str.split(" ").str[0], r.STATVAL)) == \
            dict(zip(table["DOSE LEVEL"], table[col].astype(float)))
    mtd = _rows(ard, PARAMCD="MTD")
    assert mtd.STATC.tolist() == [statement]
    assert mtd.VARLVL.tolist() == [statement.split(" ")[1] if statement.startswith("MTD DL") else ""]


def test_dlt_row_traces_to_adae_dlt_records(sample_tlf):
    s = sample_tlf["RS001"]
    ard, lin, adae, adsl = s.ard(OUT), s.lineage(), s.adam("ADAE"), s.adam("ADSL")
    row = _rows(ard, GRP1LVL="All subjects", STAT="n", PARAMCD="DLT").index.item() + 1
    got = lin[(lin.OUTID == OUT) & (lin.ARDROW == row)]
    ev = set(adsl.loc[adsl.DLTEVLFL == "Y", "USUBJID"])
    want = adae[(adae.DLTFL == "Y") & adae.USUBJID.isin(ev)]
    assert set(zip(got.USUBJID, got.ADSEQ.astype(float))) == \
        set(zip(want.USUBJID, want.AESEQ.astype(float)))


# --- a literal study: MTD not reached -------------------------------------------------------

def _tiny_context(tmp_path, adsl: pd.DataFrame, adae: pd.DataFrame) -> TlfContext:
    adsl.to_parquet(tmp_path / "adsl.parquet")
    adae.to_parquet(tmp_path / "adae.parquet")
    (tmp_path / "manifest.json").write_text(json.dumps({"data_cutoff": "2025-01-01"}))
    return TlfContext.open("RS001", tmp_path, load_catalog("RS001"))


def _subjects(level: str, n: int, n_dlt: int, start: int) -> pd.DataFrame:
    ids = [f"S-{start + i:03d}" for i in range(n)]
    return pd.DataFrame({"USUBJID": ids, "COHORT": "ESCALATION", "TRT01A": level,
                         "TRT01AN": float(level[2]), "SAFFL": "Y", "DLTEVLFL": "Y",
                         "DLTFL": ["Y"] * n_dlt + ["N"] * (n - n_dlt)})


def test_literal_mtd_not_reached(tmp_path):
    # DL1 0/3 -> escalate; DL2 1/6 -> tolerated; no level exceeded: MTD not reached (STUDIES.md 1)
    adsl = pd.concat([_subjects("DL1 1x10^6 CAR+ cells/kg", 3, 0, 1),
                      _subjects("DL2 3x10^6 CAR+ cells/kg", 6, 1, 10)], ignore_index=True)
    adae = pd.DataFrame({"USUBJID": ["S-010", "S-011"], "AESEQ": [1, 1],
                         "DLTWINFL": ["Y", "Y"], "DLTFL": ["Y", "N"], "DLTINVFL": ["Y", "N"],
                         "DLTRULE": ["CRS-G4", ""]})
    ctx = _tiny_context(tmp_path, adsl, adae)
    res = dlt.by_dose_level(ctx, ctx.catalog.output(OUT))
    body = res.table.body
    expected = pd.DataFrame({
        "LEVEL": ["DL1 1x10^6 CAR+ cells/kg", "DL2 3x10^6 CAR+ cells/kg", "All subjects",
                  "MTD not reached; highest dose level tested DL2 (3x10^6 CAR+ cells/kg)."],
        "N": ["3", "6", "9", ""],
        "DLT": ["0", "1 (16.7)", "1 (11.1)", ""],
        "CI": ["(0.0, 70.8)", "(0.4, 64.1)", "(0.3, 48.2)", ""],
        "EN": ["3", "6", "", ""], "ED": ["0", "1", "", ""],
        "DEC": ["escalate", "tolerated", "", ""]})
    pd.testing.assert_frame_equal(body.reset_index(drop=True), expected)
    mtd = res.ard[res.ard.PARAMCD == "MTD"]
    assert mtd.STATC.tolist() == [expected.LEVEL.iloc[-1]] and np.isnan(mtd.STATVAL.item())
