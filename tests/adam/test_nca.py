"""Tests of adam.nca: literal profiles for each rule, and agreement with published
reference values from independent tools (Phoenix WinNonlin on R's Theoph data set;
R 4.2.2 computations by hand)."""
import math

import numpy as np
import pytest

from adam.nca import PARAMETERS, nca_profile

LN2 = math.log(2)
nan = math.nan

# ---------------------------------------------------------------------------
# Reference 1: R's Theoph data set (package datasets, R 4.2.2, Debian r-base-core
# 4.2.2.20221110-2), printed with
#   d <- Theoph; d$Subject <- as.numeric(as.character(d$Subject))
#   d <- d[order(d$Subject, d$Time), ]
# Time in h, conc in mg/L; Subject 1..12.
# ---------------------------------------------------------------------------
THEOPH = {
    1: ([0, 0.25, 0.57, 1.12, 2.02, 3.82, 5.1, 7.03, 9.05, 12.12, 24.37],
        [0.74, 2.84, 6.57, 10.5, 9.66, 8.58, 8.36, 7.47, 6.89, 5.94, 3.28]),
    2: ([0, 0.27, 0.52, 1, 1.92, 3.5, 5.02, 7.03, 9, 12, 24.3],
        [0, 1.72, 7.91, 8.31, 8.33, 6.85, 6.08, 5.4, 4.55, 3.01, 0.9]),
    3: ([0, 0.27, 0.58, 1.02, 2.02, 3.62, 5.08, 7.07, 9, 12.15, 24.17],
        [0, 4.4, 6.9, 8.2, 7.8, 7.5, 6.2, 5.3, 4.9, 3.7, 1.05]),
    4: ([0, 0.35, 0.6, 1.07, 2.13, 3.5, 5.02, 7.02, 9.02, 11.98, 24.65],
        [0, 1.89, 4.6, 8.6, 8.38, 7.54, 6.88, 5.78, 5.33, 4.19, 1.15]),
    5: ([0, 0.3, 0.52, 1, 2.02, 3.5, 5.02, 7.02, 9.1, 12, 24.35],
        [0, 2.02, 5.63, 11.4, 9.33, 8.74, 7.56, 7.09, 5.9, 4.37, 1.57]),
    6: ([0, 0.27, 0.58, 1.15, 2.03, 3.57, 5, 7, 9.22, 12.1, 23.85],
        [0, 1.29, 3.08, 6.44, 6.32, 5.53, 4.94, 4.02, 3.46, 2.78, 0.92]),
    7: ([0, 0.25, 0.5, 1.02, 2.02, 3.48, 5, 6.98, 9, 12.05, 24.22],
        [0.15, 0.85, 2.35, 5.02, 6.58, 7.09, 6.66, 5.25, 4.39, 3.53, 1.15]),
    8: ([0, 0.25, 0.52, 0.98, 2.02, 3.53, 5.05, 7.15, 9.07, 12.1, 24.12],
        [0, 3.05, 3.05, 7.31, 7.56, 6.59, 5.88, 4.73, 4.57, 3, 1.25]),
    9: ([0, 0.3, 0.63, 1.05, 2.02, 3.53, 5.02, 7.17, 8.8, 11.6, 24.43],
        [0, 7.37, 9.03, 7.14, 6.33, 5.66, 5.67, 4.24, 4.11, 3.16, 1.12]),
    10: ([0, 0.37, 0.77, 1.02, 2.05, 3.55, 5.05, 7.08, 9.38, 12.1, 23.7],
         [0.24, 2.89, 5.22, 6.41, 7.83, 10.21, 9.18, 8.02, 7.14, 5.68, 2.42]),
    11: ([0, 0.25, 0.5, 0.98, 1.98, 3.6, 5.02, 7.03, 9.03, 12.12, 24.08],
         [0, 4.86, 7.24, 8, 6.81, 5.87, 5.22, 4.45, 3.62, 2.69, 0.86]),
    12: ([0, 0.25, 0.5, 1, 2, 3.52, 5.07, 7.07, 9.03, 12.05, 24.15],
         [0, 1.25, 3.96, 7.82, 9.72, 9.75, 8.57, 6.59, 6.11, 4.57, 1.17]),
}

