import pytest

from clinpipe.errors import ConfigError
from edc.forms import SYSTEM_COLUMNS, load_forms


@pytest.mark.parametrize("study", ["RS001", "GLOCART"])
def test_forms_load_with_common_library(study):
    forms = load_forms(study)
    ae = forms.form("AE")
    assert ae.repeating and ae.field_by_oid["AETOXGR"].codelist == "CTCGRADE"
    assert "CTCGRADE" in forms.codelists
    cols = ae.columns()
    assert tuple(cols[: len(SYSTEM_COLUMNS)]) == SYSTEM_COLUMNS
    # date fields give raw + ISO columns, coded fields code + decode
    assert cols.index("AESTDAT_RAW") + 1 == cols.index("AESTDAT")
    assert cols.index("AESER") + 1 == cols.index("AESER_DEC")
    assert forms.form(forms.enrolment_form)


def test_unknown_common_form(mappings_copy):
    path = mappings_copy / "RS001" / "forms.yaml"
    text = path.read_text()
    path.write_text(text.replace("common: [", "common: [NOTAFORM, ", 1))
    with pytest.raises(ConfigError, match="NOTAFORM"):
        load_forms("RS001", root=mappings_copy)


def test_unknown_codelist_is_reported(mappings_copy):
    path = mappings_copy / "common" / "forms.yaml"
    path.write_text(path.read_text().replace("codelist: SEX, required: true", "codelist: SEXX, required: true"))
    with pytest.raises(ConfigError, match="unknown codelist 'SEXX'"):
        load_forms("RS001", root=mappings_copy)
