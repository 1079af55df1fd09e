"""tlf.format: how STATC is printed.

The reference for rounding is decimal arithmetic on the number as written
(Python's decimal.ROUND_HALF_UP, i.e. half away from zero, as SAS ROUND), not
binary floats: 2.675 is stored as 2.67499999999999982236431605997495353221893310546875
and Python's round(2.675, 2) gives 2.67, yet the table must show 2.68.
"""

import math
import random
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd
import pytest

from tlf import format as F


def decimal_half_up(text: str, digits: int) -> str:
    d = Decimal(text).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return f"{abs(d) if d == 0 else d:.{digits}f}"


@pytest.mark.parametrize("value,digits,expected", [
    (2.675, 2, "2.68"),      # stored just below the half; round(2.675, 2) == 2.67
    (1.005, 2, "1.01"),      # stored as 1.00499999999999989...
    (0.05, 1, "0.1"),
    (-0.05, 1, "-0.1"),      # away from zero, not up
    (0.15, 1, "0.2"),        # stored as 0.1499999999999999944...
    (0.25, 1, "0.3"),        # exact tie in binary: half-even would give 0.2
    (2.5, 0, "3"),
    (-2.5, 0, "-3"),
    (0.125, 2, "0.13"),
    (0.0449999, 2, "0.04"),
    (0.0499999999, 1, "0.0"),       # close to, but not, a tie
    (5072507160.025, 2, "5072507160.03"),  # large value: no absolute guard is enough
    (-0.04, 1, "0.0"),       # no "-0.0"
    (-0.0, 2, "0.00"),
    (1e-8, 8, "0.00000001"),
    (41.666666, 1, "41.7"),
    (100.0, 1, "100.0"),
])
def test_fmt_rounds_half_away_from_zero(value, digits, expected):
    assert F.fmt(value, digits).tolist() == [expected]
    assert expected == decimal_half_up(repr(value), digits)  # the reference agrees


def test_fmt_agrees_with_decimal_on_random_ties_and_non_ties():
    rng = random.Random(16)
    values, digits, expected = [], [], []
    for _ in range(4000):
        d = rng.randint(0, 3)
        k = rng.randint(-10 ** rng.randint(1, 12), 10 ** rng.randint(1, 12))
        tie = f"{k}5e-{d + 1}"                # exactly halfway in decimal
        other = f"{rng.uniform(-1e5, 1e5):.6f}"
        for text in (tie, other):
            values.append(float(text))
            digits.append(d)
            expected.append(decimal_half_up(text, d))
    values, digits = np.array(values), np.array(digits)
    got = np.empty(len(values), dtype=object)
    for d in range(4):      # vectorised per number of decimals, as the kernels call it
        got[digits == d] = F.fmt(values[digits == d], d)
    bad = [(v, d, g, e) for v, d, g, e in zip(values, digits, got, expected) if g != e]
    assert not bad, bad[:5]


def test_percentages_from_counts_round_like_decimal():
    # 100 * n / N for every n <= N <= 200 (e.g. 1/8 = 12.5 % -> "12.5", 1/16 = 6.25 -> "6.3")
    for N in range(1, 201):
        n = np.arange(N + 1)
        got = F.fmt(100 * n / N, 1)
        ref = [decimal_half_up(str(Decimal(int(k) * 100) / Decimal(N)), 1) for k in n]
        assert list(got) == ref, N


def test_not_estimable_and_shapes():
    assert list(F.fmt([np.nan, np.inf, -np.inf, 1.0], 1)) == ["NE", "NE", "NE", "1.0"]
    assert list(F.fmt_int([np.nan])) == ["NE"]
    assert F.fmt([], 1).shape == (0,)
    assert F.fmt([[1.25, 2.0], [3.0, 4.0]], 1).tolist() == [["1.3", "2.0"], ["3.0", "4.0"]]
    assert list(F.fmt(pd.Series([1.0, None]), 2)) == ["1.00", "NE"]
    assert math.isnan(F.round_half_up(np.nan, 1))
    assert F.round_half_up(2.675, 2) == 2.68 and F.round_half_up(-2.5, 0) == -3.0
    np.testing.assert_array_equal(F.round_half_up([0.05, -0.05, -0.001], 1), [0.1, -0.1, 0.0])


def test_fmt_int_rounds_instead_of_truncating():
    assert list(F.fmt_int([0, 7, 12.0, 2.5, -2.5, 2.4999, -0.2])) == ["0", "7", "12", "3", "-3",
                                                                      "2", "0"]
    assert list(F.fmt_int(pd.Series([3, 10], dtype="int64"))) == ["3", "10"]


def test_n_pct_zero_count_prints_zero_only():
    got = F.n_pct([0, 5, 12, 3], [0.0, 41.666666666666664, 100.0, np.nan])
    assert list(got) == ["0", "5 (41.7)", "12 (100.0)", "3 (NE)"]
    # the count decides, not the percentage: 0 of an empty group (pct NaN) is still "0"
    assert list(F.n_pct([0], [np.nan])) == ["0"]
    # small non-zero percentages keep their count and print 0.x, not "0"
    assert list(F.n_pct([1], [100 / 3000])) == ["1 (0.0)"]


def test_ci_and_months():
    assert list(F.ci([1.25, np.nan], [2.35, 3.0])) == ["(1.3, 2.4)", "(NE, 3.0)"]
    assert list(F.ci([0.0449], [0.0451], 3)) == ["(0.045, 0.045)"]
    # 6 months = 6 * 30.4375 days (365.25 / 12)
    np.testing.assert_allclose(F.months([182.625, 365.25]), [6.0, 12.0])
    assert list(F.fmt(F.months([0.0, 30.4375 * 1.05]), 1)) == ["0.0", "1.1"]
