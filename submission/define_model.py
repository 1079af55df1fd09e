"""The define.xml content as plain data, before it becomes odmlib objects.

The SDTM and ADaM builders fill these from the project's metadata and the written datasets;
`submission.define` turns them into Define-XML 2.1. Keeping odmlib out of the builders keeps
the metadata logic readable and testable on its own.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

# Define-XML 2.1 data types for ISO 8601 text (section 4.3.2 of the specification)
ISO_DURATION_SUFFIXES = ("DUR", "ELTM", "EVLINT", "STINT", "ENINT")


@dataclass(frozen=True)
class Origin:
    type: str                        # Collected, Derived, Assigned, Protocol, Predecessor
    source: str | None = None        # Subject, Investigator, Vendor, Sponsor
    description: str = ""


@dataclass
class Var:
    name: str
    label: str
    data_type: str                   # text, integer, float, date, datetime, durationDatetime ...
    length: int | None = None
    digits: int | None = None        # SignificantDigits (float)
    display_format: str | None = None
    codelist: str | None = None      # key into Define.codelists
    origins: list[Origin] = field(default_factory=list)
    method: str | None = None        # derivation text (MethodDef), for Derived origins
    comment: str | None = None
    mandatory: bool = False
    key: int | None = None           # KeySequence
    has_data: bool = True
    vlm: list[ValueItem] = field(default_factory=list)


@dataclass(frozen=True)
class Where:
    """All conditions hold: variable EQ value."""
    checks: tuple[tuple[str, str], ...]

    def oid_part(self) -> str:
        return ".".join(f"{v}.{oid_token(x)}" for v, x in self.checks)


@dataclass
class ValueItem:
    """One row of a variable's value-level metadata."""
    where: Where
    var: Var                         # name = the parent variable; label = e.g. the test name


@dataclass
class Dataset:
    name: str
    label: str
    cls: str                         # def:Class Name
    subclass: str | None
    structure: str
    purpose: str                     # Tabulation or Analysis
    standard: str                    # key into Define.standards
    repeating: bool
    reference: bool
    vars: list[Var]
    domain: str | None = None
    comment: str | None = None


@dataclass(frozen=True)
class Term:
    value: str
    decode: str | None = None
    code: str | None = None          # NCI C-code of the term
    extended: bool = False           # sponsor value added to an extensible codelist


@dataclass
class Codelist:
    key: str                         # OID suffix
    name: str
    data_type: str
    terms: list[Term]
    code: str | None = None          # NCI C-code of the codelist
    standard: str | None = None      # key into Define.standards (CT codelists)


@dataclass(frozen=True)
class Standard:
    key: str
    name: str
    type: str                        # IG or CT
    version: str
    publishing_set: str | None = None


@dataclass
class Define:
    study: str
    title: str
    layer: str                       # SDTM or ADaM
    as_of: str
    version: str                     # the software that built the datasets
    standards: list[Standard]
    datasets: list[Dataset]
    codelists: dict[str, Codelist]


def oid_token(value: str) -> str:
    """A value made safe for an OID (letters, digits, '-', '_'); values differing only in
    other characters are told apart by the caller's collision check."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", str(value)).strip("_") or "_"


def iso_type(name: str, max_len: int) -> str | None:
    """Define-XML data type of an ISO 8601 text variable, None for plain text."""
    if name.endswith("DTC"):
        return "datetime" if max_len > 10 else "date"
    if name.endswith(ISO_DURATION_SUFFIXES):
        return "durationDatetime"
    return None


def first_paragraph(text: str | None) -> str:
    if not text:
        return ""
    return " ".join(text.strip().split("\n\n")[0].split())
