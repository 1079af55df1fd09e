"""Where things live: the repository's data folders and the output contract.

Output contract (used by every layer): one build per EDC transfer (data cut), under
`<out root>/<STUDY>/<TRANSFER>/` in `sdtm/`, `adam/`, `tlf/`, `reports/` and `submission/`,
TRANSFER being the transfer date (YYYY-MM-DD), so builds of different cuts never overwrite
each other. `<out root>/<STUDY>/latest` points at the newest transfer built through to the
end. The root is `out/` in the repository unless `--out` or `CLINPIPE_OUT` says otherwise.
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


LATEST = "latest"


def built_transfers(study: str, root: str | Path | None = None, layer: str | None = None) -> list[str]:
    """The transfers built for a study (oldest first), only those holding `layer` if given."""
    base = out_root(root) / study
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir()
                  if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")
                  and p.name != LATEST and (layer is None or (p / layer).is_dir()))


def build_dir(study: str, root: str | Path | None = None, transfer: str | None = None,
              layer: str | None = None) -> Path:
    """`<root>/<STUDY>/<TRANSFER>`; without a transfer, the newest build (holding `layer`)."""
    if transfer:
        return out_root(root) / study / str(transfer)
    builds = built_transfers(study, root, layer)
    if not builds:
        from clinpipe.errors import OutputError

        what = f"no {layer.upper() if layer in ('sdtm', 'adam', 'tlf') else layer or 'build'}"
        raise OutputError(f"{what} built for {study} yet", file=out_root(root) / study,
                          hint=f"run `clinpipe run --study {study}` first, or give the folder")
    return out_root(root) / study / builds[-1]


def study_out(study: str, layer: str, root: str | Path | None = None, transfer: str | None = None) -> Path:
    """A layer's folder of one transfer's build (default: the newest build that has the layer)."""
    if layer not in LAYERS:
        raise ValueError(f"unknown output layer {layer!r}; one of {LAYERS}")
    return build_dir(study, root, transfer, None if transfer else layer) / layer


def point_latest(study: str, root: str | Path | None = None, transfer: str | None = None) -> Path:
    """Make `<root>/<STUDY>/latest` point at the newest transfer built through to the end
    (a relative symlink, replaced atomically); an older cut rebuilt later does not move it."""
    base = out_root(root) / study
    link = base / LATEST
    current = os.readlink(link) if link.is_symlink() else ""
    target = max(current, transfer or "") or built_transfers(study, root)[-1]
    if target != current:
        tmp = base / f".{LATEST}.{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target, target_is_directory=True)
        os.replace(tmp, link)
    return link


def transfer_id(transfer_date) -> str:
    """The name of a transfer's build folder: its transfer date, ISO 8601."""
    return transfer_date.isoformat() if hasattr(transfer_date, "isoformat") else str(transfer_date)


def raw_transfers(study: str, raw_root: Path | None = None) -> list[Path]:
    """The study's delivered transfer folders, oldest first (named by transfer date)."""
    base = (raw_root or raw_data_dir()) / study
    return sorted(p for p in base.glob("*") if p.is_dir() and not p.name.startswith("."))


def manifest_transfer(folder: Path) -> str | None:
    """The transfer date a layer's manifest.json records, None without one."""
    import json

    manifest = Path(folder) / "manifest.json"
    if not manifest.is_file():
        return None
    date = json.loads(manifest.read_text(encoding="utf-8")).get("transfer_date")
    return str(date) if date and date != "None" else None


def latest_transfer(study: str, raw_root: Path | None = None) -> Path:
    """The newest transfer folder (folders are named by transfer date, YYYY-MM-DD)."""
    from clinpipe.errors import ExportError

    base = (raw_root or raw_data_dir()) / study
    folders = raw_transfers(study, raw_root)
    if not folders:
        raise ExportError("no transfer folder found", file=base,
                          hint=f"put the EDC export in {base}/<YYYY-MM-DD>/ or run `clinpipe simulate`")
    return folders[-1]


def transfer_formats(transfer: Path) -> dict[str, Path]:
    """{format: folder} for a transfer folder holding format subfolders, or {auto: folder}."""
    subs = {name: transfer / name for name in FORMAT_DIRS if (transfer / name).is_dir()}
    return subs or {"auto": transfer}
