"""Field-level reconciliation: each collected field is mapped by a spec or listed as not
submitted with a reason (sdtm/field_coverage.py, mappings/*/not_submitted.yaml)."""
import pytest

from clinpipe.config import load_study
from clinpipe.errors import ConfigError
from edc.forms import load_forms
from sdtm.field_coverage import field_coverage, form_field_summary, load_not_submitted, problems
from sdtm.spec import load_specs
from sdtm.subject_elements import load_element_rules

STUDIES = ["RS001", "GLOCART"]


def _coverage(study, root=None):
    forms = load_forms(study, root) if root else load_forms(study)
    cfg = load_study(study, root) if root else load_study(study)
    return field_coverage(forms, load_specs(study, forms, root), load_not_submitted(study, forms, root),
                          load_element_rules(cfg, forms, root))


@pytest.mark.parametrize("study", STUDIES)
def test_every_collected_field_is_mapped_or_not_submitted_with_a_reason(study):
    cov = _coverage(study)
    todo = problems(cov, study)
    assert not todo, "\n".join(todo)
    assert set(cov.STATUS) <= {"mapped", "not submitted", "UNMAPPED"}
    listed = cov[cov.STATUS == "not submitted"]
    assert (listed.REASON.str.len() > 20).all()


def test_glocart_cohort_form_lands_in_dm_and_ds():
    cov = _coverage("GLOCART").set_index(["FORM", "FIELD"])
    coh = cov.loc["COH"]
    assert (coh.STATUS == "mapped").all()
    for fld in ("COHDAT", "COHPROC", "NPRSN", "NPRSNSP"):
        assert "ds_coh.yaml" in coh.loc[fld, "USED_BY"], fld
    assert "dm.yaml" in coh.loc["COHORT", "USED_BY"]


def test_unlisted_unread_field_is_unmapped_and_named_with_what_to_do(mappings_copy):
    path = mappings_copy / "RS001" / "not_submitted.yaml"
    text = path.read_text()
    path.write_text(text[: text.index("  TLNEW:")])          # drop TLNEW from the list
    cov = _coverage("RS001", mappings_copy)
    row = cov[(cov.FORM == "TL") & (cov.FIELD == "TLNEW")].iloc[0]
    assert row.STATUS == "UNMAPPED" and row.REASON == ""
    msg = [m for m in problems(cov, "RS001") if "TLNEW" in m]
    assert msg and "form TL field TLNEW" in msg[0] and "not_submitted.yaml" in msg[0]
    summary = form_field_summary(cov).set_index("FORM")
    assert "TLNEW" in summary.loc["TL", "FIELDS_UNMAPPED"]


def test_listed_field_that_a_spec_reads_is_stale(mappings_copy):
    path = mappings_copy / "RS001" / "not_submitted.yaml"
    path.write_text(path.read_text() + "  TLLOC: listed by mistake, TU maps it to TULOC\n")
    cov = _coverage("RS001", mappings_copy)
    row = cov[(cov.FORM == "TL") & (cov.FIELD == "TLLOC")].iloc[0]
    assert row.STATUS == "mapped but listed as not submitted"
    assert any("TLLOC" in m and "remove it" in m for m in problems(cov, "RS001"))


@pytest.mark.parametrize("entry, match", [
    ("  TLNOPE: no such field\n", "not in form TL"),
    ("  TLLDI: ''\n", "needs a reason"),
])
def test_not_submitted_list_is_checked(mappings_copy, entry, match):
    path = mappings_copy / "RS001" / "not_submitted.yaml"
    path.write_text(path.read_text() + entry)
    with pytest.raises(ConfigError, match=match):
        load_not_submitted("RS001", load_forms("RS001", mappings_copy), mappings_copy)
