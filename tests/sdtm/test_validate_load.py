"""Reading an SDTM folder for validation (issue 18): the parquet gives the values the XPT
gives, normalised to the data contract; the XPT beside it is checked against manifest.json and
the parquet (XPT-SYNC), and a file that is not what the build wrote is named with what to do."""
import json
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clinpipe.errors import ClinpipeError
from clinpipe.paths import latest_transfer
from sdtm.run import run_sdtm
from sdtm.validate.load import CHAR, load_sdtm_folder, normalise, normalise_frame
from sdtm.xpt import read_xpt, write_xpt


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("rs001")
    return run_sdtm("RS001", latest_transfer("RS001") / "csv", out, progress=lambda m: None)


@pytest.fixture
def copy(built, tmp_path):
    """DM, AE and TS of the build with its manifest: a folder to break."""
    folder = tmp_path / "sdtm"
    folder.mkdir()
    for name in ("dm", "ae", "ts"):
        for suffix in ("xpt", "parquet"):
            shutil.copy(built.folder / f"{name}.{suffix}", folder)
    shutil.copy(built.folder / "manifest.json", folder)
    return folder


def _sync(folder) -> pd.DataFrame:
    f = load_sdtm_folder(folder).file_findings
    assert (f["RULE"] == "XPT-SYNC").all() and (f["SEVERITY"] == "ERROR").all()
    return f


# ---- the contract --------------------------------------------------------------------------

def test_normalise_gives_arrow_text_without_nulls_and_float_numbers():
    df = pd.DataFrame({"USUBJID": ["S-1", None, "S-3 "], "AESEQ": [1, 2, 3],
                       "AGE": [61.5, np.nan, 40.0], "MIXED": ["a", 2.5, None],
                       "FLAG": pd.Series(["Y", pd.NA, "N"], dtype="string[python]")})
    out = normalise_frame(df)
    assert all(out[c].dtype == CHAR for c in ("USUBJID", "MIXED", "FLAG"))
    assert out["USUBJID"].tolist() == ["S-1", "", "S-3"]        # trailing blanks are XPT padding
    assert out["MIXED"].tolist() == ["a", "2.5", ""]            # the XPT can only hold it as text
    assert out["FLAG"].tolist() == ["Y", "", "N"]
    assert out["AESEQ"].dtype == np.float64 and out["AGE"].dtype == np.float64
    assert normalise_frame(out) is out                         # in the contract already: no copy
    assert df["USUBJID"].tolist() == ["S-1", None, "S-3 "]      # the caller's frame is left alone


def test_writer_frames_normalise_to_what_the_folder_gives(built):
    folder = load_sdtm_folder(built.folder)
    in_process = normalise(built.datasets)
    assert sorted(in_process) == sorted(folder)
    for name, df in in_process.items():
        pd.testing.assert_frame_equal(df, folder[name], obj=name)


def test_parquet_gives_the_values_of_the_xpt(built):
    folder = load_sdtm_folder(built.folder)
    assert folder.file_findings.empty
    assert all(path.suffix == ".parquet" for path in folder.sources.values())
    for name, df in folder.items():
        from_xpt = normalise_frame(read_xpt(built.folder / f"{name.lower()}.xpt")[0])
        pd.testing.assert_frame_equal(df, from_xpt, obj=name)


def test_parquet_text_with_trailing_blanks_or_nulls_reads_as_the_xpt_would(tmp_path):
    table = pa.table({"STUDYID": ["S1 ", None], "AGE": pa.array([1, None], pa.int64())})
    pq.write_table(table, tmp_path / "dm.parquet")
    df = load_sdtm_folder(tmp_path)["DM"]
    assert df["STUDYID"].dtype == CHAR and df["STUDYID"].tolist() == ["S1", ""]
    assert df["AGE"].dtype == np.float64 and np.isnan(df["AGE"].iloc[1])


# ---- the XPT beside the parquet ------------------------------------------------------------

def test_the_builds_files_agree(copy):
    assert _sync(copy).empty


def test_xpt_changed_after_the_build_is_named(copy):
    path = copy / "dm.xpt"
    data = bytearray(path.read_bytes())
    at = data.rindex(b"RS001")          # a value in the last DM record: same size, same header
    data[at:at + 5] = b"RS00X"
    path.write_bytes(bytes(data))
    f = _sync(copy)
    assert f[["DATASET", "VARIABLE"]].values.tolist() == [["DM", ""]]
    assert "dm.xpt differs from manifest.json" in f["MESSAGE"].iloc[0]
    assert "rebuild the SDTM" in f["MESSAGE"].iloc[0]


