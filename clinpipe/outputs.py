"""All-or-nothing writes into the output contract.

A layer (`out/<STUDY>/<layer>/`) is built in a hidden staging folder beside it and swapped
in only when everything in it was written, so a failed run leaves nothing partial and never
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
def staged_layer(study: str, layer: str, root: str | Path | None = None):
    """Yield a fresh staging folder; on success it becomes `<root>/<study>/<layer>`."""
    final = study_out(study, layer, root)
    final.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:8]
    staging = final.parent / f".{layer}.staging-{token}"
    staging.mkdir()
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
