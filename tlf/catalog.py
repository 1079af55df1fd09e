"""The TLF catalogue of a study, as data: `mappings/<STUDY>/tlf/*.yaml`.

`endpoints.yaml` lists the registration's endpoints (id, wording, primary/secondary) and the
analysis populations (ADSL flag -> the name printed under the title). Every other file is one
output group (the Dagster asset `<STUDY>_tlf/<group>`) with its outputs:

    group: efficacy
    outputs:
      - id: t-14-2-1            # t- table, f- figure, l- listing (file names)
        type: table             # table | figure | listing
        title: Best overall response (Lugano 2014), B-NHL
        population: EFFFL       # an ADSL flag named in endpoints.yaml
        datasets: [ADSL, ADRS]  # what the program reads (footnote "Source:")
        analysis: response.proportions   # tlf/analyses/<module>.py, function <name>
        params: {paramcd: [ORR, CR, DCR]}
        by: TRT01A              # column grouping (GRP1), an ADSL variable
        where: {DISEASCD: B-NHL}  # optional ADSL subset of the population
        total: true             # add an "All subjects" column
        footnotes: [...]
        endpoints: [ORR, DCR]   # ids from endpoints.yaml; every endpoint needs an output

Output ids are unique per study; they become file names (`<id>.rtf`, `ard/<id>.xpt`).
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clinpipe.errors import ConfigError
from clinpipe.paths import mappings_dir
from clinpipe.yamlio import load_yaml, validation_error

_ID = re.compile(r"^[tfl]-\d+(-[0-9a-z]+)*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Endpoint(_Strict):
    id: str
    endpoint: str
    kind: Literal["primary", "secondary", "other"]
    population: str = ""
    registration: str = ""    # the registered outcome's name, verbatim; '' for SAP-only


class OutputSpec(_Strict):
    id: str
    type: Literal["table", "figure", "listing"]
    title: str
    population: str
    datasets: list[str]
    analysis: str
    params: dict[str, Any] = Field(default_factory=dict)
    by: str = ""
    total: bool = False
    where: dict[str, str | list[str]] = Field(default_factory=dict)  # ADSL subset
    footnotes: list[str] = Field(default_factory=list)
    endpoints: list[str] = Field(default_factory=list)
    group: str = ""           # set from the file
    source: str = ""          # the catalogue file (set on loading)


class Catalog(_Strict):
    study: str
    endpoints: list[Endpoint]
    populations: dict[str, str]
    outputs: list[OutputSpec]
    sha256: str

    def output(self, outid: str) -> OutputSpec:
        for out in self.outputs:
            if out.id == outid:
                return out
        raise ConfigError(f"{self.study} has no TLF output {outid!r}",
                          hint=f"the outputs are: {', '.join(o.id for o in self.outputs)}")

    @property
    def groups(self) -> list[str]:
        return sorted({o.group for o in self.outputs})


def catalog_dir(study: str) -> Path:
    return mappings_dir() / study / "tlf"


def load_catalog(study: str) -> Catalog:
    folder = catalog_dir(study)
    files = sorted(folder.glob("*.yaml"))
    head = folder / "endpoints.yaml"
    if head not in files:
        raise ConfigError(f"{study} has no TLF catalogue", file=head,
                          hint="write endpoints.yaml (endpoints, populations) and one yaml per "
                               "output group, see tlf/catalog.py")
    digest = hashlib.sha256()
    outputs: list[OutputSpec] = []
    endpoints, populations = [], {}
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
        loaded = load_yaml(path)
        body = loaded.data or {}
        if not isinstance(body, dict):
            raise ConfigError("a TLF catalogue file is a mapping", file=path,
                              hint="see the schema in tlf/catalog.py")
        try:
            if path == head:
                endpoints = [Endpoint(**e) for e in body.get("endpoints", [])]
                populations = dict(body.get("populations", {}))
            else:
                group = body.get("group") or path.stem
                for i, o in enumerate(body.get("outputs", [])):
                    try:
                        outputs.append(OutputSpec(**{**o, "group": group, "source": path.name}))
                    except ValidationError as exc:
                        err = validation_error(loaded, exc)
                        line = loaded.line_of(("outputs", i))
                        raise ConfigError(f"output {o.get('id', i)!r}: {err.what}", file=path,
                                          record=f"line {line}" if line else None,
                                          field=err.field, hint="see the schema in tlf/catalog.py"
                                          ) from None
        except (ValidationError, TypeError, AttributeError) as exc:
            raise ConfigError(f"TLF catalogue file is invalid: {exc}", file=path,
                              hint="see the schema in tlf/catalog.py") from None
    cat = Catalog(study=study, endpoints=endpoints, populations=populations, outputs=outputs,
                  sha256=digest.hexdigest())
    _check(cat, folder)
    return cat


def _check(cat: Catalog, folder: Path) -> None:
    ids = [o.id for o in cat.outputs]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ConfigError(f"TLF output ids used twice: {dupes}", file=folder,  # several files
                          hint="every output id of a study is unique")
    known = {e.id for e in cat.endpoints}
    for out in cat.outputs:
        where = folder / out.source
        if not _ID.match(out.id):
            raise ConfigError(f"output id {out.id!r} is not like t-14-1-1 / f-14-2 / l-16-1",
                              file=where, hint="t- table, f- figure, l- listing, digits after")
        if out.id[0] != out.type[0]:
            raise ConfigError(f"output {out.id} is a {out.type} but its id says otherwise",
                              file=where, hint="t- for tables, f- for figures, l- for listings")
        if out.population not in cat.populations:
            raise ConfigError(f"output {out.id} ({out.source}): population {out.population!r} "
                              "is not declared", file=folder / "endpoints.yaml",
                              hint=f"declared: {sorted(cat.populations)}")
        missing = set(out.endpoints) - known
        if missing:
            raise ConfigError(f"output {out.id} ({out.source}) answers unknown endpoint(s) "
                              f"{sorted(missing)}",
                              file=folder / "endpoints.yaml", hint="add them to endpoints:")
