"""ADaM metadata, one source of truth: ADaMIG v1.3 variables, ADaM CT and the dataset specs.

- `adam/metadata/` holds the ADaMIG v1.3 variable metadata and ADaM CT 2025-03-28, built by
  `tools/build_adam_standards.py` from the published standards.
- A dataset spec (`mappings/common/adam/<dataset>.yaml`, study additions in
  `mappings/<STUDY>/adam/<dataset>.yaml`) lists the dataset's variables in order with a one-line
  derivation each (the text define.xml carries as the method). A standard variable takes its
  label, type and codelist from ADaMIG — a spec may not restate them, so no label is typed
  twice; a sponsor variable must give label and type.

ADaMIG names carry placeholders: `xx` a two-digit period (TRT01P), `y` a digit or two (AGEGR1,
CRIT1FL), `zz` two characters (ANL01FL), and a leading `*` any prefix (LDDT from *DT). The
same placeholders are filled into the label ("Planned Treatment for Period 01").
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from clinpipe.errors import ConfigError
from clinpipe.yamlio import load_yaml, validation_error

METADATA_DIR = Path(__file__).resolve().parent / "metadata"
IG_VERSION = "1.3"
CT_VERSION = "2025-03-28"
STRUCTURES = ("ADSL", "BDS", "TTE", "OCCDS")
# SAS formats of numeric dates and times: ADaM keeps them numeric with a display format.
FORMATS = {"date": "DATE9.", "datetime": "DATETIME20.", "time": "TIME8."}


@dataclass(frozen=True)
class IgVar:
    structure: str       # 'ADSL' or 'BDS' (the TTE variables are part of BDS)
    variable_set: str
    name: str            # with placeholders, e.g. TRTxxP
    label: str
    type: str            # 'Char' or 'Num'
    core: str            # 'Req', 'Cond' or 'Perm'
    codelists: tuple[str, ...] = ()
    notes: str = ""


@dataclass(frozen=True)
class Codelist:
    code: str
    name: str
    short: str
    extensible: bool
    terms: tuple[str, ...]


@dataclass(frozen=True)
class VarSpec:
    """One variable of an ADaM dataset, as written."""
    name: str
    label: str
    type: str                    # 'Char' or 'Num'
    derivation: str
    origin: str = "Derived"      # define.xml origin: Derived, Predecessor, Assigned
    core: str = "Perm"
    codelists: tuple[str, ...] = ()
    kind: str = ""               # '', 'date', 'datetime' or 'time' (numeric with a SAS format)
    standard: bool = True        # from ADaMIG (False: sponsor-defined)
    rule: dict | None = field(default=None, compare=False, hash=False)   # the derivation as data

    @property
    def format(self) -> str | None:
        return FORMATS.get(self.kind)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    label: str
    structure: str
    keys: tuple[str, ...]
    variables: tuple[VarSpec, ...]
    sources: tuple[str, ...] = field(default_factory=tuple)   # spec files, for traceability

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.variables]

    def var(self, name: str) -> VarSpec:
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(f"{name} is not a variable of the {self.name} spec")


# --- the standard ------------------------------------------------------------------------------

@cache
def ig_variables() -> tuple[IgVar, ...]:
    with (METADATA_DIR / "adamig_1.3_variables.csv").open(encoding="utf-8", newline="") as fh:
        return tuple(IgVar(r["structure"], r["variable_set"], r["variable"], r["label"], r["type"],
                           r["core"], tuple(c for c in r["codelists"].split(";") if c), r["notes"])
                     for r in csv.DictReader(fh))


def _pattern(name: str) -> re.Pattern:
    rx = re.escape(name).replace(r"\*", "([A-Z][A-Z0-9]*?)")
    rx = rx.replace("xx", r"(\d\d)").replace("zz", r"([A-Z0-9]{2})").replace("y", r"([1-9][0-9]?)")
    return re.compile(f"^{rx}$")


@cache
def _patterns() -> tuple[tuple[re.Pattern, IgVar], ...]:
    # exact names first, then placeholder names, so AVAL never matches *AL-like patterns
    exact = [(re.compile(f"^{re.escape(v.name)}$"), v) for v in ig_variables() if v.name.isupper()]
    placeholder = [(_pattern(v.name), v) for v in ig_variables() if not v.name.isupper()]
    return tuple(exact + placeholder)


def _fill_label(ig: IgVar, match: re.Match) -> str:
    label, parts = ig.label, list(match.groups())
    for token in re.findall(r"\*|xx|zz|y", ig.name):
        if not parts:
            break
        value = parts.pop(0)
        if token == "*":
            continue          # the label of *DT says "Date" etc.; the prefix is the spec's to name
        label = re.sub(rf"\b{token}\b", value, label, count=1)
    return label


def ig_variable(name: str, structure: str) -> tuple[IgVar, str] | None:
    """The ADaMIG variable `name` is an instance of in `structure` (BDS for TTE, OCCDS ask
    ADSL and BDS), with its label filled in; None for a sponsor-defined name."""
    wanted = {"ADSL": ("ADSL",), "BDS": ("BDS",), "TTE": ("BDS",), "OCCDS": ("BDS", "ADSL")}[structure]
    for s in wanted:
        for rx, ig in _patterns():
            if ig.structure == s and (m := rx.match(name)):
                if ig.name.startswith("*"):
                    return None   # '*DT' fits any date name; the spec must say what date it is
                return ig, _fill_label(ig, m)
    return None


@cache
def codelists() -> dict[str, Codelist]:
    rows: dict[str, list[dict]] = {}
    with (METADATA_DIR / f"ct_adam_{CT_VERSION}.csv").open(encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            rows.setdefault(r["codelist"], []).append(r)
    return {code: Codelist(code, rs[0]["codelist_name"], rs[0]["codelist_value"],
                           rs[0]["extensible"] == "Yes", tuple(r["submission_value"] for r in rs))
            for code, rs in rows.items()}


# --- dataset specs ------------------------------------------------------------------------------

class _VarIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    derivation: str
    label: str | None = None
    type: str | None = None
    kind: str = ""
    origin: str = "Derived"
    codelist: str | None = None
    after: str | None = None
    rule: dict | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Z][A-Z0-9]{0,7}", v):
            raise ValueError("an ADaM variable name is 1-8 upper-case letters or digits, starting with a letter")
        return v

    @field_validator("type")
    @classmethod
    def _type(cls, v):
        if v not in (None, "Char", "Num"):
            raise ValueError("type is Char or Num")
        return v

    @field_validator("kind")
    @classmethod
    def _kind(cls, v):
        if v not in ("", *FORMATS):
            raise ValueError(f"kind is one of {', '.join(FORMATS)} (or absent)")
        return v

    @field_validator("origin")
    @classmethod
    def _origin(cls, v):
        if v not in ("Derived", "Predecessor", "Assigned"):
            raise ValueError("origin is Derived, Predecessor or Assigned")
        return v


class _SpecIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    dataset: str
    label: str | None = None
    structure: str | None = None
    keys: list[str] | None = None
    variables: list[_VarIn]

    @field_validator("structure")
    @classmethod
    def _structure(cls, v):
        if v is not None and v not in STRUCTURES:
            raise ValueError(f"structure is one of {', '.join(STRUCTURES)}")
        return v


def _load(path: Path) -> tuple[_SpecIn, object]:
    loaded = load_yaml(path)
    try:
        return _SpecIn.model_validate(loaded.data), loaded
    except ValidationError as exc:
        raise validation_error(loaded, exc) from None


def _kind(name: str, type_: str, given: str) -> str:
    """ADaM naming convention: a numeric *DT is a date, *DTM a datetime, *TM a time."""
    if given or type_ != "Num":
        return given
    for suffix, kind in (("DTM", "datetime"), ("DT", "date"), ("TM", "time")):
        if name.endswith(suffix):
            return kind
    return ""


def _resolve(v: _VarIn, structure: str, dataset: str, path: Path, line) -> VarSpec:
    where = {"file": path, "record": f"line {line}" if line else None, "field": v.name}
    found = ig_variable(v.name, structure)
    if found:
        ig, label = found
        if v.label is not None or v.type is not None:
            raise ConfigError(f"{v.name} is an ADaMIG {IG_VERSION} variable: its label and type come "
                              f"from the standard ({label!r}, {ig.type})", **where,
                              hint="remove label: and type: from this entry")
        codes = ig.codelists if v.codelist is None else (v.codelist,)
        return VarSpec(v.name, label, ig.type, v.derivation, v.origin, ig.core, codes,
                       _kind(v.name, ig.type, v.kind), rule=v.rule)
    if not v.label or not v.type:
        raise ConfigError(f"{v.name} is not an ADaMIG {IG_VERSION} variable of a {structure} dataset, "
                          "so the spec must give its label and type", **where,
                          hint="add label: (at most 40 characters) and type: Char or Num")
    if v.kind and v.type != "Num":
        raise ConfigError(f"{v.name}: a {v.kind} is numeric in ADaM", **where, hint="set type: Num")
    codes = (v.codelist,) if v.codelist else ()
    return VarSpec(v.name, v.label, v.type, v.derivation, v.origin, "Perm", codes,
                   _kind(v.name, v.type, v.kind), standard=False, rule=v.rule)


def spec_paths(dataset: str, study: str, mappings: Path) -> list[Path]:
    name = f"{dataset.lower()}.yaml"
    return [p for p in (mappings / "common" / "adam" / name, mappings / study / "adam" / name) if p.is_file()]


def load_spec(dataset: str, study: str, mappings: Path | None = None) -> DatasetSpec:
    """The spec of `dataset` for `study`: the common spec plus the study's additions (new
    variables appended, or placed `after:` a named one)."""
    from clinpipe.paths import mappings_dir

    mappings = Path(mappings or mappings_dir())
    paths = spec_paths(dataset, study, mappings)
    if not paths:
        raise ConfigError(f"no ADaM spec for {dataset}", file=mappings / "common" / "adam",
                          hint=f"add {dataset.lower()}.yaml there or under mappings/{study}/adam/")
    base, base_yaml = _load(paths[0])
    if not base.label or not base.structure or not base.keys:
        raise ConfigError("the first spec of a dataset names its label, structure and keys",
                          file=paths[0], hint="add label:, structure: and keys:")
    order: list[VarSpec] = []
    for path in paths:
        spec, loaded = (base, base_yaml) if path == paths[0] else _load(path)
        if spec.dataset != dataset:
            raise ConfigError(f"spec is for {spec.dataset}, not {dataset}", file=path, field="dataset",
                              hint="rename the file or fix dataset:")
        for i, v in enumerate(spec.variables):
            line = loaded.line_of(("variables", i))
            var = _resolve(v, base.structure, dataset, path, line)
            if var.name in (o.name for o in order):
                raise ConfigError(f"{var.name} is already in the {dataset} spec", file=path,
                                  record=f"line {line}", field=var.name, hint="list each variable once")
            at = len(order)
            if v.after:
                names = [o.name for o in order]
                if v.after not in names:
                    raise ConfigError(f"after: {v.after} names no variable before it", file=path,
                                      record=f"line {line}", field=var.name, hint="name a variable of the spec")
                at = names.index(v.after) + 1
            order.insert(at, var)
    missing = [k for k in base.keys if k not in (o.name for o in order)]
    if missing:
        raise ConfigError(f"key variable(s) {', '.join(missing)} are not in the spec", file=paths[0],
                          field="keys", hint="list every key variable under variables:")
    return DatasetSpec(dataset, base.label, base.structure, tuple(base.keys), tuple(order),
                       tuple(str(p) for p in paths))
