"""How numbers are printed in the tables (STATC), in one place.

Rounding is half away from zero (SAS ROUND, what reviewers compare against), not Python's
round-half-to-even. Not estimable (NaN) prints "NE".
"""
from __future__ import annotations

import numpy as np
import pandas as pd

NE = "NE"
DAYS_PER_MONTH = 30.4375


def round_half_up(values, digits: int) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    scale = 10.0 ** digits
    # the 1e-9 guard absorbs binary noise (2.675 stored as 2.67499...)
    return np.sign(x) * np.floor(np.abs(x) * scale + 0.5 + 1e-9) / scale


def fmt(values, digits: int = 1) -> np.ndarray:
    """Fixed decimals, NE for NaN; vectorised over arrays."""
    x = np.atleast_1d(np.asarray(values, dtype=float))
    r = round_half_up(x, digits)
    text = np.array([f"{v:.{digits}f}" if np.isfinite(v) else NE for v in r], dtype=object)
    text[np.isclose(r, 0) & np.isfinite(r)] = f"{0:.{digits}f}"  # no "-0.0"
    return text


def fmt_int(values) -> np.ndarray:
    x = np.atleast_1d(np.asarray(values, dtype=float))
    return np.array([str(int(v)) if np.isfinite(v) else NE for v in x], dtype=object)


def n_pct(n, pct) -> np.ndarray:
    """'5 (41.7)'; '0' when n is 0 (the usual submission convention)."""
    n_txt, p_txt = fmt_int(n), fmt(pct, 1)
    n_arr = np.atleast_1d(np.asarray(n, dtype=float))
    return np.where(n_arr == 0, n_txt, n_txt + " (" + p_txt + ")")


def ci(lcl, ucl, digits: int = 1) -> np.ndarray:
    return "(" + fmt(lcl, digits) + ", " + fmt(ucl, digits) + ")"


def months(days) -> np.ndarray:
    return np.asarray(days, dtype=float) / DAYS_PER_MONTH


def text(values) -> pd.Series:
    return pd.Series(values, dtype=object)
