"""The TLF catalogues: every registered endpoint has an output; bad entries are clear errors."""
from __future__ import annotations

import shutil

import pytest

from clinpipe.errors import ConfigError
from clinpipe.paths import REPO_ROOT
from tlf.catalog import load_catalog

REGISTRATIONS = REPO_ROOT / "docs" / "registrations"   # verbatim copies of ../shared/seeds


def registered_outcomes(study: str) -> list[str]:
    """Outcome names of a registration (docs/registrations/README.md: line 5 primary, then
    secondary outcomes, each `name, definition, time frame`, separated by '|')."""
    lines = (REGISTRATIONS / f"{study}.txt").read_text(encoding="utf-8").split("\n")
    pieces = lines[4].split("|") + "\n".join(lines[5:]).split("|")
    return [p.split(", ")[0].strip() for p in pieces]


# The registrations as the seeds give them (so the test cannot pass by reading an empty file).
EXPECTED_COUNTS = {"RS001": 15, "GLOCART": 6}


@pytest.mark.parametrize("study", ["RS001", "GLOCART"])
def test_every_registered_outcome_has_an_endpoint_and_an_output(study):
    outcomes = registered_outcomes(study)
    assert len(outcomes) == EXPECTED_COUNTS[study]
    cat = load_catalog(study)
    by_registration = {}
    for e in cat.endpoints:
        by_registration.setdefault(e.registration, []).append(e.id)
    missing = [o for o in outcomes if o not in by_registration]
    assert not missing, f"registered outcomes with no endpoint in endpoints.yaml: {missing}"
    answered = {e for o in cat.outputs for e in o.endpoints}
    without = [e.id for e in cat.endpoints if e.id not in answered]
    assert not without, f"{study} endpoints with no output: {without}"


@pytest.mark.parametrize("study", ["RS001", "GLOCART"])
def test_outputs_are_typed_by_their_id_and_analyses_exist(study):
    from tlf.run import analysis_function

    cat = load_catalog(study)
    assert cat.outputs
    for out in cat.outputs:
        assert callable(analysis_function(out))
        assert out.id[0] == out.type[0]


def _catalog_copy(tmp_path, monkeypatch, study="RS001"):
    root = tmp_path / "mappings"
    shutil.copytree(REPO_ROOT / "mappings", root)
    monkeypatch.setenv("CLINPIPE_MAPPINGS", str(root))
    return root / study / "tlf"


BAD_ENTRIES = [
    ("id: table-1", "is not like"),
    ("id: f-14-9-9", "is a table but its id says otherwise"),
    ("population: NOSUCHFL", "population 'NOSUCHFL' is not declared"),
    ("endpoints: [NOPE]", "unknown endpoint"),
    ("colour: red", "unknown key"),
]


@pytest.mark.parametrize("change,message", BAD_ENTRIES)
def test_bad_catalogue_entry_is_a_clear_error(tmp_path, monkeypatch, change, message):
    folder = _catalog_copy(tmp_path, monkeypatch)
    key = change.split(":")[0]
    entry = {"id": "t-14-99-1", "type": "table", "title": "x", "population": "SAFFL",
             "datasets": "[ADSL]", "analysis": "response.proportions", key: change.split(": ", 1)[1]}
    body = "group: extra\noutputs:\n  - " + "\n    ".join(f"{k}: {v}" for k, v in entry.items())
    (folder / "zz_extra.yaml").write_text(body + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as err:
        load_catalog("RS001")
    assert "zz_extra.yaml" in str(err.value) or "endpoints.yaml" in str(err.value)


def test_duplicate_output_id_is_an_error(tmp_path, monkeypatch):
    folder = _catalog_copy(tmp_path, monkeypatch)
    first = load_catalog("RS001").outputs[0]
    (folder / "zz_dup.yaml").write_text(
        f"outputs:\n  - {{id: {first.id}, type: {first.type}, title: x, population: SAFFL, "
        "datasets: [ADSL], analysis: response.proportions}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="used twice"):
        load_catalog("RS001")


def test_unknown_analysis_names_the_output(tmp_path, monkeypatch):
    from tlf.run import analysis_function

    folder = _catalog_copy(tmp_path, monkeypatch)
    (folder / "zz_bad.yaml").write_text(
        "outputs:\n  - {id: t-14-99-2, type: table, title: x, population: SAFFL, "
        "datasets: [ADSL], analysis: nosuch.thing}\n", encoding="utf-8")
    out = load_catalog("RS001").output("t-14-99-2")
    with pytest.raises(ConfigError, match="t-14-99-2: no analysis 'nosuch.thing'"):
        analysis_function(out)
