"""The response engine (adam/response.py) rule by rule, on literal frames."""
import pandas as pd
import pytest

from adam.response import (
    BestResponseRule,
    Criterion,
    compute_last_before,
    compute_lyric,
    compute_nearest,
    derive_best_response,
)
from clinpipe.config import load_study

D0 = pd.Timestamp("2024-01-10")


@pytest.fixture(scope="module")
def rs001():
    return load_study("RS001")


def _assess(rows, newtx=None, end_days=730):
    """rows: (subject, day after Day 0, response)."""
    df = pd.DataFrame(rows, columns=["USUBJID", "DAY", "AVALC"])
    df["ADT"] = D0 + pd.to_timedelta(df["DAY"], unit="D")
    df["SRCSEQ"] = range(1, len(df) + 1)
    df["SRCSEQ"] = df["SRCSEQ"].astype(float)
    df["ANCHOR"] = df["WSTART"] = D0
    df["WEND"] = D0 + pd.Timedelta(days=end_days)
    df["NEWTXDT"] = df["USUBJID"].map(newtx or {}).astype("datetime64[ns]")
    return df.drop(columns="DAY")


def _best(df, crit, **rule):
    best, scored = derive_best_response(df, crit, BestResponseRule(**rule))
    return best.set_index("USUBJID"), scored


def test_criterion_from_study_yaml(rs001):
    lug = Criterion.from_study(rs001, "LUGANO2014")
    assert lug.ranks == {"CR": 1, "PR": 2, "SD": 3, "PD": 4, "NE": 5}
    assert lug.responders == {"CR", "PR"} and lug.progression == {"PD"}
    nccn = Criterion.from_study(rs001, "NCCNALL")
    assert nccn.progression == {"PD", "RELAPSE"} and nccn.responders == {"CR", "CRI"}
    assert Criterion.from_study(rs001, "LYRIC2016").indeterminate == {"IR1", "IR2", "IR3"}


def test_best_is_the_highest_rank_and_its_first_date(rs001):
    lug = Criterion.from_study(rs001, "LUGANO2014")
    best, _ = _best(_assess([("A", 28, "PR"), ("A", 90, "CR"), ("A", 180, "CR"), ("B", 28, "NE")]), lug)
    assert best.loc["A", "AVALC"] == "CR" and best.loc["A", "SRCSEQ"] == 2 and best.loc["A", "AVAL"] == 1
    assert best.loc["B", "AVALC"] == "NE"


def test_sd_needs_an_assessment_at_least_day_21(rs001):
    lug = Criterion.from_study(rs001, "LUGANO2014")
    df = _assess([("A", 20, "SD"), ("B", 21, "SD"), ("C", 14, "SD"), ("C", 28, "PD")])
    best, _ = _best(df, lug, sd_min_days=21)
    assert best.loc["A", "AVALC"] == "NE"          # Day 20: too early for SD
    assert best.loc["B", "AVALC"] == "SD"          # Day 21: counts
    assert best.loc["C", "AVALC"] == "PD"          # early SD is NE, so PD is the best
    best, _ = _best(df, lug)                       # without the rule an early SD counts
    assert best.loc["A", "AVALC"] == "SD"


def test_stop_at_first_progression(rs001):
    lug = Criterion.from_study(rs001, "LUGANO2014")
    df = _assess([("A", 28, "SD"), ("A", 60, "PD"), ("A", 90, "CR")])
    best, scored = _best(df, lug)
    assert best.loc["A", "AVALC"] == "SD"           # the CR after PD does not count
    assert scored["ANL"].tolist() == [True, True, False]
    best, _ = _best(df, lug, stop_at_progression=False)
    assert best.loc["A", "AVALC"] == "CR"


def test_stop_at_new_anticancer_therapy(rs001):
    lug = Criterion.from_study(rs001, "LUGANO2014")
    rows = [("A", 28, "SD"), ("A", 90, "PR"), ("B", 28, "SD"), ("B", 90, "PR")]
    df = _assess(rows, newtx={"A": D0 + pd.Timedelta(days=60), "B": D0 + pd.Timedelta(days=90)})
    best, _ = _best(df, lug)
    assert best.loc["A", "AVALC"] == "SD"           # PR after the new therapy started
    assert best.loc["B", "AVALC"] == "PR"           # scan on the start day: before the new therapy


def test_window_excludes_baseline_and_after_end(rs001):
    lug = Criterion.from_study(rs001, "LUGANO2014")
    best, _ = _best(_assess([("A", 0, "CR"), ("A", 28, "SD"), ("A", 400, "CR")], end_days=365), lug)
    assert best.loc["A", "AVALC"] == "SD"


