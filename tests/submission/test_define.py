"""define.xml for the sample builds: schema-valid, complete against the XPT files, with CT
C-codes, value-level metadata, byte-identical rebuilds and a stylesheet that renders it."""
from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pyreadstat
import pytest
from lxml import etree

from clinpipe.errors import ClinpipeError
from submission.define import validate_define, write_define

NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3", "def": "http://www.cdisc.org/ns/def/v2.1",
      "xlink": "http://www.w3.org/1999/xlink"}
CASES = [(s, layer) for s in ("RS001", "GLOCART") for layer in ("SDTM", "ADaM")]


@pytest.fixture(scope="module")
def defines(sample_build, tmp_path_factory) -> dict[tuple[str, str], Path]:
    """define.xml of every study and layer, written once for this module."""
    root = tmp_path_factory.mktemp("define")
    out = {}
    for study, layer in CASES:
        folder = getattr(sample_build[study], layer.lower())
        out[(study, layer)] = write_define(layer, study, folder, root / study / layer / "define.xml")
    return out


def _folder(sample_build, study, layer) -> Path:
    return getattr(sample_build[study], layer.lower())


def _doc(path: Path):
    return etree.parse(str(path))


@pytest.mark.parametrize("study,layer", CASES)
def test_define_is_schema_valid_with_stylesheet(defines, study, layer):
    path = defines[(study, layer)]
    assert validate_define(path) == []
    assert (path.parent / "define2-1.xsl").is_file()
    head = path.read_bytes()[:200].decode()
    assert '<?xml-stylesheet type="text/xsl" href="define2-1.xsl"?>' in head
    mdv = _doc(path).find(".//odm:MetaDataVersion", NS)
    assert mdv.get(f"{{{NS['def']}}}DefineVersion").startswith("2.1.")
    names = {(s.get("Name"), s.get("Version")) for s in mdv.findall("def:Standards/def:Standard", NS)}
    assert ("CDISC/NCI", "2025-03-28") in names
    assert (("SDTMIG", "3.4") if layer == "SDTM" else ("ADaMIG", "1.3")) in names


def test_validate_define_reports_schema_errors(defines, tmp_path):
    bad = tmp_path / "define.xml"
    text = defines[("RS001", "SDTM")].read_text(encoding="utf-8")
    bad.write_text(text.replace('Purpose="Tabulation"', 'Purpose="Tabulation" Colour="red"', 1),
                   encoding="utf-8")
    errors = validate_define(bad)
    assert errors and "Colour" in errors[0]


@pytest.mark.parametrize("study,layer", CASES)
def test_every_dataset_and_variable_matches_the_xpt(sample_build, defines, study, layer):
    folder = _folder(sample_build, study, layer)
    mdv = _doc(defines[(study, layer)]).find(".//odm:MetaDataVersion", NS)
    groups = {g.get("Name"): g for g in mdv.findall("odm:ItemGroupDef", NS)}
    items = {i.get("OID"): i for i in mdv.findall("odm:ItemDef", NS)}
    xpts = sorted(folder.glob("*.xpt"))
    assert sorted(groups) == sorted(p.stem.upper() for p in xpts)
    for xpt in xpts:
        _, meta = pyreadstat.read_xport(str(xpt), metadataonly=True)
        group = groups[xpt.stem.upper()]
        assert group.find("odm:Description/odm:TranslatedText", NS).text == meta.file_label
        assert group.find("def:leaf", NS).get(f"{{{NS['xlink']}}}href") == xpt.name
        assert group.get("Purpose") == ("Tabulation" if layer == "SDTM" else "Analysis")
        refs = group.findall("odm:ItemRef", NS)
        described = [items[r.get("ItemOID")] for r in refs]
        assert [i.get("Name") for i in described] == meta.column_names
        assert [int(r.get("OrderNumber")) for r in refs] == list(range(1, len(refs) + 1))
        assert any(r.get("KeySequence") == "1" for r in refs)
        for item in described:
            name = item.get("Name")
            assert item.find("odm:Description/odm:TranslatedText", NS).text == \
                meta.column_names_to_labels[name]
            numeric = meta.readstat_variable_types[name] != "string"
            dtype = item.get("DataType")
            if numeric:
                assert dtype in ("integer", "float")
            else:
                assert dtype in ("text", "date", "datetime", "durationDatetime")
            if dtype in ("text", "integer", "float"):
                assert int(item.get("Length")) == meta.variable_storage_width[name], (xpt.name, name)
            if name.endswith("DTC") and not numeric:
                assert dtype in ("date", "datetime")
            assert item.find("def:Origin", NS) is not None, (xpt.name, name)