# Phoenix WinNonlin 6.3/7.0 results on Theoph (extravascular, best-fit lambda_z), as
# published in the NonCompart validation repository github.com/asancpt/NonCompart-tests
# (commit bb77168cd890fd543f11103e2c54699589f403e4, 2018-08-07), files
# Final_Parameters_Pivoted_Theoph_Log.csv (linear-up/log-down, AUClast_log) and
# Final_Parameters_Pivoted_Theoph_Linear.csv (linear, AUClast_lin); lambda_z, its
# points and R2adj are identical in both files.  Columns: Cmax, Tmax, AUClast_log,
# AUClast_lin, Lambda_z, HL_Lambda_z, No_points_lambda_z, Rsq_adjusted,
# Lambda_z_lower, Lambda_z_upper.
WINNONLIN = {
    1: (10.5, 1.12, 147.2347485, 148.92305, 0.048456997, 14.30437757, 3, 0.999999459, 9.05, 24.37),
    2: (8.33, 1.92, 88.73127549, 91.5268, 0.104086444, 6.659341563, 4, 0.995793082, 7.03, 24.3),
    3: (8.2, 1.02, 95.87819779, 99.2865, 0.102444314, 6.766087377, 3, 0.998649924, 9, 24.17),
    4: (8.6, 1.07, 102.6336232, 106.7963, 0.099287021, 6.981246661, 3, 0.997848274, 9.02, 24.65),
    5: (11.4, 1, 118.1793538, 121.2944, 0.086618884, 8.002264041, 4, 0.997970777, 7.02, 24.35),
    6: (6.44, 1.15, 71.69701499, 73.77555, 0.08779574, 7.894997868, 7, 0.997889605, 2.03, 23.85),
    7: (7.09, 3.48, 87.96922744, 90.7534, 0.088336496, 7.846668261, 4, 0.998005251, 6.98, 24.22),
    8: (7.56, 2.02, 86.80656348, 88.55995, 0.08145054, 8.510037883, 6, 0.988765489, 3.53, 24.12),
    9: (9.03, 0.63, 83.93743601, 86.32615, 0.082458634, 8.405998807, 3, 0.99888733, 8.8, 24.43),
    10: (10.21, 3.55, 135.5760701, 138.3681, 0.074959824, 9.246915823, 3, 0.999017368, 9.38, 23.7),
    11: (8, 0.98, 77.89347233, 80.0936, 0.09545856, 7.261236515, 3, 0.999996512, 9.03, 24.08),
    12: (9.75, 3.52, 115.2202082, 119.9775, 0.110259489, 6.286508164, 3, 0.998793603, 9.03, 24.15),
}

REL = 1e-6  # >= 6 significant digits; the CSVs carry 9-10 (observed agreement ~1e-9)


@pytest.mark.parametrize("subject", sorted(THEOPH))
@pytest.mark.parametrize("method", ["linear-up/log-down", "linear"])
def test_theoph_matches_winnonlin(subject, method):
    t, c = THEOPH[subject]
    cmax, tmax, auc_log, auc_lin, lamz, hl, npt, r2adj, ll, ul = WINNONLIN[subject]
    r = nca_profile(t, c, auc_method=method)
    assert r.value("CMAX") == cmax
    assert r.value("TMAX") == tmax
    assert r.value("AUCLST") == pytest.approx(auc_log if method != "linear" else auc_lin, rel=REL)
    assert r.value("LAMZ") == pytest.approx(lamz, rel=REL)
    assert r.value("LAMZHL") == pytest.approx(hl, rel=REL)
    assert r.value("LAMZNPT") == npt
    assert r.value("R2ADJ") == pytest.approx(r2adj, rel=REL)
    assert (r.value("LAMZLL"), r.value("LAMZUL")) == (ll, ul)
    assert r.lambda_z_times == tuple(t[-npt:])
    assert r.lambda_z_conc == tuple(c[-npt:])


# ---------------------------------------------------------------------------
# Reference 2: R 4.2.2 by hand (script in the comments; output printed with
# digits=15).  seg() is the linear-up/log-down trapezoid:
#   seg <- function(t1, t2, c1, c2) ifelse(c2 < c1 & c2 > 0,
#            (t2-t1)*(c1-c2)/log(c1/c2), (t2-t1)*(c1+c2)/2)
# ---------------------------------------------------------------------------
def test_theoph1_partial_auc_and_lm_match_r_by_hand():
    # t <- c(0,0.25,0.57,1.12,2.02,3.82,5.1,7.03,9.05); c <- c(0.74,...,6.89)
    # c10 <- exp(log(6.89) + (10-9.05)/(12.12-9.05)*log(5.94/6.89))
    # sum(seg(t[-n], t[-1], c[-n], c[-1])) + seg(9.05, 10, 6.89, c10)  -> 79.1049575663464
    # f1 <- lm(log(conc) ~ Time, data=subset(Theoph, Subject == 1), subset = Time >= 9)
    #   -coef(f1)[[2]] -> 0.048456996965775; summary(f1)$adj.r.squared -> 0.999999459349958
    t, c = THEOPH[1]
    r = nca_profile(t, c, auc_end=10)
    assert r.value("AUCINT") == pytest.approx(79.1049575663464, rel=1e-10)
    assert r.value("LAMZ") == pytest.approx(0.048456996965775, rel=1e-10)
    assert r.value("R2ADJ") == pytest.approx(0.999999459349958, rel=1e-10)