def test_optional_confirmation(rs001):
    lug = Criterion.from_study(rs001, "LUGANO2014")
    df = _assess([("A", 28, "PR"), ("A", 40, "PR"), ("B", 28, "PR"), ("B", 60, "PR")])
    best, _ = _best(df, lug, confirm_days=28)
    assert best.loc["A", "AVALC"] == "SD"           # second PR only 12 days later
    assert best.loc["B", "AVALC"] == "PR"


def test_lyric_ir_confirmed_by_next_pd_is_backdated(rs001):
    lyr = Criterion.from_study(rs001, "LYRIC2016")
    df = _assess([("A", 28, "IR1"), ("A", 90, "PD"),
                  ("B", 28, "IR2"), ("B", 60, "IR1"), ("B", 90, "PD"),     # a run of IRs: its first
                  ("C", 28, "IR1"), ("C", 90, "PR"), ("C", 180, "PD"),     # IR not confirmed
                  ("D", 28, "IR1"), ("D", 60, "NE"), ("D", 90, "PD")])     # an NE in between confirms nothing, is skipped
    out = compute_lyric(df, lyr).set_index(["USUBJID", "SRCSEQ"])
    assert out.loc[("A", 2), "PDDT"] == D0 + pd.Timedelta(days=28)
    assert out.loc[("A", 1), "RESPC"] == "PD" and out.loc[("A", 1), "IRCONF"] == "Y"
    assert out.loc[("B", 5), "PDDT"] == D0 + pd.Timedelta(days=28)
    assert out.loc[("C", 6), "RESPC"] == "IR1" and out.loc[("C", 8), "PDDT"] == D0 + pd.Timedelta(days=180)
    assert out.loc[("D", 11), "PDDT"] == D0 + pd.Timedelta(days=28)
    best, _ = derive_best_response(out.reset_index(), lyr, BestResponseRule(), "RESPC")
    best = best.set_index("USUBJID")
    assert best.loc["A", "AVALC"] == "PD" and best.loc["A", "ADT"] == D0 + pd.Timedelta(days=28)
    assert best.loc["C", "AVALC"] == "PR"            # IR1 was not progression


def test_lyric_ir_not_confirmed_stays_ir(rs001):
    lyr = Criterion.from_study(rs001, "LYRIC2016")
    out = compute_lyric(_assess([("A", 28, "IR1"), ("A", 90, "SD")]), lyr)
    assert out["RESPC"].tolist() == ["IR1", "SD"] and out["PDDT"].isna().all()
    best, _ = derive_best_response(out, lyr, BestResponseRule(), "RESPC")
    assert best["AVALC"].tolist() == ["SD"]


def test_month3_window_nearest_day90_ties_to_the_later():
    df = _assess([("A", 75, "CR"), ("A", 86, "PR"), ("A", 94, "SD"),     # 86 and 94 equally near: later
                  ("B", 76, "PR"), ("B", 105, "CR"),                     # only Day 76 is in the window
                  ("C", 104, "CR"), ("D", 70, "CR")])
    got = compute_nearest(df, 76, 104, 90).set_index("USUBJID")["AVALC"]
    assert got.to_dict() == {"A": "SD", "B": "PR", "C": "CR"}


def test_last_assessment_at_most_14_days_before_lymphodepletion():
    df = _assess([("A", 20, "PR"), ("A", 36, "CR"),      # LD Day 50: Day 36 is 14 days before -> counts
                  ("B", 35, "CR"),                        # 15 days before: too early
                  ("C", 30, "PR"), ("C", 50, "CR")])      # on the LD day: not before it
    df["START"] = D0
    df["END"] = D0 + pd.Timedelta(days=50)
    got = compute_last_before(df, "START", "END", 14).set_index("USUBJID")["AVALC"]
    assert got.to_dict() == {"A": "CR"}
    df.loc[df.USUBJID == "C", "END"] = D0 + pd.Timedelta(days=51)     # Day 50 is 1 day before
    assert compute_last_before(df, "START", "END", 14).set_index("USUBJID")["AVALC"].to_dict() == {"A": "CR", "C": "CR"}


def test_nccn_relapse_stops_and_cri_is_a_responder(rs001):
    nccn = Criterion.from_study(rs001, "NCCNALL")
    df = _assess([("A", 28, "CRI"), ("A", 60, "RELAPSE"), ("A", 90, "CR"), ("B", 28, "NR")])
    best, _ = _best(df, nccn)
    assert best.loc["A", "AVALC"] == "CRI" and best.loc["B", "AVALC"] == "NR"
