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


_GENERAL_CLASSES = ("Interventions", "Events", "Findings", "Findings About")
# Findings About is a Findings domain with its own extra qualifiers (SDTM model 3.2.2.1)
_CLASS_FAMILY = {"Findings About": ("Findings", "Findings About")}


@cache
def _model_variables() -> dict[str, dict[str, VarMeta]]:
    """Per general observation class: the variables its domains may use beyond their IG
    tables, by the SDTM model's rule (SDTMIG 3.4 section 2.5: any identifier, timing variable
    or qualifier of the class): every variable of any IG domain of that class with the domain
    prefix taken off ('--SEV'), and every Identifier or Timing variable of any general class
    domain ('--DTC', 'VISITNUM', 'EPOCH'). The IG domains of 3.4 together stand for the model
    here: no separate machine-readable SDTM model table is at hand."""
    sets = _datasets()
    out: dict[str, dict[str, VarMeta]] = {c: {} for c in _GENERAL_CLASSES}
    for ds, variables in _variables().items():
        cls = sets.get(ds, {}).get("class")
        if cls not in _GENERAL_CLASSES or len(ds) != 2:
            continue
        for v in variables:
            generic = "--" + v.name[2:] if v.name.startswith(ds) else v.name
            targets = [c for c in _GENERAL_CLASSES if cls in _CLASS_FAMILY.get(c, (c,))]
            if v.role in ("Identifier", "Timing"):
                targets = list(_GENERAL_CLASSES)
            for c in targets:
                out[c].setdefault(generic, v)
    return out


def model_variable(dataset: str, name: str) -> VarMeta | None:
    """The SDTM model's variable `name` for a general-class `dataset` that its IG table does
    not list (e.g. MHSEV, CMDTC, VISITNUM in DS), Perm, with the generic variable's label and
    type; None when the model has no such variable for the class (then it belongs in SUPP--)."""
    try:
        meta = domain(dataset)
    except ConfigError:
        return None
    if meta.cls not in _GENERAL_CLASSES or meta.has(name):
        return None
    prefix = dataset[:2]
    generic = "--" + name[2:] if name.startswith(prefix) else name
    found = _model_variables()[meta.cls].get(generic)
    if found is None or generic in ("--SEQ",) or (generic == name and name.startswith("--")):
        return None
    return VarMeta(name=name, label=found.label, type=found.type, order=10_000, role=found.role,
                   core="Perm", codelists=found.codelists, value_domain=found.value_domain)


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
