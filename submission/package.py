"""The submission package of one build (`out/<STUDY>/<TRANSFER>/submission/`), in the eCTD
module 5 layout the FDA Study Data Technical Conformance Guide describes:

    m5/datasets/<study>/tabulations/sdtm/        *.xpt, define.xml, define2-1.xsl
    m5/datasets/<study>/analysis/adam/datasets/  *.xpt, define.xml, define2-1.xsl
    m5/53-clin-stud-rep/535-rep-effic-safety-stud/<study>/tlf/   *.rtf, png/, ard/*.xpt
    manifest.json, sha256sums.txt                every file with its SHA-256 and size

Built from what the layers wrote (no dataset is re-derived here), staged and swapped in like
every layer, and byte-identical when rebuilt from the same build.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from clinpipe.errors import OutputError
from clinpipe.outputs import staged_layer

TLF_SECTION = "m5/53-clin-stud-rep/535-rep-effic-safety-stud"
MANIFEST = "manifest.json"
SUMS = "sha256sums.txt"


@dataclass
class Package:
    study: str
    transfer: str
    folder: Path
    files: dict[str, dict]          # path relative to the package -> {sha256, bytes}


def layout(study: str) -> dict[str, str]:
    """Package folder of each part (eCTD folder names are lower case)."""
    s = study.lower()
    return {"sdtm": f"m5/datasets/{s}/tabulations/sdtm", "adam": f"m5/datasets/{s}/analysis/adam/datasets",
            "tlf": f"{TLF_SECTION}/{s}/tlf"}


def build_package(study: str, base: Path, progress=print) -> Package:
    """Assemble the package from the build folder `base` (holding sdtm/, adam/, tlf/)."""
    from submission.define import validate_define, write_define

    base = Path(base)
    for layer, name in (("sdtm", "SDTM"), ("adam", "ADaM"), ("tlf", "TLF")):
        if not (base / layer / ("index.csv" if layer == "tlf" else "manifest.json")).is_file():
            raise OutputError(f"no complete {name} build here", file=base / layer,
                              hint=f"run `clinpipe run --study {study}` for this transfer first")
    parts = layout(study)
    with staged_layer(study, "submission", base.parent.parent, transfer=base.name) as folder:
        for layer, standard in (("sdtm", "SDTM"), ("adam", "ADaM")):
            dest = folder / parts[layer]
            dest.mkdir(parents=True)
            for xpt in sorted((base / layer).glob("*.xpt")):
                shutil.copyfile(xpt, dest / xpt.name)
            define = write_define(standard, study, base / layer, dest / "define.xml")
            problems = validate_define(define)
            if problems:
                raise OutputError(f"{standard} define.xml is not valid Define-XML 2.1: {problems[0]}",
                                  file=define, hint="fix the metadata it names; the package was not written")
        _copy_tlf(base / "tlf", folder / parts["tlf"])
        files = _write_manifest(folder, study, base.name)
    final = base / "submission"
    progress(f"  {study}: submission package {final} ({len(files)} files)")
    return Package(study, base.name, final, files)


def _copy_tlf(src: Path, dest: Path) -> None:
    """The outputs a reviewer reads (RTF, PNG) and the ARD as XPT; not the html index, trace
    pages or lineage, which serve the team, not the submission."""
    wanted = [*src.glob("*.rtf"), *src.glob("png/*.png"), *src.glob("ard/*.xpt")]
    for path in sorted(wanted):
        target = dest / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_manifest(folder: Path, study: str, transfer: str) -> dict[str, dict]:
    files = {p.relative_to(folder).as_posix(): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
             for p in sorted(folder.rglob("*")) if p.is_file()}
    body = {"study": study, "transfer": transfer, "layout": "eCTD module 5 (FDA Study Data TCG)",
            "files": files}
    (folder / MANIFEST).write_text(json.dumps(body, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    # the same list in `sha256sum -c` form, so a reviewer can check the package without Python
    (folder / SUMS).write_text("".join(f"{v['sha256']}  {k}\n" for k, v in files.items()), encoding="utf-8")
    return files


def verify_package(folder: Path) -> list[str]:
    """Problems found checking a package against its manifest (empty: it verifies)."""
    folder = Path(folder)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return [f"{manifest}: no manifest"]
    listed = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*")
               if p.is_file() and p.name not in (MANIFEST, SUMS)}
    problems = [f"{name}: listed in the manifest but missing" for name in sorted(set(listed) - present)]
    problems += [f"{name}: in the package but not in the manifest" for name in sorted(present - set(listed))]
    for name in sorted(set(listed) & present):
        if sha256_file(folder / name) != listed[name]["sha256"]:
            problems.append(f"{name}: SHA-256 differs from the manifest")
    return problems
