"""ADaM conformance: every schema check and rule finds its injected defect and names it."""
import textwrap

import pandas as pd
import pytest

from adam.metadata import load_spec
from adam.validate import validate_adam

CUT = pd.Timestamp("2025-05-27")


@pytest.fixture
def specs(tmp_path):
    common = tmp_path / "common" / "adam"
    common.mkdir(parents=True)
    (common / "adsl.yaml").write_text(textwrap.dedent("""\
        dataset: ADSL
        label: Subject-Level Analysis Dataset
        structure: ADSL
        keys: [STUDYID, USUBJID]
        variables:
          - {name: STUDYID, derivation: d}
          - {name: USUBJID, derivation: d}
          - {name: SAFFL, derivation: d}
          - {name: EOSSTT, derivation: d}
          - {name: TRTSDT, derivation: d}
        """))
    (common / "adlb.yaml").write_text(textwrap.dedent("""\
        dataset: ADLB
        label: Laboratory Analysis Dataset
        structure: BDS
        keys: [STUDYID, USUBJID, PARAMCD, ADT]
        variables:
          - {name: STUDYID, derivation: d}
          - {name: USUBJID, derivation: d}
          - {name: PARAMCD, derivation: d}
          - {name: PARAM, derivation: d}
          - {name: ADT, derivation: d}
          - {name: AVAL, derivation: d}
          - {name: ABLFL, derivation: d}
          - {name: DTYPE, derivation: d}
        """))
    return {n: load_spec(n, "S1", tmp_path) for n in ("ADSL", "ADLB")}


def _clean():
    adsl = pd.DataFrame({"STUDYID": "S1", "USUBJID": ["S1-1", "S1-2"], "SAFFL": ["Y", "N"],
                         "EOSSTT": ["ONGOING", "COMPLETED"], "TRTSDT": pd.to_datetime(["2025-01-01", None])})
    adlb = pd.DataFrame({"STUDYID": "S1", "USUBJID": ["S1-1"] * 3, "PARAMCD": ["NEUT", "NEUT", "PLAT"],
                         "PARAM": ["Neutrophils (10^9/L)", "Neutrophils (10^9/L)", "Platelets (10^9/L)"],
                         "ADT": pd.to_datetime(["2024-12-30", "2025-01-05", "2024-12-30"]), "AVAL": [2.0, 1.1, 150.0],
                         "ABLFL": ["Y", "", "Y"], "DTYPE": ["", "", ""]})
    return {"ADSL": adsl, "ADLB": adlb}


def _rules(datasets, specs):
    f = validate_adam(datasets, specs, CUT).findings
    return {(r.RULE, r.DATASET, r.VARIABLE) for r in f.itertuples()}, f


def test_clean_data_have_no_findings(specs):
    found, _ = _rules(_clean(), specs)
    assert found == set()


