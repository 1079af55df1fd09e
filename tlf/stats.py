"""Statistics for the TLF endpoint tables: exact binomial CIs and Kaplan-Meier.

The beta quantile comes from scipy (``scipy.stats.beta.ppf``, Boost's
``ibeta_inv``); the Kaplan-Meier estimate is computed here because the
quartile CI rule must follow R survival's ``quantile.survfit`` exactly (see
below), which neither scipy nor lifelines does.  Both are checked against R
in ``tests/tlf/test_stats.py``, and the KM curve and band also against
lifelines' independent ``KaplanMeierFitter``.

Methods and how they match SAS / R
----------------------------------
``compute_clopper_pearson(n, N, level)``
    Exact Clopper-Pearson interval from the beta distribution::

        lcl = Beta(n, N - n + 1).ppf(alpha / 2)      (0 when n == 0)
        ucl = Beta(n + 1, N - n).ppf(1 - alpha / 2)  (1 when n == N)

    This is R ``binom.test(x, n)$conf.int`` and SAS PROC FREQ
    ``BINOMIAL`` "Exact Conf Limits"; the quantile is scipy's
    ``beta.ppf``, which agrees with R ``qbeta`` to better than 1e-10
    relative (tests).  ``N == 0`` (all missing) gives NaN for all three
    values.

``compute_km(time, event, landmarks=...)``
    Product-limit estimate S(t) for one group, Greenwood variance on the log
    scale, var(log S(t)) = sum d / (n (n - d)), and the pointwise log(-log)
    ("log-log") band::

        S(t) ** exp(+/- z * se(log S) / log S(t))

    (R ``survfit(..., conf.type = "log-log")``; SAS PROC LIFETEST default
    ``CONFTYPE=LOGLOG``; lifelines' ``confidence_interval_`` is the same band).
    The band is undefined (NaN) where S(t) is 0 or 1, as in R.

    Quartiles and their CIs (Brookmeyer-Crowley, as in R and SAS) are read off
    the curve and the band with the algorithm of R survival's
    ``quantile.survfit`` (``survival:::findq``, survival 3.5-3): the p-th
    quantile is the first time S(t) <= 1 - p; the lower CI limit is the
    first time the LOWER band drops to <= 1 - p and the upper CI limit the
    first time the UPPER band does (i.e. the CI is the set of times whose
    pointwise band contains 1 - p).  Comparisons use R's tolerance
    sqrt(.Machine$double.eps), and where a curve is flat exactly at 1 - p the
    result is the midpoint of the flat stretch (e.g. the median of 1..6, all
    events, is 3.5); if the flat stretch runs to the last follow-up time the
    result is the midpoint of its start and the last time.  A limit that is
    never reached is NaN ("NE" in the tables).

    NOTE: R's ``print(survfit)`` / ``summary(fit)$table`` uses a different
    rule (``survival:::survmean``) for a curve flat at 0.5 *up to the last
    time*: it reports the start of the flat stretch instead of the midpoint
    to the last time (data 1, 2, 3+, 4+: quantile() gives 3, print() gives 2).
    Everywhere else the two agree.  This module follows ``quantile()``.

    Landmark rates follow R ``summary(fit, times = ...)``: S, its Greenwood
    standard error S * se(log S), and the log-log band at the last curve time
    <= t; before the first observed time S = 1 with limits (1, 1); after the
    last observed time everything is NaN (R drops such times).  ``n_risk`` is
    the number of subjects with time >= t.  Times are in days; a landmark in
    months is given by the caller in days (6 months = 6 * 30.4375 days).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd
from scipy.stats import beta

__all__ = ["KMResult", "compute_clopper_pearson", "compute_km"]

# R's default tolerance in survival:::quantile.survfit / survmean.
_R_TOL = math.sqrt(np.finfo(float).eps)


def _z(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    return NormalDist().inv_cdf(1.0 - (1.0 - level) / 2.0)


# --------------------------------------------------------------------------
# Clopper-Pearson
# --------------------------------------------------------------------------
def compute_clopper_pearson(n, N, level: float = 0.95, *, percent: bool = True):
    """Exact (Clopper-Pearson) CI of a binomial proportion n / N.

    ``n`` and ``N`` are integers or array-likes (broadcast together).
    Returns ``(pct, lcl, ucl)`` -- floats for scalar input, numpy arrays
    otherwise -- all on the same scale: percentages (0-100) by default,
    proportions (0-1) with ``percent=False``.  ``lcl`` is exactly 0 when
    ``n == 0`` and ``ucl`` exactly 1 (100 %) when ``n == N``; ``N == 0``
    gives NaN for all three.  Matches R ``binom.test(n, N)$conf.int``.
    """
    _z(level)  # validates level
    n_arr, N_arr = np.broadcast_arrays(np.asarray(n, dtype=float), np.asarray(N, dtype=float))
    scalar = n_arr.ndim == 0
    n_arr = np.atleast_1d(n_arr).astype(float)
    N_arr = np.atleast_1d(N_arr).astype(float)
    if np.any(~np.isfinite(n_arr)) or np.any(~np.isfinite(N_arr)):
        raise ValueError("n and N must be finite")
    if np.any(n_arr != np.round(n_arr)) or np.any(N_arr != np.round(N_arr)):
        raise ValueError("n and N must be whole numbers")
    if np.any(n_arr < 0) or np.any(n_arr > N_arr):
        raise ValueError("need 0 <= n <= N")
    alpha = 1.0 - level
    empty = N_arr == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(empty, np.nan, n_arr / np.where(empty, 1.0, N_arr))

    lcl = np.zeros_like(p)
    has_lo = (n_arr > 0) & ~empty
    if has_lo.any():
        lcl[has_lo] = beta.ppf(alpha / 2.0, n_arr[has_lo], N_arr[has_lo] - n_arr[has_lo] + 1.0)
    ucl = np.ones_like(p)
    has_hi = (n_arr < N_arr) & ~empty
    if has_hi.any():
        ucl[has_hi] = beta.ppf(1.0 - alpha / 2.0, n_arr[has_hi] + 1.0, N_arr[has_hi] - n_arr[has_hi])
    lcl[empty] = np.nan
    ucl[empty] = np.nan

    factor = 100.0 if percent else 1.0
    out = tuple(v * factor for v in (p, lcl, ucl))
    if scalar:
        return tuple(float(v[0]) for v in out)
    shape = np.shape(np.broadcast_arrays(np.asarray(n), np.asarray(N))[0])
    return tuple(v.reshape(shape) for v in out)


# --------------------------------------------------------------------------
# Kaplan-Meier
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class KMResult:
    """Kaplan-Meier summary for one group.

    ``quantiles``: index ``prob`` (0.25, 0.5, 0.75), columns ``estimate``,
    ``lcl``, ``ucl`` (NaN = not estimable, "NE").
    ``landmarks``: one row per requested time: ``time``, ``n_risk``, ``surv``,
    ``se`` (Greenwood), ``lcl``, ``ucl`` (log-log).
    ``curve``: the estimate at every distinct time: ``time``, ``n_risk``,
    ``n_event``, ``n_censor``, ``surv``, ``se_log`` (Greenwood se of log S),
    ``lcl``, ``ucl``.
    """

    n: int
    events: int
    censored: int
    level: float
    quantiles: pd.DataFrame
    landmarks: pd.DataFrame
    curve: pd.DataFrame

    @property
    def median(self) -> float:
        return float(self.quantiles.loc[0.5, "estimate"])

    @property
    def median_lcl(self) -> float:
        return float(self.quantiles.loc[0.5, "lcl"])

    @property
    def median_ucl(self) -> float:
        return float(self.quantiles.loc[0.5, "ucl"])


def _findq(x: np.ndarray, y: np.ndarray, probs: np.ndarray, tol: float) -> np.ndarray:
    """Port of R survival:::findq (3.5-3): first x where y (= 1 - S) reaches p.

    x: times with the start time (0) prepended; y: 1 - S (or 1 - band) with 0
    prepended, NaN where undefined.
    """
    out = np.full(probs.shape, np.nan)
    if np.all(np.isnan(y)) or np.nanmax(y) < probs.min():
        return out
    xmax = x[-1]
    keep = ~pd.Series(y).duplicated().to_numpy()  # NaN duplicates NaN, as in R
    x, y = x[keep], y[keep]
    ok = ~np.isnan(y)
    pos = np.flatnonzero(ok)

    def approx_index(shift: float) -> np.ndarray:
        # approx(y + shift, 1:n, p, method = "constant", f = 1, rule = 1)
        xs = y[ok] + shift
        order = np.argsort(xs, kind="stable")
        xs, idx = xs[order], pos[order]
        k = np.searchsorted(xs, probs, side="left")
        inside = (probs >= xs[0]) & (probs <= xs[-1])
        res = np.full(probs.shape, -1)
        res[inside] = idx[np.minimum(k[inside], len(xs) - 1)]
        return res

    i1 = approx_index(tol)
    i2 = approx_index(-tol)
    both = (i1 >= 0) & (i2 >= 0)
    out[both] = (x[i1[both]] + x[i2[both]]) / 2.0
    out[probs == 0] = x[0]
    if not np.isnan(y[-1]):
        last = (np.abs(probs - y[-1]) < tol) & (i1 >= 0)
        out[last] = (x[i1[last]] + xmax) / 2.0
    return out


def _loglog_band(surv: np.ndarray, se_log: np.ndarray, z: float):
    """R survival:::survfit_confint(conf.type = "log-log")."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        xx = np.where((surv == 0) | (surv == 1), np.nan, surv)
        se2 = z * se_log / np.log(xx)
        lower = np.exp(-np.exp(np.log(-np.log(xx)) - se2))
        upper = np.exp(-np.exp(np.log(-np.log(xx)) + se2))
    return lower, upper