def test_xpt_header_disagreeing_with_the_parquet(copy):
    df, meta = read_xpt(copy / "ae.xpt")
    labels = {**meta.labels, "AETERM": "Something else"}
    write_xpt(df.iloc[:-1], copy / "ae.xpt", "AE", meta.label, labels)
    f = _sync(copy).set_index("VARIABLE")
    messages = " | ".join(f["MESSAGE"])
    assert "ae.xpt differs from manifest.json" in messages
    assert "label of AETERM: 'Something else' in the XPT" in f.loc["AETERM", "MESSAGE"]
    assert f"{len(df) - 1} in the XPT, {len(df)} in the parquet" in messages
    assert "rewrite ae.xpt" in f.loc["AETERM", "MESSAGE"]       # the manifest vouches for the parquet


def test_xpt_types_and_variables(copy):
    df, meta = read_xpt(copy / "ts.xpt")
    df = df.drop(columns=["TSVCDREF"]).assign(TSSEQ=df["TSSEQ"].map(lambda v: f"{v:g}"))
    write_xpt(df, copy / "ts.xpt", "TS", meta.label, meta.labels)
    f = _sync(copy)
    messages = " | ".join(f["MESSAGE"])
    assert "only in the parquet: TSVCDREF" in messages
    assert "type of TSSEQ: Char in the XPT, Num in the parquet" in messages


def test_missing_and_unreadable_xpt(copy):
    (copy / "ts.xpt").unlink()
    (copy / "ae.xpt").write_bytes(b"not an xpt")
    f = _sync(copy).set_index("DATASET")["MESSAGE"]
    assert "manifest.json lists ts.xpt but the file is missing" in f["TS"]
    assert "ae.xpt is not a readable SAS XPT file" in " ".join(f.loc[["AE"]])


def test_parquet_changed_after_the_build_is_not_validated(copy):
    table = pq.read_table(copy / "dm.parquet")
    sex = table["SEX"].to_pylist()
    pq.write_table(table.set_column(table.column_names.index("SEX"), table.schema.field("SEX"),
                                    pa.array(["X9"] + sex[1:])), copy / "dm.parquet")
    folder = load_sdtm_folder(copy)
    assert folder.sources["DM"].name == "dm.xpt" and folder["DM"]["SEX"].iloc[0] == sex[0]
    f = folder.file_findings
    assert f["MESSAGE"].str.contains("dm.parquet differs from manifest.json").any()


def test_without_manifest_the_header_is_still_checked(copy):
    (copy / "manifest.json").unlink()
    assert _sync(copy).empty
    df, meta = read_xpt(copy / "dm.xpt")
    write_xpt(df, copy / "dm.xpt", "DM", "Other label", meta.labels)
    f = _sync(copy)
    want = ("dm.xpt and dm.parquet disagree on the dataset label: 'Other label' in the XPT, 'Demographics' "
            "in the parquet; rebuild the SDTM (`clinpipe sdtm`) to rewrite dm.xpt and dm.parquet")
    assert f["MESSAGE"].tolist() == [want]


def test_xpt_without_parquet_is_read(copy):
    (copy / "ts.parquet").unlink()
    body = json.loads((copy / "manifest.json").read_text())
    folder = load_sdtm_folder(copy)
    assert folder.sources["TS"].name == "ts.xpt" and folder["TS"]["TSPARMCD"].dtype == CHAR
    assert folder.file_findings.empty and "TS" in body["datasets"]


def test_corrupt_parquet_is_an_error_naming_the_file(copy):
    (copy / "ae.parquet").write_text("not parquet")
    with pytest.raises(ClinpipeError, match="ae.parquet.*not a readable parquet file"):
        load_sdtm_folder(copy)


def test_validation_reports_the_files_findings(copy):
    from clinpipe.config import load_study
    from sdtm.validate.run import validate

    (copy / "ts.xpt").write_bytes(b"not an xpt")
    result = validate(load_sdtm_folder(copy), load_study("RS001"), study="RS001")
    sync = result.open("ERROR").query("RULE == 'XPT-SYNC'")
    assert sync["DATASET"].unique().tolist() == ["TS"] and len(sync) == 2   # unreadable, and not the build's
