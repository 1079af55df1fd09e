"""Specs load, and each kind of mistake in one gives an error naming file, line and key."""
import pytest

from clinpipe.errors import ConfigError
from edc.forms import load_forms
from sdtm.spec import load_spec, load_specs


@pytest.mark.parametrize("study", ["RS001", "GLOCART"])
def test_every_spec_loads(study):
    specs = load_specs(study, load_forms(study))
    assert {"DM", "AE"} <= set(specs)
    (ae,) = specs["AE"]
    # RS001 maps the library AE form with the shared library spec; GLOCART adds questions to
    # that form (relationship to each study treatment) and has its own AE spec for them.
    assert ae.path.parent.parent.name == {"RS001": "common", "GLOCART": "GLOCART"}[study]
    assert all(len(s.sha256) == 64 for group in specs.values() for s in group)


def _broken(mappings_copy, old, new, name="dm.yaml"):
    path = mappings_copy / "RS001" / "sdtm" / name
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if new.split("\n")[0] in t)
    try:
        with pytest.raises(ConfigError) as err:
            load_spec(path, load_forms("RS001", root=mappings_copy))
    finally:
        path.write_text(text)
    msg = str(err.value)
    assert "dm.yaml" in msg
    return msg, line


@pytest.mark.parametrize("old,new,expect,key", [
    ("SEX:      {assign_ct: SEX, codelist: SEX}", "SEX:      {assign_ct: SEXX, codelist: SEX}",
     "raw field 'SEXX' is not in form DM", "SEX"),
    ("AGE:      {assign: AGE}", "AGEE:     {assign: AGE}", "AGEE is not an SDTMIG 3.4 variable of DM", "AGEE"),
    ("SEX:      {assign_ct: SEX, codelist: SEX}", "SEX:      {assign_ct: SEX, codelist: SEXES}",
     "codelist 'SEXES' is not in SDTM CT", "variables.SEX"),
    ("AGE:      {assign: AGE}", "AGE:      {asign: AGE}", "unknown algorithm 'asign'", "variables.AGE"),
    ("AGE:      {assign: AGE}", "AGE:      {assign: AGE, codelist: NY}", "unknown option 'codelist' for assign",
     "variables.AGE"),
    ("SEX:      {assign_ct: SEX, codelist: SEX}", "SEX:      {assign_ct: SEX, codelist: SEX, map: {F: WOMAN}}",
     "map value 'WOMAN' (for 'F') is not in non-extensible codelist SEX", "variables.SEX"),
    ("RFSTDTC:  {subject_date: [INF.INFDAT]}", "RFSTDTC:  {subject_date: [INFX.INFDAT]}",
     "form 'INFX' is not in the study's forms", "RFSTDTC"),
])
def test_spec_error_names_file_line_and_key(mappings_copy, old, new, expect, key):
    msg, line = _broken(mappings_copy, old, new)
    assert expect in msg, msg
    assert f"line {line}" in msg, msg
    assert key in msg, msg


def test_unknown_top_level_key_and_source(mappings_copy):
    msg, line = _broken(mappings_copy, "keys: [USUBJID]", "kees: [USUBJID]")
    assert "unknown key" in msg and "kees" in msg and f"line {line}" in msg
    msg, _ = _broken(mappings_copy, "source: DM", "source: DMX")
    assert "source form 'DMX' is not in the study's forms" in msg


def test_key_and_domain_must_exist(mappings_copy):
    msg, _ = _broken(mappings_copy, "keys: [USUBJID]", "keys: [USUBJID, DMSEQQ]")
    assert "key 'DMSEQQ' is not a variable of DM" in msg
    msg, _ = _broken(mappings_copy, "domain: DM", "domain: XX")
    assert "XX is not an SDTMIG 3.4 dataset" in msg


def test_bad_qnam_and_qlabel(mappings_copy):
    path = mappings_copy / "common" / "sdtm" / "ae.yaml"
    path.write_text(path.read_text().replace("  AEDLT:    {qlabel:", "  AEDLTFLAG1: {qlabel:"))
    with pytest.raises(ConfigError, match="QNAM must be 1-8"):
        load_specs("RS001", load_forms("RS001", root=mappings_copy), root=mappings_copy)


def test_hardcode_must_be_the_submission_value(mappings_copy):
    msg, _ = _broken(mappings_copy, "AGEU:     {hardcode: YEARS, codelist: AGEU}",
                     "AGEU:     {hardcode: YEAR, codelist: AGEU}")
    assert "'YEAR'" in msg and "AGEU" in msg
