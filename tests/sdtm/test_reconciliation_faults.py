"""Every raw record of a faulty transfer ends in SDTM or in the rejection listing; the faults
that make a record unusable are rejected by name, the others surface as mapping issues."""
import pytest

from edc.read import read_transfer
from sdtm.build import build_sdtm
from simulate import faults as F
from simulate.run import deliver, simulate_study

REJECTED = {"duplicate_record": "duplicate record", "inactivated_record": "inactivated",
            "orphan_subject": "no enrolment record"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = {}
    for study in ("RS001", "GLOCART"):
        sim = simulate_study(study, 16, seed=5)
        kinds = [k for k in F.RECORD_FAULTS]
        done = deliver(sim, "csv", tmp_path_factory.mktemp(study) / "t", kinds)
        raw = read_transfer(done.outdir, study=study)
        out[study] = (F.read_manifest(done.outdir), raw, build_sdtm(raw))
    return out


@pytest.mark.parametrize("study", ["RS001", "GLOCART"])
def test_counts_in_equal_mapped_plus_rejected(built, study):
    _, raw, build = built[study]
    rec = build.reconciliation
    assert (rec.UNACCOUNTED == 0).all(), rec[rec.UNACCOUNTED != 0]
    assert rec.RECORDS.sum() == sum(len(f) for f in raw.frames.values())


@pytest.mark.parametrize("study", ["RS001", "GLOCART"])
def test_unusable_records_are_rejected_with_the_reason(built, study):
    faults, _, build = built[study]
    rej = build.rejections
    for fault in faults:
        hit = rej[(rej.FORM == fault.form) & (rej.RECORDID == fault.record)]
        if fault.kind in REJECTED:
            assert len(hit) == 1, fault
            assert REJECTED[fault.kind] in hit.iloc[0].REASON, (fault, hit.iloc[0].REASON)
        elif fault.kind == "missing_required" and len(hit):
            # the blank field fed a Required SDTM variable: rejected, naming variable and field
            assert len(hit) == 1, fault
            assert hit.iloc[0].REASON.startswith("required "), hit.iloc[0].REASON
            assert f"{fault.form}.{fault.field}" in hit.iloc[0].REASON, (fault, hit.iloc[0].REASON)
        else:
            assert hit.empty, f"{fault.kind} should still be mapped: {hit}"


def _mapped_fields(study, raw, form, coded_only=False):
    """Raw fields of `form` that some spec reads (directly or as FORM.FIELD); with
    `coded_only`, only through an algorithm that checks codes (a field passed on as collected
    with `assign` carries an unknown code into SDTM unflagged: nothing there to check)."""
    from sdtm.algorithms import ALGORITHMS
    from sdtm.spec import load_specs

    used = set()
    for group in load_specs(study, raw.forms).values():
        for spec in group:
            for var in [*spec.variables.values(), *(q.var for q in spec.supp)]:
                if coded_only and var.algorithm == "assign":
                    continue
                refs = list(ALGORITHMS[var.algorithm].fields(var))
                if var.algorithm in ("split_field", "split_field_ct"):
                    # a split item without a codelist is passed on as collected, like `assign`
                    refs += [i[var.arg] for i in spec.split or []
                             if i.get(var.arg) and (i.get("codelist") or not coded_only)]
                for ref in refs:
                    f, _, fld = ref.rpartition(".")
                    if (f or spec.source) == form:
                        used.add(fld)
    return used


@pytest.mark.parametrize("study", ["RS001", "GLOCART"])
def test_unknown_code_and_impossible_date_reach_the_mapping_issues(built, study):
    faults, raw, build = built[study]
    issues = build.issues
    checked = 0
    for fault in faults:
        if fault.kind not in ("unknown_code", "impossible_date"):
            continue
        if fault.field.removesuffix("_RAW") not in _mapped_fields(study, raw, fault.form,
                                                                  coded_only=fault.kind == "unknown_code"):
            continue   # the field does not reach SDTM; the reader's finding records it
        hit = issues[(issues.FORM == fault.form) & (issues.RECORDID == fault.record)]
        # a field joined into another domain's record (ENR.COHORT into DM) is named in the issue
        joined = issues[(issues.SUBJECT == fault.subject)
                        & issues.MESSAGE.str.contains(f"{fault.form}.{fault.field}", regex=False)]
        assert len(hit) + len(joined) >= 1, (fault, issues)
        checked += 1
    assert checked >= 1, "no fault landed in a mapped field: the test checked nothing"