def test_cart_like_profile_with_blq_matches_r_by_hand():
    # Days; BLQ at day 0 (flag) and day 1 (20 < LLOQ 25) -> 0 (before Tmax);
    # BLQ at day 35 and 90 (after Tmax) -> dropped.  R by hand on the kept points:
    #   t <- c(0, 1, 4, 7, 11, 14, 21, 56); c <- c(0, 0, 60, 800, 1200, 700, 150, 40)
    #   auclast <- sum(seg(t[-n], t[-1], c[-n], c[-1]))              -> 13575.0192849141
    #   c28 <- exp(log(150) + (28-21)/(56-21)*log(40/150))             -> 115.155584891213
    #   auc28 <- sum(seg(t[1:6], t[2:7], c[1:6], c[2:7])) + seg(21, 28, 150, c28)
    #                                                                  -> 11584.9047784197
    #   f <- lm(log(c) ~ t, subset = t > 11); -coef(f)[[2]]            -> 0.0583466118120635
    #   summary(f)$adj.r.squared -> 0.680015428874747, $r.squared -> 0.840007714437374
    #   Cmax/2 = 600 is crossed between (14, 700) and (21, 150):
    #   tx <- 14 + (21-14)*log(700/600)/log(700/150)                   -> 14.70048247753607
    times = [0, 1, 4, 7, 11, 14, 21, 35, 56, 90]
    conc = [nan, 20, 60, 800, 1200, 700, 150, nan, 40, nan]
    blq = [True, False, False, False, False, False, False, True, False, True]
    r = nca_profile(times, conc, blq, lloq=25, cmax_end=90)
    assert (r.value("CMAX"), r.value("TMAX")) == (1200, 11)
    assert (r.value("CLST"), r.value("TLST")) == (40, 56)
    assert r.value("AUCLST") == pytest.approx(13575.0192849141, rel=1e-10)
    assert r.value("AUCINT") == pytest.approx(11584.9047784197, rel=1e-10)
    assert r.value("LAMZ") == pytest.approx(0.0583466118120635, rel=1e-10)
    assert r.value("LAMZHL") == pytest.approx(LN2 / 0.0583466118120635, rel=1e-10)
    assert r.value("R2ADJ") == pytest.approx(0.680015428874747, rel=1e-10)
    assert r.value("R2") == pytest.approx(0.840007714437374, rel=1e-10)
    assert r.lambda_z_times == (14, 21, 56)
    assert r.value("LAMZSPN") == pytest.approx(42 / (LN2 / 0.0583466118120635))
    assert r.value("THALFT") == pytest.approx(14.70048247753607, rel=1e-10)
    assert r.value("THALFOBS") == pytest.approx(3.70048247753607, rel=1e-10)


# ---------------------------------------------------------------------------
# Analytic checks: an exponential decline is integrated / interpolated exactly by
# the log trapezoid and log interpolation.
# ---------------------------------------------------------------------------
def test_exponential_decline_is_exact():
    t = np.array([0, 0.5, 1, 2, 3, 4, 6])
    c = 16 * 2.0 ** (-(t - 0.5))  # Tmax 0.5 (16), half-life 1
    c[0] = 0.0
    r = nca_profile(t, c, auc_end=2.5)
    # AUC = 0.5*16/2 (linear rise) + 16/ln2 * (1 - 2**-2) (exact exponential)
    assert r.value("AUCINT") == pytest.approx(4 + 16 / LN2 * (1 - 2 ** -2), rel=1e-12)
    assert r.value("LAMZ") == pytest.approx(LN2, rel=1e-12)
    assert r.value("LAMZNPT") == 5  # all fits perfect (adj R2 = 1): most points wins
    assert r.value("LAMZLL") == 1
    assert r.value("THALFT") == pytest.approx(1.5, rel=1e-12)
    assert r.value("THALFOBS") == pytest.approx(1.0, rel=1e-12)


