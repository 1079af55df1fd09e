"""Fault injection on small hand-built frames: every kind changes what it says it changed."""
import pandas as pd
import pytest

from edc.csv_format import csv_name
from edc.forms import load_forms
from simulate import faults as F


@pytest.fixture
def forms(mappings_copy):
    study = mappings_copy / "TINY"
    study.mkdir()
    (study / "forms.yaml").write_text(
        "enrolment_form: IC\ncommon: [IC, DM, AE, VS]\ncodelists: {}\nforms: []\n")
    return load_forms("TINY", root=mappings_copy)


def _value(field):
    if field.type == "date":
        return ["07 MAR 2025", "2025-03-07"]
    if field.codelist:
        return ["Y", "Yes"] if field.codelist == "NY" else ["F", "Female"]
    if field.type in ("integer", "float"):
        return [str(int(field.range[0]) + 1 if field.range else 5)]
    return ["some text"]


@pytest.fixture
def frames(forms):
    out, rid = {}, 0
    for form in forms.forms:
        rows = []
        for subj in ("101-001", "101-002", "101-003", "102-001", "102-002", "102-003"):
            rid += 1
            sys_cols = ["TINY", subj[:3], subj, "SCR", "Screening", "1", form.oid, "1", str(rid), "1",
                        "2025-03-08T10:00:00"]
            rows.append(sys_cols + [v for f in form.fields for v in _value(f)])
        out[form.oid] = pd.DataFrame(rows, columns=form.columns(), dtype=object)
    return out


def test_parse_kinds():
    assert F.parse_kinds("all") == list(F.FAULT_KINDS)
    assert F.parse_kinds("long_text, non_ascii") == ["long_text", "non_ascii"]
    assert F.parse_kinds("") == []
    with pytest.raises(ValueError, match="unknown fault kind 'typo'"):
        F.parse_kinds("typo")


def test_every_record_fault_is_applied_and_listed(forms, frames):
    new, faults = F.inject_records(frames, forms, list(F.RECORD_FAULTS), seed=3)
    assert [f.kind for f in faults] == list(F.RECORD_FAULTS)
    before = sum(len(f) for f in frames.values())
    assert sum(len(f) for f in new.values()) == before + 3  # duplicate, inactivated, orphan add rows
    for fault in faults:
        frame = new[fault.form]
        row = frame[frame.RECORDID == fault.record]
        assert len(row) == 1, fault
        row = row.iloc[0]
        if fault.kind == "impossible_date":
            assert row[fault.field].startswith("30 FEB") and row[fault.field[:-4]] == ""
        elif fault.kind == "unknown_code":
            assert row[fault.field] == "X9" and row[f"{fault.field}_DEC"] == ""
        elif fault.kind == "missing_required":
            assert row[fault.field] == ""
        elif fault.kind == "out_of_range":
            hi = forms.form(fault.form).field_by_oid[fault.field].range[1]
            assert float(row[fault.field]) > hi
        elif fault.kind == "orphan_subject":
            assert fault.form != "IC"
            assert row.SUBJECT not in set(new["IC"].SUBJECT)
        elif fault.kind == "non_ascii":
            assert not row[fault.field].isascii()
        elif fault.kind == "long_text":
            assert len(row[fault.field]) > 200
        elif fault.kind == "inactivated_record":
            assert row.RECORDACTIVE == "0"
        elif fault.kind == "duplicate_record":
            src = frame[frame.RECORDID == fault.detail.split()[-1]].iloc[0]
            data = forms.form(fault.form).data_columns()
            assert row[data].tolist() == src[data].tolist()
    # the originals were not modified in place
    assert all("X9" not in set(f.values.ravel()) for f in frames.values())


def test_injection_is_deterministic(forms, frames):
    a = F.inject_records(frames, forms, ["unknown_code", "long_text"], seed=5)[1]
    b = F.inject_records(frames, forms, ["unknown_code", "long_text"], seed=5)[1]
    assert a == b


def test_file_faults(tmp_path, forms, frames):
    _, faults = F.inject_records(frames, forms, ["wrong_encoding"], seed=1)
    for oid, frame in _.items():
        frame.to_csv(tmp_path / csv_name(oid), index=False)
    F.misencode_file(tmp_path, faults)
    added = [F.truncate_file(tmp_path, faults, seed=1)]
    enc = faults[0]
    with pytest.raises(UnicodeDecodeError):
        (tmp_path / enc.file).read_text(encoding="utf-8")
    assert (tmp_path / enc.file).read_text(encoding="cp1252")
    (trunc,) = added
    assert trunc.kind == "truncated_file" and trunc.file != enc.file
    assert not (tmp_path / trunc.file).read_bytes().endswith(b"\n")
    F.write_manifest(tmp_path, faults + added, seed=1)
    assert F.read_manifest(tmp_path) == faults + added
