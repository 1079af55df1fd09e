"""SDTMIG 3.4 variable metadata and CDISC SDTM CT 2025-03-28: the one source of truth.

Labels, types, variable order, core status and codelists of every SDTM output come from the
files in `sdtm/metadata/` (built by `tools/build_standards.py` from the published standards).
Nobody types a label twice: the writers, the schemas and the reports ask here.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from clinpipe.errors import ConfigError

METADATA_DIR = Path(__file__).resolve().parent / "metadata"
IG_VERSION = "3.4"
CT_VERSION = "2025-03-28"
_SUPP = "SUPPQUAL"


@dataclass(frozen=True)
class VarMeta:
    name: str
    label: str
    type: str            # 'Char' or 'Num'
    order: int
    role: str
    core: str            # 'Req', 'Exp' or 'Perm'
    codelists: tuple[str, ...] = ()
    value_domain: str = ""

    @property
    def is_dtc(self) -> bool:
        return self.name.endswith("DTC")


@dataclass(frozen=True)
class DomainMeta:
    name: str
    label: str
    cls: str
    structure: str
    variables: tuple[VarMeta, ...]

    def var(self, name: str) -> VarMeta:
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(f"{name} is not an SDTMIG {IG_VERSION} variable of {self.name}")

    def has(self, name: str) -> bool:
        return any(v.name == name for v in self.variables)

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.variables]

    def required(self) -> list[str]:
        return [v.name for v in self.variables if v.core == "Req"]


@dataclass(frozen=True)
class Codelist:
    code: str
    name: str
    short: str           # the codelist's submission value, e.g. 'NY'
    extensible: bool
    terms: dict[str, str] = field(default_factory=dict)      # submission value -> C-code
    synonyms: dict[str, str] = field(default_factory=dict)   # upper-case synonym/preferred term -> submission value

    def lookup(self, value: str) -> str | None:
        """Submission value for `value` (itself, a synonym or the NCI preferred term), else None."""
        if value in self.terms:
            return value
        return self.synonyms.get(value.strip().upper())


@cache
def _variables() -> dict[str, list[VarMeta]]:
    out: dict[str, list[VarMeta]] = {}
    with (METADATA_DIR / f"sdtmig_{IG_VERSION}_variables.csv").open(encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            out.setdefault(r["dataset"], []).append(VarMeta(
                name=r["variable"], label=r["label"], type=r["type"], order=int(r["order"]),
                role=r["role"], core=r["core"],
                codelists=tuple(c for c in r["codelists"].split(";") if c),
                value_domain=r["value_domain"]))
    return out


@cache
def _datasets() -> dict[str, dict[str, str]]:
    with (METADATA_DIR / f"sdtmig_{IG_VERSION}_datasets.csv").open(encoding="utf-8", newline="") as fh:
        return {r["dataset"]: r for r in csv.DictReader(fh)}


def domain(name: str) -> DomainMeta:
    """Metadata for an SDTM dataset; `SUPPxx` datasets use the SUPPQUAL template."""
    key = _SUPP if name.startswith("SUPP") and name != _SUPP else name
    if key not in _variables():
        raise ConfigError(f"{name} is not an SDTMIG {IG_VERSION} dataset this project knows",
                          hint=f"one of {', '.join(sorted(_variables()))}; add it in tools/build_standards.py")
    ds = _datasets()[key]
    label = ds["label"] if key != _SUPP else f"Supplemental Qualifiers for {name[4:]}"
    return DomainMeta(name=name, label=label, cls=ds["class"], structure=ds["structure"],
                      variables=tuple(sorted(_variables()[key], key=lambda v: v.order)))


def domains() -> list[str]:
    return [d for d in _datasets() if d != _SUPP]


@cache
def _codelists() -> dict[str, Codelist]:
    rows: dict[str, dict] = {}
    with (METADATA_DIR / f"ct_sdtm_{CT_VERSION}.csv").open(encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            cl = rows.setdefault(r["codelist"], {
                "code": r["codelist"], "name": r["codelist_name"], "short": r["codelist_value"],
                "extensible": r["extensible"] == "Yes", "terms": {}, "synonyms": {}})
            value = r["submission_value"]
            cl["terms"][value] = r["term_code"]
            for alias in [r["preferred_term"], *r["synonyms"].split(";")]:
                alias = alias.strip().upper()
                if alias:
                    cl["synonyms"].setdefault(alias, value)
            cl["synonyms"].setdefault(value.upper(), value)
    return {k: Codelist(**v) for k, v in rows.items()}


def codelist(ref: str) -> Codelist:
    """A codelist by C-code (`C66742`) or by its short name (`NY`)."""
    lists = _codelists()
    if ref in lists:
        return lists[ref]
    for cl in lists.values():
        if cl.short == ref:
            return cl
    raise ConfigError(f"codelist {ref!r} is not in SDTM CT {CT_VERSION} as packaged here",
                      hint="use its C-code or short name; add it in tools/build_standards.py")
