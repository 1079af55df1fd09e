"""ADaM writer (XPT v5 + parquet from the spec) and the reader of any SDTM folder."""
import textwrap

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pyreadstat
import pytest

from adam.metadata import load_spec
from adam.read import SdtmInputError, read_sdtm
from adam.write import AdamShapeError, write_adam


@pytest.fixture
def spec(tmp_path):
    (tmp_path / "common" / "adam").mkdir(parents=True)
    (tmp_path / "common" / "adam" / "adxx.yaml").write_text(textwrap.dedent("""\
        dataset: ADXX
        label: Test Dataset
        structure: ADSL
        keys: [STUDYID, USUBJID]
        variables:
          - {name: STUDYID, derivation: DM.STUDYID}
          - {name: USUBJID, derivation: DM.USUBJID}
          - {name: AGE, derivation: DM.AGE}
          - {name: TRTSDT, derivation: first dose date}
          - {name: TRTSDTM, derivation: first dose date and time}
        """))
    return load_spec("ADXX", "S1", tmp_path)


def _frame():
    return pd.DataFrame({
        "USUBJID": ["S1-001", "S1-002"], "STUDYID": ["S1", "S1"], "AGE": [54, np.nan],
        "TRTSDT": pd.to_datetime(["1960-01-02", None]),
        "TRTSDTM": pd.to_datetime(["2025-03-07T14:30", None]),
    })


def test_xpt_has_numeric_dates_with_formats_and_labels(spec, tmp_path):
    out = write_adam(_frame(), spec, tmp_path / "adam")
    df, meta = pyreadstat.read_xport(str(out["xpt"]), disable_datetime_conversion=True)
    assert list(df.columns) == ["STUDYID", "USUBJID", "AGE", "TRTSDT", "TRTSDTM"]   # spec order
    assert df.TRTSDT.iloc[0] == 1.0                 # days since 1960-01-01
    assert df.TRTSDTM.iloc[0] == (pd.Timestamp("2025-03-07T14:30") - pd.Timestamp("1960-01-01")).total_seconds()
    assert np.isnan(df.TRTSDT.iloc[1])
    assert meta.original_variable_types["TRTSDT"].startswith("DATE9")
    assert meta.original_variable_types["TRTSDTM"].startswith("DATETIME20")
    assert meta.column_names_to_labels["TRTSDT"] == "Date of First Exposure to Treatment"
    assert meta.table_name == "ADXX" and meta.file_label == "Test Dataset"


def test_parquet_keeps_real_dates_and_labels(spec, tmp_path):
    out = write_adam(_frame(), spec, tmp_path / "adam")
    table = pq.read_table(out["parquet"])
    assert str(table.schema.field("TRTSDT").type) == "date32[day]"
    assert table.schema.field("AGE").metadata[b"label"] == b"Age"
    back = table.to_pandas()
    assert str(back.TRTSDT.iloc[0]) == "1960-01-02" and back.TRTSDT.iloc[1] is None


def test_rerun_is_byte_identical(spec, tmp_path):
    a = write_adam(_frame(), spec, tmp_path / "a")
    b = write_adam(_frame(), spec, tmp_path / "b")
    assert a["sha256"] == b["sha256"]


def test_frame_and_spec_that_disagree_are_named(spec, tmp_path):
    with pytest.raises(AdamShapeError) as exc:
        write_adam(_frame().drop(columns="AGE").assign(EXTRA=1), spec, tmp_path)
    assert "missing AGE" in exc.value.message and "not in the spec EXTRA" in exc.value.message
    with pytest.raises(AdamShapeError) as exc:
        write_adam(_frame().assign(AGE=["x", 1]), spec, tmp_path)
    assert "AGE" in exc.value.message and "row 1" in exc.value.message


def test_reads_xpt_or_parquet_and_supp(tmp_path):
    dm = pd.DataFrame({"STUDYID": ["S"], "USUBJID": ["S-1"], "AGE": [40.0]})
    ae = pd.DataFrame({"STUDYID": ["S", "S"], "USUBJID": ["S-1", "S-1"], "AESEQ": [1.0, 2.0], "AETERM": ["A", "B"]})
    supp = pd.DataFrame({"STUDYID": ["S"], "RDOMAIN": ["AE"], "USUBJID": ["S-1"], "IDVAR": ["AESEQ"],
                         "IDVARVAL": ["2"], "QNAM": ["AEDLT"], "QLABEL": ["DLT"], "QVAL": ["Y"], "QORIG": ["CRF"]})
    pyreadstat.write_xport(dm, str(tmp_path / "DM.XPT"), file_format_version=5)
    ae.to_parquet(tmp_path / "ae.parquet")
    pyreadstat.write_xport(supp, str(tmp_path / "suppae.xpt"), file_format_version=5)
    sdtm = read_sdtm(tmp_path)
    assert sdtm.get("DM").AGE.tolist() == [40.0]
    got = sdtm.get("AE", ("USUBJID", "AESEQ"))
    assert sdtm.supp_value(got, "AE", "AEDLT").tolist() == ["", "Y"]
    assert sdtm.supp_value(got, "AE", "AEOTHER").tolist() == ["", ""]
    assert sdtm.get("LB").empty                      # absent and optional
    with pytest.raises(SdtmInputError) as exc:
        sdtm.get("AE", ("USUBJID", "AEDECOD"))
    assert "AEDECOD" in exc.value.message and "ae.parquet" in exc.value.message
    with pytest.raises(SdtmInputError) as exc:
        sdtm.get("EX", ("EXSTDTC",))
    assert "EX is needed" in exc.value.message


def test_folder_without_dm_is_refused(tmp_path):
    with pytest.raises(SdtmInputError) as exc:
        read_sdtm(tmp_path)
    assert "no DM dataset" in exc.value.message
