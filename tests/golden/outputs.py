"""What the sample transfers build, as hashes: the reference the speed work (issue 18) is held to.

`python tests/golden/outputs.py` rebuilds `sample_outputs.json` from the code in the tree; do
that only for a change that is meant to alter outputs, and say so in the commit message.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
GOLDEN = HERE / "sample_outputs.json"
FINDING_KEYS = ["RULE", "SEVERITY", "DATASET", "USUBJID", "SEQ", "VARIABLE", "VALUE", "MESSAGE"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def folder_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every dataset file (xpt, parquet) and the lineage trace of a layer folder."""
    files = sorted([*folder.glob("*.xpt"), *folder.glob("*.parquet"), *folder.glob("lineage/*.parquet")])
    return {p.relative_to(folder).as_posix(): _sha(p) for p in files}


def findings_digest(findings: pd.DataFrame) -> dict:
    """Every finding, order-free: count per rule and severity, and a hash of the sorted rows."""
    f = findings[FINDING_KEYS].astype(str).sort_values(FINDING_KEYS, kind="stable")
    text = f.to_csv(index=False, lineterminator="\n")
    counts = f.groupby(["RULE", "SEVERITY"]).size()
    return {"rows": len(f), "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "by_rule": {f"{r} {s}": int(n) for (r, s), n in counts.items()}}


def transfers() -> dict[str, tuple[str, Path]]:
    """name -> (study, raw CSV transfer folder): every sample transfer and each faulty copy."""
    from clinpipe.paths import faulty_data_dir, latest_transfer, raw_transfers

    out = {}
    for study in ("RS001", "GLOCART"):
        for t in raw_transfers(study):
            out[f"{study}/{t.name}"] = (study, t / "csv")
        out[f"{study}/faulty"] = (study, latest_transfer(study, faulty_data_dir()) / "csv")
    return out


def build(name: str, study: str, transfer: Path, root: Path) -> dict:
    """SDTM (+ validation; + ADaM for a clean transfer) of one transfer, as hashes."""
    from adam.run import run_adam
    from clinpipe.config import load_study
    from sdtm.run import run_sdtm
    from sdtm.validate.run import load_sdtm_folder, load_waivers, validate

    quiet = lambda m: None
    run = run_sdtm(study, transfer, root, progress=quiet)
    result = validate(load_sdtm_folder(run.folder), load_study(study), load_waivers(study), study=study)
    entry = {"sdtm": folder_hashes(run.folder), "findings": findings_digest(result.findings)}
    if not name.endswith("/faulty"):
        entry["adam"] = folder_hashes(run_adam(study, run.folder, root, progress=quiet).folder)
    return entry


def main(argv=None) -> int:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        golden = {name: build(name, study, t, Path(tmp) / name.replace("/", "_"))
                  for name, (study, t) in transfers().items()}
    GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
