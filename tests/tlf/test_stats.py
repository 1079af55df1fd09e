"""tlf.stats against independent reference values from R.

All references were produced by hand with R 4.2.2 Patched (2022-11-10 r83330)
and the Debian package r-cran-survival 3.5-3 (survival 3.5.3); the R call and
its printed output are written next to each number.
"""

import math

import numpy as np
import pytest

from tlf.stats import compute_clopper_pearson, compute_km

NA = math.nan

# ---------------------------------------------------------------------------
# Clopper-Pearson
# R> options(digits = 12)
# R> ci <- binom.test(x, n)$conf.int; sprintf("%.12f %.12f", ci[1], ci[2])
# ---------------------------------------------------------------------------
BINOM_TEST = [
    # (x, n, lower, upper)                                  R output
    (0, 10, 0.0, 0.308497107819),  # binom.test(0, 10):   0.000000000000 0.308497107819
    (10, 10, 0.691502892181, 1.0),  # binom.test(10, 10): 0.691502892181 1.000000000000
    (1, 3, 0.008403758660, 0.905700675950),  # binom.test(1, 3):   0.008403758660 0.905700675950
    (7, 20, 0.153909204785, 0.592188534533),  # binom.test(7, 20):  0.153909204785 0.592188534533
    (12, 33, 0.204003074455, 0.548754644783),  # binom.test(12, 33): 0.204003074455 0.548754644783
    (0, 1, 0.0, 0.975),  # binom.test(0, 1):    0.000000000000 0.975000000000
    (1, 1, 0.025, 1.0),  # binom.test(1, 1):    0.025000000000 1.000000000000
    (50, 200, 0.191607169623, 0.315962833330),  # binom.test(50, 200): 0.191607169623 0.315962833330
    (999, 1000, 0.994441075720, 0.999974682513),  # binom.test(999, 1000): 0.994441075720 0.999974682513
    # sprintf("%.12e %.12e", ...)
    (3, 5000, 1.237515204693e-04, 1.752443603396e-03),  # binom.test(3, 5000)
    (2500, 10000, 2.415368761820e-01, 2.586089460971e-01),  # binom.test(2500, 10000)
]


@pytest.mark.parametrize("x,n,lo,hi", BINOM_TEST)
def test_clopper_pearson_matches_r_binom_test(x, n, lo, hi):
    p, lcl, ucl = compute_clopper_pearson(x, n, percent=False)
    assert p == pytest.approx(x / n, rel=1e-15)
    assert lcl == pytest.approx(lo, rel=1e-10, abs=1e-12)
    assert ucl == pytest.approx(hi, rel=1e-10, abs=1e-12)


def test_clopper_pearson_edges_exact_and_percent_scale():
    # n = 0: lcl exactly 0; n = N: ucl exactly 1 (100 %)
    assert compute_clopper_pearson(0, 10, percent=False)[1] == 0.0
    assert compute_clopper_pearson(10, 10, percent=False)[2] == 1.0
    pct, lcl, ucl = compute_clopper_pearson(7, 20)
    assert pct == pytest.approx(35.0)
    assert lcl == pytest.approx(15.3909204785, rel=1e-10)
    assert ucl == pytest.approx(59.2188534533, rel=1e-10)
    assert compute_clopper_pearson(10, 10)[2] == 100.0


def test_clopper_pearson_other_level():
    # R> binom.test(7, 20, conf.level = 0.90)$conf.int
    #    0.177310917574 0.558034511315
    _, lcl, ucl = compute_clopper_pearson(7, 20, level=0.90, percent=False)
    assert lcl == pytest.approx(0.177310917574, rel=1e-10)
    assert ucl == pytest.approx(0.558034511315, rel=1e-10)


def test_clopper_pearson_all_missing_is_nan_not_error():
    assert all(math.isnan(v) for v in compute_clopper_pearson(0, 0))


