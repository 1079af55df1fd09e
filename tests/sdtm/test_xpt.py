"""sdtm.xpt and sdtm.write: XPT v5 round trips read back with read_xpt and pyreadstat (never
pandas.read_sas), deterministic bytes, and nothing written when a transport limit is broken."""
from __future__ import annotations

import datetime as dt
import hashlib
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pyreadstat
import pytest

from clinpipe.errors import ClinpipeError
from sdtm.conform import TransportError, split_long_text
from sdtm.write import write_dataset
from sdtm.xpt import read_xpt, write_xpt

LABELS = {"STUDYID": "Study Identifier", "USUBJID": "Unique Subject Identifier",
          "AESEQ": "Sequence Number", "AETERM": "Reported Term for the Adverse Event",
          "AESTDTC": "Start Date/Time of Adverse Event", "AELLT": "Lowest Level Term",
          "AEBDSYCD": "Body System or Organ Class Code"}
LABEL_40 = "L" * 40  # the XPT v5 maximum must survive untruncated


def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "STUDYID": ["S1", "S1", "S1"],
        "USUBJID": ["S1-001", "S1-001", "S1-002"],
        "AESEQ": [1.0, 2.0, 1.0],
        "AETERM": ["Headache", "N" * 200, " leading blank kept"],
        "AESTDTC": ["2024-01-02T08:30", "2024-02", ""],     # ISO 8601 text, partial and missing
        "AELLT": ["", "", ""],                               # all missing: width 1
        "AEBDSYCD": [0.0, np.nan, 10019211.0],               # a true zero and a missing number
    })


def test_round_trip_values_types_labels_and_dataset_label(tmp_path):
    path = tmp_path / "ae.xpt"
    labels = {**LABELS, "AETERM": LABEL_40}
    write_xpt(frame(), path, "AE", "Adverse Events", labels)

    df, meta = read_xpt(path)
    pd.testing.assert_frame_equal(df, frame())
    assert meta.dataset == "AE" and meta.label == "Adverse Events"
    assert meta.labels == labels
    assert meta.types == {"STUDYID": "Char", "USUBJID": "Char", "AESEQ": "Num", "AETERM": "Char",
                          "AESTDTC": "Char", "AELLT": "Char", "AEBDSYCD": "Num"}
    # character widths are the longest value in bytes, at least 1; numerics 8 bytes
    assert meta.lengths == {"STUDYID": 2, "USUBJID": 6, "AESEQ": 8, "AETERM": 200, "AESTDTC": 16,
                            "AELLT": 1, "AEBDSYCD": 8}
    assert df["AEBDSYCD"].iat[0] == 0.0  # pandas.read_sas would give 5.4e-79 here


def test_pyreadstat_itself_reads_what_was_written(tmp_path):
    path = write_xpt(frame(), tmp_path / "ae.xpt", "AE", "Adverse Events", LABELS)
    raw, meta = pyreadstat.read_xport(str(path))
    assert meta.table_name == "AE" and meta.file_label == "Adverse Events"
    assert meta.column_names_to_labels == LABELS
    assert raw["AETERM"].tolist() == frame()["AETERM"].tolist()


def test_same_data_same_bytes_and_the_timestamp_is_ours(tmp_path):
    a = write_xpt(frame(), tmp_path / "a.xpt", "AE", "Adverse Events", LABELS)
    b = write_xpt(frame(), tmp_path / "b.xpt", "AE", "Adverse Events", LABELS)
    assert a.read_bytes() == b.read_bytes()
    # created and modified, in the library and the member header
    assert a.read_bytes()[:560].count(b"01JAN60:00:00:00") == 4

    run = dt.datetime(2025, 3, 28, 14, 5, 9)
    c = write_xpt(frame(), tmp_path / "c.xpt", "AE", "Adverse Events", LABELS, timestamp=run)
    assert c.read_bytes()[:560].count(b"28MAR25:14:05:09") == 4
    assert len(c.read_bytes()) == len(a.read_bytes())


