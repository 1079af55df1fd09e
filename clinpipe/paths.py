"""Where things live: the repository's data folders and the output contract.

Output contract (used by every layer): results for a study go under `<out root>/<STUDY>/`
in `sdtm/`, `adam/`, `tlf/`, `reports/` and `submission/`. The root is `out/` in the
repository unless `--out` or `CLINPIPE_OUT` says otherwise.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("sdtm", "adam", "tlf", "reports", "submission")
FORMAT_DIRS = ("csv", "odm", "sas")


def mappings_dir() -> Path:
    return Path(os.environ.get("CLINPIPE_MAPPINGS", REPO_ROOT / "mappings"))


def raw_data_dir() -> Path:
    return Path(os.environ.get("CLINPIPE_RAW", REPO_ROOT / "data" / "raw"))


def faulty_data_dir() -> Path:
    """Faulty copies of the sample transfers: the same EDC snapshot with every record-level
    fault the build survives injected, so the demo's reports show rejections and findings.
    Kept apart from data/raw so that the new-transfer sensor and "newest transfer" never pick
    them up."""
    return Path(os.environ.get("CLINPIPE_RAW_FAULTS", REPO_ROOT / "data" / "raw-faults"))


def out_root(override: str | Path | None = None) -> Path:
    return Path(override or os.environ.get("CLINPIPE_OUT", REPO_ROOT / "out"))


def study_out(study: str, layer: str, root: str | Path | None = None) -> Path:
    if layer not in LAYERS:
        raise ValueError(f"unknown output layer {layer!r}; one of {LAYERS}")
    return out_root(root) / study / layer


def latest_transfer(study: str, raw_root: Path | None = None) -> Path:
    """The newest transfer folder (folders are named by transfer date, YYYY-MM-DD)."""
    from clinpipe.errors import ExportError

    base = (raw_root or raw_data_dir()) / study
    folders = sorted(p for p in base.glob("*") if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise ExportError("no transfer folder found", file=base,
                          hint=f"put the EDC export in {base}/<YYYY-MM-DD>/ or run `clinpipe simulate`")
    return folders[-1]


def transfer_formats(transfer: Path) -> dict[str, Path]:
    """{format: folder} for a transfer folder holding format subfolders, or {auto: folder}."""
    subs = {name: transfer / name for name in FORMAT_DIRS if (transfer / name).is_dir()}
    return subs or {"auto": transfer}
