"""ADaM define.xml content from the dataset specs (`adam.metadata.load_spec`: ADaMIG 1.3
labels/types/codelists plus the spec's derivation per variable) and the datasets as written.

Each spec variable's `origin:` becomes def:Origin (Derived with the derivation as its
MethodDef; Predecessor and Assigned with the derivation as the origin's description). BDS
datasets get value-level metadata on AVAL/AVALC per PARAMCD, and a sponsor PARAMCD codelist
decoded by PARAM, both from the parameters present in the data.
"""
from __future__ import annotations

import csv
import re
from functools import cache
from pathlib import Path

import numpy as np

from adam import metadata as meta
from clinpipe.config import load_study
from clinpipe.errors import ConfigError
from edc.export import generator_version
from submission.define_codelists import CodelistCollector, sponsor_codelist
from submission.define_data import MAX_DECIMALS, DatasetFile, DefineInputError, Folder
from submission.define_model import (
    Dataset,
    Define,
    Origin,
    Standard,
    ValueItem,
    Var,
    Where,
)
from submission.define_sdtm import STD_CT as STD_CT_SDTM

STANDARDS_DIR = Path(__file__).resolve().parent / "standards"
STD_IG = Standard("ADaMIG", "ADaMIG", "IG", meta.IG_VERSION)
# ADaMIG 1.3 has no OCCDS section: ADAE follows ADaM OCCDS v1.1 (adam/metadata/SOURCE.md).
STD_OCCDS = Standard("ADaM-OCCDSIG", "ADaM-OCCDSIG", "IG", "1.1")
STD_CT = Standard("CT.ADaM", "CDISC/NCI", "CT", meta.CT_VERSION, "ADaM")
CLASSES = {"ADSL": ("SUBJECT LEVEL ANALYSIS DATASET", None),
           "BDS": ("BASIC DATA STRUCTURE", None),
           "TTE": ("BASIC DATA STRUCTURE", "TIME-TO-EVENT"),
           "OCCDS": ("OCCURRENCE DATA STRUCTURE", None)}
OCCDS_SUBCLASS = {"ADAE": "ADVERSE EVENT"}
VLM_VARS = ("AVAL", "AVALC")
SPONSOR = "Sponsor"


