"""sdtm.conform: long text into SUPP-- (SDTMIG 3.4 §4.5.3.2), SDTMIG shape and types, and the
XPT v5 / FDA transport limits. Tiny literal frames in, expected frames or messages out."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clinpipe.errors import ClinpipeError
from sdtm.conform import (
    TransportError,
    check_transport,
    conform,
    split_long_text,
    split_text,
    supp_qlabel,
    supp_qnam,
)

SUPP_COLUMNS = ["STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM", "QLABEL", "QVAL",
                "QORIG", "QEVAL"]
WORD = "HEADACHE"  # 8 characters: word k (0-based) starts at 9k, its following space is at 9k+8


def words(n: int) -> str:
    return " ".join([WORD] * n)


def ae(*terms: str, seq=None, **extra) -> pd.DataFrame:
    n = len(terms)
    return pd.DataFrame({"STUDYID": ["S1"] * n, "DOMAIN": ["AE"] * n,
                         "USUBJID": [f"S1-{i + 1:03d}" for i in range(n)],
                         "AESEQ": seq if seq is not None else [float(i + 1) for i in range(n)],
                         "AETERM": list(terms), "AEDECOD": ["Headache"] * n, **extra})


# -- split_long_text ---------------------------------------------------------------------------

def test_251_characters_split_at_the_last_word_break_within_200():
    text = words(28)
    assert len(text) == 251
    out, supp = split_long_text(ae(text, seq=[3.0]), "AE")
    # 22 words = 197 characters; the 23rd word would end at 206
    assert out["AETERM"].iat[0] == words(22)
    assert len(out["AETERM"].iat[0]) == 197
    assert supp.columns.tolist() == SUPP_COLUMNS
    assert supp.to_dict("records") == [{
        "STUDYID": "S1", "RDOMAIN": "AE", "USUBJID": "S1-001", "IDVAR": "AESEQ", "IDVARVAL": "3",
        "QNAM": "AETERM1", "QLABEL": "Reported Term for the Adverse Event 1",
        "QVAL": " " + words(6), "QORIG": "CRF", "QEVAL": ""}]
    assert out["AETERM"].iat[0] + supp["QVAL"].iat[0] == text


def test_449_characters_give_two_supp_records_in_order():
    text = words(50)
    out, supp = split_long_text(ae(text), "AE")
    assert out["AETERM"].iat[0] == words(22)
    assert supp["QNAM"].tolist() == ["AETERM1", "AETERM2"]
    assert supp["QLABEL"].tolist() == ["Reported Term for the Adverse Event 1",
                                       "Reported Term for the Adverse Event 2"]
    assert supp["QVAL"].tolist() == [f" {WORD}" * 22, f" {WORD}" * 6]
    assert out["AETERM"].iat[0] + "".join(supp["QVAL"]) == text


def test_text_without_spaces_is_cut_hard_at_200():
    text = "X" * 450
    out, supp = split_long_text(ae(text), "AE")
    assert out["AETERM"].iat[0] == "X" * 200
    assert supp["QVAL"].tolist() == ["X" * 200, "X" * 50]


def test_exactly_200_characters_are_left_alone():
    frame = ae("Y" * 200, "short")
    out, supp = split_long_text(frame, "AE")
    assert supp is None
    pd.testing.assert_frame_equal(out, frame)


def test_eight_character_name_has_its_last_character_replaced():
    # the IG's own example: AEACNOTH -> AEACNOT1, "Other Action Taken 1"
    frame = ae("HEADACHE", AEACNOTH=["Z" * 201])
    out, supp = split_long_text(frame, "AE")
    assert out["AEACNOTH"].iat[0] == "Z" * 200
    assert supp[["QNAM", "QLABEL", "QVAL"]].values.tolist() == [
        ["AEACNOT1", "Other Action Taken 1", "Z"]]


def test_qnam_and_qlabel_rules():
    assert supp_qnam("AETERM", 1) == "AETERM1"
    assert supp_qnam("AETERM", 10) == "AETERM10"
    assert supp_qnam("AEACNOTH", 10) == "AEACNO10"
    # a 40-character label makes room for the suffix
    assert supp_qlabel("Reason the Intervention Was Discontinued", 1) == \
        "Reason the Intervention Was Discontinu 1"


def test_idvarval_is_the_parent_value_as_text_and_idvar_can_be_chosen():
    frame = ae("short", words(28), seq=[1.0, 12.0], AESPID=["A-1", "A-7"])
    _, supp = split_long_text(frame, "AE")
    assert supp[["USUBJID", "IDVAR", "IDVARVAL"]].values.tolist() == [["S1-002", "AESEQ", "12"]]
    _, supp = split_long_text(frame, "AE", idvar="AESPID")
    assert supp[["IDVAR", "IDVARVAL"]].values.tolist() == [["AESPID", "A-7"]]


def test_dm_relates_at_subject_level():
    dm = pd.DataFrame({"STUDYID": ["S1"], "DOMAIN": ["DM"], "USUBJID": ["S1-001"],
                       "ACTARMUD": [words(28)]})
    _, supp = split_long_text(dm, "DM")
    assert supp[["RDOMAIN", "IDVAR", "IDVARVAL", "QNAM"]].values.tolist() == [
        ["DM", "", "", "ACTARMU1"]]


def test_records_are_appended_to_an_existing_supp():
    existing = pd.DataFrame([["S1", "AE", "S1-001", "AESEQ", "1", "AETRTEM",
                              "Treatment Emergent Flag", "Y", "DERIVED", ""]], columns=SUPP_COLUMNS)
    _, supp = split_long_text(ae(words(28)), "AE", supp=existing)
    assert supp["QNAM"].tolist() == ["AETRTEM", "AETERM1"]


def test_a_clashing_qnam_fails():
    existing = pd.DataFrame([["S1", "AE", "S1-001", "AESEQ", "1", "AETERM1", "x", "y", "CRF", ""]],
                            columns=SUPP_COLUMNS)
    with pytest.raises(ClinpipeError, match="USUBJID=S1-001.*QNAM=AETERM1.*same key"):
        split_long_text(ae(words(28)), "AE", supp=existing)


def test_a_record_without_its_idvar_value_fails():
    with pytest.raises(ClinpipeError, match="AESEQ is missing.*") as err:
        split_long_text(ae(words(28), seq=[np.nan]), "AE")
    assert "USUBJID=S1-001" in str(err.value)


def test_split_text_never_loses_characters():
    for text in ["a" * 199 + " " + "b" * 300, "  " + "c " * 300, "d" * 201, " " * 5 + "e" * 400]:
        pieces = split_text(text)
        assert "".join(pieces) == text
        assert all(0 < len(p) <= 200 for p in pieces)


# -- conform -------------------------------------------------------------------------------------

def test_conform_orders_adds_exp_keeps_perm_only_if_present_and_types():
    frame = pd.DataFrame({"AETERM": ["Headache", "Nausea"], "AESEQ": ["2", 1],
                          "USUBJID": ["S1-001", "S1-002"], "AESPID": ["A-1", np.nan],
                          "DOMAIN": "AE", "STUDYID": "S1", "AEDECOD": ["Headache", "Nausea"],
                          "AESTDTC": ["2024-01-02", ""]}, index=[5, 7])
    out = conform(frame, "AE")
    assert out.columns.tolist()[:9] == ["STUDYID", "DOMAIN", "USUBJID", "AESEQ", "AESPID", "AETERM",
                                        "AELLT", "AELLTCD", "AEDECOD"]
    assert "AEGRPID" not in out.columns                     # Perm, not mapped: not added
    assert out.index.tolist() == [5, 7]                     # order untouched
    assert out["AESEQ"].dtype == np.float64 and out["AESEQ"].tolist() == [2.0, 1.0]
    assert out["AESPID"].tolist() == ["A-1", ""]
    assert out["AELLT"].tolist() == ["", ""] and out["AELLT"].dtype == object
    assert out["AELLTCD"].isna().all() and out["AELLTCD"].dtype == np.float64
    assert out["AESTDTC"].tolist() == ["2024-01-02", ""]


def test_conform_renders_numbers_in_char_variables_canonically():
    out = conform(ae("Headache", AESPID=[7.0]), "AE")
    assert out["AESPID"].tolist() == ["7"]


def test_missing_req_variable_fails():
    with pytest.raises(ClinpipeError, match="AE lacks the required variable.*AEDECOD"):
        conform(ae("Headache").drop(columns="AEDECOD"), "AE")


def test_non_ig_column_fails_and_points_to_supp():
    with pytest.raises(ClinpipeError, match="AETRTEM, not SDTMIG.*SUPPAE"):
        conform(ae("Headache", AETRTEM=["Y"]), "AE")


def test_non_numeric_value_in_num_variable_names_the_record():
    frame = ae("Headache", "Nausea", AELLTCD=["10019211", "ten"])
    with pytest.raises(ClinpipeError) as err:
        conform(frame, "AE")
    message = str(err.value)
    assert "AE.AELLTCD is Num but holds 'ten'" in message
    assert "USUBJID=S1-002, AESEQ=2 (row 2)" in message


def test_missing_req_value_fails_naming_the_record():
    with pytest.raises(ClinpipeError) as err:
        conform(ae("Headache", ""), "AE")
    assert str(err.value).startswith("record USUBJID=S1-002, AESEQ=2 (row 2), field AETERM: "
                                     "AE.AETERM is required but missing in 1 record(s)")


# -- check_transport -----------------------------------------------------------------------------

LABELS = {"STUDYID": "Study Identifier", "USUBJID": "Unique Subject Identifier",
          "AESEQ": "Sequence Number", "AETERM": "Reported Term for the Adverse Event"}


def clean() -> pd.DataFrame:
    return pd.DataFrame({"STUDYID": ["S1", "S1"], "USUBJID": ["S1-001", "S1-002"],
                         "AESEQ": [1.0, 2.0], "AETERM": ["Headache", "Nausea"]})


def problems(df, dataset="AE", labels=LABELS, dataset_label="Adverse Events") -> list[str]:
    with pytest.raises(TransportError) as err:
        check_transport(df, dataset, labels, dataset_label)
    assert all(p in str(err.value) for p in err.value.problems)
    return err.value.problems


def test_clean_data_passes():
    check_transport(clean(), "AE", LABELS, "Adverse Events")


def test_long_dataset_name_and_label():
    assert problems(clean(), dataset="ADVERSEEV", dataset_label="A" * 41) == [
        "dataset name 'ADVERSEEV' is 9 characters (max 8)",
        f"dataset ADVERSEEV label is 41 characters (max 40): '{'A' * 41}'"]


@pytest.mark.parametrize("name, why", [
    ("AETERMXYZ", "is 9 characters (max 8)"),
    ("aeterm", "must be uppercase"),
    ("1AETERM", "must start with a letter"),
    ("AE_TERM", "may hold only letters A-Z and digits"),
])
def test_bad_variable_names(name, why):
    df = clean().rename(columns={"AETERM": name})
    assert problems(df, labels={**LABELS, name: "Term"}) == [f"AE variable name {name!r} {why}"]


def test_long_and_missing_and_non_ascii_labels():
    labels = {**LABELS, "AETERM": "T" * 41, "AESEQ": "Séquence"}
    del labels["USUBJID"]
    assert problems(clean(), labels=labels) == [
        "AE.USUBJID has no label",
        "AE.AESEQ label has a non-ASCII character 'é' (U+00E9) at position 2: 'Séquence'",
        f"AE.AETERM label is 41 characters (max 40): '{'T' * 41}'"]


def test_value_over_200_bytes_names_the_record_and_length():
    df = clean()
    df.loc[1, "AETERM"] = "N" * 201
    assert problems(df) == [
        ("AE.AETERM: 1 value(s) over 200 bytes, the first at USUBJID=S1-002, AESEQ=2 (row 2) with "
        "201 bytes (split it into SUPPAE with sdtm.conform.split_long_text)")]


def test_200_characters_of_non_ascii_are_over_200_bytes():
    df = clean()
    df.loc[0, "AETERM"] = "é" * 101
    found = problems(df)
    assert "with 202 bytes" in found[0]
    assert found[1] == ("AE.AETERM: 1 value(s) not ASCII, the first at USUBJID=S1-001, "
                        "AESEQ=1 (row 1) has a non-ASCII character 'é' (U+00E9) at position 1")


def test_non_ascii_value_names_the_character():
    df = clean()
    df.loc[1, "AETERM"] = "Naus\u00e9e \u2013 mild"
    assert problems(df) == [
        ("AE.AETERM: 1 value(s) not ASCII, the first at USUBJID=S1-002, AESEQ=2 (row 2) has a "
        "non-ASCII character 'é' (U+00E9) at position 5")]


def test_record_is_the_row_number_without_keys():
    df = pd.DataFrame({"TSPARMCD": ["AGEMIN", "TITLE"], "TSVAL": ["18", "T" * 300]})
    assert "the first at row 2 with 300 bytes" in problems(
        df, dataset="TS", labels={"TSPARMCD": "a", "TSVAL": "b"})[0]


def test_all_problems_are_reported_together():
    df = clean().rename(columns={"AETERM": "aeterm"})
    df.loc[0, "aeterm"] = "\u00fc" * 300
    found = problems(df, labels={**LABELS, "aeterm": "x" * 50})
    assert len(found) == 4


def test_dates_must_be_text():
    df = clean().assign(AESTDTC=pd.to_datetime(["2024-01-01", "2024-01-02"]))
    assert problems(df, labels={**LABELS, "AESTDTC": "Start"}) == [
        ("AE.AESTDTC has dtype datetime64[ns]; SDTM variables are text or numbers "
        "(dates as ISO 8601 text)")]


def test_conform_accepts_pandas_nullable_dtypes():
    frame = ae("Headache", "Nausea").astype({"AESEQ": "Int64", "AETERM": "string"})
    frame["AESPID"] = pd.array(["A-1", None], dtype="string")
    out = conform(frame, "AE")
    assert out["AESEQ"].dtype == np.float64 and out["AESEQ"].tolist() == [1.0, 2.0]
    assert out["AETERM"].dtype == object and out["AESPID"].tolist() == ["A-1", ""]
