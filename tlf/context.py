"""What an analysis function reads: the study's ADaM datasets (parquet, loaded once), ADSL,
the populations and the data cut-off."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from clinpipe.config import load_study
from clinpipe.errors import ClinpipeError
from tlf.analyses.base import Groups, subject_groups
from tlf.catalog import Catalog, OutputSpec


class TlfInputError(ClinpipeError):
    """The ADaM a TLF output needs is missing or lacks a variable."""


@dataclass
class TlfContext:
    study: str
    adam_dir: Path
    catalog: Catalog
    cutoff: str
    sdtm_dir: Path | None = None
    manifest_sha256: str = ""
    config: object = None
    transfer: str = ""                              # the build's transfer (ADaM manifest)
    _cache: dict = field(default_factory=dict)
    _full: set = field(default_factory=set)         # datasets read with every column
    _names: dict = field(default_factory=dict)      # dataset -> its parquet's columns

    @classmethod
    def open(cls, study: str, adam_dir: Path, catalog: Catalog) -> TlfContext:
        manifest = adam_dir / "manifest.json"
        if not manifest.is_file():
            raise TlfInputError("no ADaM build here (manifest.json missing)", file=adam_dir,
                                hint=f"run `clinpipe adam --study {study}` first")
        try:
            body = json.loads(manifest.read_bytes())
        except (ValueError, UnicodeDecodeError) as exc:
            raise TlfInputError(f"not a readable manifest ({exc})", file=manifest,
                                hint=f"rebuild ADaM: `clinpipe adam --study {study}`") from None
        if not isinstance(body, dict) or not (body.get("transfer_date") or body.get("data_cutoff")):
            # the build folder the TLF go into is named by the transfer: without it, nowhere
            raise TlfInputError("the manifest names no transfer_date or data_cutoff: not an "
                                "ADaM build written by `clinpipe adam`", file=manifest,
                                hint=f"rebuild ADaM: `clinpipe adam --study {study}`")
        sdtm = body.get("sdtm_folder")
        # what was built from what, without where: two clones give the same run id
        raw = json.dumps({k: v for k, v in body.items() if k != "sdtm_folder"},
                         sort_keys=True).encode()
        # relative to the ADaM folder (older manifests: absolute)
        return cls(study, adam_dir, catalog, str(body.get("data_cutoff", "")),
                   (Path(adam_dir) / sdtm).resolve() if sdtm else None, hashlib.sha256(raw).hexdigest(),
                   load_study(study), str(body.get("transfer_date") or body.get("data_cutoff", "")))

    def has(self, name: str) -> bool:
        return (self.adam_dir / f"{name.lower()}.parquet").is_file()

    def dataset(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """ADaM dataset `name` (e.g. "ADAE"); `columns` must exist or the error names them.
        With `columns`, only those are read from the parquet (and kept for later calls): a
        10,000-subject ADLB has 54 variables, most of which no output reads. A frame already
        in the context (`_cache`, as tests give one) is used as it is."""
        path = self.adam_dir / f"{name.lower()}.parquet"
        have = self._cache.get(name)
        on_disk = path.is_file()
        if have is None and not on_disk:
            raise TlfInputError(f"ADaM dataset {name} is not in this build", file=path,
                                hint="check the catalogue's datasets: or rebuild ADaM")
        if columns is None:
            if on_disk and name not in self._full:
                self._cache[name] = have = pd.read_parquet(path)
                self._full.add(name)
            return have
        known = self.variables(name) if on_disk else list(have.columns)
        missing = [c for c in columns if c not in known]
        if missing:
            raise TlfInputError(f"{name} has no variable(s) {missing}", file=path,
                                hint="the output's analysis needs them: rebuild ADaM or fix "
                                     "the catalogue params")
        need = [c for c in dict.fromkeys(columns) if have is None or c not in have.columns]
        if need:
            part = pd.read_parquet(path, columns=need)
            have = part if have is None else pd.concat([have, part], axis=1)
            self._cache[name] = have
        return have[columns]

    def variables(self, name: str) -> list[str]:
        """The variables of ADaM dataset `name`, from its parquet schema (nothing read)."""
        if name not in self._names:
            self._names[name] = pq.read_schema(self.adam_dir / f"{name.lower()}.parquet").names
        return self._names[name]

    def sdtm(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """SDTM dataset `name` (e.g. "TR") of the build the ADaM came from, for outputs whose
        data no ADaM dataset holds; members from it trace as DATASET = the domain."""
        key = f"SDTM:{name}"
        path = (self.sdtm_dir / f"{name.lower()}.parquet") if self.sdtm_dir else None
        if key not in self._cache:
            if path is None or not path.is_file():
                raise TlfInputError(f"SDTM {name} is not available", file=path or self.adam_dir,
                                    hint="the ADaM manifest's sdtm_folder must hold the SDTM "
                                         "build the ADaM came from")
            self._cache[key] = pd.read_parquet(path)
        df = self._cache[key]
        missing = [c for c in columns or [] if c not in df]
        if missing:
            raise TlfInputError(f"SDTM {name} has no variable(s) {missing}", file=path,
                                hint="the output's analysis needs them")
        return df[columns] if columns else df

    @property
    def adsl(self) -> pd.DataFrame:
        return self.dataset("ADSL")

    def groups(self, spec: OutputSpec, population: str | None = None) -> Groups:
        pop = population or spec.population
        if pop not in self.adsl:
            raise TlfInputError(f"ADSL has no population flag {pop}", file=self.adam_dir,
                                hint=f"output {spec.id}: fix population: in the catalogue")
        for var in [spec.by, *spec.where]:
            if var and var not in self.adsl:
                raise TlfInputError(f"ADSL has no variable {var}", file=self.adam_dir,
                                    hint=f"output {spec.id}: fix by:/where: in the catalogue")
        return subject_groups(self.adsl, pop, spec.by, spec.total, spec.where)

    def population_label(self, spec: OutputSpec) -> str:
        return self.catalog.populations[spec.population]
