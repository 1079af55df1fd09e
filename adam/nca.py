"""Non-compartmental analysis (NCA) of one cellular-kinetics profile.

``nca_profile(times, conc, blq, lloq=...)`` takes one subject's profile (times in
days from infusion, levels in any unit, BLQ flags) and returns an :class:`NCAResult`
holding every parameter of the RS001 secondary PK endpoints (STUDIES.md): Cmax,
Tmax, AUC0-28d, AUClast, lambda_z with its fit diagnostics, the terminal T1/2 and
the registration's own "half-of-Cmax" T1/2.  Each parameter carries a value, or
NaN together with a plain-text reason.  Units are the caller's: times and levels
are never converted.

Why not a library
-----------------
The reference NCA tools are R (PKNCA, NonCompart) or commercial (Phoenix
WinNonlin).  On PyPI the NCA packages (``pynca``, ``openpkflow`` and other small
ones) are young, thinly documented single-maintainer projects that neither
implement the RS001 BLQ rule (BLQ before Tmax = 0, after Tmax dropped) nor the
registration's half-of-Cmax definition, nor document their lambda_z selection
against PKNCA's.  Writing the ~300 lines below once, with tests against
WinNonlin's published Theoph results (tests/adam/test_nca.py), costs less than
validating and pinning one of them.

Rules (exactly what the code does)
----------------------------------
Inputs
  * ``times``: finite, >= 0 (a negative or non-finite time raises ValueError).
    Times must be strictly increasing; an unsorted profile or a duplicated time
    does not raise: every parameter is missing with the reason (the caller's data
    is ambiguous, and guessing an order would hide that).
  * ``conc``: >= 0 or NaN (a negative or infinite level raises ValueError).
  * A sample is BLQ when its flag is set, or when ``lloq`` is given and
    ``conc < lloq``, or when ``conc == 0`` (zero is never quantifiable).  A BLQ
    sample may have NaN as its level.  A NaN level that is not BLQ is a missing
    sample and is dropped from everything.
  * Quantifiable = not BLQ and not NaN (hence > 0).

Cmax, Tmax
  Highest quantifiable level at times <= ``cmax_end`` (all samples when None;
  RS001 passes 90 days); Tmax is the time of its first occurrence when tied.
  Tlast/Clast: last quantifiable sample (any time).

AUC profile (AUClast and AUC0-end)
  * samples at or before Tmax: quantifiable levels as observed, BLQ counted as 0;
  * samples after Tmax: quantifiable levels only; BLQ samples are dropped (the
    curve joins the neighbouring quantifiable samples);
  * nothing after Tlast.
  * When the first sample is after time 0 and ``c0_zero`` (default), a level of
    0 at time 0 is assumed (no CAR-T cells before the infusion); with
    ``c0_zero=False`` both AUCs are missing then.
  * At least two *observed* samples are needed (the assumed time-0 zero does not
    count), so a one-sample profile has no AUC.
  * ``auc_method="linear-up/log-down"`` (default): an interval whose level falls
    and stays > 0 (c1 > c2 > 0) uses the log trapezoid
    ``(t2 - t1) * (c1 - c2) / ln(c1 / c2)``, every other interval the linear
    trapezoid ``(t2 - t1) * (c1 + c2) / 2``.  ``auc_method="linear"``: linear
    trapezoid throughout.  (PKNCA "lin up/log down" / "linear"; WinNonlin and
    NonCompart ``down="Log"`` / ``down="Linear"``.)
  * AUCINT (AUC from 0 to ``auc_end``, default 28 = AUC0-28d): when there is no
    sample at ``auc_end`` the level there is interpolated between the bracketing
    samples of the AUC profile -- logarithmically if the level falls and stays
    > 0 and the method is linear-up/log-down, linearly otherwise (PKNCA's
    ``interp.extrap.conc``).  When ``auc_end`` is after Tlast the value is NOT
    extrapolated: it is missing with the reason.

lambda_z and terminal T1/2 (LAMZ, LAMZHL, ...)
  Candidates: quantifiable samples strictly after Tmax (Tmax excluded, PKNCA's
  default ``allow.tmax.in.half.life = FALSE``; ``include_tmax=True`` keeps it).
  Fits of ln(level) on time by ordinary least squares over the last 3, 4, ... n
  candidates (``min_points`` = 3).  Selection, as PKNCA 0.12 ``pk.calc.half.life``:
  the best adjusted R-squared over all fits is found; among the fits with
  lambda_z > 0 and adjusted R-squared >= best - ``adj_r2_tolerance`` (1e-4) the
  one with the most points is taken (PKNCA compares with ``>``; ``>=`` only makes
  a tolerance of 0 mean "the best fit").  adjusted R-squared = 1 - (1 - R^2) (n - 1)
  / (n - 2).  LAMZHL = ln 2 / lambda_z; LAMZSPN (span ratio) = (LAMZUL - LAMZLL)
  / LAMZHL, LAMZLL/LAMZUL being the first/last time used; the points used are in
  ``NCAResult.lambda_z_times`` / ``lambda_z_conc``.  Missing when there are fewer
  than ``min_points`` candidates, when the candidates do not vary, or when no fit
  with lambda_z > 0 is within the tolerance.

THALFOBS (the registration's T1/2)
  The first time after Tmax at which the level falls to Cmax / 2 (THALFT),
  minus Tmax.  The crossing is searched among Tmax and the quantifiable samples
  after it: the first sample with level <= Cmax / 2 and the sample before it
  bracket the crossing, and the time is interpolated log-linearly:
  ``t* = t1 + (t2 - t1) * ln(c1 / (Cmax/2)) / ln(c1 / c2)`` (exactly t2 when c2
  equals Cmax / 2).  Missing when no quantifiable sample after Tmax is at or below
  Cmax / 2, or when a BLQ sample lies between the two bracketing samples (the
  crossing then happened at an unknown time before that BLQ sample).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["AUC_METHODS", "PARAMETERS", "NCAParameter", "NCAResult", "nca_profile"]

AUC_METHODS = ("linear-up/log-down", "linear")

#: code -> label, in report order.  Codes follow CDISC PPTESTCD where one exists.
PARAMETERS: dict[str, str] = {
    "CMAX": "Max Conc",
    "TMAX": "Time of CMAX",
    "CLST": "Last Nonzero Conc",
    "TLST": "Time of Last Nonzero Conc",
    "AUCLST": "AUC to Last Nonzero Conc",
    "AUCINT": "AUC from T1 to T2 (0 to auc_end)",
    "LAMZ": "Lambda z",
    "LAMZHL": "Half-Life Lambda z",
    "LAMZNPT": "Number of Points for Lambda z",
    "R2ADJ": "R Squared Adjusted",
    "R2": "R Squared",
    "LAMZLL": "Lambda z Lower Limit",
    "LAMZUL": "Lambda z Upper Limit",
    "LAMZSPN": "Lambda z Span Ratio",
    "THALFT": "Time Level First Falls to Cmax/2",
    "THALFOBS": "Half-Life, Time from Tmax to Cmax/2",
}
_LAMBDA_CODES = ("LAMZ", "LAMZHL", "LAMZNPT", "R2ADJ", "R2", "LAMZLL", "LAMZUL", "LAMZSPN")


@dataclass(frozen=True)
class NCAParameter:
    """One parameter: ``value`` (NaN when missing) and ``reason`` (why it is missing)."""

    code: str
    value: float = math.nan
    reason: str | None = None

    @property
    def missing(self) -> bool:
        return math.isnan(self.value)

    @property
    def label(self) -> str:
        return PARAMETERS[self.code]


@dataclass(frozen=True)
class NCAResult:
    """All parameters of one profile, plus the points used for lambda_z."""

    params: dict[str, NCAParameter]
    lambda_z_times: tuple[float, ...] = ()
    lambda_z_conc: tuple[float, ...] = ()
    auc_method: str = AUC_METHODS[0]
    auc_end: float = 28.0
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __getitem__(self, code: str) -> NCAParameter:
        return self.params[code]

    def value(self, code: str) -> float:
        return self.params[code].value

    def to_dict(self) -> dict[str, dict]:
        """``{code: {"value": float, "reason": str | None}}``."""
        return {c: {"value": p.value, "reason": p.reason} for c, p in self.params.items()}

    def to_frame(self) -> pd.DataFrame:
        """One row a parameter: PARAMCD, PARAM, AVAL (NaN when missing), REASON."""
        return pd.DataFrame(
            [{"PARAMCD": c, "PARAM": p.label, "AVAL": p.value, "REASON": p.reason}
             for c, p in self.params.items()])


def _validate(times, conc, blq, lloq):
    t = np.asarray(times, dtype=float)
    c = np.asarray(conc, dtype=float)
    if t.ndim != 1 or c.ndim != 1:
        raise ValueError(f"times and conc must be 1-D, got shapes {t.shape} and {c.shape}")
    if len(t) != len(c):
        raise ValueError(f"times and conc differ in length ({len(t)} vs {len(c)})")
    if blq is None:
        b = np.zeros(len(t), dtype=bool)
    else:
        b = np.asarray(blq)
        if b.ndim != 1 or len(b) != len(t):
            raise ValueError(f"blq must be 1-D of the length of times ({len(t)}), "
                             f"got shape {b.shape}")
        if b.dtype != bool:
            if pd.isna(b).any():
                raise ValueError("blq flags must be True/False, found a missing value")
            b = b.astype(bool)
    if not np.all(np.isfinite(t)):
        bad = np.flatnonzero(~np.isfinite(t)).tolist()
        raise ValueError(f"times must be finite; non-finite at index {bad}")
    if np.any(t < 0):
        raise ValueError(f"times must be >= 0 (days from infusion); negative at index "
                         f"{np.flatnonzero(t < 0).tolist()}")
    if np.any(np.isinf(c)) or np.any(c < 0):
        bad = np.flatnonzero(np.isinf(c) | (c < 0)).tolist()
        raise ValueError(f"conc must be >= 0 or NaN; invalid at index {bad}")
    if lloq is not None and not (np.isfinite(lloq) and lloq > 0):
        raise ValueError(f"lloq must be a positive number or None, got {lloq!r}")
    return t, c, b


def _segments(t: np.ndarray, c: np.ndarray, method: str) -> np.ndarray:
    """Area of each interval between consecutive points."""
    dt = np.diff(t)
    c1, c2 = c[:-1], c[1:]
    lin = dt * (c1 + c2) / 2.0
    if method == "linear":
        return lin
    log_down = (c1 > c2) & (c2 > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        log = dt * (c1 - c2) / np.log(c1 / c2)
    return np.where(log_down, log, lin)


def _interpolate(t1, c1, t2, c2, at, method):
    if method != "linear" and c1 > c2 > 0:
        return float(math.exp(math.log(c1) + (at - t1) / (t2 - t1) * math.log(c2 / c1)))
    return float(c1 + (at - t1) / (t2 - t1) * (c2 - c1))


def _fit_lambda_z(t: np.ndarray, c: np.ndarray, min_points: int, tol: float):
    """PKNCA-style curve stripping on candidate points (t, c), c > 0, t increasing.

    Returns (fit dict, None) or (None, reason)."""
    n = len(t)
    if n < min_points:
        return None, (f"{n} quantifiable sample(s) after Tmax; at least {min_points} "
                      f"are needed for lambda_z")
    y = np.log(c)
    if np.ptp(y) == 0:
        return None, "no variability in the levels after Tmax; lambda_z not estimable"
    fits = []
    for k in range(min_points, n + 1):
        x, yy = t[-k:], y[-k:]
        xc, yc = x - x.mean(), yy - yy.mean()
        sxx, sxy, syy = (xc * xc).sum(), (xc * yc).sum(), (yc * yc).sum()
        slope = sxy / sxx
        r2 = sxy * sxy / (sxx * syy) if syy > 0 else math.nan
        adj = 1.0 - (1.0 - r2) * (k - 1) / (k - 2)
        fits.append({"k": k, "lamz": -slope, "r2": r2, "adj": adj})
    adjs = np.array([f["adj"] for f in fits])
    if np.all(np.isnan(adjs)):
        return None, "no fit of ln(level) on time could be computed after Tmax"
    best = np.nanmax(adjs)
    ok = [f for f in fits
          if f["lamz"] > 0 and not math.isnan(f["adj"]) and f["adj"] >= best - tol]
    if not ok:
        return None, ("no terminal phase: no fit with lambda_z > 0 within the adjusted "
                      "R-squared tolerance of the best fit")
    return max(ok, key=lambda f: f["k"]), None


def nca_profile(times, conc, blq=None, *, lloq: float | None = None,
                cmax_end: float | None = None, auc_end: float = 28.0,
                auc_method: str = "linear-up/log-down", c0_zero: bool = True,
                include_tmax: bool = False, min_points: int = 3,
                adj_r2_tolerance: float = 1e-4) -> NCAResult:
    """NCA of one profile; see the module docstring for every rule.

    times: days from infusion (>= 0, strictly increasing); conc: levels (NaN allowed);
    blq: BLQ flags (optional); lloq: levels below it are BLQ too (optional);
    cmax_end: last time searched for Cmax (RS001: 90); auc_end: end of AUCINT
    (RS001: 28).  Raises ValueError on malformed input; every other problem
    gives missing parameters with a reason.
    """
    if auc_method not in AUC_METHODS:
        raise ValueError(f"auc_method must be one of {AUC_METHODS}, got {auc_method!r}")
    if not (np.isfinite(auc_end) and auc_end > 0):
        raise ValueError(f"auc_end must be a positive number, got {auc_end!r}")
    if min_points < 3:
        raise ValueError(f"min_points must be >= 3, got {min_points}")
    t, c, b = _validate(times, conc, blq, lloq)

    out: dict[str, NCAParameter] = {}
    notes: list[str] = []

    def done(reason: str | None = None, **extra) -> NCAResult:
        for code in PARAMETERS:
            out.setdefault(code, NCAParameter(code, math.nan, reason or "not computed"))
        return NCAResult(params={k: out[k] for k in PARAMETERS}, auc_method=auc_method,
                         auc_end=float(auc_end), notes=tuple(notes), **extra)

    def put(code: str, value=math.nan, reason: str | None = None):
        value = float(value)
        out[code] = NCAParameter(code, value, None if not math.isnan(value) else reason)

    if len(t) == 0:
        return done("no samples")
    if np.any(np.diff(t) <= 0):
        i = int(np.flatnonzero(np.diff(t) <= 0)[0])
        kind = "duplicated" if t[i + 1] == t[i] else "unsorted"
        return done(f"times are not strictly increasing ({kind} at index {i + 1}: "
                    f"{t[i]:g} then {t[i + 1]:g})")

    if lloq is not None:
        b = b | (c < lloq)  # NaN < lloq is False: a NaN level stays NaN
    b = b | (c == 0)
    missing = np.isnan(c) & ~b
    if missing.any():
        notes.append(f"{int(missing.sum())} sample(s) with a missing level and no BLQ flag dropped")
    q = ~b & ~np.isnan(c)
    if not q.any():
        return done("no quantifiable sample (all BLQ or missing)")

    # Cmax / Tmax / Clast / Tlast
    in_win = q if cmax_end is None else q & (t <= cmax_end)
    if not in_win.any():
        return done(f"no quantifiable sample at or before {cmax_end:g}")
    idx = np.flatnonzero(in_win)
    imax = idx[np.argmax(c[idx])]  # argmax: first occurrence of a tie
    tmax, cmax = float(t[imax]), float(c[imax])
    put("CMAX", cmax)
    put("TMAX", tmax)
    ilast = int(np.flatnonzero(q)[-1])
    tlast, clast = float(t[ilast]), float(c[ilast])
    put("CLST", clast)
    put("TLST", tlast)

    # AUC profile
    keep = ((t <= tmax) & (q | b)) | ((t > tmax) & q)
    ta, ca = t[keep], np.where(q[keep], c[keep], 0.0)
    n_obs = len(ta)
    auc_reason = None
    if n_obs < 2:
        auc_reason = f"{n_obs} observed sample(s) in the AUC profile; at least 2 are needed"
    elif ta[0] > 0:
        if c0_zero:
            ta, ca = np.r_[0.0, ta], np.r_[0.0, ca]
            notes.append("no sample at time 0: level 0 assumed at time 0 for the AUCs")
        else:
            auc_reason = f"no sample at time 0 (first at {ta[0]:g}) and c0_zero is False"
    if auc_reason is None:
        seg = _segments(ta, ca, auc_method)
        put("AUCLST", seg.sum())
        if auc_end > tlast:
            put("AUCINT", reason=f"auc_end {auc_end:g} is after the last quantifiable "
                                 f"sample ({tlast:g}); not extrapolated")
        else:
            j = int(np.searchsorted(ta, auc_end, side="left"))
            if ta[j] == auc_end:
                put("AUCINT", seg[:j].sum())
            else:
                c_end = _interpolate(ta[j - 1], ca[j - 1], ta[j], ca[j], auc_end, auc_method)
                last = _segments(np.array([ta[j - 1], auc_end]), np.array([ca[j - 1], c_end]),
                                 auc_method)
                put("AUCINT", seg[:j - 1].sum() + last[0])
    else:
        put("AUCLST", reason=auc_reason)
        put("AUCINT", reason=auc_reason)

    # lambda_z
    cand = q & ((t >= tmax) if include_tmax else (t > tmax))
    tz, cz = t[cand], c[cand]
    fit, reason = _fit_lambda_z(tz, cz, min_points, adj_r2_tolerance)
    lz_t: tuple[float, ...] = ()
    lz_c: tuple[float, ...] = ()
    if fit is None:
        for code in _LAMBDA_CODES:
            put(code, reason=reason)
    else:
        k = fit["k"]
        hl = math.log(2) / fit["lamz"]
        lz_t, lz_c = tuple(map(float, tz[-k:])), tuple(map(float, cz[-k:]))
        put("LAMZ", fit["lamz"])
        put("LAMZHL", hl)
        put("LAMZNPT", k)
        put("R2ADJ", fit["adj"])
        put("R2", fit["r2"])
        put("LAMZLL", lz_t[0])
        put("LAMZUL", lz_t[-1])
        put("LAMZSPN", (lz_t[-1] - lz_t[0]) / hl)

    # THALFOBS: first crossing of Cmax/2 after Tmax, log-linear between bracketing samples
    half = cmax / 2.0
    post = np.flatnonzero(q & (t > tmax))
    below = post[c[post] <= half]
    if len(below) == 0:
        r = "no quantifiable sample after Tmax is at or below Cmax/2"
        put("THALFT", reason=r)
        put("THALFOBS", reason=r)
    else:
        i2 = int(below[0])
        earlier = np.flatnonzero(q & (t >= tmax) & (t < t[i2]))
        i1 = int(earlier[-1])
        if np.any(b[i1 + 1:i2]):
            r = (f"a BLQ sample lies between the samples bracketing Cmax/2 ({t[i1]:g} and "
                 f"{t[i2]:g}); the crossing time cannot be interpolated")
            put("THALFT", reason=r)
            put("THALFOBS", reason=r)
        else:
            t1, c1, t2, c2 = t[i1], c[i1], t[i2], c[i2]
            tx = t2 if c2 == half else t1 + (t2 - t1) * math.log(c1 / half) / math.log(c1 / c2)
            put("THALFT", tx)
            put("THALFOBS", tx - tmax)

    return done(lambda_z_times=lz_t, lambda_z_conc=lz_c)
