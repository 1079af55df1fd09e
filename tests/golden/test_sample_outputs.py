"""The sample transfers (and their faulty copies) build the same bytes as the reference recorded
before the speed work (issue 18): SDTM and ADaM XPT/parquet byte for byte, the lineage trace,
and every validation finding. A change meant to alter outputs regenerates the reference
(`python tests/golden/outputs.py`) and says why in its commit."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from outputs import GOLDEN, build, findings_digest, folder_hashes, transfers

REFERENCE = json.loads(GOLDEN.read_text(encoding="utf-8"))


def _compare(got: dict, want: dict, what: str) -> None:
    assert sorted(got) == sorted(want), f"{what}: files differ"
    changed = [k for k in want if got[k] != want[k]]
    assert not changed, f"{what}: bytes changed in {changed}"


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_outputs_match_reference(name, sample_build, tmp_path):
    from clinpipe.config import load_study
    from sdtm.validate.run import load_sdtm_folder, load_waivers, validate

    study, transfer = transfers()[name]
    built = sample_build[study]
    if built.sdtm_run.raw.transfer_dir.resolve() == transfer.resolve():
        # the session's sample build is this transfer: compare it instead of building again
        result = validate(load_sdtm_folder(built.sdtm), load_study(study), load_waivers(study), study=study)
        got = {"sdtm": folder_hashes(built.sdtm), "adam": folder_hashes(built.adam),
               "findings": findings_digest(result.findings)}
    else:
        got = build(name, study, transfer, tmp_path)
    want = REFERENCE[name]
    assert sorted(got) == sorted(want)
    _compare(got["sdtm"], want["sdtm"], f"{name} SDTM")
    if "adam" in want:
        _compare(got["adam"], want["adam"], f"{name} ADaM")
    assert got["findings"]["by_rule"] == want["findings"]["by_rule"]
    assert got["findings"] == want["findings"], f"{name}: findings differ"