def test_derived_items_have_methods_and_collected_items_name_the_crf(defines):
    mdv = _doc(defines[("RS001", "SDTM")]).find(".//odm:MetaDataVersion", NS)
    items = {i.get("OID"): i for i in mdv.findall("odm:ItemDef", NS)}
    methods = {m.get("OID") for m in mdv.findall("odm:MethodDef", NS)}
    for ref in mdv.findall(".//odm:ItemRef", NS):
        types = {o.get("Type") for o in items[ref.get("ItemOID")].findall("def:Origin", NS)}
        if "Derived" in types:
            assert ref.get("MethodOID") in methods, ref.get("ItemOID")
    origin = items["IT.DM.SEX"].find("def:Origin", NS)
    assert (origin.get("Type"), origin.get("Source")) == ("Collected", "Investigator")
    assert "form DM" in origin.find("odm:Description/odm:TranslatedText", NS).text
    assert items["IT.AE.AESEQ"].find("def:Origin", NS).get("Type") == "Derived"
    assert items["IT.DM.AGEU"].find("def:Origin", NS).get("Type") == "Assigned"


def _ct_codes(codelist: str) -> dict[str, str]:
    """Submission value -> C-code of one codelist in the packaged CT (the repository copy)."""
    import csv

    from sdtm.metadata import CT_VERSION, METADATA_DIR
    with (METADATA_DIR / f"ct_sdtm_{CT_VERSION}.csv").open(encoding="utf-8", newline="") as fh:
        return {r["submission_value"]: r["term_code"] for r in csv.DictReader(fh) if r["codelist"] == codelist}


def test_codelists_carry_nci_codes_and_only_values_in_the_data(sample_build, defines):
    mdv = _doc(defines[("RS001", "SDTM")]).find(".//odm:MetaDataVersion", NS)
    lists = {c.get("OID"): c for c in mdv.findall("odm:CodeList", NS)}
    sex = lists["CL.SEX"]
    assert sex.find("odm:Alias[@Context='nci:ExtCodeID']", NS).get("Name") == "C66731"
    terms = {t.get("CodedValue"): t for t in sex.findall("odm:CodeListItem", NS)}
    assert terms["F"].find("odm:Alias", NS).get("Name") == "C16576" == _ct_codes("C66731")["F"]
    assert terms["F"].find("odm:Decode/odm:TranslatedText", NS).text == "Female"
    dm = pq.read_table(sample_build["RS001"].sdtm / "dm.parquet", columns=["SEX"])
    assert set(terms) == set(pc.unique(dm["SEX"]).to_pylist()) - {""}
    # a --TESTCD list holds the tests LB has, decoded by their LBTEST names
    lb = pq.read_table(sample_build["RS001"].sdtm / "lb.parquet", columns=["LBTESTCD", "LBTEST"])
    tests = dict(zip(lb["LBTESTCD"].to_pylist(), lb["LBTEST"].to_pylist()))
    lbtestcd = {t.get("CodedValue"): t for t in lists["CL.LBTESTCD"].findall("odm:CodeListItem", NS)}
    assert set(lbtestcd) == set(tests)
    codes = _ct_codes("C65047")
    for code, term in lbtestcd.items():
        assert term.find("odm:Decode/odm:TranslatedText", NS).text == tests[code]
        if code in codes:
            assert term.find("odm:Alias", NS).get("Name") == codes[code]
        else:
            assert term.get(f"{{{NS['def']}}}ExtendedValue") == "Yes"
    # every codelist an item names exists, and every codelist is used
    used = {r.get("CodeListOID") for r in mdv.findall(".//odm:CodeListRef", NS)}
    assert used == set(lists)