def test_a_transport_violation_writes_nothing(tmp_path):
    bad = frame()
    bad.loc[0, "AETERM"] = "caf\u00e9"
    with pytest.raises(TransportError, match="AE.AETERM: 1 value.*not ASCII"):
        write_xpt(bad, tmp_path / "ae.xpt", "AE", "Adverse Events", LABELS)
    assert not (tmp_path / "ae.xpt").exists()


def test_read_of_a_broken_file_names_it(tmp_path):
    path = tmp_path / "broken.xpt"
    path.write_bytes(b"HEADER RECORD*******not really")
    with pytest.raises(ClinpipeError, match="broken.xpt: not a readable SAS XPT file"):
        read_xpt(path)


# -- write_dataset -------------------------------------------------------------------------------

def ae_raw() -> pd.DataFrame:
    return pd.DataFrame({"STUDYID": ["S1", "S1"], "DOMAIN": ["AE", "AE"],
                         "USUBJID": ["S1-001", "S1-002"], "AESEQ": [1, 1],
                         "AETERM": ["Headache", ("SEVERE HEADACHE " * 20).strip()],
                         "AEDECOD": ["Headache", "Headache"], "AESTDTC": ["2024-01-02", ""]})


def test_write_dataset_writes_both_files_from_the_metadata(tmp_path):
    ae, supp = split_long_text(ae_raw(), "AE")
    result = write_dataset(ae, "AE", tmp_path)
    assert result["xpt"] == tmp_path / "ae.xpt" and result["parquet"] == tmp_path / "ae.parquet"
    assert result["rows"] == 2
    assert result["sha256"] == {k: hashlib.sha256(result[k].read_bytes()).hexdigest()
                                for k in ("xpt", "parquet")}

    df, meta = read_xpt(result["xpt"])
    assert meta.label == "Adverse Events"
    assert meta.labels["AETERM"] == "Reported Term for the Adverse Event"
    assert list(df.columns[:5]) == ["STUDYID", "DOMAIN", "USUBJID", "AESEQ", "AETERM"]

    table = pq.read_table(result["parquet"])
    assert table.schema.field("AETERM").metadata[b"label"] == b"Reported Term for the Adverse Event"
    assert table.schema.metadata[b"clinpipe.label"] == b"Adverse Events"
    assert json.loads(table.schema.metadata[b"clinpipe.labels"]) == meta.labels
    pd.testing.assert_frame_equal(table.to_pandas(), df)

    supp_out = write_dataset(supp, "SUPPAE", tmp_path)
    sdf, smeta = read_xpt(supp_out["xpt"])
    assert smeta.dataset == "SUPPAE" and smeta.label == "Supplemental Qualifiers for AE"
    # nothing lost on the way through XPT: the pieces join back to the original
    assert df["AETERM"].iat[1] + "".join(sdf["QVAL"]) == ae_raw()["AETERM"].iat[1]


def test_write_dataset_is_byte_identical_on_rewrite(tmp_path):
    ae, _ = split_long_text(ae_raw(), "AE")
    first = write_dataset(ae, "AE", tmp_path / "one")
    second = write_dataset(ae.copy(), "AE", tmp_path / "two")
    assert first["sha256"] == second["sha256"]
    run = dt.datetime(2025, 3, 28)
    dated = write_dataset(ae, "AE", tmp_path / "three", timestamp=run)
    assert dated["sha256"]["parquet"] == first["sha256"]["parquet"]
    assert dated["sha256"]["xpt"] != first["sha256"]["xpt"]


def test_write_dataset_refuses_text_over_200_characters(tmp_path):
    long = ae_raw().assign(AETERM=["Headache", "word " * 50])
    with pytest.raises(TransportError, match="250 bytes.*split_long_text"):
        write_dataset(long, "AE", tmp_path)
    assert not list(tmp_path.iterdir())
