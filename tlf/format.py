"""How numbers are printed in the tables (STATC), in one place.

Rounding is half away from zero (SAS ROUND, what reviewers compare against), not Python's
round-half-to-even. Not estimable (NaN) prints "NE".
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np

NE = "NE"
DAYS_PER_MONTH = 30.4375


# Decimal places beyond 15 significant digits are binary noise, not data: a value that is
# (nearly) a tie is rounded as it reads with 15 significant digits (2.675, stored as
# 2.67499999999999982..., reads 2.67500000000000 and gives 2.68).  A fixed guard cannot get
# both 0.0499999999 (-> 0.0) and 5072507160.025 (-> ...160.03) right.
_SIG = 15


def _half_up_decimal(v: float, digits: int) -> Decimal:
    if abs(v) >= 10.0 ** _SIG:          # no fractional digits left to round
        return Decimal(int(v))
    return Decimal(f"{v:.{_SIG}g}").quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)


def round_half_up(values, digits: int) -> np.ndarray:
    """Round half away from zero (SAS ROUND) to `digits` decimals; NaN/inf are kept."""
    x = np.asarray(values, dtype=float)
    shape, x, digits = x.shape, np.atleast_1d(x), int(digits)
    scale = 10.0 ** digits
    with np.errstate(invalid="ignore", over="ignore"):
        y = np.abs(x) * scale
        out = np.sign(x) * np.floor(y + 0.5) / scale
        # only near-ties (and huge values, where y has no fractional resolution) need care;
        # the rest is unambiguous in binary, which keeps 100,000 values fast
        slow = np.isfinite(x) & ((np.abs(y % 1.0 - 0.5) < 1e-6) | (y >= 1e9))
    if slow.any():
        out[slow] = [float(_half_up_decimal(v, digits)) for v in x[slow]]
    out[out == 0] = 0.0                 # no "-0.0"
    return out.reshape(shape)


def fmt(values, digits: int = 1) -> np.ndarray:
    """Fixed decimals, half away from zero; NE for NaN or infinite; vectorised over arrays."""
    r = round_half_up(np.atleast_1d(np.asarray(values, dtype=float)), digits)
    text = [f"{v:.{digits}f}" if np.isfinite(v) else NE for v in r.ravel()]
    return np.array(text, dtype=object).reshape(r.shape)


def fmt_int(values) -> np.ndarray:
    """Whole numbers (counts); a fractional value is rounded half away from zero, not truncated."""
    return fmt(values, 0)


def n_pct(n, pct) -> np.ndarray:
    """'5 (41.7)'; '0' when n is 0 (the usual submission convention)."""
    n_txt, p_txt = fmt_int(n), fmt(pct, 1)
    n_arr = np.atleast_1d(np.asarray(n, dtype=float))
    return np.where(n_arr == 0, n_txt, n_txt + " (" + p_txt + ")")


def ci(lcl, ucl, digits: int = 1) -> np.ndarray:
    return "(" + fmt(lcl, digits) + ", " + fmt(ucl, digits) + ")"


def months(days) -> np.ndarray:
    return np.asarray(days, dtype=float) / DAYS_PER_MONTH
