"""Define-XML 2.1 for an SDTM or ADaM folder, built with odmlib and checked against the
Define-XML 2.1 schema shipped in `submission/standards/` (see its SOURCE.md).

    write_define("SDTM", "RS001", sdtm_folder, out / "define.xml")
    validate_define(out / "define.xml")     # [] when valid

The content comes from the project's metadata and the datasets written (see
`submission.define_sdtm`, `submission.define_adam`); this module only turns it into XML.
The same folder gives the same bytes: the timestamps are the data's own date (the manifest's
data cut-off or transfer date), OIDs are built from names, and every list is in a fixed order.
"""
from __future__ import annotations

import shutil
from functools import cache
from pathlib import Path

import odmlib.define_2_1.model as DEF
from lxml import etree

from clinpipe.errors import ClinpipeError
from submission.define_data import DefineInputError, read_folder
from submission.define_model import Codelist, Dataset, Define, Var, Where, oid_token

STANDARDS_DIR = Path(__file__).resolve().parent / "standards"
STYLESHEET = STANDARDS_DIR / "define2-1.xsl"
SCHEMA = STANDARDS_DIR / "schema" / "cdisc-define-2.1" / "define2-1-0.xsd"
DEFINE_VERSION = "2.1.10"          # the schema release in submission/standards/schema
LAYERS = ("SDTM", "ADaM")


class DefineError(ClinpipeError):
    """define.xml could not be written as a valid Define-XML 2.1 document."""


def write_define(standard: str, study: str, datasets_dir: Path, out_file: Path, *,
                 mappings: Path | None = None) -> Path:
    """Write `out_file` (define.xml) for the SDTM or ADaM folder `datasets_dir` of `study`,
    with `define2-1.xsl` copied beside it so a browser renders it. Returns `out_file`."""
    from clinpipe.paths import mappings_dir

    if standard not in LAYERS:
        raise DefineInputError(f"unknown standard {standard!r}", field="standard",
                               hint="use 'SDTM' or 'ADaM'")
    mappings = Path(mappings or mappings_dir())
    folder = read_folder(Path(datasets_dir))
    if folder.manifest.get("study") not in (None, study):
        raise DefineInputError(f"the folder holds study {folder.manifest['study']}, not {study}",
                               file=folder.path / "manifest.json", field="study",
                               hint="pass the study the folder was built for")
    if standard == "SDTM":
        from submission.define_sdtm import build_sdtm_define
        content = build_sdtm_define(study, folder, mappings)
    else:
        from submission.define_adam import build_adam_define
        content = build_adam_define(study, folder, mappings)
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_bytes(to_xml(content))
    shutil.copyfile(STYLESHEET, out_file.parent / STYLESHEET.name)
    errors = validate_define(out_file)
    if errors:
        raise DefineError(f"the written define.xml breaks the Define-XML 2.1 schema: {errors[0]}"
                          + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
                          file=out_file, hint="a clinpipe bug: report it with this message")
    return out_file


@cache
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMA)))


def validate_define(path: Path) -> list[str]:
    """Schema errors of a define.xml ('line N: message'), empty when it is valid."""
    try:
        doc = etree.parse(str(path))
    except (OSError, etree.XMLSyntaxError) as exc:
        return [f"not well-formed XML: {exc}"]
    schema = _schema()
    if schema.validate(doc):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


# -- content -> odmlib -----------------------------------------------------------------------------

def _text(cls, text: str):
    el = cls()
    el.TranslatedText.append(DEF.TranslatedText(_content=text, lang="en"))
    return el


class _Oids:
    """OIDs from names; two different things that clean to the same OID get a suffix."""

    def __init__(self):
        self._seen: dict[str, object] = {}

    def get(self, base: str, thing: object) -> str:
        oid, n = base, 1
        while oid in self._seen and self._seen[oid] != thing:
            n += 1
            oid = f"{base}.{n}"
        self._seen[oid] = thing
        return oid


