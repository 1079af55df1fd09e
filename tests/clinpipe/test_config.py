import pytest

from clinpipe.config import available_studies, load_study
from clinpipe.errors import ConfigError


def test_both_studies_load():
    assert {"RS001", "GLOCART"} <= set(available_studies())
    rs = load_study("RS001")
    assert [d.code for d in rs.dose_levels] == ["DL1", "DL2", "DL3", "DL4"]
    assert rs.dlt.window_days == 28
    assert rs.escalation.cohort_size == 3
    assert [v.folder for v in rs.visits_with("CK")][:3] == ["D0", "D1", "D4"]
    assert rs.folder_name("D28") == "Day 28"
    gl = load_study("GLOCART")
    assert gl.consolidation is not None and gl.collection_targets is not None


def _edit(path, old, new):
    text = path.read_text()
    assert old in text, f"fixture text {old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_unknown_key_names_file_line_and_key(mappings_copy):
    path = mappings_copy / "RS001" / "study.yaml"
    _edit(path, "follow_up_months: 24", "follow_up_months: 24\nfollowup_mnths: 24")
    with pytest.raises(ConfigError) as err:
        load_study("RS001", root=mappings_copy)
    msg = str(err.value)
    assert "study.yaml" in msg and "followup_mnths" in msg and "unknown key" in msg
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if t.startswith("followup_mnths"))
    assert f"line {line}" in msg


def test_bad_value_names_nested_key(mappings_copy):
    path = mappings_copy / "RS001" / "study.yaml"
    _edit(path, "dose: 3.0e6", "dose: -3")
    with pytest.raises(ConfigError) as err:
        load_study("RS001", root=mappings_copy)
    assert "dose_levels.1.dose" in str(err.value) and "greater than 0" in str(err.value)


def test_cross_reference_error(mappings_copy):
    _edit(mappings_copy / "RS001" / "study.yaml", "elements: [SCRN, FC, RS001DL1, FU], dose_level: DL1, cohort: ESCALATION",
          "elements: [SCRN, FC, RS001DL9, FU], dose_level: DL1, cohort: ESCALATION")
    with pytest.raises(ConfigError, match="unknown element 'RS001DL9'"):
        load_study("RS001", root=mappings_copy)


def test_invalid_yaml_and_missing_file(mappings_copy):
    (mappings_copy / "RS001" / "study.yaml").write_text("study: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_study("RS001", root=mappings_copy)
    with pytest.raises(ConfigError, match="file not found"):
        load_study("NOPE", root=mappings_copy)


def test_duplicate_key_is_an_error(mappings_copy):
    path = mappings_copy / "RS001" / "study.yaml"
    _edit(path, "follow_up_months: 24", "follow_up_months: 24\nfollow_up_months: 12")
    with pytest.raises(ConfigError, match="duplicate key 'follow_up_months'"):
        load_study("RS001", root=mappings_copy)


def test_impossible_cutoff_date_names_its_line(mappings_copy):
    """A date-shaped value that is no calendar date is a ConfigError with the line, not a
    ValueError traceback (found by the data-layer review, issue 13)."""
    path = mappings_copy / "RS001" / "study.yaml"
    _edit(path, "cutoff: {rule: transfer_date}", "cutoff: {rule: fixed, date: 2025-13-45}")
    with pytest.raises(ConfigError) as err:
        load_study("RS001", root=mappings_copy)
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if t.startswith("cutoff:"))
    assert "study.yaml" in str(err.value) and f"line {line}" in str(err.value) and "2025-13-45" in str(err.value)