def test_clopper_pearson_vectorised_with_broadcasting_and_empty_groups():
    n = np.array([[0, 1, 7], [12, 0, 10]])
    N = np.array([[10, 3, 20], [33, 0, 10]])
    p, lcl, ucl = compute_clopper_pearson(n, N, percent=False)
    assert p.shape == lcl.shape == ucl.shape == (2, 3)
    ref = {(0, 10): (0.0, 0.308497107819), (1, 3): (0.008403758660, 0.905700675950),
           (7, 20): (0.153909204785, 0.592188534533), (12, 33): (0.204003074455, 0.548754644783),
           (10, 10): (0.691502892181, 1.0)}
    for i in range(2):
        for j in range(3):
            key = (int(n[i, j]), int(N[i, j]))
            if key == (0, 0):
                assert np.isnan([p[i, j], lcl[i, j], ucl[i, j]]).all()
            else:
                assert lcl[i, j] == pytest.approx(ref[key][0], rel=1e-10, abs=1e-12)
                assert ucl[i, j] == pytest.approx(ref[key][1], rel=1e-10, abs=1e-12)
    # scalar n against a vector of N
    _, lcl, _ = compute_clopper_pearson(1, [3, 1], percent=False)
    assert lcl == pytest.approx([0.008403758660, 0.025], rel=1e-10)


@pytest.mark.parametrize("n,N", [(-1, 5), (6, 5), (1.5, 5)])
def test_clopper_pearson_rejects_invalid_counts(n, N):
    with pytest.raises(ValueError):
        compute_clopper_pearson(n, N)


# ---------------------------------------------------------------------------
# Kaplan-Meier.  For each data set:
# R> library(survival); options(digits = 10)
# R> f <- survfit(Surv(t, e) ~ 1, conf.type = "log-log")
# R> quantile(f, c(0.25, 0.5, 0.75))
# R> s <- summary(f, times = ...); s$n.risk; s$surv; s$std.err; s$lower; s$upper
# ---------------------------------------------------------------------------
def assert_close(actual, expected, rel=1e-8):
    actual = np.asarray(actual, dtype=float)
    expected = np.asarray(expected, dtype=float)
    assert np.array_equal(np.isnan(actual), np.isnan(expected)), (actual, expected)
    ok = ~np.isnan(expected)
    np.testing.assert_allclose(actual[ok], expected[ok], rtol=rel, atol=1e-12)


def check_quantiles(res, est, lcl, ucl):
    q = res.quantiles
    assert list(q.index) == [0.25, 0.5, 0.75]
    assert_close(q["estimate"], est)
    assert_close(q["lcl"], lcl)
    assert_close(q["ucl"], ucl)


def test_km_ties_and_censoring_at_an_event_time():
    # t <- c(1,2,2,2,3,4,4,5,6,7,8,8,9,10,12); e <- c(1,1,1,0,1,1,0,1,0,1,1,1,0,1,0)
    # quantile(f):  $quantile 25 50 75 = 3 7 10
    #               $lower    25 50 75 = 1 2 7
    #               $upper    25 50 75 = 7 10 NA
    t = [1, 2, 2, 2, 3, 4, 4, 5, 6, 7, 8, 8, 9, 10, 12]
    e = [1, 1, 1, 0, 1, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0]
    res = compute_km(t, e, landmarks=[0.5, 2, 4, 7.5, 12, 13])
    assert (res.n, res.events, res.censored) == (15, 10, 5)
    check_quantiles(res, [3, 7, 10], [1, 2, 7], [7, 10, NA])
    assert (res.median, res.median_lcl, res.median_ucl) == (7.0, 2.0, 10.0)
    # summary(f, times = c(0.5, 2, 4, 7.5, 12, 13))   (13 > last time: R drops it)
    #   time n.risk         surv         lower        upper           se
    #    0.5     15 1.0000000000 1.00000000000 1.0000000000 0.0000000000
    #    2.0     14 0.8000000000 0.49982398166 0.9307172941 0.1032795559
    #    4.0     10 0.6545454545 0.35702259593 0.8399656141 0.1256807160
    #    7.5      5 0.4772727273 0.19714957611 0.7139574386 0.1416295564
    #   12.0      1 0.1431818182 0.01028568775 0.4380713056 0.1216112306
    lm = res.landmarks
    assert list(lm["n_risk"]) == [15, 14, 10, 5, 1, 0]
    assert_close(lm["surv"], [1.0, 0.8, 0.6545454545, 0.4772727273, 0.1431818182, NA])
    assert_close(lm["lcl"], [1.0, 0.49982398166, 0.35702259593, 0.19714957611, 0.01028568775, NA])
    assert_close(lm["ucl"], [1.0, 0.9307172941, 0.8399656141, 0.7139574386, 0.4380713056, NA])
    assert_close(lm["se"], [0.0, 0.1032795559, 0.1256807160, 0.1416295564, 0.1216112306, NA])
    # f$n.risk, f$n.event, f$lower at the distinct times 1,2,...,10,12
    c = res.curve
    assert list(c["n_risk"]) == [15, 14, 11, 10, 8, 7, 6, 5, 3, 2, 1]
    assert list(c["n_event"]) == [1, 2, 1, 1, 1, 0, 1, 2, 0, 1, 0]
    assert_close(c["lcl"][:3], [0.61264124377, 0.49982398166, 0.42523151727])
    assert_close(c["ucl"][:3], [0.9903322367, 0.9307172941, 0.8881678064])