class _Builder:
    def __init__(self, content: Define):
        self.c = content
        self.oids = _Oids()
        self.items: list = []
        self.value_lists: list = []
        self.wheres: dict[str, object] = {}
        self.methods: list = []
        self.comments: list = []

    def comment(self, oid: str, text: str | None) -> str | None:
        if not text:
            return None
        com = DEF.CommentDef(OID=oid)
        com.Description = _text(DEF.Description, text)
        self.comments.append(com)
        return oid

    def method(self, oid: str, name: str, text: str | None) -> str | None:
        if not text:
            return None
        m = DEF.MethodDef(OID=oid, Name=name[:200], Type="Computation")
        m.Description = _text(DEF.Description, text)
        self.methods.append(m)
        return oid

    def item_def(self, oid: str, var: Var, sas_name: str, codelist_oid: str | None, comment_oid: str | None,
                 value_list_oid: str | None = None):
        attrs = {"OID": oid, "Name": var.name, "DataType": var.data_type}
        if var.length is not None:
            attrs["Length"] = var.length
        if var.digits is not None:
            attrs["SignificantDigits"] = var.digits
        attrs["SASFieldName"] = sas_name
        if var.display_format:
            attrs["DisplayFormat"] = var.display_format
        if comment_oid:
            attrs["CommentOID"] = comment_oid
        item = DEF.ItemDef(**attrs)
        item.Description = _text(DEF.Description, var.label)
        if codelist_oid:
            item.CodeListRef = DEF.CodeListRef(CodeListOID=codelist_oid)
        for o in var.origins:
            origin = DEF.Origin(Type=o.type, **({"Source": o.source} if o.source else {}))
            if o.description:
                origin.Description = _text(DEF.Description, o.description)
            item.Origin.append(origin)
        if value_list_oid:
            item.ValueListRef = DEF.ValueListRef(ValueListOID=value_list_oid)
        self.items.append(item)

    def where(self, ds: str, where: Where) -> str:
        oid = self.oids.get(f"WC.{ds}.{where.oid_part()}", ("WC", ds, where))
        if oid not in self.wheres:
            wc = DEF.WhereClauseDef(OID=oid)
            for var, value in where.checks:
                rc = DEF.RangeCheck(Comparator="EQ", SoftHard="Soft", ItemOID=f"IT.{ds}.{var}")
                rc.CheckValue.append(DEF.CheckValue(_content=str(value)))
                wc.RangeCheck.append(rc)
            self.wheres[oid] = wc
        return oid

    def value_list(self, ds: str, var: Var) -> str:
        vl_oid = f"VL.{ds}.{var.name}"
        vl = DEF.ValueListDef(OID=vl_oid)
        for n, row in enumerate(var.vlm, 1):
            wc_oid = self.where(ds, row.where)
            it_oid = self.oids.get(f"IT.{ds}.{var.name}.{row.where.oid_part()}", ("IT", ds, var.name, row.where))
            item = row.var
            method_oid = None
            if any(o.type == "Derived" for o in item.origins):
                method_oid = f"MT.{ds}.{var.name}" if item.method == var.method and var.method else \
                    self.method(f"MT.{it_oid[3:]}", f"Algorithm to derive {item.name} ({item.label})", item.method
                                or "See the parent variable.")
            comment_oid = self.comment(f"COM.{it_oid[3:]}", item.comment)
            self.item_def(it_oid, item, var.name, self._codelist_oid(item), comment_oid)
            ref = DEF.ItemRef(ItemOID=it_oid, OrderNumber=n, Mandatory="Yes" if item.mandatory else "No",
                              **({"MethodOID": method_oid} if method_oid else {}))
            ref.WhereClauseRef.append(DEF.WhereClauseRef(WhereClauseOID=wc_oid))
            vl.ItemRef.append(ref)
        self.value_lists.append(vl)
        return vl_oid

    def _codelist_oid(self, var: Var) -> str | None:
        return f"CL.{var.codelist}" if var.codelist else None

    def dataset(self, ds: Dataset, standard_oids: dict[str, str]):
        attrs = {"OID": f"IG.{ds.name}", "Name": ds.name, "Repeating": "Yes" if ds.repeating else "No",
                 "IsReferenceData": "Yes" if ds.reference else "No", "SASDatasetName": ds.name}
        if ds.domain:
            attrs["Domain"] = ds.domain
        attrs.update({"Purpose": ds.purpose, "Structure": ds.structure, "ArchiveLocationID": f"LF.{ds.name}"})
        comment_oid = self.comment(f"COM.{ds.name}", ds.comment)
        if comment_oid:
            attrs["CommentOID"] = comment_oid
        attrs["StandardOID"] = standard_oids[ds.standard]
        ig = DEF.ItemGroupDef(**attrs)
        ig.Description = _text(DEF.Description, ds.label)
        for n, var in enumerate(ds.vars, 1):
            it_oid = f"IT.{ds.name}.{var.name}"
            method_oid = None
            if any(o.type == "Derived" for o in var.origins):
                method_oid = self.method(f"MT.{ds.name}.{var.name}", f"Algorithm to derive {ds.name}.{var.name}",
                                         var.method or "Derived by the pipeline; see the variable's comment.")
            ref = {"ItemOID": it_oid, "OrderNumber": n, "Mandatory": "Yes" if var.mandatory else "No"}
            if var.key:
                ref["KeySequence"] = var.key
            if method_oid:
                ref["MethodOID"] = method_oid
            if not var.has_data:
                ref["HasNoData"] = "Yes"
            ig.ItemRef.append(DEF.ItemRef(**ref))
            vl_oid = self.value_list(ds.name, var) if var.vlm else None
            self.item_def(it_oid, var, var.name, self._codelist_oid(var),
                          self.comment(f"COM.{ds.name}.{var.name}", var.comment), vl_oid)
        ig.Class = DEF.Class(Name=ds.cls)
        if ds.subclass:
            ig.Class.SubClass.append(DEF.SubClass(Name=ds.subclass))
        href = f"{ds.name.lower()}.xpt"
        ig.leaf = DEF.leaf(ID=f"LF.{ds.name}", href=href)
        ig.leaf.title = DEF.title(_content=href)
        return ig


