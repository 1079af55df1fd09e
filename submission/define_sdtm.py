"""SDTM define.xml content: datasets, variables, origins, methods and value-level metadata
from SDTMIG 3.4 (`sdtm.metadata`), the study's mapping specs (`mappings/<STUDY>/sdtm/`) and
the datasets as written.

Origins follow from the spec's algorithm: a raw value carried over (assign, assign_ct,
iso8601, ...) is Collected, with the CRF form and fields it reads; a constant (hardcode) is
Assigned; anything computed is Derived, its MethodDef the algorithm's own description plus the
spec's comment. Variables the engine adds (STUDYID, DOMAIN, USUBJID, --SEQ), the trial design
datasets (built from study.yaml) and SE/SV (built from other domains) have fixed origins.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from clinpipe.config import load_study
from clinpipe.errors import ConfigError
from edc.export import generator_version
from edc.forms import FormsConfig, load_forms
from sdtm import metadata as meta
from sdtm import subject_elements, subject_visits, trial_design
from sdtm.algorithms import ALGORITHMS
from sdtm.spec import DomainSpec, VarSpec, load_specs
from submission.define_codelists import CodelistCollector
from submission.define_data import DatasetFile, DefineInputError, Folder
from submission.define_model import (
    Dataset,
    Define,
    Origin,
    Standard,
    ValueItem,
    Var,
    Where,
    first_paragraph,
    iso_type,
)

STD_IG = Standard("SDTMIG", "SDTMIG", "IG", meta.IG_VERSION)
STD_CT = Standard("CT.SDTM", "CDISC/NCI", "CT", meta.CT_VERSION, "SDTM")

COLLECTED = {"assign", "assign_ct", "iso8601", "upper", "number", "split_field", "split_field_ct"}
# a split spec's item literal (VSTESTCD: {split_value: testcd}) is the sponsor's, like a hardcode
ASSIGNED = {"hardcode", "split_value", "split_ct"}
# split algorithms name an item key; the raw field is that key's value in each split item
SPLIT_FIELDS = {"split_field", "split_field_ct"}
# Value-level metadata on --ORRES by --TESTCD: the findings domains whose results differ in
# type and length per test (and RS per response criteria, RSCAT).
VLM_DOMAINS = ("LB", "PC", "PP", "RS", "TR", "VS", "EG")
# Natural keys of the datasets no mapping spec describes, after their SDTMIG 3.4 structure
# ("One record per planned Element per Arm" -> ARMCD, TAETORD).
KEYS = {
    "SE": ["STUDYID", "USUBJID", "ETCD", "SESTDTC"],
    "SV": ["STUDYID", "USUBJID", "VISITNUM"],
    "TA": ["STUDYID", "ARMCD", "TAETORD"],
    "TE": ["STUDYID", "ETCD"],
    "TV": ["STUDYID", "VISITNUM", "ARMCD"],
    "TI": ["STUDYID", "IETESTCD"],
    "TS": ["STUDYID", "TSPARMCD", "TSSEQ"],
    "SUPP": ["STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM"],
}
CLASS_ORDER = ["Trial Design", "Special-Purpose", "Interventions", "Events", "Findings",
               "Findings About", "Relationship"]
INVESTIGATOR = "Investigator"
SPONSOR = "Sponsor"


def build_sdtm_define(study: str, folder: Folder, mappings: Path) -> Define:
    forms = load_forms(study, mappings)
    specs = load_specs(study, forms, mappings)
    config = load_study(study, mappings)
    codelists = CodelistCollector({"SDTM": STD_CT.key})
    datasets = [_dataset(f, specs, forms, codelists) for f in folder.datasets.values()]
    datasets.sort(key=lambda d: (CLASS_ORDER.index(_ig_class(d.name)), d.name))
    return Define(study=study, title=config.study.title, layer="SDTM", as_of=folder.as_of,
                  version=folder.manifest.get("code") or generator_version(),
                  standards=[STD_IG, STD_CT], datasets=datasets, codelists=codelists.codelists())


def _ig_class(name: str) -> str:
    return meta.domain(name).cls if not name.startswith("SUPP") else "Relationship"


def _domain(f: DatasetFile):
    try:
        dom = meta.domain(f.name)
    except ConfigError as exc:
        raise DefineInputError(f"dataset {f.name} has no SDTMIG {meta.IG_VERSION} metadata",
                               file=f.xpt, record=f.name, hint=exc.hint) from None
    for c in f.columns:
        if not dom.has(c):
            raise DefineInputError(f"{c} is not an SDTMIG {meta.IG_VERSION} variable of {f.name}",
                                   file=f.xpt, record=f.name, field=c,
                                   hint="remove it from the dataset or map it as a SUPP-- qualifier")
    return dom


def _dataset(f: DatasetFile, specs: dict[str, list[DomainSpec]], forms: FormsConfig,
             codelists: CodelistCollector) -> Dataset:
    dom = _domain(f)
    supp = f.name.startswith("SUPP")
    parent = f.name[4:] if supp else f.name
    own = specs.get(parent, []) if not supp else []
    keys = (own[0].keys and ["STUDYID", *own[0].keys]) if own else KEYS["SUPP" if supp else f.name] \
        if (supp or f.name in KEYS) else ["STUDYID", "USUBJID"]
    topic = f"{f.name}TESTCD"
    if own and dom.cls.upper().startswith("FINDINGS") and topic in f.columns and topic not in keys:
        # a spec's keys give the record order within a subject (the form's item order for VS
        # and EG); the SDTMIG key structure of a Findings domain names its test code
        keys = [*keys[:2], topic, *keys[2:]]
    keys = [k for k in dict.fromkeys(keys) if k in f.columns]
    ds_cls = dom.cls.upper().replace("-", " ")
    variables = []
    for name in f.columns:
        var_meta = dom.var(name)
        var = _variable(f, name, var_meta, own, forms, codelists)
        var.key = keys.index(name) + 1 if name in keys else None
        variables.append(var)
    if supp:
        qval = next(v for v in variables if v.name == "QVAL")
        qval.vlm = _supp_vlm(f, specs.get(parent, []), forms)
        # QVAL is what its qualifiers are: the union of their origins (detail in the VLM)
        qval.origins = sorted({Origin(o.type, o.source) for i in qval.vlm for o in i.var.origins},
                              key=lambda o: o.type) or qval.origins
        qval.method = "See the value-level metadata of each QNAM." if any(
            o.type == "Derived" for o in qval.origins) else None
    elif f.name in VLM_DOMAINS:
        _findings_vlm(f, variables, own)
    comment = " ".join(c for c in (_header_comment(s.path) for s in own) if c) or _builder_doc(f.name)
    return Dataset(name=f.name, label=dom.label, cls=ds_cls, subclass=None, structure=dom.structure,
                   purpose="Tabulation", standard=STD_IG.key, repeating=f.name != "DM",
                   reference=dom.cls == "Trial Design", vars=variables,
                   domain=None if supp else f.name, comment=comment or None)


def _builder_doc(name: str) -> str:
    """Datasets with no mapping spec are described by the module that builds them."""
    if name == "SE":
        return first_paragraph(subject_elements.__doc__)
    if name == "SV":
        return first_paragraph(subject_visits.__doc__)
    if meta.domain(name).cls == "Trial Design":
        return first_paragraph(trial_design.__doc__)
    return ""


def _variable(f: DatasetFile, name: str, vm: meta.VarMeta, own: list[DomainSpec], forms: FormsConfig,
              codelists: CodelistCollector) -> Var:
    label = vm.label
    if f.labels.get(name) != label:
        raise DefineInputError(f"the XPT label of {name} ({f.labels.get(name)!r}) is not the SDTMIG "
                               f"{meta.IG_VERSION} label ({label!r})", file=f.xpt, record=f.name,
                               field=name, hint="rebuild the folder with the current pipeline")
    var = Var(name=name, label=label, data_type="text", mandatory=vm.core == "Req")
    f.shape(var)
    spec_vars = [(s, s.variables[name]) for s in own if name in s.variables]
    var.origins, var.method, var.comment = _origin(f, name, spec_vars, forms)
    codelist_ref = next((str(sv.options["codelist"]) for _, sv in spec_vars if "codelist" in sv.options),
                        None) or vm.codelists
    if codelist_ref and var.has_data:
        decodes = None
        if name.endswith("TESTCD") and (test := name[:-2]) in f.columns:
            decodes = {r[name]: r[test] for r in f.pairs([name], test).to_pylist()}
        var.codelist = codelists.use(codelist_ref, f.values(name), var.data_type, decodes)
    return var


def _raw_fields(spec: DomainSpec, sv: VarSpec, forms: FormsConfig) -> list[str]:
    """The raw CRF fields a spec entry reads, as FORM.FIELD."""
    out = []
    refs = ALGORITHMS[sv.algorithm].fields(sv)
    if sv.algorithm in SPLIT_FIELDS:
        refs = [item[sv.arg] for item in spec.split or [] if item.get(sv.arg)]
    for ref in refs:
        ref = str(ref)
        form, _, fld = ref.rpartition(".")
        form = form or spec.source
        if form in forms.form_by_oid and fld in forms.form(form).field_by_oid:
            out.append(f"{form}.{fld}")
    return out


def _kind(sv: VarSpec) -> str:
    alg = sv.algorithm
    if alg == "if":
        then = sv.options.get("then") or {}
        alg = next((k for k in then if k in ALGORITHMS), alg)
    if alg in COLLECTED:
        return "Collected"
    if alg in ASSIGNED:
        return "Assigned"
    return "Derived"


def _algorithm_text(sv: VarSpec) -> tuple[str, str]:
    """(what the algorithm does, the spec's rule) for a MethodDef."""
    doc = first_paragraph(type(ALGORITHMS[sv.algorithm]).__doc__)
    options = ", ".join(f"{k}: {v}" for k, v in sv.options.items())
    return doc, f"{sv.algorithm}: {sv.arg}" + (f" ({options})" if options else "")


def _method_text(parts: list[tuple[str, str, str]]) -> str | None:
    """One description per algorithm, then each spec's rule (named by file when several)."""
    if not parts:
        return None
    docs = " ".join(dict.fromkeys(d for d, _, _ in parts if d))
    files = {f for _, _, f in parts}
    rules = "; ".join(dict.fromkeys(f"{r} [{f}]" if len(files) > 1 else r for _, r, f in parts))
    return f"{docs} Rule: {rules}." if docs else f"Rule: {rules}."


def _origin(f: DatasetFile, name: str, spec_vars: list[tuple[DomainSpec, VarSpec]], forms: FormsConfig):
    """(origins, method text, comment) of one variable."""
    dom = f.name
    if spec_vars:
        origins, methods, comments = [], [], []
        collected: dict[str, list[str]] = {}
        for spec, sv in spec_vars:
            kind = _kind(sv)
            fields = _raw_fields(spec, sv, forms)
            if kind == "Collected" and fields:
                for ref in fields:
                    form, _, fld = ref.partition(".")
                    collected.setdefault(form, []).append(fld)
            elif kind == "Collected":
                kind = "Derived"      # nothing raw read: computed from other variables
            if kind != "Collected":
                origins.append(Origin(kind, SPONSOR))
            if kind == "Derived":
                methods.append((*_algorithm_text(sv), spec.path.name))
            if (c := _comment_above(spec.path, sv.line)):
                comments.append(c)
        if collected:
            where = "; ".join(f"CRF form {form} ({forms.form(form).name}), field "
                              f"{', '.join(dict.fromkeys(flds))}" for form, flds in sorted(collected.items()))
            origins.append(Origin("Collected", INVESTIGATOR, where))
        origins = sorted(set(origins), key=lambda o: (o.type, o.description))
        method = _method_text(methods)
        return origins, method, " ".join(dict.fromkeys(comments)) or None
    if name == "STUDYID":
        return [Origin("Protocol", SPONSOR)], None, None
    if name in ("DOMAIN", "RDOMAIN", "IDVAR", "QNAM", "QLABEL", "QORIG", "QEVAL") or dom.startswith("SUPP") \
            and name == "QVAL":
        return [Origin("Assigned", SPONSOR)], None, None
    if name == "USUBJID":
        return [Origin("Derived", SPONSOR)], "STUDYID, a hyphen and the EDC subject identifier.", None
    if name == f"{dom}SEQ":
        return [Origin("Derived", SPONSOR)], ("Sequence number 1..n within USUBJID in the order of the "
                                              "dataset's natural key, then raw record order."), None
    if name == "IDVARVAL":
        return [Origin("Derived", SPONSOR)], "The parent record's --SEQ (empty for a subject-level qualifier).", None
    if meta.domain(dom).cls == "Trial Design":
        return [Origin("Protocol", SPONSOR)], None, None
    if dom in ("SE", "SV"):
        return [Origin("Derived", SPONSOR)], _builder_doc(dom), None
    return [Origin("Not Available")], None, (f"Expected by SDTMIG {meta.IG_VERSION}; not collected in "
                                            "this study, so present and empty.")


def _comment_above(path: Path, line: int | None) -> str:
    """The YAML comment block right above a spec entry: the spec author's why."""
    if not line:
        return ""
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    i = line - 2
    while i >= 0 and lines[i].strip().startswith("#"):
        out.insert(0, lines[i].strip().lstrip("#").strip())
        i -= 1
    return " ".join(x for x in out if x)


def _header_comment(path: Path) -> str:
    out = []
    for text in path.read_text(encoding="utf-8").splitlines():
        if not text.strip().startswith("#"):
            break
        out.append(text.strip().lstrip("#").strip())
    return " ".join(x for x in out if x)


# -- value-level metadata -------------------------------------------------------------------------

def _vlm_shape(name: str, values: pd.Series, parent: Var) -> Var:
    """A VLM row's type and length from the values one test (or QNAM) holds (vectorised: a
    10,000-subject LB has many distinct results per test)."""
    texts = values.astype(str)
    longest = int(texts.str.len().max()) if len(texts) else 0
    item = Var(name=name, label="", data_type="text", origins=parent.origins, method=parent.method)
    iso = iso_type(name, longest)
    if iso:
        item.data_type = iso
        return item
    item.length = max(longest, 1)
    if len(texts) and pd.to_numeric(texts, errors="coerce").notna().all():
        decimals = int(texts.str.partition(".")[2].str.len().max())
        item.data_type = "float" if decimals else "integer"
        item.digits = decimals or None
    return item


def _findings_vlm(f: DatasetFile, variables: list[Var], own: list[DomainSpec]) -> None:
    dom = f.name
    testcd, test, result = f"{dom}TESTCD", f"{dom}TEST", f"{dom}ORRES"
    if not {testcd, test, result} <= set(f.columns):
        return
    by = [testcd]
    cat = f"{dom}CAT"
    if dom == "RS" and cat in f.columns and len(f.values(cat)) > 1:
        by = [cat, testcd]     # one test code under several response criteria
    names = {r[testcd]: r[test] for r in f.pairs([testcd], test).to_pylist()}
    pairs = f.pairs(by, result).to_pandas()
    parent = next(v for v in variables if v.name == result)
    items = []
    for key, group in pairs.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        item = _vlm_shape(result, group[result], parent)
        code = key[-1]
        item.label = names.get(code, code)[:40] if len(by) == 1 else f"{names.get(code, code)} ({key[0]})"[:200]
        items.append(ValueItem(Where(tuple(zip(by, key))), item))
    parent.vlm = items


def _supp_vlm(f: DatasetFile, parent_specs: list[DomainSpec], forms: FormsConfig) -> list[ValueItem]:
    labels = {r["QNAM"]: r["QLABEL"] for r in f.pairs(["QNAM"], "QLABEL").to_pylist()}
    values = f.pairs(["QNAM"], "QVAL").to_pandas()
    by_qnam = {s.qnam: (spec, s) for spec in parent_specs for s in spec.supp}
    items = []
    for qnam, group in values.groupby("QNAM", sort=True):
        if qnam in by_qnam:
            spec, s = by_qnam[qnam]
            # a qualifier reads the parent spec's source form
            origins, method, comment = _origin(f, "QVAL", [(spec, s.var)], forms)
        else:
            origins = [Origin("Collected", INVESTIGATOR)]
            method, comment = None, "Text beyond 200 characters of the parent variable, in QNAM order."
        parent = Var("QVAL", "", "text", origins=origins, method=method)
        item = _vlm_shape("QVAL", group["QVAL"], parent)
        item.label = labels.get(qnam, qnam)
        item.comment = comment
        item.mandatory = True          # a SUPP record exists only where the qualifier has a value
        item.name = qnam
        items.append(ValueItem(Where((("QNAM", qnam),)), item))
    return items