def compute_km(
    time,
    event,
    landmarks=(),
    level: float = 0.95,
    probs=(0.25, 0.5, 0.75),
) -> KMResult:
    """Kaplan-Meier estimate for one group (see the module docstring).

    ``time``: follow-up times (days, >= 0); ``event``: 1 = event, 0 =
    censored; ``landmarks``: times (days) for survival rates; ``probs``:
    quantiles of the event-time distribution (0.5 = median).  Missing values
    are an error -- drop them before calling.
    """
    z = _z(level)
    t = np.asarray(time, dtype=float).ravel()
    e = np.asarray(event, dtype=float).ravel()
    if t.shape != e.shape:
        raise ValueError("time and event must have the same length")
    if np.any(~np.isfinite(t)) or np.any(t < 0):
        raise ValueError("time must be finite and >= 0")
    if np.any((e != 0) & (e != 1)):
        raise ValueError("event must be 0 (censored) or 1 (event)")
    probs_arr = np.asarray(probs, dtype=float).ravel()
    if np.any((probs_arr < 0) | (probs_arr > 1)):
        raise ValueError("probs must be in [0, 1]")
    lm = np.asarray(landmarks, dtype=float).ravel()

    utime, inv = np.unique(t, return_inverse=True)
    n_event = np.bincount(inv, weights=e, minlength=len(utime))
    n_all = np.bincount(inv, minlength=len(utime)).astype(float)
    n_censor = n_all - n_event
    n_risk = len(t) - (np.cumsum(n_all) - n_all)
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1.0 - n_event / n_risk)
        inc = np.where(n_event > 0, n_event / (n_risk * (n_risk - n_event)), 0.0)
        se_log = np.sqrt(np.cumsum(inc))
    lower, upper = _loglog_band(surv, se_log, z)

    curve = pd.DataFrame(
        {
            "time": utime,
            "n_risk": n_risk.astype(int),
            "n_event": n_event.astype(int),
            "n_censor": n_censor.astype(int),
            "surv": surv,
            "se_log": se_log,
            "lcl": lower,
            "ucl": upper,
        }
    )

    # Quantiles: quantile.survfit -> doquant(probs, time, surv, upper, lower, 0)
    if len(utime):
        xq = np.concatenate([[0.0], utime])
        est = _findq(xq, np.concatenate([[0.0], 1.0 - surv]), probs_arr, _R_TOL)
        q_lcl = _findq(xq, np.concatenate([[0.0], 1.0 - lower]), probs_arr, _R_TOL)
        q_ucl = _findq(xq, np.concatenate([[0.0], 1.0 - upper]), probs_arr, _R_TOL)
    else:
        est = q_lcl = q_ucl = np.full(probs_arr.shape, np.nan)
    quantiles = pd.DataFrame(
        {"estimate": est, "lcl": q_lcl, "ucl": q_ucl}, index=pd.Index(probs_arr, name="prob")
    )

    # Landmarks: summary.survfit(fit, times = lm)
    rows = np.searchsorted(utime, lm, side="right") - 1  # last curve time <= t
    lm_risk = (t[None, :] >= lm[:, None]).sum(axis=1) if len(lm) else np.zeros(0, int)
    lm_surv = np.full(lm.shape, np.nan)
    lm_se = np.full(lm.shape, np.nan)
    lm_lcl = np.full(lm.shape, np.nan)
    lm_ucl = np.full(lm.shape, np.nan)
    before = (rows < 0) & (len(utime) > 0)
    lm_surv[before], lm_se[before], lm_lcl[before], lm_ucl[before] = 1.0, 0.0, 1.0, 1.0
    within = (rows >= 0) & (lm <= (utime[-1] if len(utime) else -np.inf))
    r = rows[within]
    lm_surv[within] = surv[r]
    with np.errstate(invalid="ignore"):
        lm_se[within] = surv[r] * se_log[r]
    lm_lcl[within] = lower[r]
    lm_ucl[within] = upper[r]
    landmark_df = pd.DataFrame(
        {"time": lm, "n_risk": lm_risk, "surv": lm_surv, "se": lm_se, "lcl": lm_lcl, "ucl": lm_ucl}
    )

    return KMResult(
        n=len(t),
        events=int(e.sum()),
        censored=int(len(t) - e.sum()),
        level=level,
        quantiles=quantiles,
        landmarks=landmark_df,
        curve=curve,
    )
