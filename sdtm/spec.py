"""SDTM mapping specs: `mappings/<STUDY>/sdtm/<domain>.yaml`, read by people, run by the engine.

A spec names its domain, the raw form it maps (one SDTM record per active raw record), the
natural key that orders --SEQ, and one entry per SDTM variable: a mapping with exactly one
named algorithm key plus that algorithm's options, e.g.

    AESER:   {assign_ct: AESER, codelist: NY}
    AESTDTC: {iso8601: AESTDAT}
    AEREL:   {assign_ct: AEREL, map: {"1": NOT RELATED, "3": POSSIBLY RELATED}}

`supp:` lists SUPP-- qualifiers the same way (keyed by QNAM, with `qlabel`). Loading checks
every raw field against the study's forms, every variable against SDTMIG 3.4, every codelist
against CT 2025-03-28 and every algorithm against the engine's vocabulary; an error names
the spec file, the line and the key.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clinpipe.errors import ConfigError
from clinpipe.paths import mappings_dir
from clinpipe.yamlio import LoadedYaml, load_yaml
from edc.forms import SYSTEM_COLUMNS, FormsConfig
from sdtm import metadata

_TOP_KEYS = {"domain", "source", "keys", "variables", "supp", "filter", "description", "split"}


@dataclass(frozen=True)
class VarSpec:
    name: str
    algorithm: str
    arg: Any
    options: dict[str, Any]
    line: int | None


@dataclass(frozen=True)
class SuppSpec:
    qnam: str
    qlabel: str
    var: VarSpec
    qorig: str = "CRF"


@dataclass
class DomainSpec:
    path: Path
    domain: str
    source: str | None
    keys: list[str]
    variables: dict[str, VarSpec]
    supp: list[SuppSpec] = field(default_factory=list)
    filter: str | None = None
    split: list[dict] | None = None     # one SDTM record per item per raw record
    sha256: str = ""

    def error(self, what: str, var: VarSpec | None = None, key: str | None = None, hint: str | None = None):
        line = var.line if var else None
        return ConfigError(what, file=self.path, record=f"line {line}" if line else None,
                           field=key or (var.name if var else None), hint=hint)


def spec_dir(study: str, root: Path | None = None) -> Path:
    return (root or mappings_dir()) / study / "sdtm"


def load_specs(study: str, forms: FormsConfig, root: Path | None = None) -> dict[str, list[DomainSpec]]:
    """Every spec of a study, keyed by domain, each checked against forms, IG and CT.

    Specs for sponsor-library forms live once in `mappings/common/sdtm/`; a study uses them
    for the library forms it takes, unless it has its own spec file of the same name."""
    folder = spec_dir(study, root)
    own = {p.name: p for p in folder.glob("*.yaml")}
    library = {p.name: p for p in spec_dir("common", root).glob("*.yaml") if p.name not in own}
    specs: dict[str, list[DomainSpec]] = {}
    # A library spec applies only where the study took the library form it reads.
    library = {n: p for n, p in library.items()
               if (load_yaml(p).data or {}).get("source") in forms.form_by_oid}
    for path in sorted([*own.values(), *library.values()], key=lambda p: p.name):
        spec = load_spec(path, forms)
        # A domain fed by several forms has one spec file per form (ex_gloex.yaml, ex_cart.yaml).
        specs.setdefault(spec.domain, []).append(spec)
    return specs


def load_spec(path: Path, forms: FormsConfig) -> DomainSpec:
    from sdtm.algorithms import ALGORITHMS  # the vocabulary lives with its implementations

    loaded = load_yaml(path)
    data = loaded.data
    if not isinstance(data, dict):
        raise ConfigError("a spec is a mapping with domain, source, keys and variables", file=path)
    unknown = set(data) - _TOP_KEYS
    if unknown:
        key = min(unknown)
        raise ConfigError("unknown key", file=path, record=_line(loaded, (key,)), field=key,
                          hint=f"top-level keys are {', '.join(sorted(_TOP_KEYS))}")
    for key in ("domain", "variables"):
        if key not in data:
            raise ConfigError(f"missing required key {key!r}", file=path)
    dom_name = str(data["domain"])
    try:
        dom = metadata.domain(dom_name)
    except ConfigError as exc:
        raise ConfigError(exc.what, file=path, record=_line(loaded, ("domain",)), field="domain",
                          hint=exc.hint) from None
    source = data.get("source")
    if source is not None and source not in forms.form_by_oid:
        raise ConfigError(f"source form {source!r} is not in the study's forms", file=path,
                          record=_line(loaded, ("source",)), field="source",
                          hint=f"forms are {', '.join(sorted(forms.form_by_oid))}")
    spec = DomainSpec(path=path, domain=dom_name, source=source, keys=list(data.get("keys") or []),
                      variables={}, filter=data.get("filter"), split=_split(loaded, data.get("split"), path),
                      sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    for name, entry in (data["variables"] or {}).items():
        var = _var_spec(loaded, ("variables", name), name, entry, ALGORITHMS, spec)
        if not dom.has(name):
            raise spec.error(f"{name} is not an SDTMIG {metadata.IG_VERSION} variable of {dom_name}", var,
                             hint="check the spelling, or map it as a SUPP-- qualifier under supp:")
        spec.variables[name] = var
    for qnam, entry in (data.get("supp") or {}).items():
        loc = ("supp", qnam)
        if not isinstance(entry, dict) or "qlabel" not in entry:
            raise ConfigError("a supp entry needs qlabel and one algorithm", file=path,
                              record=_line(loaded, loc), field=f"supp.{qnam}")
        entry = dict(entry)
        qlabel, qorig = entry.pop("qlabel"), entry.pop("qorig", "CRF")
        var = _var_spec(loaded, loc, qnam, entry, ALGORITHMS, spec)
        if len(qnam) > 8 or not qnam.isalnum() or not qnam[0].isalpha() or qnam != qnam.upper():
            raise spec.error("QNAM must be 1-8 upper-case letters/digits starting with a letter", var)
        if len(str(qlabel)) > 40:
            raise spec.error("QLABEL is longer than 40 characters", var)
        spec.supp.append(SuppSpec(qnam, str(qlabel), var, str(qorig)))
    for key in spec.keys:
        if not dom.has(key):
            raise ConfigError(f"key {key!r} is not a variable of {dom_name}", file=path,
                              record=_line(loaded, ("keys",)), field="keys")
    _check_fields(spec, forms)
    return spec


def _split(loaded: LoadedYaml, items, path: Path) -> list[dict] | None:
    """`split:` items: mappings of keys to values, each with `field:` naming the raw result
    field (an item whose field is empty for a record makes no SDTM record for it)."""
    if items is None:
        return None
    if not isinstance(items, list) or not all(isinstance(i, dict) and "field" in i for i in items):
        raise ConfigError("split is a list of mappings, each with a field", file=path,
                          record=_line(loaded, ("split",)), field="split")
    return [dict(i) for i in items]


def _var_spec(loaded: LoadedYaml, loc: tuple, name: str, entry, algorithms, spec) -> VarSpec:
    line = loaded.line_of(loc)
    where = {"file": spec.path, "record": f"line {line}" if line else None, "field": ".".join(map(str, loc))}
    if not isinstance(entry, dict):
        raise ConfigError("expected a mapping such as {assign: FIELD}", **where)
    algs = [k for k in entry if k in algorithms]
    if len(algs) != 1:
        unknown = [k for k in entry if k not in algorithms and k not in _all_options(algorithms)]
        what = (f"unknown algorithm {unknown[0]!r}" if unknown and not algs
                else f"needs exactly one algorithm, found {algs or 'none'}")
        raise ConfigError(what, **where, hint=f"algorithms: {', '.join(sorted(algorithms))}")
    alg = algorithms[algs[0]]
    options = {k: v for k, v in entry.items() if k != algs[0]}
    bad = set(options) - set(alg.options)
    if bad:
        raise ConfigError(f"unknown option {min(bad)!r} for {algs[0]}", **where,
                          hint=f"{algs[0]} takes {', '.join(sorted(alg.options)) or 'no options'}")
    var = VarSpec(name, algs[0], entry[algs[0]], options, line)
    if "codelist" in options:
        try:
            cl = metadata.codelist(str(options["codelist"]))
        except ConfigError as exc:
            raise ConfigError(exc.what, **where, hint=exc.hint) from None
        if var.algorithm == "hardcode":
            hit = cl.lookup(str(var.arg))
            if hit is not None and hit != str(var.arg):
                raise ConfigError(f"{var.arg!r} is a synonym in codelist {cl.short}; use the submission "
                                  f"value {hit!r}", **where)
            if hit is None and not cl.extensible:
                raise ConfigError(f"{var.arg!r} is not in non-extensible codelist {cl.short} ({cl.code})",
                                  **where)
        for raw, value in (options.get("map") or {}).items():
            if cl.lookup(str(value)) is None and not cl.extensible:
                raise ConfigError(f"map value {value!r} (for {raw!r}) is not in non-extensible codelist "
                                  f"{cl.short} ({cl.code})", **where)
    return var


def _all_options(algorithms) -> set[str]:
    return {o for a in algorithms.values() for o in a.options}


def _check_fields(spec: DomainSpec, forms: FormsConfig) -> None:
    """Every raw field a spec names must exist in the form it reads."""
    from sdtm.algorithms import ALGORITHMS

    for var in [*spec.variables.values(), *(s.var for s in spec.supp)]:
        refs = list(ALGORITHMS[var.algorithm].fields(var))
        if var.algorithm == "split_field":
            refs += [item[var.arg] for item in spec.split or [] if item.get(var.arg)]
        for ref in refs:
            form_oid, _, fld = ref.rpartition(".")
            form_oid = form_oid or spec.source
            if form_oid is None:
                raise spec.error(f"{ref!r} needs a form: the spec has no source", var,
                                 hint="write FORM.FIELD or give the spec a source form")
            form = forms.form_by_oid.get(form_oid)
            if form is None:
                raise spec.error(f"form {form_oid!r} is not in the study's forms", var)
            if fld not in SYSTEM_COLUMNS and fld not in form.data_columns():
                raise spec.error(f"raw field {fld!r} is not in form {form_oid}", var,
                                 hint=f"{form_oid} has {', '.join(f.oid for f in form.fields)}")


def _line(loaded: LoadedYaml, loc: tuple) -> str | None:
    line = loaded.line_of(loc)
    return f"line {line}" if line else None