def test_vlm_for_lb_tests_and_supp_qualifiers(sample_build, defines):
    mdv = _doc(defines[("RS001", "SDTM")]).find(".//odm:MetaDataVersion", NS)
    wheres = {w.get("OID"): w for w in mdv.findall("def:WhereClauseDef", NS)}
    items = {i.get("OID"): i for i in mdv.findall("odm:ItemDef", NS)}

    def vlm(oid):
        out = {}
        for ref in mdv.find(f"def:ValueListDef[@OID='{oid}']", NS).findall("odm:ItemRef", NS):
            wc = wheres[ref.find("def:WhereClauseRef", NS).get("WhereClauseOID")]
            checks = tuple((rc.get(f"{{{NS['def']}}}ItemOID"), rc.find("odm:CheckValue", NS).text)
                           for rc in wc.findall("odm:RangeCheck", NS))
            out[checks] = items[ref.get("ItemOID")]
        return out

    lb = pq.read_table(sample_build["RS001"].sdtm / "lb.parquet", columns=["LBTESTCD", "LBORRES"])
    with_result = lb.filter(pc.not_equal(lb["LBORRES"], ""))
    tested = set(pc.unique(with_result["LBTESTCD"]).to_pylist())
    rows = vlm("VL.LB.LBORRES")
    assert {v for ((_, v),) in rows} == tested
    assert all(oid == "IT.LB.LBTESTCD" for ((oid, _),) in rows)
    assert mdv.find("odm:ItemDef[@OID='IT.LB.LBORRES']/def:ValueListRef", NS).get("ValueListOID") \
        == "VL.LB.LBORRES"
    # RS: the same test code under several response criteria is told apart by RSCAT
    rs = pq.read_table(sample_build["RS001"].sdtm / "rs.parquet", columns=["RSCAT", "RSTESTCD", "RSORRES"])
    rs = rs.filter(pc.not_equal(rs["RSORRES"], ""))
    pairs = set(zip(rs["RSCAT"].to_pylist(), rs["RSTESTCD"].to_pylist()))
    rs_rows = vlm("VL.RS.RSORRES")
    assert {(cat, code) for ((_, cat), (_, code)) in rs_rows} == pairs
    supp = pq.read_table(sample_build["RS001"].sdtm / "suppdm.parquet", columns=["QNAM", "QLABEL"])
    qrows = vlm("VL.SUPPDM.QVAL")
    assert {v for ((_, v),) in qrows} == set(supp["QNAM"].to_pylist())
    for ((_, qnam),), item in qrows.items():
        label = supp.filter(pc.equal(supp["QNAM"], qnam))["QLABEL"][0].as_py()
        assert item.find("odm:Description/odm:TranslatedText", NS).text == label


def test_adam_parameters_are_listed_with_value_level_metadata(sample_build, defines):
    for study in ("RS001", "GLOCART"):
        mdv = _doc(defines[(study, "ADaM")]).find(".//odm:MetaDataVersion", NS)
        for path in sorted(sample_build[study].adam.glob("ad*.parquet")):
            table = pq.read_table(path)
            if "PARAMCD" not in table.column_names:
                continue
            name = path.stem.upper()
            params = dict(zip(table["PARAMCD"].to_pylist(), table["PARAM"].to_pylist()))
            cl = mdv.find(f"odm:CodeList[@OID='CL.{name}.PARAMCD']", NS)
            listed = {t.get("CodedValue"): t.find("odm:Decode/odm:TranslatedText", NS).text
                      for t in cl.findall("odm:CodeListItem", NS)}
            assert listed == params, name
            with_aval = set(table.filter(pc.is_valid(table["AVAL"]))["PARAMCD"].to_pylist())
            vl = mdv.find(f"def:ValueListDef[@OID='VL.{name}.AVAL']", NS)
            assert (vl is not None) == bool(with_aval), name
            if vl is not None:
                assert len(vl.findall("odm:ItemRef", NS)) == len(with_aval), name
        classes = {g.get("Name"): g.find("def:Class", NS).get("Name")
                   for g in mdv.findall("odm:ItemGroupDef", NS)}
        assert classes["ADSL"] == "SUBJECT LEVEL ANALYSIS DATASET"
        assert classes["ADLB"] == "BASIC DATA STRUCTURE"
        assert classes["ADAE"] == "OCCURRENCE DATA STRUCTURE"
        tte = mdv.find("odm:ItemGroupDef[@Name='ADTTE']/def:Class/def:SubClass", NS)
        assert tte.get("Name") == "TIME-TO-EVENT"