def _codelist(cl: Codelist, standard_oids: dict[str, str]):
    attrs = {"OID": f"CL.{cl.key}", "Name": cl.name, "DataType": cl.data_type}
    if cl.standard:
        attrs["StandardOID"] = standard_oids[cl.standard]
    out = DEF.CodeList(**attrs)
    decoded = any(t.decode for t in cl.terms)
    for n, t in enumerate(cl.terms, 1):
        extra = {"ExtendedValue": "Yes"} if t.extended else {}
        if decoded:
            item = DEF.CodeListItem(CodedValue=t.value, OrderNumber=n, **extra)
            item.Decode = _text(DEF.Decode, t.decode or t.value)
            out.CodeListItem.append(item)
        else:
            item = DEF.EnumeratedItem(CodedValue=t.value, OrderNumber=n, **extra)
            out.EnumeratedItem.append(item)
        if t.code:
            item.Alias.append(DEF.Alias(Context="nci:ExtCodeID", Name=t.code))
    if cl.code:
        out.Alias.append(DEF.Alias(Context="nci:ExtCodeID", Name=cl.code))
    return out


def to_odm(c: Define) -> DEF.ODM:
    layer = c.layer.upper()
    odm = DEF.ODM(FileOID=f"DEF.{c.study}.{layer}", FileType="Snapshot", ODMVersion="1.3.2",
                  CreationDateTime=c.as_of, AsOfDateTime=c.as_of, Originator="clinpipe",
                  SourceSystem="clinpipe", SourceSystemVersion=c.version, Context="Submission")
    study = DEF.Study(OID=f"ST.{c.study}")
    gv = DEF.GlobalVariables()
    gv.StudyName = DEF.StudyName(_content=c.study)
    gv.StudyDescription = DEF.StudyDescription(_content=c.title)
    gv.ProtocolName = DEF.ProtocolName(_content=c.study)
    study.GlobalVariables = gv
    ig_std = next(s for s in c.standards if s.type == "IG")
    mdv = DEF.MetaDataVersion(OID=f"MDV.{c.study}.{layer}", Name=f"{c.study} {c.layer} define",
                              Description=f"{c.study} {c.layer} datasets ({ig_std.name} {ig_std.version}) "
                                          f"as of {c.as_of[:10]}",
                              DefineVersion=DEFINE_VERSION)
    standards = DEF.Standards()
    standard_oids = {}
    for s in c.standards:
        oid = f"STD.{oid_token(s.key)}.{s.version}" if s.type == "IG" else f"STD.{s.key}.{s.version}"
        standard_oids[s.key] = oid
        attrs = {"OID": oid, "Name": s.name, "Type": s.type}
        if s.publishing_set:
            attrs["PublishingSet"] = s.publishing_set
        standards.Standard.append(DEF.Standard(**attrs, Version=s.version, Status="Final"))
    mdv.Standards = standards
    b = _Builder(c)
    for ds in c.datasets:
        mdv.ItemGroupDef.append(b.dataset(ds, standard_oids))
    mdv.ValueListDef.extend(b.value_lists)
    mdv.WhereClauseDef.extend(b.wheres[k] for k in sorted(b.wheres))
    mdv.ItemDef.extend(b.items)
    used = {ref.CodeListOID for item in b.items if (ref := item.CodeListRef) is not None
            and getattr(ref, "CodeListOID", None)}
    mdv.CodeList.extend(_codelist(cl, standard_oids) for cl in c.codelists.values() if f"CL.{cl.key}" in used)
    mdv.MethodDef.extend(sorted(b.methods, key=lambda m: m.OID))
    mdv.CommentDef.extend(sorted(b.comments, key=lambda m: m.OID))
    study.MetaDataVersion = mdv
    odm.Study = study
    return odm


def to_xml(c: Define) -> bytes:
    """The document's bytes: XML declaration, the stylesheet instruction, indented content."""
    root = etree.fromstring(to_odm(c).to_xml_string().encode("utf-8"))
    etree.indent(root, space="  ")
    pi = etree.ProcessingInstruction("xml-stylesheet", f'type="text/xsl" href="{STYLESHEET.name}"')
    body = etree.tostring(root, encoding="UTF-8")
    return (b'<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(pi) + b"\n" + body + b"\n")
