"""build_frames: the export frame contract, dates, decodes, system columns, determinism."""
from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest

from edc.export import build_frames, format_number
from simulate.model import SimulatedStudy


@pytest.mark.parametrize("value, text", [
    (70, "70"), (np.int64(3), "3"), (70.0, "70"), (-0.0, "0"), (37.5, "37.5"),
    (0.1 + 0.2, "0.30000000000000004"), (1e-05, "0.00001"), (1e20, "100000000000000000000"),
    (123456.789, "123456.789"), (None, ""), (float("nan"), ""), ("abc", "abc"), ("", ""), (True, "1"),
])
def test_format_number_is_canonical(value, text):
    assert format_number(value) == text


def test_frames_follow_the_contract(frames, forms):
    assert list(frames) == [f.oid for f in forms.forms]
    for form in forms.forms:
        df = frames[form.oid]
        assert list(df.columns) == form.columns()
        assert (df.dtypes == object).all()
        assert all(type(v) is str for v in df.to_numpy().ravel())
        assert isinstance(df.index, pd.RangeIndex)
        ids = df["RECORDID"].astype(int)
        assert ids.is_monotonic_increasing
    assert frames["DS"].empty and list(frames["DS"].columns) == forms.form("DS").columns()


def test_record_ids_follow_entry_order(frames, sim):
    all_records = pd.concat([df for df in frames.values() if not df.empty], ignore_index=True)
    ids = all_records["RECORDID"].astype(int).sort_values()
    assert ids.tolist() == list(range(1, sim.n_records() + 1))
    by_id = all_records.set_index(all_records["RECORDID"].astype(int)).sort_index()
    assert by_id["LASTMODIFIED"].is_monotonic_increasing
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", v) for v in by_id["LASTMODIFIED"])
    # LASTMODIFIED is the entry date (the simulator's _ENTRY) plus a time of day
    ic = frames["IC"].set_index("SUBJECT")["LASTMODIFIED"].str[:10]
    assert ic.to_dict() == {"101-001": "2025-01-11", "101-002": "2025-01-12", "102-001": "2025-01-15"}


def test_record_position_numbers_records_within_subject_folder_form(frames):
    mh = frames["MH"]
    first = mh[mh["SUBJECT"] == "101-001"]
    assert first["RECORDPOSITION"].tolist() == ["1", "2", "3"]
    assert first["MHTERM"].tolist()[0] == 'Hypertension, "essential"'  # the simulator's order
    vs = frames["VS"]
    at = vs.groupby(["SUBJECT", "FOLDER", "FOLDERSEQ"])["RECORDPOSITION"].agg(list)
    assert at[("101-001", "D0", "1")] == ["1", "2"]
    assert at[("101-001", "UNS", "2")] == ["1"]


def test_system_columns(frames):
    ae = frames["AE"]
    assert set(ae["STUDYID"]) == {"TST"} and set(ae["FORM"]) == {"AE"}
    assert set(ae["FOLDERNAME"]) == {"Log forms"}
    assert ae.loc[ae["AETERM"] == "Headache", "RECORDACTIVE"].tolist() == ["0"]
    assert set(ae.loc[ae["AETERM"] != "Headache", "RECORDACTIVE"]) == {"1"}
    assert set(frames["LB"]["FOLDERNAME"]) == {"Day 0", "Day 28"}


def test_dates_carry_raw_text_and_iso(frames):
    ic = frames["IC"].set_index("SUBJECT")
    assert ic.loc["101-001", ["ICDAT_RAW", "ICDAT"]].tolist() == ["10 JAN 2025", "2025-01-10"]
    assert ic.loc["101-002", ["ICDAT_RAW", "ICDAT"]].tolist() == ["UN JAN 2025", "2025-01"]
    assert ic.loc["102-001", ["ICDAT_RAW", "ICDAT"]].tolist() == ["14 JAN 2025", "2025-01-14"]  # a date object
    mh = frames["MH"]
    pairs = set(zip(mh["MHSTDAT_RAW"], mh["MHSTDAT"]))
    assert ("UN UNK 2019", "2019") in pairs and ("UN JUN 2010", "2010-06") in pairs
    assert ("2024-13-01", "") in pairs   # not a date at all: kept as typed, no ISO
    dm = frames["DM"].set_index("SUBJECT")
    assert dm.loc["102-001", ["BRTHDAT_RAW", "BRTHDAT"]].tolist() == ["30 FEB 1970", ""]


def test_decodes_come_from_the_codelist(frames):
    dm = frames["DM"].set_index("SUBJECT")
    assert dm.loc["101-001", ["SEX", "SEX_DEC", "RACE", "RACE_DEC"]].tolist() == ["F", "Female", "3", "Asian"]
    assert dm.loc["101-002", ["RACE", "RACE_DEC"]].tolist() == ["7", ""]   # unknown code
    assert dm.loc["102-001", ["SEX", "SEX_DEC"]].tolist() == ["", ""]


def test_numbers_are_formatted_once(frames):
    assert frames["DM"].set_index("SUBJECT").loc["102-001", "AGE"] == "54"   # 54.0
    vs = frames["VS"]
    assert {"37", "38.15", "0.00001"} <= set(vs["TEMP"])
    assert "0.30000000000000004" in set(vs["WEIGHT"]) and "abc" in set(vs["SYSBP"])


def test_same_input_same_frames_and_seed_only_moves_the_clock(sim, forms, study, frames):
    again = build_frames(sim, forms, study, seed=11)
    for oid in frames:
        pd.testing.assert_frame_equal(frames[oid], again[oid])
    other = build_frames(sim, forms, study, seed=12)
    assert not other["AE"]["LASTMODIFIED"].equals(frames["AE"]["LASTMODIFIED"])
    assert other["AE"]["LASTMODIFIED"].str[:10].equals(frames["AE"]["LASTMODIFIED"].str[:10])


def _sim(records):
    return SimulatedStudy(study="TST", seed=1, transfer_date=dt.date(2025, 1, 1), records=records)


@pytest.mark.parametrize("records, message", [
    ({"XX": [{"SITEID": "101", "SUBJECT": "1", "FOLDER": "SCR"}]}, "forms.yaml does not define"),
    ({"DM": [{"SITEID": "101", "SUBJECT": "1", "FOLDER": "SCR", "AGES": 4}]}, "AGES"),
    ({"DM": [{"SITEID": "101", "SUBJECT": "1", "FOLDER": "NOPE"}]}, "NOPE"),
    ({"DM": [{"SITEID": "101", "FOLDER": "SCR"}]}, "SUBJECT"),
    ({"DM": [{"SITEID": "101", "SUBJECT": "1", "FOLDER": "SCR", "_ENTRY": "Jan 5"}]}, "_ENTRY"),
])
def test_simulator_mistakes_are_named(records, message, forms, study):
    with pytest.raises(ValueError, match=message):
        build_frames(_sim(records), forms, study, seed=1)
