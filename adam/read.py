"""Read any SDTMIG-conformant SDTM folder — this pipeline's or one a CRO delivered.

A folder holds one file per dataset, `<dataset>.parquet` or `<dataset>.xpt` (either case);
parquet is read where both exist (the same data, ten times faster). Char variables come back
as str with '' for missing and Num as float64, whatever wrote them, so the builders see one
shape. XPT is read with pyreadstat, never `pandas.read_sas` (which returns 5.4e-79 for some
zeros). SUPP-- datasets are optional everywhere: a builder that can use a qualifier asks
`supp_value`, and works without it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pyreadstat

from clinpipe.errors import ClinpipeError


class SdtmInputError(ClinpipeError):
    """The SDTM folder lacks a dataset or variable an ADaM builder needs."""


def _char(values: pd.Series) -> pd.Series:
    return values.astype(object).where(values.notna(), "").map(str)


def _normalise(df: pd.DataFrame, char: set[str]) -> pd.DataFrame:
    out = {}
    for c in df.columns:
        out[c] = _char(df[c]) if c in char else pd.to_numeric(df[c], errors="coerce").astype(np.float64)
    return pd.DataFrame(out, index=pd.RangeIndex(len(df)))


def read_dataset(path: Path) -> pd.DataFrame:
    try:
        if path.suffix.lower() == ".parquet":
            table = pq.read_table(path)
            char = {f.name for f in table.schema if str(f.type) in ("string", "large_string")}
            return _normalise(table.to_pandas(), char)
        df, meta = pyreadstat.read_xport(str(path), disable_datetime_conversion=True)
        char = {c for c, k in meta.readstat_variable_types.items() if k == "string"}
        return _normalise(df, char)
    except (OSError, ValueError, pyreadstat.ReadstatError, pyreadstat.PyreadstatError) as exc:
        raise SdtmInputError(f"not a readable SDTM dataset ({exc})", file=path,
                             hint="re-export it as SAS XPT v5 or parquet") from None


@dataclass
class Sdtm:
    """The datasets of one SDTM folder, by upper-case name, read on first use."""
    folder: Path
    files: dict[str, Path]
    _cache: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    def has(self, name: str) -> bool:
        return name in self.files

    def get(self, name: str, required: tuple[str, ...] = ()) -> pd.DataFrame:
        """Dataset `name`; an absent dataset is an empty frame unless `required` names
        variables, in which case absence of the dataset or a variable is an error."""
        if name not in self.files:
            if required:
                raise SdtmInputError(f"{name} is needed but the folder has no {name.lower()}.xpt or "
                                     f"{name.lower()}.parquet", file=self.folder,
                                     hint=f"deliver {name} with at least {', '.join(required)}")
            return pd.DataFrame()
        if name not in self._cache:
            self._cache[name] = read_dataset(self.files[name])
        df = self._cache[name]
        missing = [v for v in required if v not in df.columns]
        if missing:
            raise SdtmInputError(f"{name} lacks the variable(s) {', '.join(missing)} an ADaM builder needs",
                                 file=self.files[name], field=missing[0],
                                 hint="add them (SDTMIG 3.4) and re-deliver")
        return df

    def supp_value(self, parent: pd.DataFrame, domain: str, qnam: str) -> pd.Series:
        """The SUPP-- qualifier `qnam` for each record of `parent` ('' where none), joined by
        USUBJID and IDVAR/IDVARVAL as SDTMIG §8.4 says; '' throughout when SUPP-- is absent."""
        supp = self.get(f"SUPP{domain}")
        empty = pd.Series("", index=parent.index, dtype=object)
        if supp.empty or not {"USUBJID", "IDVAR", "IDVARVAL", "QNAM", "QVAL"} <= set(supp.columns):
            return empty
        rows = supp[supp.QNAM == qnam]
        if rows.empty:
            return empty
        idvar = rows.IDVAR.iloc[0]
        if not idvar:   # a subject-level qualifier
            return parent.USUBJID.map(rows.set_index("USUBJID").QVAL).fillna("")
        if idvar not in parent.columns:
            return empty
        ids = parent[idvar]
        # --SEQ is numeric in the parent and text ("3") in IDVARVAL
        key = ids.round().astype("Int64").astype(str) if ids.dtype.kind == "f" else ids.astype(str)
        found = pd.Series(rows.QVAL.to_numpy(), index=pd.MultiIndex.from_arrays([rows.USUBJID, rows.IDVARVAL]))
        found = found[~found.index.duplicated()]
        return pd.Series(found.reindex(pd.MultiIndex.from_arrays([parent.USUBJID, key])).to_numpy(),
                         index=parent.index).fillna("")


def read_sdtm(folder: str | Path) -> Sdtm:
    folder = Path(folder)
    if not folder.is_dir():
        raise SdtmInputError("SDTM folder not found", file=folder,
                             hint="pass --sdtm with a folder of <dataset>.xpt or .parquet files")
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in (".xpt", ".parquet"):
            continue
        name = path.stem.upper()
        if name not in files or path.suffix.lower() == ".parquet":
            files[name] = path
    if "DM" not in files:
        raise SdtmInputError("the folder has no DM dataset (dm.xpt or dm.parquet)", file=folder,
                             hint="every ADaM build starts from DM; check the folder")
    return Sdtm(folder, files)
