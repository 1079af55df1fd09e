"""One bad record is a finding, not a stopped build (issue 13, items 1 and 2).

A transfer with every record-level fault the generator injects builds to SDTM with exit 0 and
0 UNACCOUNTED, and each injected fault is listed in the SDTM reports by form and record. A
record whose Required SDTM variable would be empty is rejected naming the variable and the CRF
field; the reader's edit-check findings (empty required field, out of range, a typed date the
export's ISO column contradicts) reach the reconciliation report; a result with a decimal
comma is a mapping issue instead of passing silently into --STRESC.
"""
import shutil

import pandas as pd
import pytest
from click.testing import CliRunner

from clinpipe.cli import main
from clinpipe.paths import latest_transfer, study_out
from simulate import faults as F

RECORD_KINDS = ",".join(F.RECORD_FAULTS)


def _sheets(out, study):
    reports = study_out(study, "reports", out)
    return pd.read_excel(reports / "sdtm_reconciliation.xlsx", sheet_name=None, dtype=str)


def _invoke(*args):
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in res.output, res.output
    return res


@pytest.fixture(scope="module", params=["RS001", "GLOCART"])
def all_faults(request, tmp_path_factory):
    study = request.param
    root = tmp_path_factory.mktemp(f"faults-{study}")
    res = _invoke("simulate", "--study", study, "--subjects", 30, "--seed", 2,
                  "--faults", RECORD_KINDS, "--out", root / "raw")
    assert res.exit_code == 0, res.output
    faults = F.read_manifest(root / "raw")
    assert {f.kind for f in faults} == set(F.RECORD_FAULTS)
    res = _invoke("sdtm", "--study", study, "--transfer", root / "raw", "--out", root / "out")
    return study, root, faults, res


def test_a_transfer_with_every_record_fault_builds_with_nothing_unaccounted(all_faults):
    study, root, _, res = all_faults
    assert res.exit_code == 0, res.output
    rec = _sheets(root / "out", study)["reconciliation"]
    assert (rec["UNACCOUNTED"].astype(int) == 0).all(), rec


def test_every_injected_fault_is_listed_in_the_sdtm_reports(all_faults):
    study, root, faults, _ = all_faults
    sheets = _sheets(root / "out", study)
    found = sheets["raw findings"].fillna("")
    rejected = sheets["rejections"].fillna("")
    for fault in faults:
        if fault.kind == "orphan_subject":   # listed once per subject, at its first record
            hit = found[(found.KIND == fault.kind) & (found.SUBJECT == fault.subject)]
            assert len(rejected[rejected.RECORDID == fault.record]) == 1, fault
        else:
            hit = found[(found.FORM == fault.form) & (found.RECORDID == fault.record)
                        & (found.KIND == fault.kind)]
        assert len(hit) >= 1, f"{fault} is not in the raw findings"
        if fault.field and fault.kind != "orphan_subject":
            assert fault.field in set(hit.FIELD), (fault, hit)


def _sample_copy(tmp_path, study="RS001"):
    folder = tmp_path / "transfer"
    shutil.copytree(latest_transfer(study) / "csv", folder)
    (folder / "transfer.json").unlink(missing_ok=True)    # the file hashes no longer hold
    return folder


def _edit(folder, name, row, **values):
    path = folder / name
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column, value in values.items():
        frame.loc[row, column] = value
    frame.to_csv(path, index=False)
    return frame.loc[row]


