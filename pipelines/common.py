"""What every study's assets share: the transfer partitions, code versions, the metadata a
programmer reads in the Dagster UI, and how a user error becomes a failed step (not retried).

Assets hand each other folders, not frames: every layer writes its own XPT/parquet once (into
`out/<STUDY>/<TRANSFER>/<layer>/`, staged), and the next layer reads them from there, so
Dagster's IO manager stores no second, pickled copy of any dataset.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from clinpipe.errors import ClinpipeError
from clinpipe.paths import mappings_dir, raw_data_dir, transfer_formats

# Transient failures (a network share, a locked file) are worth a retry; a data or spec error
# is not: `user_errors` raises those with allow_retries=False.
RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL)


@functools.cache
def transfers(study: str) -> dg.DynamicPartitionsDefinition:
    """One partition per EDC transfer (data cut) of the study, keyed by its folder name under
    data/raw/<STUDY>/ (the transfer date); added by the new-transfer sensor or `clinpipe ui`."""
    return dg.DynamicPartitionsDefinition(name=f"{study}_transfers")


def transfer_folder(study: str, key: str) -> Path:
    """The delivered folder of one transfer partition (its CSV form when there are several)."""
    folder = raw_data_dir() / study / key
    if not folder.is_dir():
        raise ClinpipeError(f"transfer {key} of {study} is not on this machine", file=folder,
                            hint=f"put the export in {folder}/ or remove the partition {key}")
    return folder


def first_format(folder: Path) -> Path:
    return next(iter(transfer_formats(folder).values()))


@functools.cache
def code_version(study: str, layer: str) -> str:
    """Changes when the code or the study's specs for the layer change, so Dagster can tell a
    stale asset from a current one."""
    from edc.export import generator_version

    specs = sorted((mappings_dir() / study / layer).rglob("*.yaml")) if layer else []
    digest = hashlib.sha256()
    for p in specs:
        digest.update(p.name.encode() + p.read_bytes())
    return f"{generator_version().split()[-1]}-{digest.hexdigest()[:10]}"


def dataset_metadata(parquet: Path, rows: int) -> dict:
    """Dagster's standard row count and column schema (labels as descriptions)."""
    schema = pq.read_schema(parquet)
    cols = [dg.TableColumn(f.name, "string" if str(f.type) == "string" else "float",
                           description=(f.metadata or {}).get(b"label", b"").decode())
            for f in schema]
    return {"dagster/row_count": rows,
            "dagster/column_schema": dg.TableSchema(columns=cols)}


@contextlib.contextmanager
def user_errors():
    """A ClinpipeError (bad data, spec or config) fails the step with its one-line message and
    is not retried; anything else propagates for the retry policy."""
    try:
        yield
    except ClinpipeError as exc:
        raise dg.Failure(description=exc.message, allow_retries=False) from None
