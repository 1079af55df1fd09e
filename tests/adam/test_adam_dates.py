"""ISO 8601 text to analysis dates with imputation flags (admiral derive_vars_dt conventions;
ADaM CT C81223 Date Imputation Flag D/M/Y, C81226 Time Imputation Flag H/M/S)."""
import pandas as pd
import pytest

from adam.dates import compute_dt, compute_dtm, derive_vars_dt

DTC = pd.Series(["2025-03-07", "2025-03", "2025", "", "2025-03-07T14:30", "2024-02", "bad", None])


def _d(values):
    return [None if pd.isna(v) else str(v.date()) for v in values]


def test_no_imputation_keeps_only_full_dates():
    dt, flag = compute_dt(DTC)
    assert _d(dt) == ["2025-03-07", None, None, None, "2025-03-07", None, None, None]
    assert flag.tolist() == [""] * 8


def test_first_day_and_month_imputation():
    dt, flag = compute_dt(DTC, "M", "first")
    assert _d(dt) == ["2025-03-07", "2025-03-01", "2025-01-01", None, "2025-03-07", "2024-02-01", None, None]
    assert flag.tolist() == ["", "D", "M", "", "", "D", "", ""]


def test_last_day_imputation_knows_month_lengths():
    dt, _ = compute_dt(DTC, "M", "last")
    assert _d(dt)[1:3] == ["2025-03-31", "2025-12-31"]
    assert _d(dt)[5] == "2024-02-29"      # leap year


def test_day_only_imputation_leaves_year_only_dates_missing():
    dt, flag = compute_dt(DTC, "D")
    assert _d(dt)[1:3] == ["2025-03-01", None] and flag.tolist()[1:3] == ["D", ""]


def test_imputed_start_moves_to_treatment_start_in_the_same_month_only():
    dtc = pd.Series(["2025-03", "2025-03", "2025-03-02", "2025"])
    trt = pd.to_datetime(pd.Series(["2025-03-10", "2025-04-02", "2025-03-10", "2025-06-01"]))
    dt, _ = compute_dt(dtc, "M", "first", min_dates=[trt])
    # collected in March: imputed to the 10th; April start is another month; a full date never moves;
    # a year-only date in the treatment year moves to the treatment start
    assert _d(dt) == ["2025-03-10", "2025-03-01", "2025-03-02", "2025-06-01"]


def test_imputed_date_never_passes_death():
    dtc = pd.Series(["2025-03", "2025-03-20"])
    death = pd.to_datetime(pd.Series(["2025-03-15", "2025-03-15"]))
    dt, _ = compute_dt(dtc, "M", "last", max_dates=[death])
    assert _d(dt) == ["2025-03-15", "2025-03-20"]   # a collected date is data, not moved


def test_datetimes_and_time_flags():
    dtm, dflag, tflag = compute_dtm(DTC, "h")
    assert str(dtm[0]) == "2025-03-07 00:00:00" and tflag[0] == "H"
    assert str(dtm[4]) == "2025-03-07 14:30:00" and tflag[4] == "S"
    assert pd.isna(dtm[1])                        # a partial date needs date imputation
    dtm, _, tflag = compute_dtm(DTC, "n")
    assert pd.isna(dtm[4]) and pd.isna(dtm[0])    # seconds missing: nothing imputed, no value
    dtm, _, tflag = compute_dtm(DTC, "s")
    assert str(dtm[4]) == "2025-03-07 14:30:00" and pd.isna(dtm[0])
    dtm, dflag, tflag = compute_dtm(DTC, "M", time_imputation="last")
    assert str(dtm[1]) == "2025-03-01 23:59:59" and (dflag[1], tflag[1]) == ("D", "H")


def test_derive_vars_dt_adds_date_and_flag():
    df = pd.DataFrame({"AESTDTC": ["2025-03", "2025-03-04"]})
    out = derive_vars_dt(df, "AST", "AESTDTC", highest_imputation="M")
    assert _d(out.ASTDT) == ["2025-03-01", "2025-03-04"] and out.ASTDTF.tolist() == ["D", ""]
    assert "ADTF" not in derive_vars_dt(df, "A", "AESTDTC").columns


def test_bad_arguments():
    with pytest.raises(ValueError):
        compute_dt(DTC, "X")
