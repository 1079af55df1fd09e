"""Every fatal problem of a delivery is an ExportError naming the file (and line/record/field
where there is one) and saying what to do — never a raw traceback."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from clinpipe.errors import ExportError
from edc.forms import FormsConfig
from edc.read import read_transfer
from edc.transfer import MANIFEST_NAME


def fails(path, *needles, **kwargs) -> ExportError:
    with pytest.raises(ExportError) as info:
        read_transfer(path, **kwargs)
    message = str(info.value)
    for needle in needles:
        assert needle in message, message
    assert "->" in message, f"no hint in: {message}"
    return info.value


def without_field(forms: FormsConfig, form: str, field: str) -> FormsConfig:
    data = forms.model_dump()
    for f in data["forms"]:
        if f["oid"] == form:
            f["fields"] = [x for x in f["fields"] if x["oid"] != field]
    return FormsConfig.model_validate(data)


# -- the folder ----------------------------------------------------------------------------

def test_missing_folder(tmp_path, forms):
    fails(tmp_path / "2025-01-01", "2025-01-01", "not found", forms=forms)


def test_empty_folder(tmp_path, forms):
    (tmp_path / "2025-01-01").mkdir()
    fails(tmp_path / "2025-01-01", "2025-01-01", "empty", forms=forms)


def test_unknown_format(tmp_path, forms):
    folder = tmp_path / "2025-01-01"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    fails(folder, "2025-01-01", "unknown export format", "notes.txt", forms=forms)
    fails(folder, "unknown export format", "'parquet'", forms=forms, format="parquet")


def test_mixed_formats(copy_transfer, transfers, forms):
    folder = copy_transfer("csv")
    shutil.copy(transfers["odm"] / "tst_odm.xml", folder)
    fails(folder, "mixed export formats", "tst_odm.xml", "dm.csv", forms=forms)
    assert read_transfer(folder, forms=forms, format="csv").format == "csv"   # a choice resolves it


def test_more_than_one_odm_file(copy_transfer, forms):
    folder = copy_transfer("odm")
    shutil.copy(folder / "tst_odm.xml", folder / "again.xml")
    fails(folder, "more than one ODM file", "again.xml", forms=forms)


def test_form_unknown_to_forms_yaml(copy_transfer, forms):
    folder = copy_transfer("csv")
    shutil.copy(folder / "dm.csv", folder / "zz.csv")
    fails(folder, "zz.csv", "form ZZ", "not defined in forms.yaml", forms=forms)


def test_study_cannot_be_told(copy_transfer, forms):
    folder = copy_transfer("csv")
    for p in folder.glob("*.csv"):
        p.write_text(p.read_text(encoding="utf-8").split("\n", 1)[0] + "\n", encoding="utf-8")
    fails(folder, "cannot tell which study", forms=forms)


def test_study_mismatch(copy_transfer, forms):
    fails(copy_transfer("csv"), "ae.csv", "is another study (expected OTHER)", study="OTHER", forms=forms)


# -- CSV -----------------------------------------------------------------------------------

def test_unreadable_file(copy_transfer, forms):
    folder = copy_transfer("xpt")
    (folder / "ae.xpt").write_bytes(b"this is not a SAS transport file" * 10)
    fails(folder, "ae.xpt", "not a readable SAS", forms=forms)


def test_cp1252_file_names_line_and_byte_and_can_be_read_with_its_encoding(copy_transfer, forms, frames):
    folder = copy_transfer("csv")
    for p in folder.glob("*.csv"):   # a whole cp1252 delivery
        p.write_bytes(p.read_text(encoding="utf-8").encode("cp1252"))
    err = fails(folder, "ae.csv", "not valid utf-8", "byte 0xdc", "line 6", "--encoding cp1252", forms=forms)
    assert err.record == "line 6"
    raw = read_transfer(folder, forms=forms, encoding="cp1252")
    pd.testing.assert_frame_equal(raw.frames["DM"], frames["DM"])


def test_encoding_is_decided_per_file(copy_transfer, forms, frames):
    # issue 13 item 5: one form re-saved as cp1252 beside UTF-8 forms with non-ASCII text of
    # their own; --encoding cp1252 used to garble the UTF-8 ones
    folder = copy_transfer("csv")
    utf8 = [p for p in sorted(folder.glob("*.csv")) if not p.read_bytes().isascii()]
    assert len(utf8) >= 2, "the fixture needs two forms with non-ASCII text"
    legacy = utf8[0]   # the others stay UTF-8
    legacy.write_bytes(legacy.read_text(encoding="utf-8").encode("cp1252"))
    fails(folder, legacy.name, "not valid utf-8", "--encoding cp1252", forms=forms)
    raw = read_transfer(folder, forms=forms, encoding="cp1252")
    for form, df in frames.items():
        pd.testing.assert_frame_equal(raw.frames[form], df, obj=form)


def test_truncated_csv_last_row(copy_transfer, forms):
    folder = copy_transfer("csv")
    path = folder / "ae.csv"
    path.write_bytes(path.read_bytes()[:-60])
    fails(folder, "ae.csv", "line 6 has", "fields, the header has 60", "cut short", "truncated", forms=forms)


def test_truncated_csv_inside_a_quote(copy_transfer, forms):
    folder = copy_transfer("csv")
    path = folder / "mh.csv"
    data = path.read_bytes()
    path.write_bytes(data[:data.index(b'"Hypertension') + 10])
    fails(folder, "mh.csv", "unterminated quote", "truncated", forms=forms)


def test_csv_row_with_too_many_fields(copy_transfer, forms):
    folder = copy_transfer("csv")
    path = folder / "dm.csv"
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[2] = lines[2] + ",extra"
    path.write_text("\n".join(lines), encoding="utf-8")
    fails(folder, "dm.csv", "line 3 has", "quoted", forms=forms)


def test_csv_header_lacks_a_system_column(copy_transfer, forms):
    folder = copy_transfer("csv")
    path = folder / "dm.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False).drop(columns="RECORDID")
    df.to_csv(path, index=False)
    err = fails(folder, "dm.csv", "lacks system column", "RECORDID", forms=forms)
    assert err.field == "RECORDID"


def test_column_not_defined_in_forms_yaml(copy_transfer, forms):
    fewer = without_field(forms, "DM", "RACEOTH")
    fails(copy_transfer("csv"), "dm.csv", "column RACEOTH is not defined for form DM", forms=fewer)
    fails(copy_transfer("odm"), "tst_odm.xml", "column RACEOTH is not defined for form DM", "line", forms=fewer)


def test_csv_record_ids_must_be_unique(copy_transfer, forms):
    folder = copy_transfer("csv")
    path = folder / "dm.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[0, "RECORDID"] = "1"     # the IC form's first record already has it
    df.to_csv(path, index=False)
    fails(folder, "RECORDID 1 is used by more than one record", forms=forms)


def test_csv_system_values_are_checked(copy_transfer, forms):
    folder = copy_transfer("csv")
    path = folder / "ae.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[1, "RECORDACTIVE"] = "yes"
    df.to_csv(path, index=False)
    err = fails(folder, "ae.csv", "RECORDACTIVE 'yes' is not 0 or 1", forms=forms)
    assert err.record == f"RECORDID {df.loc[1, 'RECORDID']}"


# -- ODM -----------------------------------------------------------------------------------

def test_truncated_odm(copy_transfer, forms):
    folder = copy_transfer("odm")
    path = folder / "tst_odm.xml"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    err = fails(folder, "tst_odm.xml", "ill-formed or truncated XML", "re-transfer", forms=forms)
    assert err.record.startswith("line ")


def test_odm_bytes_in_the_wrong_encoding(copy_transfer, forms, frames):
    folder = copy_transfer("odm")
    path = folder / "tst_odm.xml"
    path.write_bytes(path.read_bytes().replace("Übelkeit".encode(), "Übelkeit".encode("cp1252")))
    fails(folder, "tst_odm.xml", "declared encoding", "--encoding cp1252", forms=forms)


def test_not_an_odm_file(copy_transfer, forms):
    folder = copy_transfer("odm")
    (folder / "tst_odm.xml").write_text('<?xml version="1.0"?><catalog><book/></catalog>')
    fails(folder, "tst_odm.xml", "not a CDISC ODM 1.3 file", "catalog", forms=forms)
    fails(folder, "tst_odm.xml", "no ODM 1.3 Study/MetaDataVersion", "catalog", forms=forms, study="TST")


def test_odm_form_unknown_to_forms_yaml(copy_transfer, forms):
    data = forms.model_dump()
    data["forms"] = [f for f in data["forms"] if f["oid"] != "LB"]
    fails(copy_transfer("odm"), "tst_odm.xml", "form LB is not defined in forms.yaml",
          forms=FormsConfig.model_validate(data))


# -- the manifest --------------------------------------------------------------------------

def test_altered_file_disagrees_with_manifest(copy_transfer, forms):
    folder = copy_transfer("csv", manifest=True)
    path = folder / "ae.csv"
    path.write_bytes(path.read_bytes()[:-60])   # truncated on the way
    fails(folder, "ae.csv", "does not match transfer.json", "expected 5 rows", "re-transfer", forms=forms)


def test_row_count_disagrees_with_manifest(copy_transfer, forms):
    folder = copy_transfer("odm", manifest=True)
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    manifest["files"][0]["rows"] = 99
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    fails(folder, "tst_odm.xml", "23 records, transfer.json says 99", forms=forms)


def test_listed_file_missing_and_stray_file(copy_transfer, forms):
    folder = copy_transfer("csv", manifest=True)
    (folder / "lb.csv").unlink()
    fails(folder, "transfer.json", "lb.csv", "not in the folder", forms=forms)
    folder = copy_transfer("xpt", manifest=True)
    shutil.copy(folder / "ae.xpt", folder / "cm.xpt")
    fails(folder, "cm.xpt", "not listed in transfer.json", forms=forms)


def test_unreadable_manifest(copy_transfer, forms):
    folder = copy_transfer("csv", manifest=True)
    (folder / MANIFEST_NAME).write_text("{not json")
    fails(folder, "transfer.json", "not readable", forms=forms)
