"""ADaM metadata: ADaMIG names with placeholders, labels from the standard, spec errors."""
import textwrap

import pytest

from adam.metadata import codelists, ig_variable, load_spec
from clinpipe.errors import ConfigError


@pytest.mark.parametrize("name, structure, label, type_", [
    ("TRT01P", "ADSL", "Planned Treatment for Period 01", "Char"),
    ("TRT01AN", "ADSL", "Actual Treatment for Period 01 (N)", "Num"),
    ("AGEGR1", "ADSL", "Pooled Age Group 1", "Char"),
    ("TRTSDT", "ADSL", "Date of First Exposure to Treatment", "Num"),
    ("ANL01FL", "BDS", "Analysis Flag 01", "Char"),
    ("CRIT1FL", "BDS", "Criterion 1 Evaluation Result Flag", "Char"),
    ("A1LO", "BDS", "Analysis Range 1 Lower Limit", "Num"),
    ("CNSR", "TTE", "Censor", "Num"),
    ("ASTDT", "OCCDS", "Analysis Start Date", "Num"),
])
def test_standard_names_with_placeholders(name, structure, label, type_):
    ig, filled = ig_variable(name, structure)
    assert (filled, ig.type) == (label, type_)


@pytest.mark.parametrize("name, structure", [("DLTEVLFL", "ADSL"), ("AVAL", "ADSL"), ("TRTSDT", "BDS")])
def test_sponsor_or_other_structure_names_are_not_standard(name, structure):
    assert ig_variable(name, structure) is None


def test_adam_ct_is_carried():
    dtype = next(c for c in codelists().values() if c.short == "DTYPE")
    assert "LOCF" in dtype.terms and dtype.extensible
    assert "YEARS" in next(c for c in codelists().values() if c.short == "AGEU").terms


def _spec(tmp_path, common, study=None):
    (tmp_path / "common" / "adam").mkdir(parents=True)
    (tmp_path / "common" / "adam" / "adxx.yaml").write_text(textwrap.dedent(common))
    if study:
        (tmp_path / "S1" / "adam").mkdir(parents=True)
        (tmp_path / "S1" / "adam" / "adxx.yaml").write_text(textwrap.dedent(study))
    return load_spec("ADXX", "S1", tmp_path)


BASE = """\
    dataset: ADXX
    label: Test Dataset
    structure: ADSL
    keys: [STUDYID, USUBJID]
    variables:
      - {name: STUDYID, derivation: DM.STUDYID, origin: Predecessor}
      - {name: USUBJID, derivation: DM.USUBJID, origin: Predecessor}
      - {name: TRTSDT, derivation: first EXSTDTC of the study product}
    """


def test_spec_labels_from_the_standard_and_study_additions(tmp_path):
    spec = _spec(tmp_path, BASE, """\
        dataset: ADXX
        variables:
          - {name: DLTEVLFL, label: DLT-Evaluable Population Flag, type: Char, derivation: see SAP, after: USUBJID}
          - {name: LDSTDT, label: Lymphodepletion Start Date, type: Num, derivation: first FC EXSTDTC}
        """)
    assert spec.names == ["STUDYID", "USUBJID", "DLTEVLFL", "TRTSDT", "LDSTDT"]
    assert spec.var("TRTSDT").label == "Date of First Exposure to Treatment"
    assert spec.var("TRTSDT").format == "DATE9."          # numeric *DT is a date
    assert spec.var("LDSTDT").format == "DATE9." and not spec.var("LDSTDT").standard
    assert spec.var("STUDYID").origin == "Predecessor"


def test_spec_may_not_restate_a_standard_label(tmp_path):
    with pytest.raises(ConfigError) as exc:
        _spec(tmp_path, BASE.replace("derivation: DM.USUBJID,", "derivation: DM.USUBJID, label: Subject,"))
    assert "adxx.yaml" in exc.value.message and "line 7" in exc.value.message
    assert "USUBJID" in exc.value.message and "remove label:" in exc.value.message


def test_sponsor_variable_needs_label_and_type(tmp_path):
    with pytest.raises(ConfigError) as exc:
        _spec(tmp_path, BASE + "  - {name: DLTEVLFL, derivation: see SAP}\n")
    assert "DLTEVLFL" in exc.value.message and "label" in exc.value.message


def test_unknown_key_and_bad_name_are_named(tmp_path):
    with pytest.raises(ConfigError) as exc:
        _spec(tmp_path, BASE + "  - {name: X1, derivation: d, lable: typo}\n")
    assert "unknown key" in exc.value.message
    with pytest.raises(ConfigError) as exc:
        _spec(tmp_path / "b", BASE + "  - {name: TOOLONGNAME, label: L, type: Char, derivation: d}\n")
    assert "1-8 upper-case" in exc.value.message


def test_keys_must_be_variables(tmp_path):
    with pytest.raises(ConfigError) as exc:
        _spec(tmp_path, BASE.replace("[STUDYID, USUBJID]", "[STUDYID, USUBJID, PARAMCD]"))
    assert "PARAMCD" in exc.value.message
