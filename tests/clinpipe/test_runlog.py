"""The run log (issue 13, item 10): every study command writes <out>/<STUDY>/run.log with
NOTE/WARNING/ERROR lines, as SAS users read a log after the run."""
import pytest
from click.testing import CliRunner

from clinpipe.cli import main
from clinpipe.paths import faulty_data_dir, latest_transfer
from clinpipe.runlog import level, log_line


@pytest.mark.parametrize("line, word", [
    ("  RS001: mapped 33 SDTM datasets (18,736 records, 1.9 s)", "NOTE"),
    ("WARNING: 3 raw record(s) rejected: sdtm_reconciliation.xlsx", "WARNING"),
    ("error: no transfer '/x'", "ERROR"),
    ("  GLOCART: FAILED: the run failed", "ERROR"),
    ("RS001 2025-05-27: stopped at sdtm conformance", "ERROR"),
])
def test_each_printed_line_gets_its_level(line, word):
    assert level(line) == word
    assert log_line(line).startswith(f"{word}: ") and not log_line(line).startswith(f"{word}: {word}")


def _log(out):
    return (out / "RS001" / "run.log").read_text(encoding="utf-8").splitlines()


def test_sdtm_on_a_faulty_transfer_logs_notes_warnings_and_the_closing_line(tmp_path):
    out = tmp_path / "out"
    folder = latest_transfer("RS001", faulty_data_dir()) / "csv"
    res = CliRunner().invoke(main, ["sdtm", "--study", "RS001", "--transfer", str(folder),
                                    "--out", str(out)])
    assert res.exit_code == 0, res.output
    lines = _log(out)
    assert lines[0].startswith("NOTE: clinpipe ") and f"sdtm --study RS001 --transfer {folder}" in lines[0]
    assert all(line.split(":")[0] in ("NOTE", "WARNING", "ERROR") for line in lines)
    assert any(line.startswith("NOTE: RS001: mapped ") for line in lines)
    warnings = [line for line in lines if line.startswith("WARNING:")]
    assert any("rejected" in w and "sheet 'rejections'" in w for w in warnings), warnings
    assert any("raw finding" in w for w in warnings), warnings
    assert lines[-1].startswith("NOTE: sdtm finished (exit 0): real time ")
    # what the console showed is what the log holds, line for line
    shown = [line.strip() for line in res.output.splitlines() if line.strip()]
    assert len(shown) == len(lines) - 3


def test_a_failed_command_logs_the_error_and_its_exit_status(tmp_path):
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["sdtm", "--study", "RS001", "--transfer", str(tmp_path / "none"),
                                    "--out", str(out)])
    assert res.exit_code == 2
    lines = _log(out)
    assert any(line.startswith("ERROR: ") and "no transfer" in line for line in lines), lines
    assert lines[-1].startswith("ERROR: sdtm finished (exit 2)")