@pytest.fixture(scope="module")
def edited(tmp_path_factory):
    """The RS001 sample with: CMTRT and LBTESTCD blanked (Required in CM and LB), a typed lab
    date the ISO column contradicts, a lab result with a decimal comma."""
    tmp = tmp_path_factory.mktemp("edited")
    folder = _sample_copy(tmp)
    lb = pd.read_csv(folder / "lb.csv", dtype=str, keep_default_na=False)
    numeric = lb.index[lb.LBORRES.str.fullmatch(r"[0-9]+\.[0-9]+") & (lb.RECORDACTIVE == "1")]
    changed = {
        "cm": _edit(folder, "cm.csv", 0, CMTRT=""),
        "lb_test": _edit(folder, "lb.csv", 0, LBTESTCD="", LBTESTCD_DEC=""),
        "lb_date": _edit(folder, "lb.csv", int(numeric[1]), LBDAT="2001-01-01"),
        "lb_comma": _edit(folder, "lb.csv", int(numeric[2]),
                          LBORRES=lb.at[numeric[2], "LBORRES"].replace(".", ",")),
    }
    out = tmp / "out"
    res = _invoke("sdtm", "--study", "RS001", "--transfer", folder, "--out", out)
    assert res.exit_code == 0, res.output
    return changed, out, _sheets(out, "RS001")


@pytest.mark.parametrize("which, field, variable", [("cm", "CMTRT", "CMTRT"),
                                                    ("lb_test", "LBTESTCD", "LBTESTCD")])
def test_a_record_with_an_empty_required_variable_is_rejected_by_name(edited, which, field, variable):
    changed, out, sheets = edited
    record = changed[which]
    rej = sheets["rejections"].fillna("")
    (row,) = rej[(rej.FORM == record.FORM) & (rej.RECORDID == record.RECORDID)].itertuples(index=False)
    assert row.FIELD == field and row.SUBJECT == record.SUBJECT
    assert row.REASON.startswith(f"required {variable} (") and f"{record.FORM}.{field}" in row.REASON
    rec = sheets["reconciliation"].set_index("FORM")
    assert (rec["UNACCOUNTED"].astype(int) == 0).all()
    data = pd.read_parquet(study_out("RS001", "sdtm", out) / f"{record.FORM.lower()}.parquet")
    assert (data[variable].fillna("") != "").all()
    trace = pd.read_parquet(study_out("RS001", "sdtm", out) / "lineage" / "trace.parquet")
    assert not ((trace.FORM == record.FORM) & (trace.RECORDID == record.RECORDID)).any()


def test_empty_required_field_reaches_the_reconciliation_report(edited):
    changed, _, sheets = edited
    found = sheets["raw findings"].fillna("")
    record = changed["cm"]
    hit = found[(found.RECORDID == record.RECORDID) & (found.KIND == "missing_required")]
    assert list(hit.FIELD) == ["CMTRT"] and list(hit.FILE) == ["cm.csv"]


def test_a_typed_date_the_iso_column_contradicts_is_a_finding_and_the_typed_text_wins(edited):
    changed, out, sheets = edited
    record = changed["lb_date"]
    found = sheets["raw findings"].fillna("")
    (row,) = found[(found.RECORDID == record.RECORDID)
                   & (found.KIND == "inconsistent_date")].itertuples(index=False)
    assert row.FIELD == "LBDAT_RAW" and row.VALUE == record.LBDAT_RAW
    assert "2001-01-01" in row.MESSAGE
    trace = pd.read_parquet(study_out("RS001", "sdtm", out) / "lineage" / "trace.parquet")
    lb = pd.read_parquet(study_out("RS001", "sdtm", out) / "lb.parquet")
    (seq,) = trace.loc[(trace.DOMAIN == "LB") & (trace.FORM == "LB")
                       & (trace.RECORDID == record.RECORDID), "SEQ"]
    usubjid = f"RS001-{record.SUBJECT}"
    (dtc,) = lb.loc[(lb.USUBJID == usubjid) & (lb.LBSEQ == seq), "LBDTC"]
    from edc.dates import raw_to_iso
    assert dtc.startswith(raw_to_iso(record.LBDAT_RAW))


def test_a_result_with_a_decimal_comma_is_a_mapping_issue(edited):
    changed, _, sheets = edited
    record = changed["lb_comma"]
    issues = sheets["mapping issues"].fillna("")
    hit = issues[(issues.FORM == "LB") & (issues.RECORDID == record.RECORDID)]
    assert len(hit) == 1, hit
    assert "decimal comma" in hit.iloc[0].MESSAGE and hit.iloc[0].VALUE.startswith(record.LBORRES)

