import pytest

from edc.dates import iso_to_raw, raw_to_iso


@pytest.mark.parametrize("iso,raw", [
    ("2025-03-07", "07 MAR 2025"),
    ("2025-03", "UN MAR 2025"),
    ("2025", "UN UNK 2025"),
    ("", ""),
])
def test_round_trip(iso, raw):
    assert iso_to_raw(iso) == raw
    assert raw_to_iso(raw) == iso


@pytest.mark.parametrize("raw", ["30 FEB 2025", "29 FEB 2025", "32 JAN 2025", "07 XYZ 2025",
                                 "07 UNK 2025", "2025-03-07", "garbage"])
def test_invalid_raw_dates_parse_to_empty(raw):
    assert raw_to_iso(raw) == ""


def test_leap_day_is_valid():
    assert raw_to_iso("29 FEB 2024") == "2024-02-29"


def test_bad_iso_rejected():
    with pytest.raises(ValueError):
        iso_to_raw("07/03/2025")
