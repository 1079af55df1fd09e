"""The cross-dataset rules on Arrow text: the same findings whether Char columns come as
string[pyarrow] (the validation's normalised input) or as Python objects (with None, NaN or a
stray number), the text edge cases the kernels must read as Python did, the key lookup
against a pandas merge, and the per-run column cache."""
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from sdtm.validate import rules
from sdtm.validate.findings import COLUMNS
from sdtm.validate.rules import RULES, run_rules
from tests.sdtm.test_validate_rules import CASES, U1, U2, dm, ex

F = pd.DataFrame


def arrow(datasets):
    """Char columns as string[pyarrow] with '' for missing, as `validate` hands them over."""
    out = {}
    for name, df in datasets.items():
        chars = [c for c in df.columns if df[c].dtype == object]
        out[name] = df.astype({c: "string[pyarrow]" for c in chars}).fillna({c: "" for c in chars})
    return out


def check(rule_id, datasets):
    return next(r for r in RULES if r.id == rule_id).check(datasets, None)


def text(findings):
    return findings[COLUMNS].astype(str).reset_index(drop=True)


@pytest.mark.parametrize("rule_id", sorted(CASES))
@pytest.mark.parametrize("case", [0, 1], ids=["good", "bad"])
def test_arrow_strings_give_the_same_findings(rule_id, case):
    datasets = CASES[rule_id][case]
    pd.testing.assert_frame_equal(text(check(rule_id, arrow(datasets))), text(check(rule_id, datasets)))


def test_python_objects_with_gaps_read_as_their_text():
    # None and NaN are blanks; a number in a text column is its printed form
    frames = {"DM": dm(DTHFL=["Y", None], DTHDTC=["2024-02-01", np.nan]),
              "AE": F({"USUBJID": [U1, None, "S-999"], "AESEQ": [1.0, 2.0, 3.0],
                       "AETERM": ["Headache", 12.5, None]})}
    found = run_rules(frames)
    assert found["RULE"].tolist() == ["XR001"] and found["USUBJID"].tolist() == ["S-999"]


def test_blanks_are_stripped_as_python_strips_them():
    # non-ASCII blanks at either end are not data; inside a value they are
    ae = F({"USUBJID": [U1, U1, U1], "AESEQ": [1.0, 2.0, 3.0],
            "AETERM": ["Headache\u00a0", "\u3000Nausea", "Back\u00a0pain"]})
    for frames in ({"AE": ae}, arrow({"AE": ae})):
        found = check("XR024", frames)
        assert found["SEQ"].tolist() == [3.0]
        # a padded USUBJID is still the DM subject
        padded = {"DM": dm(), "AE": F({"USUBJID": [f" {U1}\u00a0"], "AESEQ": [1.0]})}
        assert check("XR001", padded).empty and check("XR001", arrow(padded)).empty


def test_length_is_counted_in_utf8_bytes():
    ae = F({"USUBJID": [U1, U1], "AESEQ": [1.0, 2.0], "AETERM": ["é" * 100, "é" * 101]})
    for frames in ({"AE": ae}, arrow({"AE": ae})):
        found = check("XR025", frames)
        assert found["SEQ"].tolist() == [2.0]
        assert found["MESSAGE"].tolist() == ["AETERM is longer than 200 bytes (202)"]


def test_dates_compare_on_the_date_part_and_impossible_dates_are_not_dates():
    frames = {"DM": dm(RFXSTDTC=["2024-01-10T23:59", "2024-02-30"]), "EX": ex()}
    for case in (frames, arrow(frames)):
        found = check("XR003", case)
        # U1's time is ignored; U2's impossible date is not its first exposure (2024-01-12)
        assert found["USUBJID"].tolist() == [U2]
        assert found["MESSAGE"].tolist() == ["RFXSTDTC is not the earliest EX start date (2024-01-12)"]


def test_study_day_of_a_subject_not_in_dm_is_expected_none():
    frames = {"DM": dm(), "AE": F({"USUBJID": ["S-999"], "AESTDTC": ["2024-01-10"], "AESTDY": [1.0]})}
    found = check("XR005", frames)
    assert found["MESSAGE"].tolist() == ["expected none from AESTDTC and DM.RFSTDTC (no day 0)"]


def test_match_is_a_left_join_on_the_first_right_row():
    rng = np.random.default_rng(3)
    left = F({"a": rng.choice(["x", "y", "z", ""], 500), "b": rng.choice(["1", "2", "3"], 500)})
    right = F({"a": rng.choice(["x", "y", "w"], 40), "b": rng.choice(["1", "2", "4"], 40)})
    got = rules._match([pa.array(left[c], pa.large_string()) for c in "ab"],
                       [pa.array(right[c], pa.large_string()) for c in "ab"])
    first = right.reset_index().drop_duplicates(["a", "b"])
    want = left.merge(first, on=["a", "b"], how="left")["index"].fillna(-1).astype(int).to_numpy()
    np.testing.assert_array_equal(got, want)
    assert (rules._match([pa.array(["x"], pa.large_string())], [pa.array([], pa.large_string())]) == -1).all()


def test_column_values_are_shared_within_a_run_only():
    first = {"DM": dm(), "AE": F({"USUBJID": ["S-999"], "AESEQ": [1.0]})}
    second = {"DM": dm(), "AE": F({"USUBJID": [U1], "AESEQ": [1.0]})}
    assert run_rules(first)["USUBJID"].tolist() == ["S-999"]
    assert run_rules(second).empty        # a new frame is read afresh, not from the last run
    assert rules._RUN.get() is None       # outside a run nothing is kept


def test_text_in_several_chunks_is_read_chunk_by_chunk():
    # an Arrow column read from parquet comes in chunks, each a slice of its buffers
    values = pa.array(["Headache", "Céphalée", "x" * 201, "Nausea", "ok"], pa.large_string())
    chunks = pa.chunked_array([values.slice(0, 1), values.slice(1, 2), values.slice(3, 2)])
    ae = F({"USUBJID": [U1] * 5, "AESEQ": [1.0, 2.0, 3.0, 4.0, 5.0],
            "AETERM": pd.arrays.ArrowStringArray(chunks)})
    assert check("XR024", {"AE": ae})["SEQ"].tolist() == [2.0]
    assert check("XR025", {"AE": ae})["SEQ"].tolist() == [3.0]
    clean = pa.chunked_array([values.slice(3, 1), values.slice(0, 1)])
    clean = F({"USUBJID": [U1, U1], "AESEQ": [1.0, 2.0], "AETERM": pd.arrays.ArrowStringArray(clean)})
    assert run_rules({"AE": clean}).empty