# ---------------------------------------------------------------------------
# Rules, on tiny literal profiles
# ---------------------------------------------------------------------------
def test_blq_before_tmax_counts_as_zero():
    # before first quantifiable (flag, NaN level) and between pre-Tmax samples (flag, level)
    r = nca_profile([0, 1, 2, 3, 4], [nan, 2, 9, 8, 4], [True, False, True, False, False])
    assert r.value("TMAX") == 3
    # 0->1: 1*(0+2)/2; 1->2: 1*(2+0)/2; 2->3 rising 1*(0+8)/2; 3->4 log 4/ln2
    assert r.value("AUCLST") == pytest.approx(1 + 1 + 4 + 4 / LN2, rel=1e-12)


def test_blq_after_tmax_is_dropped():
    r = nca_profile([0, 1, 2, 3], [0, 4, 0.5, 1], [False, False, True, False])
    # 0->1 linear: 2; 1->3 log-down over the dropped BLQ: 2*(4-1)/ln 4
    assert r.value("AUCLST") == pytest.approx(2 + 6 / math.log(4), rel=1e-12)
    assert r.value("CLST") == 1 and r.value("TLST") == 3


def test_lloq_argument_and_zero_are_blq():
    r = nca_profile([0, 1, 2, 3], [0, 4, 1.5, 1], lloq=2)
    assert r.value("TLST") == 1  # 1.5 and 1 are below LLOQ 2
    assert r.value("AUCLST") == pytest.approx(2.0)


def test_cmax_ties_take_first_and_window_is_respected():
    r = nca_profile([0, 1, 2, 3], [0, 5, 5, 2])
    assert (r.value("CMAX"), r.value("TMAX")) == (5, 1)
    r = nca_profile([0, 7, 90, 120], [0, 50, 10, 80], cmax_end=90)
    assert (r.value("CMAX"), r.value("TMAX")) == (50, 7)
    assert r.value("TLST") == 120


def test_two_points_after_tmax_no_lambda_z():
    r = nca_profile([0, 1, 2, 4], [0, 10, 5, 2])
    for code in ("LAMZ", "LAMZHL", "LAMZNPT", "R2ADJ", "LAMZSPN"):
        assert math.isnan(r.value(code))
        assert "2 quantifiable sample(s) after Tmax" in r[code].reason
    assert not math.isnan(r.value("AUCLST"))  # others unaffected


def test_tmax_excluded_from_lambda_z_unless_asked():
    t, c = [0, 1, 2, 4], [0, 10, 5, 2]
    assert math.isnan(nca_profile(t, c).value("LAMZ"))
    r = nca_profile(t, c, include_tmax=True)
    assert r.value("LAMZNPT") == 3 and r.lambda_z_times == (1, 2, 4)


def test_lambda_z_selection_best_adj_r2():
    # the last 3 points are exactly log-linear; adding earlier points (a shoulder)
    # lowers adj R2 by far more than 1e-4 -> the 3-point fit is chosen
    t = [0, 1, 2, 4, 6, 8]
    c = [0, 10, 9.5, 4, 2, 1]
    r = nca_profile(t, c)
    assert r.value("LAMZNPT") == 3 and r.value("LAMZ") == pytest.approx(LN2 / 2)
    assert r.value("R2ADJ") == pytest.approx(1.0)


def test_lambda_z_tolerance_prefers_more_points():
    # 4-point fit is within 1e-4 of the 3-point best -> 4 points; with tolerance 0 -> 3
    t = np.array([0, 1, 2, 3, 4, 5])
    c = 100 * np.exp(-0.3 * t) * np.array([1, 1, 1.002, 1, 1, 1])
    c[0] = 0
    c[1] = 200  # Tmax at 1
    r = nca_profile(t, c)
    assert r.value("LAMZNPT") == 4
    assert nca_profile(t, c, adj_r2_tolerance=0.0).value("LAMZNPT") == 3


def test_no_positive_slope_no_lambda_z():
    r = nca_profile([0, 1, 2, 3, 4], [0, 10, 2, 3, 4])
    assert math.isnan(r.value("LAMZ")) and "lambda_z > 0" in r["LAMZ"].reason


def test_half_crossing_log_linear_by_hand():
    # crossing of 5 between (1, 10) and (3, 4): t* = 1 + 2*ln(10/5)/ln(10/4)
    # = 1 + 2*0.693147/0.916291 = 2.512942 (hand), THALFOBS = 1.512942
    r = nca_profile([0, 1, 3], [0, 10, 4])
    assert r.value("THALFT") == pytest.approx(2.512942, abs=1e-6)
    assert r.value("THALFOBS") == pytest.approx(1.512942, abs=1e-6)