@pytest.mark.parametrize("breaks, expected", [
    (lambda d: d["ADSL"].__setitem__("SAFFL", ["Y", "X"]), ("ADS-FLAG", "ADSL", "SAFFL")),
    (lambda d: d["ADSL"].__setitem__("EOSSTT", ["ONGOING", "FINISHED"]), ("ADS-CT", "ADSL", "EOSSTT")),
    (lambda d: d["ADLB"].__setitem__("DTYPE", ["", "BESTGUESS", ""]), ("ADS-CT", "ADLB", "DTYPE")),
    (lambda d: d["ADSL"].__setitem__("USUBJID", ["S1-1", ""]), ("ADS-KEY", "ADSL", "USUBJID")),
    (lambda d: d.__setitem__("ADSL", pd.concat([d["ADSL"], d["ADSL"].head(1)], ignore_index=True)),
     ("AD001", "ADSL", "USUBJID")),
    (lambda d: d["ADLB"].__setitem__("USUBJID", ["S1-1", "S1-1", "S1-9"]), ("AD002", "ADLB", "USUBJID")),
    (lambda d: d["ADLB"].__setitem__("ADT", pd.to_datetime(["2024-12-30", "2024-12-30", "2024-12-30"])),
     ("AD003", "ADLB", "ADT")),
    (lambda d: d["ADLB"].__setitem__("PARAMCD", ["NEUTROPHIL", "NEUTROPHIL", "PLAT"]), ("AD004", "ADLB", "PARAMCD")),
    (lambda d: d["ADLB"].__setitem__("PARAM", ["Neutrophils (10^9/L)", "Neutrophils (/uL)", "Platelets (10^9/L)"]),
     ("AD005", "ADLB", "PARAMCD")),
    (lambda d: d["ADLB"].__setitem__("ABLFL", ["Y", "Y", "Y"]), ("AD006", "ADLB", "ABLFL")),
    (lambda d: d["ADLB"].__setitem__("ADT", pd.to_datetime(["2024-12-30", "2025-06-05", "2024-12-30"])),
     ("AD007", "ADLB", "ADT")),
    (lambda d: d.__setitem__("ADLB", d["ADLB"].assign(EXTRA="x")), ("ADS-VAR", "ADLB", "EXTRA")),
    (lambda d: d.__setitem__("ADLB", d["ADLB"].drop(columns="AVAL")), ("ADS-VAR", "ADLB", "AVAL")),
])
def test_each_defect_is_found_and_named(specs, breaks, expected):
    data = _clean()
    breaks(data)
    found, f = _rules(data, specs)
    assert expected in found, f.to_string()
    # CT findings on these extensible codelists (SBJTSTAT, DTYPE) are WARNINGs, all else ERROR
    assert set(f.SEVERITY) == ({"WARNING"} if expected[0] == "ADS-CT" else {"ERROR"})


def test_time_to_event_rules(tmp_path):
    (tmp_path / "common" / "adam").mkdir(parents=True)
    (tmp_path / "common" / "adam" / "adtte.yaml").write_text(textwrap.dedent("""\
        dataset: ADTTE
        label: Time-to-Event Analysis Dataset
        structure: TTE
        keys: [STUDYID, USUBJID, PARAMCD]
        variables:
          - {name: STUDYID, derivation: d}
          - {name: USUBJID, derivation: d}
          - {name: PARAMCD, derivation: d}
          - {name: PARAM, derivation: d}
          - {name: AVAL, derivation: d}
          - {name: STARTDT, derivation: d}
          - {name: ADT, derivation: d}
          - {name: CNSR, derivation: d}
          - {name: EVNTDESC, derivation: d}
          - {name: CNSDTDSC, derivation: d}
        """))
    spec = {"ADTTE": load_spec("ADTTE", "S1", tmp_path)}
    df = pd.DataFrame({"STUDYID": "S1", "USUBJID": ["S1-1", "S1-2", "S1-3", "S1-4"], "PARAMCD": "PFS",
                       "PARAM": "Progression-free survival (days)", "AVAL": [10.0, 5.0, 3.0, 7.0],
                       "STARTDT": pd.to_datetime(["2025-01-01"] * 4),
                       "ADT": pd.to_datetime(["2025-01-10", "2025-01-05", "2024-12-30", "2025-01-09"]),
                       "CNSR": [0.0, 1.0, 1.0, 0.5], "EVNTDESC": ["PD", "", "", ""],
                       "CNSDTDSC": ["", "LAST ASSESSMENT", "", "X"]})
    f = validate_adam({"ADTTE": df}, spec, CUT).findings
    got = {(r.RULE, r.USUBJID) for r in f.itertuples()}
    # S1-1 and S1-2 are right; S1-3 starts after its date with no censoring text; S1-4 has a
    # fractional CNSR and an AVAL one day short
    assert got == {("AD008", "S1-3"), ("AD009", "S1-3"), ("AD010", "S1-3"), ("AD008", "S1-4"), ("AD010", "S1-4")}, got


def test_extensible_codelist_is_a_warning(specs):
    data = _clean()
    data["ADLB"]["DTYPE"] = ["", "BESTGUESS", ""]
    _, f = _rules(data, specs)
    assert f.loc[f.RULE == "ADS-CT", "SEVERITY"].tolist() == ["WARNING"]     # DTYPE (C81224) is extensible
