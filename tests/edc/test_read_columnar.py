"""The reader's columnar checks (issue 18) against the plain formulation they replace."""
import numpy as np
import pandas as pd
import pytest

from clinpipe.errors import ExportError
from edc.codes import factorize
from edc.csv_format import decode_check
from edc.read import _integers

TRICKY = ["1", "0", "00", "007", "12", " 12", "12 ", "+3", "-1", "-0", "1.0", "1.5", "1e3", "1E-2",
          "", "x", "0x10", "1_000", "999999999999999999", "1234567890123456789012", "٣", "inf", "nan"]


def _reference(values: pd.Series, minimum: int) -> np.ndarray:
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        return ~(np.isfinite(numbers) & (numbers % 1 == 0) & (numbers >= minimum))


@pytest.mark.parametrize("minimum", [0, 1])
def test_integer_checks_equal_to_numeric(minimum):
    for value in TRICKY:      # one at a time: to_numeric's dtype depends on the other values
        values = pd.Series([value, "5"], dtype=object)
        assert _integers(values, minimum).tolist() == _reference(values, minimum).tolist(), value
    values = pd.Series(TRICKY * 3, dtype=object)
    assert _integers(values, minimum).tolist() == _reference(values, minimum).tolist()


def test_integer_check_of_values_that_are_not_text():
    values = pd.Series([1, "2", None, 3.5], dtype=object)
    assert _integers(values, 1).tolist() == _reference(values, 1).tolist()


def test_decode_check_ascii_shortcut_keeps_bom_and_errors(tmp_path):
    assert decode_check(b"A,B\n1,2\n", tmp_path / "f.csv", "utf-8") == "utf-8"
    assert decode_check(b"\xef\xbb\xbfA,B\n", tmp_path / "f.csv", "utf-8") == "utf-8-sig"
    with pytest.raises(ExportError, match="byte 0xe9 at line 2"):
        decode_check(b"A,B\ncaf\xe9,2\n", tmp_path / "f.csv", "utf-8")
    with pytest.raises(ExportError, match="unknown encoding"):
        decode_check(b"A,B\n", tmp_path / "f.csv", "no-such-codec")


def test_factorize_keeps_missing_as_one_value():
    codes, uniques = factorize(pd.Series(["a", None, "b", "a", np.nan], dtype=object))
    assert codes.tolist() == [0, 2, 1, 0, 2] and uniques[:2].tolist() == ["a", "b"] and uniques[2] is None
    codes, uniques = factorize(pd.Series([1.0, np.nan]))
    assert codes.tolist() == [0, 1] and uniques.dtype == np.float64 and np.isnan(uniques[1])
