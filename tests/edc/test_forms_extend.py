"""A study adds its own fields to a sponsor-library form with `extend:` (GLOCART's relationship
to each study treatment on the library AE form); a wrong form name stops with the file."""
import shutil

import pytest

from clinpipe.errors import ConfigError
from clinpipe.paths import mappings_dir
from edc.forms import load_forms


def test_glocart_extends_the_library_ae_form():
    glo, rs = load_forms("GLOCART").form("AE"), load_forms("RS001").form("AE")
    extra = [f.oid for f in glo.fields if f.oid not in rs.field_by_oid]
    assert extra == ["AERELOBI", "AERELGLO", "AERELAX"]
    assert [f.oid for f in glo.fields[: len(rs.fields)]] == [f.oid for f in rs.fields]
    assert glo.field_by_oid["AERELGLO"].codelist == "AEREL" and glo.field_by_oid["AERELGLO"].required
    assert "AEGRPID" in rs.field_by_oid


def test_extend_of_a_form_not_taken_is_an_error(tmp_path):
    for folder in ("common", "GLOCART"):
        shutil.copytree(mappings_dir() / folder, tmp_path / folder)
    path = tmp_path / "GLOCART" / "forms.yaml"
    path.write_text(path.read_text().replace("extend:\n  AE:", "extend:\n  AEX:"))
    with pytest.raises(ConfigError) as info:
        load_forms("GLOCART", root=tmp_path)
    assert "AEX" in str(info.value) and "forms.yaml" in str(info.value)
