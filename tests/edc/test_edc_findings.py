"""Non-fatal findings: each kind is detected where the test study plants it, and nowhere else."""
from __future__ import annotations

import pytest

from edc.read import FINDING_KINDS, read_transfer


@pytest.fixture(scope="module")
def found(transfers, forms):
    raw = read_transfer(transfers["csv"], forms=forms)
    by_kind = {}
    for f in raw.findings:
        by_kind.setdefault(f.kind, set()).add((f.form, f.subject, f.field, f.value))
    return raw, by_kind


def test_every_kind_is_a_known_kind_and_each_occurs(found):
    raw, by_kind = found
    # the exporter writes a date's typed text and ISO column from one date, so the two never
    # disagree in the planted study: test_typed_date_contradicted_by_the_iso_column plants it
    assert set(by_kind) == set(FINDING_KINDS) - {"inconsistent_date"}
    assert all(f.file.endswith(".csv") and f.record and f.message for f in raw.findings)


def test_unknown_code(found):
    assert found[1]["unknown_code"] == {("DM", "101-002", "RACE", "7"), ("MH", "101-001", "MHONGO", "X"),
                                        ("AE", "102-001", "AETOXGR", "9")}


def test_impossible_date(found):
    assert found[1]["impossible_date"] == {("DM", "102-001", "BRTHDAT_RAW", "30 FEB 1970"),
                                           ("MH", "102-001", "MHSTDAT_RAW", "2024-13-01"),
                                           ("AE", "101-002", "AESTDAT_RAW", "30 FEB 2025")}


def test_missing_required(found):
    assert found[1]["missing_required"] == {("DM", "102-001", "SEX", ""), ("MH", "102-001", "MHTERM", ""),
                                            ("AE", "102-001", "AEREL", "")}


def test_out_of_range(found):
    raw, by_kind = found
    assert by_kind["out_of_range"] == {
        ("DM", "101-002", "AGE", "95"), ("VS", "101-001", "SYSBP", "300"), ("VS", "101-001", "SYSBP", "abc"),
        ("VS", "101-001", "PULSE", "72.5"), ("VS", "101-001", "TEMP", "0.00001"),
        ("VS", "101-001", "WEIGHT", "0.30000000000000004")}
    messages = {f.value: f.message for f in raw.findings if f.kind == "out_of_range"}
    assert messages["95"] == "95 years is outside the range 18-90 years"
    assert messages["abc"] == "'abc' is not a number"
    assert messages["72.5"] == "'72.5' is not a whole number"


def test_duplicate_record_names_the_original(found, frames):
    raw = found[0]
    dup = [f for f in raw.findings if f.kind == "duplicate_record"]
    assert len(dup) == 1 and dup[0].form == "AE" and dup[0].subject == "101-001"
    nausea = frames["AE"][frames["AE"]["AETERM"] == "Nausea"]["RECORDID"].tolist()
    assert dup[0].record == nausea[1] and f"active record {nausea[0]}" in dup[0].message


def test_inactivated_record_and_its_data_are_not_checked(found, frames):
    raw = found[0]
    inactive = [f for f in raw.findings if f.kind == "inactivated_record"]
    headache = frames["AE"][frames["AE"]["AETERM"] == "Headache"]["RECORDID"].tolist()
    assert [f.record for f in inactive] == headache
    # its unknown AEOUT code '99' is not reported: the record goes no further
    assert not [f for f in raw.findings if f.record == headache[0] and f.kind != "inactivated_record"]


def test_orphan_subject(found):
    raw, by_kind = found
    assert by_kind["orphan_subject"] == {("VS", "102-099", "SUBJECT", "102-099")}
    orphan = next(f for f in raw.findings if f.kind == "orphan_subject")
    assert "no active IC" in orphan.message


def test_non_ascii(found):
    assert found[1]["non_ascii"] == {("DM", "101-002", "RACEOTH", 'Zoë Ångström, née "Ås"'),
                                     ("MH", "101-001", "MHTERM", "Hépatite B\nresolved"),
                                     ("AE", "102-001", "AETERM", "Übelkeit")}


def test_long_text(found):
    (form, subject, field, value), = found[1]["long_text"]
    assert (form, subject, field) == ("AE", "101-002", "AETERM") and len(value) > 200


def test_findings_frame_and_summary(found):
    raw, _ = found
    table = raw.findings_frame()
    assert list(table.columns) == ["file", "form", "record", "subject", "field", "value", "kind", "message"]
    assert len(table) == len(raw.findings)
    counts = table.groupby("form").size()
    summary = raw.summary().set_index("form")
    assert summary.loc["AE", "findings"] == counts["AE"]


def _read_edited(copy_transfer, forms, name, column, value):
    """The CSV transfer with `column` of the first record of `name` set to `value`, read."""
    import pandas as pd

    folder = copy_transfer("csv")
    frame = pd.read_csv(folder / name, dtype=str, keep_default_na=False)
    frame.loc[0, column] = value
    frame.to_csv(folder / name, index=False)
    return read_transfer(folder, forms=forms), frame


def test_typed_date_contradicted_by_the_iso_column(copy_transfer, forms):
    """The typed text is what the site entered; the export's ISO column is the EDC's reading of
    it. Where they disagree the finding names both and the typed text's date is used."""
    raw, lb = _read_edited(copy_transfer, forms, "lb.csv", "LBDAT", "2031-12-31")
    (f,) = [f for f in raw.findings if f.kind == "inconsistent_date"]
    assert (f.file, f.form, f.record, f.field, f.value) == ("lb.csv", "LB", lb.at[0, "RECORDID"],
                                                            "LBDAT_RAW", lb.at[0, "LBDAT_RAW"])
    assert "2031-12-31" in f.message and "2025-02-01" in f.message
    assert raw.frames["LB"].loc[raw.frames["LB"].RECORDID == f.record, "LBDAT"].tolist() == ["2025-02-01"]


def test_a_decimal_comma_in_a_number_field_is_named_as_such(copy_transfer, forms):
    raw, _ = _read_edited(copy_transfer, forms, "vs.csv", "TEMP", "37,5")
    (f,) = [f for f in raw.findings if f.value == "37,5"]
    assert f.kind == "out_of_range" and f.field == "TEMP" and "decimal comma" in f.message