def test_km_survival_exactly_one_half_over_an_interval():
    # t <- 1:6; e <- rep(1, 6)      S = 0.5 exactly on [3, 4)
    # quantile(f):  $quantile 2.0 3.5 5.0;  $lower 1 1 2;  $upper 4 NA NA
    # summary(f, times = c(3, 3.5)): n.risk 4 3; surv 0.5 0.5;
    #   lower 0.1109482604 0.1109482604; upper 0.8037092369 0.8037092369;
    #   se 0.2041241452 0.2041241452
    res = compute_km([1, 2, 3, 4, 5, 6], [1] * 6, landmarks=[3, 3.5])
    check_quantiles(res, [2.0, 3.5, 5.0], [1, 1, 2], [4, NA, NA])
    lm = res.landmarks
    assert list(lm["n_risk"]) == [4, 3]
    assert_close(lm["surv"], [0.5, 0.5])
    assert_close(lm["lcl"], [0.1109482604, 0.1109482604])
    assert_close(lm["ucl"], [0.8037092369, 0.8037092369])
    assert_close(lm["se"], [0.2041241452, 0.2041241452])


def test_km_flat_at_one_half_until_last_follow_up():
    # t <- c(1,2,3,4); e <- c(1,1,0,0)    S = 0.5 from 2 to the last time 4
    # quantile(f):  $quantile 1.5 3.0 NA;  $lower 1 1 1;  $upper NA NA NA
    # (print(f) would show median 2 here -- survival:::survmean; see module doc)
    # summary(f, times = c(2, 4)): n.risk 3 1; surv 0.5 0.5;
    #   lower 0.057847083 (both); upper 0.8448612812 (both); se 0.25 0.25
    res = compute_km([1, 2, 3, 4], [1, 1, 0, 0], landmarks=[2, 4])
    check_quantiles(res, [1.5, 3.0, NA], [1, 1, 1], [NA, NA, NA])
    lm = res.landmarks
    assert list(lm["n_risk"]) == [3, 1]
    assert_close(lm["lcl"], [0.057847083, 0.057847083])
    assert_close(lm["ucl"], [0.8448612812, 0.8448612812])
    assert_close(lm["se"], [0.25, 0.25])


def test_km_upper_limit_never_reached_is_nan():
    # t <- c(2,4,5,7,8,10,11,13,15,20); e <- c(1,1,1,1,1,0,0,0,0,0)
    # quantile(f):  $quantile 5 14 NA;  $lower 2 2 8;  $upper NA NA NA
    # (median 14 = midpoint of 8 and the last time 20; print(f) shows 8)
    # summary(f, times = c(6, 15)): n.risk 7 2; surv 0.7 0.5;
    #   lower 0.3287165933 0.1836055906; upper 0.8919490412 0.7531740770;
    #   se 0.1449137675 0.1581138830
    t = [2, 4, 5, 7, 8, 10, 11, 13, 15, 20]
    e = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    res = compute_km(t, e, landmarks=[6, 15])
    check_quantiles(res, [5, 14, NA], [2, 2, 8], [NA, NA, NA])
    assert math.isnan(res.median_ucl)
    lm = res.landmarks
    assert list(lm["n_risk"]) == [7, 2]
    assert_close(lm["surv"], [0.7, 0.5])
    assert_close(lm["lcl"], [0.3287165933, 0.1836055906])
    assert_close(lm["ucl"], [0.8919490412, 0.7531740770])
    assert_close(lm["se"], [0.1449137675, 0.1581138830])


