"""ISO 8601 date/times and SDTM study days, vectorised."""
from __future__ import annotations

import numpy as np
import pandas as pd

_FULL_DATE = r"^\d{4}-\d{2}-\d{2}"
_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9])?"
_YMD = r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$"


def combine(date: pd.Series, time: pd.Series | None) -> pd.Series:
    """'2025-03-07' + '14:30' -> '2025-03-07T14:30'; a partial date keeps no time (ISO 8601
    cannot carry a time without a full date), nor does an impossible time ('25:99')."""
    date = date.fillna("").astype(str)
    if time is None:
        return date.astype(object)
    time = time.fillna("").astype(str)
    full = date.str.match(_FULL_DATE) & (date.str.len() == 10) & valid_time(time)
    return date.where(~full, date + "T" + time).astype(object)


def valid_time(time: pd.Series) -> pd.Series:
    """hh:mm or hh:mm:ss on a 24-hour clock, ASCII digits ('25:99' and '' are not)."""
    return time.str.fullmatch(_TIME).fillna(False).astype(bool)


def to_datetime(dtc: pd.Series) -> pd.Series:
    """The date part of full ISO dates as datetime64; NaT for partial or empty values."""
    text = dtc.fillna("").astype(str).str[:10]
    ok = text.str.match(r"^\d{4}-\d{2}-\d{2}$")
    return pd.to_datetime(text.where(ok), format="%Y-%m-%d", errors="coerce")


def day_numbers(dtc) -> np.ndarray:
    """Days since 0001-01-01 (proleptic Gregorian) of the date part of full ISO 8601 dates, as
    float64; NaN for partial, empty, impossible (2025-02-30) or year-0000 values. Integer
    arithmetic, not datetime64[ns], so every year 0001-9999 is a date (pandas' timestamps stop at
    1677 and 2262). Computed once per distinct value."""
    text = pd.Series(dtc, dtype=object).fillna("").astype(str).str[:10]
    codes, uniques = pd.factorize(text)
    parts = pd.Series(uniques, dtype=object).str.extract(_YMD).astype("float64").to_numpy()
    y, m, d = parts[:, 0], parts[:, 1], parts[:, 2]
    ok = (y >= 1) & (m >= 1) & (m <= 12) & (d >= 1)
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    month_days = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype="float64")
    last = np.where(ok, month_days[np.where(ok, m, 1).astype(int) - 1] + (leap & (m == 2)), 0)
    ok &= d <= last
    # days from civil (H. Hinnant's algorithm), shifted so that 0001-01-01 is day 0
    yy = np.where(m <= 2, y - 1, y)
    era = np.floor(yy / 400)
    yoe = yy - era * 400
    doy = np.floor((153 * np.where(m > 2, m - 3, m + 9) + 2) / 5) + d - 1
    doe = yoe * 365 + np.floor(yoe / 4) - np.floor(yoe / 100) + doy
    days = np.where(ok, era * 146097 + doe - 306, np.nan)
    return days[codes] if len(codes) else np.zeros(0)


def study_day(dtc: pd.Series, ref: pd.Series) -> pd.Series:
    """SDTMIG --DY: (date - reference) + 1 on or after the reference start date, (date -
    reference) before it, so there is no day 0; NaN when either date is not a full date."""
    days = day_numbers(dtc) - day_numbers(ref)
    return pd.Series(np.where(days >= 0, days + 1, days), index=dtc.index, dtype="float64")
