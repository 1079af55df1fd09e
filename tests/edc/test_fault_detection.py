"""Every fault the generator injects is reported by the readers, naming its file and record.

This is the contract with later layers: record-level faults arrive as reader findings (kind,
file, record, field as in faults.json); file-level faults stop the read with an error naming
the file.
"""
import pytest

from clinpipe.errors import ExportError
from edc.read import read_transfer
from simulate import faults as F
from simulate.run import deliver, simulate_study


@pytest.fixture(scope="module")
def sim():
    return simulate_study("RS001", 14, seed=4)


@pytest.mark.parametrize("fmt", ["csv", "odm"])
@pytest.mark.parametrize("kind", F.RECORD_FAULTS)
def test_record_fault_is_a_reader_finding(sim, tmp_path, fmt, kind):
    done = deliver(sim, fmt, tmp_path / "t", [kind])
    (fault,) = F.read_manifest(done.outdir)
    assert fault.kind == kind
    raw = read_transfer(done.outdir, study="RS001")
    hits = [f for f in raw.findings if f.kind == kind and f.record == fault.record]
    assert hits, f"{kind} at record {fault.record} not reported; findings: {raw.findings}"
    assert hits[0].file == fault.file
    if fault.field and fault.field not in ("SUBJECT", "RECORDACTIVE"):
        assert hits[0].field in (fault.field, fault.field.removesuffix("_RAW"))
    # nothing else is reported on clean simulated data
    assert {f.kind for f in raw.findings} == {kind}


@pytest.mark.parametrize("fmt", ["csv", "odm"])
def test_wrong_encoding_is_named_and_readable_with_the_right_encoding(sim, tmp_path, fmt):
    done = deliver(sim, fmt, tmp_path / "t", ["wrong_encoding"])
    (fault,) = F.read_manifest(done.outdir)
    with pytest.raises(ExportError) as err:
        read_transfer(done.outdir, study="RS001")
    assert fault.file in str(err.value)
    if fmt == "csv":
        assert "cp1252" in str(err.value)
        raw = read_transfer(done.outdir, study="RS001", encoding="cp1252")
        # read right, the text the site typed is back, and flagged for the 200-byte ASCII rule
        assert any(f.kind == "non_ascii" and f.record == fault.record for f in raw.findings)


@pytest.mark.parametrize("fmt", ["csv", "odm"])
def test_truncated_file_is_named(sim, tmp_path, fmt):
    done = deliver(sim, fmt, tmp_path / "t", ["truncated_file"])
    (fault,) = F.read_manifest(done.outdir)
    with pytest.raises(ExportError) as err:
        read_transfer(done.outdir, study="RS001")
    assert fault.file in str(err.value) and "re-transfer" in str(err.value)


def test_truncated_file_without_manifest_is_still_caught(sim, tmp_path):
    done = deliver(sim, "csv", tmp_path / "t", ["truncated_file"])
    (done.outdir / "transfer.json").unlink()
    (fault,) = F.read_manifest(done.outdir)
    with pytest.raises(ExportError) as err:
        read_transfer(done.outdir, study="RS001")
    assert fault.file in str(err.value)


@pytest.mark.parametrize("study,n", [("RS001", 16), ("GLOCART", 16)])
def test_csv_and_odm_of_one_seed_read_to_equal_frames(tmp_path, study, n):
    sim = simulate_study(study, n, seed=11)
    csv = read_transfer(deliver(sim, "csv", tmp_path / "csv").outdir, study=study)
    odm = read_transfer(deliver(sim, "odm", tmp_path / "odm").outdir, study=study)
    assert list(csv.frames) == list(odm.frames)
    for form in csv.frames:
        assert csv.frames[form].equals(odm.frames[form]), form
    assert sum(len(f) for f in csv.frames.values()) == sim.n_records()
    assert csv.findings == [] and odm.findings == []