def test_km_all_censored():
    # t <- c(3,5,8); e <- c(0,0,0)
    # quantile(f): all NA;  summary(f, times = 4): n.risk 2, surv 1, lower NA, upper NA, se 0
    res = compute_km([3, 5, 8], [0, 0, 0], landmarks=[4])
    assert (res.n, res.events, res.censored) == (3, 0, 3)
    check_quantiles(res, [NA] * 3, [NA] * 3, [NA] * 3)
    lm = res.landmarks.iloc[0]
    assert (lm["n_risk"], lm["surv"], lm["se"]) == (2, 1.0, 0.0)
    assert math.isnan(lm["lcl"]) and math.isnan(lm["ucl"])


def test_km_single_subject():
    # t <- 5; e <- 1
    # quantile(f): $quantile 5 5 5; $lower NA NA NA; $upper NA NA NA
    # summary(f, times = c(4, 5)): n.risk 1 1; surv 1 0; lower 1 NA; upper 1 NA; se 0 NaN
    res = compute_km([5], [1], landmarks=[4, 5])
    check_quantiles(res, [5, 5, 5], [NA] * 3, [NA] * 3)
    assert_close(res.landmarks["surv"], [1.0, 0.0])
    assert_close(res.landmarks["lcl"], [1.0, NA])
    assert_close(res.landmarks["ucl"], [1.0, NA])
    # t <- 5; e <- 0
    # quantile(f): all NA; summary(f, times = 4): n.risk 1, surv 1, lower 1, upper 1, se 0
    res = compute_km([5], [0], landmarks=[4])
    check_quantiles(res, [NA] * 3, [NA] * 3, [NA] * 3)
    assert_close(res.landmarks[["surv", "lcl", "ucl", "se"]].iloc[0], [1.0, 1.0, 1.0, 0.0])


def test_km_days_with_month_landmarks():
    # t <- c(35,62,91,120,150,150,183,200,240,275,300,365,365,400,450,500,540,600,700,730)
    # e <- c(1,1,0,1,1,1,0,1,1,0,1,1,0,0,1,0,1,0,0,0)
    # quantile(f):  $quantile 150 450 NA;  $lower 35 150 450;  $upper 365 NA NA
    # summary(f, times = c(182.625, 365.25, 547.875))     # 6, 12, 18 months
    #      time n.risk         surv         lower        upper            se
    #   182.625     14 0.7411764706 0.48508168372 0.8833751495 0.09988187609
    #   365.250      7 0.5017194570 0.25653618964 0.7049286265 0.11993782968
    #   547.875      3 0.3135746606 0.09573878015 0.5636843883 0.13073215984
    t = [35, 62, 91, 120, 150, 150, 183, 200, 240, 275, 300, 365, 365, 400, 450, 500, 540, 600, 700, 730]
    e = [1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0]
    months = np.array([6, 12, 18]) * 30.4375
    res = compute_km(np.array(t), np.array(e), landmarks=months)
    assert (res.n, res.events, res.censored) == (20, 11, 9)
    check_quantiles(res, [150, 450, NA], [35, 150, 450], [365, NA, NA])
    lm = res.landmarks
    assert_close(lm["time"], [182.625, 365.25, 547.875])
    assert list(lm["n_risk"]) == [14, 7, 3]
    assert_close(lm["surv"], [0.7411764706, 0.5017194570, 0.3135746606])
    assert_close(lm["lcl"], [0.48508168372, 0.25653618964, 0.09573878015])
    assert_close(lm["ucl"], [0.8833751495, 0.7049286265, 0.5636843883])
    assert_close(lm["se"], [0.09988187609, 0.11993782968, 0.13073215984])


def test_km_empty_input_and_invalid_input():
    res = compute_km([], [], landmarks=[10])
    assert (res.n, res.events, res.censored) == (0, 0, 0)
    assert res.quantiles.isna().all().all()
    assert np.isnan(res.landmarks[["surv", "se", "lcl", "ucl"]].to_numpy()).all()
    with pytest.raises(ValueError):
        compute_km([1, 2], [1])
    with pytest.raises(ValueError):
        compute_km([1, np.nan], [1, 0])
    with pytest.raises(ValueError):
        compute_km([1, 2], [1, 2])


