"""All-or-nothing writes into the output contract.

A layer (`out/<STUDY>/<TRANSFER>/<layer>/`) is built in a hidden staging folder beside it and
swapped in only when everything in it was written, so a failed run leaves nothing partial and never
replaces a previous good run's outputs.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path

from clinpipe.paths import study_out


@contextlib.contextmanager
def staged_layer(study: str, layer: str, root: str | Path | None = None,
                 replace: tuple[str, ...] | None = None, transfer: str | None = None):
    """Yield a fresh staging folder; on success it becomes `<root>/<study>/<transfer>/<layer>`
    (without a transfer: the newest build's layer).

    With `replace` (file-name prefixes), the step owns only those files: the layer's other
    files (written by other steps, e.g. other reports) are carried over unchanged. Staging
    folders a killed run left behind (SIGKILL skips the clean-up below) go at the next run.
    """
    final = study_out(study, layer, root, transfer)
    final.parent.mkdir(parents=True, exist_ok=True)
    for leftover in final.parent.glob(f".{layer}.staging-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    for previous in sorted(final.parent.glob(f".{layer}.old-*")):
        # killed between the two renames below: the previous good layer is put back
        if not final.exists():
            os.replace(previous, final)
        else:
            shutil.rmtree(previous, ignore_errors=True)
    token = uuid.uuid4().hex[:8]
    staging = final.parent / f".{layer}.staging-{token}"
    staging.mkdir()
    if replace is not None and final.is_dir():
        for old in final.iterdir():
            if old.is_file() and not old.name.startswith(replace):
                shutil.copy2(old, staging / old.name)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = final.parent / f".{layer}.old-{token}"
    if final.exists():
        os.replace(final, old)
    os.replace(staging, final)
    shutil.rmtree(old, ignore_errors=True)
