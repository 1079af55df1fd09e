"""Errors that name the file, the record and the field, and say what to do.

Every failure a user can cause (bad config, malformed export, unknown code) is raised as a
`ClinpipeError` subclass so the CLI prints one clear line and exits non-zero instead of a
traceback.
"""
from __future__ import annotations

from pathlib import Path


class ClinpipeError(Exception):
    """A user-facing error: where it happened, what is wrong, what to do."""

    def __init__(self, what: str, *, file: str | Path | None = None, record: str | None = None,
                 field: str | None = None, hint: str | None = None):
        self.what = what
        self.file = str(file) if file is not None else None
        self.record = record
        self.field = field
        self.hint = hint
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.record:
            where.append(f"record {self.record}")
        if self.field:
            where.append(f"field {self.field}")
        text = (": ".join([", ".join(where), self.what]) if where else self.what)
        if self.hint:
            text += f" -> {self.hint}"
        return text

    def __reduce__(self):
        # the keyword arguments too: an error raised in a second process is re-raised here
        return _restore, (type(self), self.what, self.file, self.record, self.field, self.hint)


def _restore(cls, what, file, record, field, hint):
    return cls(what, file=file, record=record, field=field, hint=hint)


class ConfigError(ClinpipeError):
    """A study configuration or mapping spec is invalid."""


class ExportError(ClinpipeError):
    """A raw EDC export cannot be read as delivered."""


class OutputError(ClinpipeError):
    """An output folder a step needs is missing or not what it should be."""