def test_rebuild_is_byte_identical(sample_build, defines, tmp_path):
    for study, layer in [("RS001", "SDTM"), ("GLOCART", "ADaM")]:
        again = write_define(layer, study, _folder(sample_build, study, layer), tmp_path / study / "define.xml")
        assert again.read_bytes() == defines[(study, layer)].read_bytes()


@pytest.mark.parametrize("study,layer", [("RS001", "SDTM"), ("RS001", "ADaM")])
def test_stylesheet_renders_every_dataset(defines, study, layer):
    path = defines[(study, layer)]
    transform = etree.XSLT(etree.parse(str(path.parent / "define2-1.xsl")))
    html = str(transform(_doc(path)))
    mdv = _doc(path).find(".//odm:MetaDataVersion", NS)
    for group in mdv.findall("odm:ItemGroupDef", NS):
        assert f'id="IG.{group.get("OID")}"' in html, group.get("Name")
        assert group.find("odm:Description/odm:TranslatedText", NS).text in html


# -- bad input --------------------------------------------------------------------------------------

def _copy(folder: Path, dst: Path, skip: tuple[str, ...] = ()) -> Path:
    dst.mkdir(parents=True)
    for p in folder.iterdir():
        if p.is_file() and p.name not in skip:
            shutil.copyfile(p, dst / p.name)
    return dst


def test_missing_manifest_is_named(sample_build, tmp_path):
    folder = _copy(sample_build["RS001"].sdtm, tmp_path / "sdtm", skip=("manifest.json",))
    with pytest.raises(ClinpipeError, match="no manifest.json") as err:
        write_define("SDTM", "RS001", folder, tmp_path / "out" / "define.xml")
    assert str(folder) in str(err.value)


def test_dataset_without_metadata_is_named(sample_build, tmp_path):
    folder = _copy(sample_build["RS001"].sdtm, tmp_path / "sdtm")
    import json
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["datasets"]["XX"] = manifest["datasets"]["DM"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    shutil.copyfile(folder / "dm.xpt", folder / "xx.xpt")
    shutil.copyfile(folder / "dm.parquet", folder / "xx.parquet")
    with pytest.raises(ClinpipeError, match="XX has no SDTMIG 3.4 metadata") as err:
        write_define("SDTM", "RS001", folder, tmp_path / "out" / "define.xml")
    assert "xx.xpt" in str(err.value)


def test_stray_dataset_not_in_manifest_is_named(sample_build, tmp_path):
    folder = _copy(sample_build["RS001"].adam, tmp_path / "adam")
    shutil.copyfile(folder / "adsl.xpt", folder / "adzz.xpt")
    with pytest.raises(ClinpipeError, match="ADZZ is not in the folder's manifest"):
        write_define("ADaM", "RS001", folder, tmp_path / "out" / "define.xml")


def test_wrong_study_and_standard_are_rejected(sample_build, tmp_path):
    with pytest.raises(ClinpipeError, match="holds study RS001, not GLOCART"):
        write_define("SDTM", "GLOCART", sample_build["RS001"].sdtm, tmp_path / "define.xml")
    with pytest.raises(ClinpipeError, match="unknown standard"):
        write_define("SEND", "RS001", sample_build["RS001"].sdtm, tmp_path / "define.xml")
