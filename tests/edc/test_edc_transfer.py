"""transfer.json: what it records, and that a transfer reads without one."""
from __future__ import annotations

import datetime as dt
import json
import shutil

import pandas as pd

from edc.read import read_transfer
from edc.transfer import MANIFEST_NAME, file_sha256, load_manifest


def test_manifest_records_each_file(transfers):
    body = json.loads((transfers["csv"] / MANIFEST_NAME).read_text())
    assert body["study"] == "TST" and body["transfer_date"] == "2025-03-31" and body["format"] == "csv"
    assert body["generator"].startswith("clinpipe")
    files = {f["name"]: f for f in body["files"]}
    assert sorted(files) == sorted(p.name for p in transfers["csv"].glob("*.csv"))
    assert files["ae.csv"]["rows"] == 5 and files["ds.csv"]["rows"] == 0
    assert files["ae.csv"]["sha256"] == file_sha256(transfers["csv"] / "ae.csv")
    odm = json.loads((transfers["odm"] / MANIFEST_NAME).read_text())
    assert [(f["name"], f["rows"]) for f in odm["files"]] == [("tst_odm.xml", 23)]


def test_manifest_is_optional(copy_transfer, forms, frames):
    raw = read_transfer(copy_transfer("xpt"), forms=forms)
    pd.testing.assert_frame_equal(raw.frames["VS"], frames["VS"])
    assert raw.file_hashes["vs.xpt"] == file_sha256(raw.transfer_dir / "vs.xpt")


def test_forms_default_to_the_studys_forms_yaml(monkeypatch, mappings_root, config, transfers,
                                                frames):
    monkeypatch.setenv("CLINPIPE_MAPPINGS", str(mappings_root))
    raw = read_transfer(transfers["csv"])   # study from transfer.json, forms from its forms.yaml
    assert raw.forms == config[1]
    pd.testing.assert_frame_equal(raw.frames["AE"], frames["AE"])


def test_manifest_supplies_study_and_date_when_the_folder_does_not(tmp_path, transfers, forms):
    folder = tmp_path / "delivery"
    shutil.copytree(transfers["odm"], folder)
    manifest = load_manifest(folder)
    assert manifest.study == "TST" and manifest.transfer_date == dt.date(2025, 3, 31)
    raw = read_transfer(folder, forms=forms)
    assert raw.study == "TST" and raw.transfer_date == dt.date(2025, 3, 31)
