"""The same frames written as CSV, ODM and XPT read back equal; the ODM is schema-valid;
writers are deterministic."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest
from lxml import etree

from edc.odm_format import NS
from edc.read import read_transfer
from edc.transfer import MANIFEST_NAME, write_transfer

SCHEMA = Path(__file__).parent / "fixtures" / "odm-1.3.2" / "cdisc-odm-1.3.2" / "ODM1-3-2.xsd"
FORMATS = {"csv": "csv", "odm": "odm", "xpt": "sas"}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_reads_back_to_the_frames(fmt, transfers, frames, forms):
    raw = read_transfer(transfers[fmt], forms=forms)
    assert raw.study == "TST" and raw.format == FORMATS[fmt]
    assert raw.transfer_date == dt.date(2025, 3, 31)
    assert list(raw.frames) == list(frames)
    for oid, expected in frames.items():
        pd.testing.assert_frame_equal(raw.frames[oid], expected, obj=f"{fmt} {oid}")


def test_formats_give_the_same_findings(transfers, forms):
    def key(raw):
        return sorted((f.form, f.record, f.field, f.kind, f.message) for f in raw.findings)
    seen = [key(read_transfer(transfers[fmt], forms=forms)) for fmt in FORMATS]
    assert seen[0] and seen[0] == seen[1] == seen[2]


def test_odm_is_valid_against_the_odm_1_3_2_schema(transfers):
    schema = etree.XMLSchema(etree.parse(str(SCHEMA)))
    doc = etree.parse(str(transfers["odm"] / "tst_odm.xml"))
    assert schema.validate(doc), schema.error_log


def test_odm_carries_decodes_in_codelists_and_inactivation_as_remove(transfers):
    doc = etree.parse(str(transfers["odm"] / "tst_odm.xml"))
    ns = {"o": NS}
    root = doc.getroot()
    assert (root.get("FileType"), root.get("ODMVersion")) == ("Snapshot", "1.3.2")
    names = doc.xpath("//o:ItemDef/@Name", namespaces=ns)
    assert "AESTDAT_RAW" in names and not [n for n in names if n.endswith("_DEC")]
    assert doc.xpath("//o:ItemDef[@Name='AESTDAT']/@DataType", namespaces=ns) == ["partialDate"]
    assert doc.xpath("//o:ItemDef[@Name='SEX']/o:CodeListRef/@CodeListOID", namespaces=ns) == ["CL.SEX"]
    assert doc.xpath("//o:CodeList[@OID='CL.SEX']/o:CodeListItem[@CodedValue='F']//o:TranslatedText/text()",
                     namespaces=ns) == ["Female"]
    assert doc.xpath("//o:StudyEventDef[@OID='SE.UNS']/@Repeating", namespaces=ns) == ["Yes"]
    removed = doc.xpath("//o:ItemGroupData[@TransactionType='Remove']", namespaces=ns)
    assert len(removed) == 1
    first = removed[0][0]
    assert first.tag == f"{{{NS}}}AuditRecord"
    assert first.find(f"{{{NS}}}UserRef").get("UserOID") == "EDC"
    subjects = doc.xpath("//o:SubjectData/@SubjectKey", namespaces=ns)
    assert subjects == sorted(subjects) == ["101-001", "101-002", "102-001", "102-099"]
    assert not doc.xpath("//o:ItemData[@Value='']", namespaces=ns)


def test_a_single_odm_file_can_be_read(transfers, forms, frames):
    raw = read_transfer(transfers["odm"] / "tst_odm.xml", forms=forms)
    pd.testing.assert_frame_equal(raw.frames["AE"], frames["AE"])


def test_csv_quotes_minimally_with_lf_line_ends(transfers, forms):
    data = (transfers["csv"] / "mh.csv").read_bytes()
    header = data.split(b"\n", 1)[0].decode()
    assert header == ",".join(forms.form("MH").columns())
    assert b'"Hypertension, ""essential"""' in data
    assert b'"Asthma\r\nchildhood; a<b & c>d"' in data
    assert '"Hépatite B\nresolved"'.encode() in data
    assert b',"UN UNK 2019"' not in data   # no quotes where none are needed


def test_xpt_types_what_sas_would_type(transfers):
    _, meta = pyreadstat.read_xport(str(transfers["xpt"] / "dm.xpt"))
    types = meta.readstat_variable_types
    assert types["AGE"] == types["RECORDID"] == types["BRTHDAT"] == types["LASTMODIFIED"] == "double"
    assert types["SEX"] == types["BRTHDAT_RAW"] == "string"
    assert meta.table_name == "DM" and meta.column_names_to_labels["AGE"] == "Age at consent"
    _, meta = pyreadstat.read_xport(str(transfers["xpt"] / "vs.xpt"))
    assert meta.readstat_variable_types["SYSBP"] == "string"   # 'abc' keeps the column as text


def test_writers_are_deterministic(tmp_path, frames, forms, study, transfers, sim):
    for fmt in ("csv", "odm", "xpt"):
        again = tmp_path / fmt
        write_transfer(frames, forms, study, again, format=fmt, transfer_date=sim.transfer_date)
        names = sorted(p.name for p in transfers[fmt].iterdir())
        assert names == sorted(p.name for p in again.iterdir())
        for name in names:
            assert (transfers[fmt] / name).read_bytes() == (again / name).read_bytes(), (fmt, name)
    assert MANIFEST_NAME in names


def test_metadata_and_summary(transfers, forms):
    raw = read_transfer(transfers["odm"], forms=forms)
    dm = raw.metadata["DM"]
    assert dm.name == "Demographics" and dm.labels["AGE"] == "Age at consent"
    assert dm.field_codelists["SEX"] == "SEX" and dm.codelists["SEX"]["F"] == "Female"
    assert set(raw.file_hashes) == {"tst_odm.xml"} and raw.sources["DM"] == "tst_odm.xml"
    summary = raw.summary().set_index("form")
    assert list(summary.columns) == ["name", "records", "active", "inactive", "subjects", "findings"]
    assert summary.loc["AE"].tolist() == ["Adverse events", 5, 4, 1, 3, summary.loc["AE", "findings"]]
    assert summary.loc["DS"].tolist() == ["End of study", 0, 0, 0, 0, 0]
    assert summary["findings"].sum() == len(raw.findings)


def test_folder_named_like_a_form_round_trips_through_odm(tmp_path):
    """GLOCART's APH folder holds the APH form: ODM OIDs must still be unique and read back."""
    from lxml import etree

    from clinpipe.config import load_study
    from edc.export import build_frames
    from edc.forms import load_forms
    from edc.read import read_transfer
    from edc.transfer import write_transfer
    from simulate.run import simulate_study

    study, forms = load_study("GLOCART"), load_forms("GLOCART")
    sim = simulate_study("GLOCART", 6, seed=2)
    frames = build_frames(sim, forms, study, sim.seed)
    assert "APH" in set(frames["APH"]["FOLDER"])
    write_transfer(frames, forms, study, tmp_path / "odm", format="odm", transfer_date=sim.transfer_date)
    xml = next((tmp_path / "odm").glob("*.xml"))
    oids = etree.parse(str(xml)).xpath("//*[local-name()='MetaDataVersion']//@OID")
    assert len(oids) == len(set(oids))
    back = read_transfer(tmp_path / "odm", study="GLOCART")
    for oid, frame in frames.items():
        assert back.frames[oid].reset_index(drop=True).equals(frame.reset_index(drop=True)), oid