def test_half_crossing_exact_sample_and_never():
    r = nca_profile([0, 1, 2, 3], [0, 10, 6, 5])
    assert r.value("THALFOBS") == 2.0  # the sample at 3 equals Cmax/2
    r = nca_profile([0, 1, 2, 3], [0, 10, 8, 6])
    assert math.isnan(r.value("THALFOBS")) and "Cmax/2" in r["THALFOBS"].reason


def test_half_crossing_with_blq_in_bracket_is_missing():
    r = nca_profile([0, 1, 2, 3], [0, 10, nan, 4], [False, False, True, False])
    assert math.isnan(r.value("THALFOBS")) and "BLQ" in r["THALFOBS"].reason


def test_auc_end_at_sample_linear_rise_and_beyond_tlast():
    r = nca_profile([0, 14, 28, 35], [0, 100, 50, 20])
    assert r.value("AUCINT") == pytest.approx(14 * 50 + 14 * 50 / math.log(2))
    # 28 between 21 (100) and 35 (300), rising -> linear: c28 = 200;
    # AUC = 21*100/2 + 7*(100+200)/2 = 2100
    r = nca_profile([0, 21, 35, 42], [0, 100, 300, 50])
    assert r.value("AUCINT") == pytest.approx(2100.0)
    r = nca_profile([0, 7, 21, 35], [0, 100, 20, nan], [False, False, False, True])
    assert math.isnan(r.value("AUCINT")) and "after the last quantifiable" in r["AUCINT"].reason
    assert not math.isnan(r.value("AUCLST"))


def test_linear_method_interpolates_linearly():
    # falling 100 -> 20 between 21 and 35; linear: c28 = 60
    r = nca_profile([0, 21, 35], [0, 100, 20], auc_end=28, auc_method="linear")
    assert r.value("AUCINT") == pytest.approx(21 * 50 + 7 * (100 + 60) / 2)


def test_no_time_zero_sample():
    r = nca_profile([1, 2, 3], [4, 2, 1])
    assert r.value("AUCLST") == pytest.approx(2 + 2 / LN2 + 1 / LN2)
    assert any("time 0" in n for n in r.notes)
    r = nca_profile([1, 2, 3], [4, 2, 1], c0_zero=False)
    assert math.isnan(r.value("AUCLST")) and "time 0" in r["AUCLST"].reason


def test_missing_level_without_flag_is_dropped():
    r = nca_profile([0, 1, 2, 3], [0, 4, nan, 1])
    assert r.value("AUCLST") == pytest.approx(2 + 6 / math.log(4))
    assert r.notes and "missing level" in r.notes[0]


@pytest.mark.parametrize("times,conc,blq,needle", [
    ([0, 7, 14], [nan, nan, nan], [True, True, True], "no quantifiable"),
    ([0, 7, 14], [0, 0, 0], None, "no quantifiable"),
    ([0, 14, 7], [0, 5, 3], None, "unsorted"),
    ([0, 7, 7], [0, 5, 3], None, "duplicated"),
    ([], [], None, "no samples"),
])
def test_all_missing_with_reason(times, conc, blq, needle):
    r = nca_profile(times, conc, blq)
    assert set(r.params) == set(PARAMETERS)
    for p in r.params.values():
        assert p.missing and needle in p.reason


def test_single_sample():
    r = nca_profile([7], [50])
    assert (r.value("CMAX"), r.value("TMAX")) == (50, 7)
    for code in ("AUCLST", "AUCINT", "LAMZ", "THALFOBS"):
        assert r[code].missing and r[code].reason


@pytest.mark.parametrize("kwargs,msg", [
    ({"times": [0, 1], "conc": [1, 2, 3]}, "differ in length"),
    ({"times": [-1, 1], "conc": [1, 2]}, "times must be >= 0"),
    ({"times": [0, nan], "conc": [1, 2]}, "finite"),
    ({"times": [0, 1], "conc": [1, -2]}, "conc must be >= 0"),
    ({"times": [0, 1], "conc": [1, 2], "blq": [True]}, "blq"),
    ({"times": [0, 1], "conc": [1, 2], "auc_method": "log"}, "auc_method"),
    ({"times": [0, 1], "conc": [1, 2], "lloq": -1}, "lloq"),
])
def test_bad_input_raises(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        nca_profile(**kwargs)


def test_outputs():
    r = nca_profile(*THEOPH[1])
    d = r.to_dict()
    assert list(d) == list(PARAMETERS)
    assert d["AUCINT"]["reason"] and math.isnan(d["AUCINT"]["value"])
    f = r.to_frame()
    assert list(f.columns) == ["PARAMCD", "PARAM", "AVAL", "REASON"]
    assert f.set_index("PARAMCD").loc["CMAX", "AVAL"] == 10.5