# ---------------------------------------------------------------------------
# Kaplan-Meier against lifelines (an independent implementation, 0.30.3).
# lifelines' KaplanMeierFitter.confidence_interval_ is documented as "Greenwood's
# Exponential formula ('log-log' in R)" and its _bounds() computes
#   exp(-exp(log(-log S) -/+ z * sqrt(sum d / (n (n - d))) / log S))
# i.e. the same pointwise band as R conf.type = "log-log" / compute_km.
# Two conventions differ and are excluded from the comparison on purpose:
#   * where S is 1 or 0 the band is undefined; R (and compute_km) give NaN,
#     lifelines fills 1.0 (S = 1) or returns (0, 0) (S = 0);
#   * lifelines' median (qth_survival_time) is the first time S < 0.5
#     strictly, with no midpoint rule on flat stretches and inf when not
#     reached, e.g. t = 1..6 all events: lifelines 4 with CI (1, 6), R
#     quantile() 3.5 with CI (1, NA).  Medians and their CIs are therefore
#     checked against R above (Brookmeyer-Crowley as in R and SAS), not here.
# ---------------------------------------------------------------------------
def _random_ties(seed, n):
    rng = np.random.default_rng(seed)
    # integer days so that events and censorings tie, also with each other
    t = np.ceil(rng.exponential(200.0, n))
    c = np.ceil(rng.uniform(50, 500, n))
    return np.minimum(t, c), (t <= c).astype(int)


KM_DATASETS = {
    "ties_and_censoring_at_event_times": (
        [1, 2, 2, 2, 3, 4, 4, 5, 6, 7, 8, 8, 9, 10, 12],
        [1, 1, 1, 0, 1, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0]),
    "days_months": (
        [35, 62, 91, 120, 150, 150, 183, 200, 240, 275, 300, 365, 365, 400, 450, 500, 540,
         600, 700, 730],
        [1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0]),
    "censored_first_then_all_events_to_zero": ([1, 2, 2, 3, 3, 3, 5, 8], [0, 0, 1, 1, 1, 0, 1, 1]),
    "random_integer_days_n60": _random_ties(16, 60),
    "random_integer_days_n400": _random_ties(1601, 400),
}


@pytest.mark.parametrize("name", list(KM_DATASETS))
def test_km_curve_and_loglog_band_match_lifelines(name):
    from lifelines import KaplanMeierFitter

    t, e = (np.asarray(v, dtype=float) for v in KM_DATASETS[name])
    curve = compute_km(t, e).curve
    kmf = KaplanMeierFitter().fit(t, e, alpha=0.05)
    # lifelines prepends time 0; compute_km's curve has the observed times only
    sf = kmf.survival_function_["KM_estimate"].drop(0.0, errors="ignore")
    band = kmf.confidence_interval_.drop(0.0, errors="ignore")
    table = kmf.event_table.drop(0.0, errors="ignore")
    assert list(sf.index) == list(curve["time"])
    np.testing.assert_allclose(curve["surv"], sf.to_numpy(), rtol=1e-12, atol=1e-15)
    assert list(curve["n_risk"]) == list(table["at_risk"])
    assert list(curve["n_event"]) == list(table["observed"])
    assert list(curve["n_censor"]) == list(table["censored"])

    defined = ((curve["surv"] > 0) & (curve["surv"] < 1)).to_numpy()
    assert defined.sum() >= 3
    np.testing.assert_allclose(curve["lcl"][defined], band.iloc[:, 0][defined], rtol=1e-10)
    np.testing.assert_allclose(curve["ucl"][defined], band.iloc[:, 1][defined], rtol=1e-10)
    assert curve.loc[~defined, ["lcl", "ucl"]].isna().all().all()  # R's NaN, see above


@pytest.mark.parametrize("name", list(KM_DATASETS))
def test_km_landmark_rates_match_lifelines_step_function(name):
    from lifelines import KaplanMeierFitter

    t, e = (np.asarray(v, dtype=float) for v in KM_DATASETS[name])
    lm = np.array([0.5, 2.5, 100.0, 182.625, 365.25]).clip(max=t.max())
    res = compute_km(t, e, landmarks=lm).landmarks
    kmf = KaplanMeierFitter().fit(t, e)
    np.testing.assert_allclose(res["surv"], kmf.survival_function_at_times(lm).to_numpy(),
                               rtol=1e-12)
    # number at risk at a landmark: subjects still followed at t (time >= t)
    assert list(res["n_risk"]) == [int((t >= x).sum()) for x in lm]
