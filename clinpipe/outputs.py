"""All-or-nothing writes into the output contract.

A layer (`out/<STUDY>/<TRANSFER>/<layer>/`) is built in a hidden staging folder beside it and
swapped in only when everything in it was written, so a failed run leaves nothing partial and never
replaces a previous good run's outputs.

Layers that belong together (SDTM and its reconciliation report) are staged together and
committed by a journal: `.commit-<token>.json` names every staging folder and its final place,
and is written (atomically) only when all of them are complete. A run killed before the
journal exists leaves the previous outputs; one killed after it is finished by the next run
(roll forward: every staging folder in the journal is complete). Either way the layers never
mix two runs.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from pathlib import Path

from clinpipe.paths import study_out

_JOURNAL = ".commit-{token}.json"


@contextlib.contextmanager
def staged_layer(study: str, layer: str, root: str | Path | None = None,
                 replace: tuple[str, ...] | None = None, transfer: str | None = None):
    """Yield a fresh staging folder; on success it becomes `<root>/<study>/<transfer>/<layer>`
    (without a transfer: the newest build's layer).

    With `replace` (file-name prefixes), the step owns only those files: the layer's other
    files (written by other steps, e.g. other reports) are carried over unchanged. Staging
    folders a killed run left behind (SIGKILL skips the clean-up below) go at the next run.
    """
    with staged_layers(study, {layer: replace}, root, transfer) as folders:
        yield folders[layer]


@contextlib.contextmanager
def staged_layers(study: str, layers: dict[str, tuple[str, ...] | None],
                  root: str | Path | None = None, transfer: str | None = None):
    """Several layers of one build staged together: yields {layer: staging folder}; on success
    all of them are swapped in by one journalled commit (`replace` per layer as in
    `staged_layer`)."""
    finals = {layer: study_out(study, layer, root, transfer) for layer in layers}
    build = next(iter(finals.values())).parent
    build.mkdir(parents=True, exist_ok=True)
    recover(build, list(layers))
    token = uuid.uuid4().hex[:8]
    staging = {}
    try:
        for layer, final in finals.items():
            staging[layer] = build / f".{layer}.staging-{token}"
            staging[layer].mkdir()
            keep = layers[layer]
            if keep is not None and final.is_dir():
                for old in final.iterdir():
                    if old.is_file() and not old.name.startswith(keep):
                        shutil.copy2(old, staging[layer] / old.name)
        yield staging
    except BaseException:
        for folder in staging.values():
            shutil.rmtree(folder, ignore_errors=True)
        raise
    # No clean-up handler from here on: what a kill interrupts, `recover` finishes.
    journal = build / _JOURNAL.format(token=token)
    pending = journal.with_name(journal.name + ".part")
    pending.write_text(json.dumps({"token": token, "layers": sorted(layers)}), encoding="utf-8")
    os.replace(pending, journal)        # the commit point: every staging folder is complete
    _roll_forward(build, token, sorted(layers))
    journal.unlink()


def recover(build: Path, layers: list[str]) -> None:
    """Finish what a killed run left of `layers` in one build folder: a committed journal
    naming any of them is rolled forward; their staging folders without one are dropped, and a
    layer left in `.old` with nothing in its place is put back. Other layers' leftovers are left
    to the steps that own them (one may be running)."""
    for journal in sorted(build.glob(".commit-*.json")):
        entry = json.loads(journal.read_text(encoding="utf-8"))
        if set(entry["layers"]) & set(layers):
            _roll_forward(build, entry["token"], entry["layers"])
            journal.unlink()
    for part in build.glob(".commit-*.json.part"):     # killed while writing the journal
        try:
            mine = bool(set(json.loads(part.read_text(encoding="utf-8"))["layers"]) & set(layers))
        except (ValueError, KeyError):
            mine = True
        if mine:
            part.unlink()
    for layer in layers:
        for staging in build.glob(f".{layer}.staging-*"):
            shutil.rmtree(staging, ignore_errors=True)
        for previous in sorted(build.glob(f".{layer}.old-*")):
            if not (build / layer).exists():
                os.replace(previous, build / layer)
            else:
                shutil.rmtree(previous, ignore_errors=True)


def _roll_forward(build: Path, token: str, layers: list[str]) -> None:
    """Each layer's staging folder into place, the previous layer via `.old` (each step is a
    rename, so a rerun after a kill at any point completes it)."""
    for layer in layers:
        final, staging = build / layer, build / f".{layer}.staging-{token}"
        old = build / f".{layer}.old-{token}"
        if not staging.exists():            # this layer was swapped in before the kill
            continue
        if final.exists():
            os.replace(final, old)
        os.replace(staging, final)
    for layer in layers:
        shutil.rmtree(build / f".{layer}.old-{token}", ignore_errors=True)
