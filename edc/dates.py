"""EDC date entry format ("07 MAR 2025", "UN MAR 2025", "UN UNK 2025") and ISO 8601.

Sites type dates as `DD MON YYYY` with `UN`/`UNK` for unknown parts, the way commercial EDCs
capture partial dates. The export carries that text and an ISO 8601 rendering of it.
"""
from __future__ import annotations

import calendar
import re

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
# ASCII digits only: Python's \d is any Unicode digit ('٠٧' would be a day)
_RAW = re.compile(r"^(UN|UNK|[0-9]{1,2}) (UNK|UN|[A-Z]{3}) ([0-9]{4})$")
_ISO = re.compile(r"^([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?$")


def iso_to_raw(iso: str) -> str:
    """'2025-03-07' -> '07 MAR 2025'; '2025-03' -> 'UN MAR 2025'; '2025' -> 'UN UNK 2025'.
    The day is not checked against the month ('2025-02-30' -> '30 FEB 2025': the simulator's
    impossible dates are typed that way); a month outside 01-12 or a day outside 01-31 is not
    a date's shape and raises ValueError."""
    if not iso:
        return ""
    m = _ISO.match(iso)
    year, month, day = m.groups() if m else (None, None, None)
    if not m or (month and not 1 <= int(month) <= 12) or (day and not 1 <= int(day) <= 31):
        raise ValueError(f"not an ISO 8601 date: {iso!r}")
    mon = MONTHS[int(month) - 1] if month else "UNK"
    return f"{day if day else 'UN'} {mon} {year}"


def raw_to_iso(raw: str) -> str:
    """Inverse of iso_to_raw; '' when the text is not a valid (possibly partial) date.

    An impossible date such as '30 FEB 2025' gives '' so the parsed column shows the
    problem while the raw column keeps what the site typed.
    """
    if not raw:
        return ""
    m = _RAW.match(raw.strip().upper())
    if not m:
        return ""
    day, mon, year = m.groups()
    if year == "0000":      # no year 0 in the Gregorian calendar of dates a site records
        return ""
    if mon in ("UN", "UNK"):
        return year if day in ("UN", "UNK") else ""
    if mon not in MONTHS:
        return ""
    month = MONTHS.index(mon) + 1
    if day in ("UN", "UNK"):
        return f"{year}-{month:02d}"
    d = int(day)
    if not 1 <= d <= calendar.monthrange(int(year), month)[1]:
        return ""
    return f"{year}-{month:02d}-{d:02d}"