@cache
def define_terms() -> dict[str, set[str]]:
    """Define-XML CT 2025-03-28 codelist name -> submission values (classes, subclasses)."""
    out: dict[str, set[str]] = {}
    with (STANDARDS_DIR / "define_ct_2025-03-28.csv").open(encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            out.setdefault(r["codelist_name"], set()).add(r["submission_value"])
    return out


def build_adam_define(study: str, folder: Folder, mappings: Path) -> Define:
    config = load_study(study, mappings)
    codelists = CodelistCollector({"ADaM": STD_CT.key, "SDTM": STD_CT_SDTM.key})
    datasets = [_dataset(f, study, mappings, codelists) for f in folder.datasets.values()]
    datasets.sort(key=lambda d: (d.name != "ADSL", d.name))
    standards = [STD_IG] + ([STD_OCCDS] if any(d.standard == STD_OCCDS.key for d in datasets) else [])
    return Define(study=study, title=config.study.title, layer="ADaM", as_of=folder.as_of,
                  version=folder.manifest.get("code") or generator_version(),
                  standards=[*standards, STD_CT, STD_CT_SDTM], datasets=datasets,
                  codelists=codelists.codelists())


def _spec(f: DatasetFile, study: str, mappings: Path) -> meta.DatasetSpec:
    try:
        spec = meta.load_spec(f.name, study, mappings)
    except ConfigError as exc:
        raise DefineInputError(f"dataset {f.name} has no ADaM spec ({exc.what})", file=f.xpt,
                               record=f.name, hint=exc.hint) from None
    for c in f.columns:
        if c not in spec.names:
            raise DefineInputError(f"{c} is not in the {f.name} spec", file=f.xpt, record=f.name,
                                   field=c, hint=f"add it to {spec.sources[0]} or rebuild the folder")
    return spec


def _structure(spec: meta.DatasetSpec) -> str:
    """The spec header's 'one record per ...' sentence, else one built from the keys."""
    header = []
    for text in Path(spec.sources[0]).read_text(encoding="utf-8").splitlines():
        if not text.startswith("#"):
            break
        header.append(text.lstrip("#").strip())
    found = re.search(r"one record per [^.;)]*", " ".join(header), re.IGNORECASE)
    if found:
        text = found.group(0).strip().rstrip(",")
        return text[0].upper() + text[1:]
    if spec.structure == "ADSL":
        return "One record per subject"
    rest = [k for k in spec.keys if k not in ("STUDYID", "USUBJID")]
    return "One record per subject" + "".join(f" per {k}" for k in rest)


def _comment(spec: meta.DatasetSpec) -> str | None:
    parts = []
    for source in spec.sources:
        for text in Path(source).read_text(encoding="utf-8").splitlines():
            if not text.startswith("#"):
                break
            parts.append(text.lstrip("#").strip())
    return " ".join(p for p in parts if p) or None


def _dataset(f: DatasetFile, study: str, mappings: Path, codelists: CodelistCollector) -> Dataset:
    spec = _spec(f, study, mappings)
    cls, subclass = CLASSES[spec.structure]
    subclass = subclass or (OCCDS_SUBCLASS.get(f.name) if spec.structure == "OCCDS" else None)
    terms = define_terms()
    if cls not in terms["General Observation Class"]:
        raise DefineInputError(f"{cls} is not a Define-XML CT dataset class", record=f.name)
    keys = [k for k in spec.keys if k in f.columns]
    variables = []
    for name in f.columns:
        var = _variable(f, spec.var(name), codelists)
        var.key = keys.index(name) + 1 if name in keys else None
        variables.append(var)
    by_name = {v.name: v for v in variables}
    if spec.structure in ("BDS", "TTE") and "PARAMCD" in by_name:
        params = {r["PARAMCD"]: r["PARAM"] for r in f.pairs(["PARAMCD"], "PARAM").to_pylist()} \
            if "PARAM" in by_name else {c: "" for c in f.values("PARAMCD")}
        by_name["PARAMCD"].codelist = codelists.add_sponsor(sponsor_codelist(
            f"{f.name}.PARAMCD", f"{f.name} Parameter Code", params))
        for name in VLM_VARS:
            if name in by_name and by_name[name].has_data:
                by_name[name].vlm = _param_vlm(f, by_name[name], params)
    standard = STD_OCCDS.key if spec.structure == "OCCDS" else STD_IG.key
    return Dataset(name=f.name, label=spec.label, cls=cls, subclass=subclass,
                   structure=_structure(spec), purpose="Analysis", standard=standard,
                   repeating=spec.structure != "ADSL", reference=False, vars=variables,
                   comment=_comment(spec))


def _variable(f: DatasetFile, vs: meta.VarSpec, codelists: CodelistCollector) -> Var:
    name = vs.name
    if f.labels.get(name) != vs.label:
        raise DefineInputError(f"the XPT label of {name} ({f.labels.get(name)!r}) is not the spec's "
                               f"({vs.label!r})", file=f.xpt, record=f.name, field=name,
                               hint="rebuild the folder with the current pipeline")
    var = Var(name=name, label=vs.label, data_type="text", mandatory=vs.core == "Req")
    f.shape(var)
    if f.types[name] != "Char":
        var.display_format = vs.format
    if vs.origin == "Derived":
        var.origins, var.method = [Origin("Derived", SPONSOR)], vs.derivation
    elif vs.origin == "Predecessor":
        var.origins = [Origin("Predecessor", None, vs.derivation)]
    else:
        var.origins = [Origin(vs.origin, SPONSOR, vs.derivation)]
    if vs.codelists and var.has_data:
        var.codelist = codelists.use(vs.codelists, f.values(name), var.data_type)
    return var


def _decimals(values: np.ndarray) -> int:
    for d in range(MAX_DECIMALS + 1):
        if np.all(np.abs(np.round(values, d) - values) <= 1e-9 * np.maximum(1.0, np.abs(values))):
            return d
    return MAX_DECIMALS


def _param_vlm(f: DatasetFile, parent: Var, params: dict[str, str]) -> list[ValueItem]:
    pairs = f.pairs(["PARAMCD"], parent.name).to_pandas()
    items = []
    for code, group in pairs.groupby("PARAMCD", sort=True):
        item = Var(name=parent.name, label=params.get(code) or code, data_type="text",
                   origins=parent.origins, method=parent.method, mandatory=False)
        if parent.name == "AVALC":
            item.length = int(group["AVALC"].str.len().max())
        else:
            decimals = _decimals(group["AVAL"].to_numpy(dtype=np.float64))
            item.data_type = "float" if decimals else "integer"
            item.length = parent.length
            item.digits = decimals or None
        items.append(ValueItem(Where((("PARAMCD", code),)), item))
    return items
