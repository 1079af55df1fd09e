"""CDISC ODM 1.3.2 snapshot: the vendor-neutral export every EDC offers.

Writing: the envelope and `Study/MetaDataVersion` are built with lxml; the clinical data are
streamed subject by subject. The `ItemGroupData` text is assembled per form with vectorised
string operations over escaped unique values rather than one lxml element per item:
measured here, building lxml elements costs ~3.6 µs each (~4.5 min for a 3-million-record
export), the vectorised text ~10x less. Correctness is held by the XSD test and by reading
every export back with lxml.

Reading: lxml iterparse over `ItemGroupData`, clearing elements as it goes, so memory holds
the frames, not the tree. `_DEC` columns come from the ODM CodeLists, RECORDACTIVE from
TransactionType, RECORDID/LASTMODIFIED/SITEID from the AuditRecord.
"""
from __future__ import annotations

import gc
import re
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from lxml import etree

from clinpipe.config import StudyConfig
from clinpipe.errors import ExportError
from edc.export import SYSTEM_LABELS, FormMetadata, frames_for, generator_version
from edc.forms import SYSTEM_COLUMNS, FieldDef, FormDef, FormsConfig

NS = "http://www.cdisc.org/ns/odm/v1.3"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_CLINICAL_MARK = "clinical-data"
_CHUNK = 50_000  # records turned into text at a time: bounds memory, keeps numpy ops large
_INCOMPLETE = "the ODM MetaDataVersion is incomplete: ask for a corrected export"

# Characters XML 1.0 cannot carry at all, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
# In attributes, TAB/CR/LF must be character references or the parser normalises them away.
_ATTR = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                       "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"})
_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def odm_name(studyid: str) -> str:
    return f"{studyid.lower()}_odm.xml"


# OIDs share one namespace inside a MetaDataVersion (XSD UC-MDV-OID-unique), and a study may
# name a folder like a form (GLOCART's APH folder holds the APH form). Item groups keep the
# form OID (what the data call them); the other kinds get a dotted prefix, which neither
# folder nor form OIDs can contain.
_EVENT_PREFIX = "SE."


def study_event_oid(folder: str) -> str:
    return f"{_EVENT_PREFIX}{folder}"


def folder_of(event_oid: str) -> str:
    return event_oid.removeprefix(_EVENT_PREFIX)


def form_def_oid(form: str) -> str:
    return f"F.{form}"


def item_oid(form: str, column: str) -> str:
    return f"IT.{form}.{column}"


def codelist_oid(name: str) -> str:
    return f"CL.{name}"


def _escape(text: str, table: dict) -> str:
    if _NOT_XML.search(text):
        raise ValueError(f"value {text!r} holds a control character XML 1.0 cannot carry")
    return text.translate(table)


# -- writing --------------------------------------------------------------------------------

@dataclass
class _Folder:
    oid: str
    name: str
    kind: str  # ODM EventType
    repeating: bool = False
    forms: list[str] = field(default_factory=list)


def _folders(pairs: list[tuple[FormDef, pd.DataFrame]], study: StudyConfig) -> list[_Folder]:
    """Study events in schedule order: the visits, the study's other EDC folders, then any
    folder only the data name. Names come from the data when present (what the EDC showed)."""
    folders: dict[str, _Folder] = {}
    unscheduled = study.edc_folders.unscheduled
    for v in study.visits:
        folders[v.folder] = _Folder(v.folder, v.name, "Scheduled")
    for oid, name in study.edc_folders.names.items():
        kind = "Unscheduled" if oid == unscheduled else "Common"
        folders.setdefault(oid, _Folder(oid, name, kind, repeating=oid == unscheduled))
    for form, df in pairs:
        if df.empty:
            continue
        seen = df.drop_duplicates(["FOLDER"])[["FOLDER", "FOLDERNAME"]].itertuples(index=False)
        repeats = set(df.loc[df["FOLDERSEQ"] != "1", "FOLDER"])
        for oid, name in sorted(seen):
            f = folders.setdefault(oid, _Folder(oid, name or oid, "Common"))
            f.name = name or f.name
            f.forms.append(form.oid)
            f.repeating = f.repeating or oid in repeats
    return list(folders.values())


def _item_type(fld: FieldDef, column: str) -> tuple[str, int | None]:
    if column.endswith("_RAW"):
        return "text", 11  # "UN UNK 2025"
    if fld.type == "date":
        return "partialDate", None
    if fld.type == "time":
        return "partialTime", None
    if fld.type in ("integer", "float"):
        return fld.type, None
    return "text", fld.length


def _metadata(parent, forms: FormsConfig, study: StudyConfig, folders: list[_Folder],
              mdv_oid: str) -> None:
    sub = etree.SubElement
    info = study.study
    gv = sub(parent, _q("GlobalVariables"))
    sub(gv, _q("StudyName")).text = info.studyid
    sub(gv, _q("StudyDescription")).text = info.title
    sub(gv, _q("ProtocolName")).text = info.studyid
    mdv = sub(parent, _q("MetaDataVersion"), OID=mdv_oid, Name=f"{info.studyid} EDC build")
    protocol = sub(mdv, _q("Protocol"))
    for i, f in enumerate(folders, 1):
        sub(protocol, _q("StudyEventRef"), StudyEventOID=study_event_oid(f.oid), OrderNumber=str(i),
            Mandatory="No")
    order = {form.oid: i for i, form in enumerate(forms.forms)}
    for f in folders:
        sed = sub(mdv, _q("StudyEventDef"), OID=study_event_oid(f.oid), Name=f.name,
                  Repeating="Yes" if f.repeating else "No", Type=f.kind)
        for i, form_oid in enumerate(sorted(f.forms, key=order.get), 1):
            sub(sed, _q("FormRef"), FormOID=form_def_oid(form_oid), OrderNumber=str(i),
                Mandatory="No")
    for form in forms.forms:
        fd = sub(mdv, _q("FormDef"), OID=form_def_oid(form.oid), Name=form.name, Repeating="No")
        sub(fd, _q("ItemGroupRef"), ItemGroupOID=form.oid, Mandatory="Yes")
    for form in forms.forms:
        igd = sub(mdv, _q("ItemGroupDef"), OID=form.oid, Name=form.name,
                  Repeating="Yes" if form.repeating else "No", SASDatasetName=form.oid)
        for i, (fld, column) in enumerate(_item_columns(form), 1):
            # the site fills the raw text of a date, the EDC derives the ISO column
            entered = f"{fld.oid}_RAW" if fld.type == "date" else fld.oid
            sub(igd, _q("ItemRef"), ItemOID=item_oid(form.oid, column), OrderNumber=str(i),
                Mandatory="Yes" if fld.required and column == entered else "No")
    for form in forms.forms:
        labels = form.labels()
        for fld, column in _item_columns(form):
            data_type, length = _item_type(fld, column)
            idef = sub(mdv, _q("ItemDef"), OID=item_oid(form.oid, column), Name=column,
                       DataType=data_type)
            if length:
                idef.set("Length", str(length))
            question = sub(sub(idef, _q("Question")), _q("TranslatedText"))
            question.set(XML_LANG, "en")
            question.text = labels[column]
            if fld.range and column == fld.oid:
                for comparator, bound in (("GE", fld.range[0]), ("LE", fld.range[1])):
                    check = sub(idef, _q("RangeCheck"), Comparator=comparator, SoftHard="Soft")
                    sub(check, _q("CheckValue")).text = f"{bound:g}"
            if fld.codelist and column == fld.oid:
                sub(idef, _q("CodeListRef"), CodeListOID=codelist_oid(fld.codelist))
    used = sorted({f.codelist for form in forms.forms for f in form.fields if f.codelist})
    for name in used:
        cl = sub(mdv, _q("CodeList"), OID=codelist_oid(name), Name=name, DataType="text")
        for code, decode in forms.codelists[name].items():
            item = sub(cl, _q("CodeListItem"), CodedValue=code)
            text = sub(sub(item, _q("Decode")), _q("TranslatedText"))
            text.set(XML_LANG, "en")
            text.text = decode


def _item_columns(form: FormDef) -> list[tuple[FieldDef, str]]:
    """(field, column) for every column the ODM carries: `_DEC` is not an item, the CodeList
    gives the decode."""
    return [(f, c) for f in form.fields for c in f.columns() if not c.endswith("_DEC")]


class _Escaper:
    """Escape a column by its unique values (most cells repeat), remembering earlier ones."""

    def __init__(self, table: dict):
        self.table = table
        self.seen: dict[str, str] = {}

    def one(self, text: str) -> str:
        out = self.seen.get(text)
        if out is None:
            out = self.seen[text] = _escape(text, self.table)
        return out

    def many(self, values: np.ndarray) -> np.ndarray:
        codes, uniques = pd.factorize(values)
        return np.array([self.one(u) for u in uniques], dtype=object)[codes]


def _record_text(form: FormDef, cols: Mapping[str, np.ndarray], rows: np.ndarray,
                 attr: _Escaper, text: _Escaper) -> np.ndarray:
    """`<ItemGroupData>` text of the given rows of one form (AuditRecord, then ItemData)."""
    def take(column):
        return cols[column][rows]

    active = take("RECORDACTIVE") != "0"
    transaction = np.where(active, "Insert", "Remove").astype(object)
    out = (f'          <ItemGroupData ItemGroupOID="{form.oid}" ItemGroupRepeatKey="'
           + attr.many(take("RECORDPOSITION")) + '" TransactionType="' + transaction
           + '"><AuditRecord><UserRef UserOID="EDC"/><LocationRef LocationOID="'
           + attr.many(take("SITEID")) + '"/><DateTimeStamp>' + text.many(take("LASTMODIFIED"))
           + "</DateTimeStamp><SourceID>" + text.many(take("RECORDID"))
           + "</SourceID></AuditRecord>")
    for _, column in _item_columns(form):
        codes, uniques = pd.factorize(take(column))
        oid = item_oid(form.oid, column)
        items = np.array(["" if u == "" else f'<ItemData ItemOID="{oid}" Value="{attr.one(u)}"/>'
                          for u in uniques], dtype=object)
        out = out + items[codes]
    return out + "</ItemGroupData>\n"


_ORDER = ["subject", "folder_rank", "seq_n", "seq", "form", "pos_n", "row"]


def _record_order(pairs: list[tuple[FormDef, pd.DataFrame]],
                  folder_rank: dict[str, int]) -> pd.DataFrame:
    """All records as (form, row) in ODM order: subject, folder in schedule order, folder
    repeat, form in forms order, record position (numeric keys sort as numbers)."""
    parts = []
    for i, (_, df) in enumerate(pairs):
        if df.empty:
            continue
        parts.append(pd.DataFrame({
            "subject": df["SUBJECT"].to_numpy(),
            "folder_rank": df["FOLDER"].map(folder_rank).to_numpy(),
            "seq_n": pd.to_numeric(df["FOLDERSEQ"], errors="coerce").to_numpy(),
            "seq": df["FOLDERSEQ"].to_numpy(),
            "form": i,
            "pos_n": pd.to_numeric(df["RECORDPOSITION"], errors="coerce").to_numpy(),
            "row": np.arange(len(df))}))
    if not parts:
        return pd.DataFrame(columns=_ORDER)
    return pd.concat(parts, ignore_index=True).sort_values(_ORDER, kind="stable", ignore_index=True)


def write_odm(frames: Mapping[str, pd.DataFrame], forms: FormsConfig, study: StudyConfig,
              path: Path, *, creation_datetime: str | None = None) -> Path:
    """Write one ODM 1.3.2 snapshot of all forms. CreationDateTime defaults to the latest
    LASTMODIFIED so the same data give a byte-identical file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pairs = frames_for(forms, frames)
    stamps = [s for _, df in pairs if not df.empty and (s := df["LASTMODIFIED"].max())]
    created = creation_datetime or (max(stamps) if stamps else "2000-01-01T00:00:00")
    studyid = study.study.studyid
    mdv_oid = f"MDV.{studyid}.1"

    root = etree.Element(_q("ODM"), nsmap={None: NS})
    for key, value in (("Description", f"{studyid} EDC snapshot"), ("FileType", "Snapshot"),
                       ("FileOID", f"{studyid}.ODM.{re.sub(r'[^0-9T]', '', created)}"),
                       ("CreationDateTime", created), ("ODMVersion", "1.3.2"),
                       ("Originator", study.study.sponsor), ("SourceSystem", "clinpipe"),
                       ("SourceSystemVersion", generator_version())):
        root.set(key, value)
    folders = _folders(pairs, study)
    _metadata(etree.SubElement(root, _q("Study"), OID=studyid), forms, study, folders, mdv_oid)
    clinical = etree.SubElement(root, _q("ClinicalData"), StudyOID=studyid,
                                MetaDataVersionOID=mdv_oid)
    clinical.append(etree.Comment(_CLINICAL_MARK))  # where the streamed records go
    text = etree.tostring(root, encoding="unicode", pretty_print=True)
    head, tail = text.split(f"<!--{_CLINICAL_MARK}-->")

    folder_oids = [f.oid for f in folders]
    keys = _record_order(pairs, {oid: i for i, oid in enumerate(folder_oids)})
    folder_oids = np.array(folder_oids, dtype=object)
    columns = [{c: df[c].to_numpy() for c in df.columns} for _, df in pairs]
    form_oids = np.array([form.oid for form, _ in pairs], dtype=object)
    attr, text = _Escaper(_ATTR), _Escaper(_TEXT)
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        out.write(head.rstrip() + "\n")
        nesting = _Nesting(out, attr)
        for start in range(0, len(keys), _CHUNK):
            chunk = keys.iloc[start:start + _CHUNK]
            form_of = chunk["form"].to_numpy()
            row_of = chunk["row"].to_numpy()
            records = np.empty(len(chunk), dtype=object)
            sites = np.empty(len(chunk), dtype=object)
            for i in np.unique(form_of):
                sel = form_of == i
                records[sel] = _record_text(pairs[i][0], columns[i], row_of[sel], attr, text)
                sites[sel] = columns[i]["SITEID"][row_of[sel]]
            nesting.write(chunk["subject"].to_numpy(), sites,
                          folder_oids[chunk["folder_rank"].to_numpy()], chunk["seq"].to_numpy(),
                          form_oids[form_of], records)
        nesting.close()
        out.write("  " + tail.lstrip())
    return path


class _Nesting:
    """Opens and closes SubjectData / StudyEventData / FormData around consecutive records."""

    def __init__(self, out, attr: _Escaper):
        self.out, self.attr = out, attr
        self.subject = self.event = self.form = None

    def write(self, subjects, sites, folders, seqs, form_oids, records) -> None:
        parts: list[str] = []
        esc = self.attr.one
        for subject, site, folder, seq, form, record in zip(subjects, sites, folders, seqs,
                                                            form_oids, records):
            if subject != self.subject:
                self._close(parts, subject=True)
                parts.append(f'    <SubjectData SubjectKey="{esc(subject)}">\n'
                             f'      <SiteRef LocationOID="{esc(site)}"/>\n')
                self.subject = subject
            if (folder, seq) != self.event:
                self._close(parts, event=True)
                parts.append(f'      <StudyEventData StudyEventOID="{esc(study_event_oid(folder))}" '
                             f'StudyEventRepeatKey="{esc(seq)}">\n')
                self.event = (folder, seq)
            if form != self.form:
                self._close(parts)
                parts.append(f'        <FormData FormOID="{form_def_oid(form)}">\n')
                self.form = form
            parts.append(record)
        self.out.write("".join(parts))

    def _close(self, parts: list[str], event: bool = False, subject: bool = False) -> None:
        if self.form is not None:
            parts.append("        </FormData>\n")
            self.form = None
        if (event or subject) and self.event is not None:
            parts.append("      </StudyEventData>\n")
            self.event = None
        if subject and self.subject is not None:
            parts.append("    </SubjectData>\n")
            self.subject = None

    def close(self) -> None:
        parts: list[str] = []
        self._close(parts, subject=True)
        self.out.write("".join(parts))


# -- reading --------------------------------------------------------------------------------

_IGD, _SUBJ, _MDV = _q("ItemGroupData"), _q("SubjectData"), _q("MetaDataVersion")
_ITEM, _AUDIT = _q("ItemData"), _q("AuditRecord")
_LOCATION, _STAMP, _SOURCE = _q("LocationRef"), _q("DateTimeStamp"), _q("SourceID")
_FORMDATA, _EVENTDATA, _SITEREF = _q("FormData"), _q("StudyEventData"), _q("SiteRef")
_TYPED_ITEM = re.compile(rf"^\{{{re.escape(NS)}\}}ItemData[A-Z]")  # ItemDataString, ...


@dataclass
class OdmContent:
    study: str
    frames: dict[str, pd.DataFrame]          # form -> frame, not yet sorted by RECORDID
    metadata: dict[str, FormMetadata]
    records: int


@dataclass
class _Group:
    """One ItemGroupDef resolved against forms.yaml, collecting its records while parsing."""
    form: FormDef
    columns: dict[str, str]                              # item OID -> column
    decodes: dict[str, dict[str, str]]                   # coded field -> {code: decode}
    keys: list[tuple[str, ...]] = field(default_factory=list)    # system columns per record
    # ItemData as three flat lists (record, item OID, value): no tuple per item to allocate
    item_rows: list[int] = field(default_factory=list)
    item_oids: list[str] = field(default_factory=list)
    item_values: list[str] = field(default_factory=list)

    def frame(self, path: Path) -> pd.DataFrame:
        n = len(self.keys)
        cols: dict[str, np.ndarray] = {}
        by_record = zip(*self.keys) if n else [()] * len(SYSTEM_COLUMNS)
        for name, values in zip(SYSTEM_COLUMNS, by_record):
            cols[name] = np.array(values, dtype=object)
        for column in self.form.data_columns():
            cols[column] = np.full(n, "", dtype=object)
        if self.item_rows:
            rows = np.array(self.item_rows, dtype=np.int64)
            oids = np.array(self.item_oids, dtype=object)
            values = np.array(self.item_values, dtype=object)
            codes, uniques = pd.factorize(oids)
            order = np.argsort(codes, kind="stable")
            bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
            for k, oid in enumerate(uniques):
                if oid not in self.columns:
                    raise ExportError(f"ItemOID {oid} is not an item of form {self.form.oid} in "
                                      f"the MetaDataVersion", file=path, hint=_INCOMPLETE)
                take = order[bounds[k]:bounds[k + 1]]
                cols[self.columns[oid]][rows[take]] = values[take]
        for fld in self.form.fields:
            if fld.codelist:
                decode = self.decodes[fld.oid]
                cols[f"{fld.oid}_DEC"] = np.array([decode.get(c, "") for c in cols[fld.oid]],
                                                  dtype=object)
        return pd.DataFrame(cols, columns=self.form.columns())


@dataclass
class _Meta:
    study: str
    events: dict[str, str]
    groups: dict[str, _Group]
    metadata: dict[str, FormMetadata]


def _text_of(el) -> str:
    return (el.text or "") if el is not None else ""


def _read_metadata(mdv, forms: FormsConfig, path: Path) -> _Meta:
    """MetaDataVersion checked against forms.yaml: every form known, every item a column."""
    events = {e.get("OID"): e.get("Name") or folder_of(e.get("OID"))
              for e in mdv.iterfind(_q("StudyEventDef"))}
    lists: dict[str, tuple[str, dict[str, str]]] = {}
    for cl in mdv.iterfind(_q("CodeList")):
        decode = {it.get("CodedValue"): _text_of(it.find(f"{_q('Decode')}/{_q('TranslatedText')}"))
                  for it in cl.iterfind(_q("CodeListItem"))}
        decode.update({it.get("CodedValue"): "" for it in cl.iterfind(_q("EnumeratedItem"))})
        lists[cl.get("OID")] = (cl.get("Name") or cl.get("OID"), decode)
    items = {}
    for idef in mdv.iterfind(_q("ItemDef")):
        ref = idef.find(_q("CodeListRef"))
        question = _text_of(idef.find(f"{_q('Question')}/{_q('TranslatedText')}"))
        items[idef.get("OID")] = (idef.get("Name"),
                                  ref.get("CodeListOID") if ref is not None else None, question)
    form_names = {}
    for fd in mdv.iterfind(_q("FormDef")):
        for ref in fd.iterfind(_q("ItemGroupRef")):
            form_names.setdefault(ref.get("ItemGroupOID"), fd.get("Name"))
    groups, metadata = {}, {}
    for igd in mdv.iterfind(_q("ItemGroupDef")):
        oid = igd.get("OID")
        if oid not in forms.form_by_oid:
            raise ExportError(f"form {oid} is not defined in forms.yaml", file=path,
                              record=f"line {igd.sourceline}",
                              hint=f"add it to the study's forms.yaml; known forms are "
                                   f"{sorted(forms.form_by_oid)}")
        form = forms.form(oid)
        allowed = set(form.data_columns())
        columns, labels = {}, {**SYSTEM_LABELS, **form.labels()}
        for ref in igd.iterfind(_q("ItemRef")):
            ioid = ref.get("ItemOID")
            if ioid not in items:
                raise ExportError(f"ItemRef {ioid} has no ItemDef", file=path,
                                  record=f"line {ref.sourceline}", hint=_INCOMPLETE)
            name, _, question = items[ioid]
            if name not in allowed:
                raise ExportError(f"column {name} is not defined for form {oid} in forms.yaml",
                                  file=path, record=f"line {ref.sourceline}", field=name,
                                  hint="add the field to the study's forms.yaml or drop it from "
                                       "the export")
            columns[ioid] = name
            labels[name] = question or labels.get(name, name)
        by_name = {name: ioid for ioid, name in columns.items()}
        decodes, used, field_lists = {}, {}, {}
        for fld in form.fields:
            if not fld.codelist:
                continue
            cl_oid = items[by_name[fld.oid]][1] if fld.oid in by_name else None
            if cl_oid in lists:
                name, decode = lists[cl_oid]
            else:  # the ODM names no codelist for this item: forms.yaml is the reference
                name, decode = fld.codelist, forms.codelists[fld.codelist]
            decodes[fld.oid] = decode
            field_lists[fld.oid] = name
            used[name] = dict(decode)
        groups[oid] = _Group(form, columns, decodes)
        name = form_names.get(oid) or igd.get("Name") or form.name
        metadata[oid] = FormMetadata(form=oid, name=name, labels=labels,
                                     field_codelists=field_lists, codelists=used)
    study = mdv.getparent().get("OID") if mdv.getparent() is not None else ""
    return _Meta(study or "", events, groups, metadata)


def _xml_error(exc: etree.XMLSyntaxError, path: Path) -> ExportError:
    msg = (exc.msg or str(exc)).strip()
    line = exc.lineno or (exc.position[0] if exc.position else None)
    where = f"line {line}" if line else None
    if "encoding" in msg.lower() or "Bytes: 0x" in msg:
        return ExportError(f"bytes do not match the file's declared encoding ({msg})", file=path,
                           record=where,
                           hint="read it with the real encoding, e.g. `--encoding cp1252` "
                                "(read_transfer(..., encoding='cp1252')), or ask for a UTF-8 "
                                "re-export")
    return ExportError(f"ill-formed or truncated XML ({msg})", file=path, record=where,
                       hint="the file looks truncated or damaged: ask for a re-transfer")


def _root_tag(path: Path) -> str | None:
    try:
        for _, el in etree.iterparse(str(path), events=("start",), resolve_entities=False):
            return el.tag
    except (etree.XMLSyntaxError, OSError):
        return None
    return None


def peek_study(path: Path) -> str | None:
    """Study OID from the first Study or ClinicalData element (None if there is none). A root
    element other than ODM fails here, before anything else is attempted."""
    try:
        for _, el in etree.iterparse(str(path), events=("start",), resolve_entities=False):
            if el.getparent() is None and el.tag != _q("ODM"):
                raise ExportError(f"not a CDISC ODM 1.3 file (root element {el.tag})", file=path,
                                  hint=f"an ODM export has root element {{{NS}}}ODM")
            if el.tag in (_q("Study"), _q("ClinicalData")):
                return el.get("OID") or el.get("StudyOID")
    except (etree.XMLSyntaxError, OSError):
        return None  # the full read reports it with its details
    return None


@contextmanager
def _gc_paused():
    """Millions of records are kept as tuples until the frames are built: with the cyclic GC
    on, its repeated full scans of them made one step 30x slower (3-million-record export)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_odm(path: Path, forms: FormsConfig, encoding: str | None = None) -> OdmContent:
    """Read one ODM file into export frames (see the module docstring). `encoding`, when not
    UTF-8, overrides the encoding the file declares."""
    path = Path(path)
    reader = _OdmReader(path, forms)
    utf8 = not encoding or encoding.replace("-", "").lower() == "utf8"
    override = {} if utf8 else {"encoding": encoding}
    with _gc_paused():
        try:
            reader.run(etree.iterparse(str(path), events=("end",), tag=(_MDV, _IGD, _SUBJ),
                                       huge_tree=True, resolve_entities=False, **override))
        except etree.XMLSyntaxError as exc:
            raise _xml_error(exc, path) from None
        except OSError as exc:
            raise ExportError(f"cannot read the file ({exc})", file=path,
                              hint="check the file exists and is readable") from None
        meta = reader.meta
        if meta is None:
            raise ExportError(f"no ODM 1.3 Study/MetaDataVersion found (root element "
                              f"{_root_tag(path)})", file=path,
                              hint=f"an ODM export has root element {{{NS}}}ODM with a "
                                   f"MetaDataVersion")
        frames = {oid: group.frame(path) for oid, group in meta.groups.items()}
    study = reader.subject_keys[0] if reader.subject_keys else meta.study
    return OdmContent(study=study, frames=frames, metadata=meta.metadata, records=reader.count)


class _OdmReader:
    """Walks the iterparse events: metadata first, then each ItemGroupData with the keys of
    its enclosing FormData / StudyEventData / SubjectData (looked up once per parent)."""

    def __init__(self, path: Path, forms: FormsConfig):
        self.path, self.forms = path, forms
        self.meta: _Meta | None = None
        self.count = 0
        self.form_el = self.event_el = self.subject_el = None
        self.form_remove = False
        self.event_keys: tuple = ()
        self.subject_keys: tuple = ()

    def run(self, events) -> None:
        for _, el in events:
            tag = el.tag
            if tag == _IGD:
                form_el = el.getparent()
                if form_el is not self.form_el:
                    self._enter(el, form_el)
                self._record(el)
                self.count += 1
                el.clear()
                while el.getprevious() is not None:  # drop the records already read
                    del form_el[0]
            elif tag == _SUBJ:
                el.clear()
                parent = el.getparent()
                while el.getprevious() is not None:
                    del parent[0]
            elif el.getroottree().getroot().tag == _q("ODM"):
                self.meta = _read_metadata(el, self.forms, self.path)
            else:
                return

    def _fail(self, what: str, el, hint: str) -> ExportError:
        return ExportError(what, file=self.path, record=f"line {el.sourceline}", hint=hint)

    def _enter(self, el, form_el) -> None:
        """A new FormData (and maybe StudyEventData / SubjectData): read their keys."""
        meta = self.meta
        if meta is None:
            raise self._fail("ClinicalData comes before the Study/MetaDataVersion", el,
                             "an ODM export must define its forms before its data")
        event_el = form_el.getparent()
        subject_el = event_el.getparent() if event_el is not None else None
        if (form_el.tag, getattr(event_el, "tag", None), getattr(subject_el, "tag", None)) != \
                (_FORMDATA, _EVENTDATA, _SUBJ):
            raise self._fail("ItemGroupData is not inside SubjectData/StudyEventData/FormData", el,
                             "the file does not follow the ODM 1.3 ClinicalData structure")
        if subject_el is not self.subject_el:
            self.subject_el = subject_el
            site = subject_el.find(_SITEREF)
            self.subject_keys = (subject_el.getparent().get("StudyOID", meta.study),
                                 site.get("LocationOID", "") if site is not None else "",
                                 subject_el.get("SubjectKey", ""),
                                 subject_el.get("TransactionType") == "Remove")
        if event_el is not self.event_el:
            self.event_el = event_el
            folder = event_el.get("StudyEventOID")
            if folder not in meta.events:
                raise self._fail(f"StudyEventOID {folder} has no StudyEventDef", event_el,
                                 _INCOMPLETE)
            self.event_keys = (folder_of(folder), meta.events[folder],
                               event_el.get("StudyEventRepeatKey") or "1",
                               event_el.get("TransactionType") == "Remove")
        self.form_el = form_el
        self.form_remove = form_el.get("TransactionType") == "Remove"

    def _record(self, el) -> None:
        """One ItemGroupData into its group's lists (the hot loop of the reader)."""
        group = self.meta.groups.get(el.get("ItemGroupOID"))
        if group is None:
            raise self._fail(f"ItemGroupOID {el.get('ItemGroupOID')} has no ItemGroupDef", el,
                             _INCOMPLETE)
        row = len(group.keys)
        rows, oids, values = group.item_rows, group.item_oids, group.item_values
        seen = 0
        for child in el.iterchildren(_ITEM):  # the tag filter runs in C
            seen += 1
            value = child.get("Value")
            if value:  # an IsNull item has no Value
                rows.append(row)
                oids.append(child.get("ItemOID"))
                values.append(value)
        if len(el) > seen + 1:  # more than the AuditRecord besides: ItemDataString and friends?
            for child in el:
                if isinstance(child.tag, str) and _TYPED_ITEM.match(child.tag) and child.text:
                    rows.append(row)
                    oids.append(child.get("ItemOID"))
                    values.append(child.text)
        site = stamp = source = None
        audit = el[0] if len(el) else None  # the schema puts AuditRecord first
        if audit is not None and audit.tag == _AUDIT:
            for part in audit:  # iterating beats find(): no path parsing per call
                tag = part.tag
                if tag == _SOURCE:
                    source = part.text
                elif tag == _STAMP:
                    stamp = part.text
                elif tag == _LOCATION:
                    site = part.get("LocationOID")
        if not source:
            raise self._fail("ItemGroupData has no AuditRecord/SourceID (the EDC record id)", el,
                             "export the ODM with audit records, or deliver CSV")
        studyid, subject_site, subject, subject_remove = self.subject_keys
        folder, folder_name, seq, event_remove = self.event_keys
        removed = (el.get("TransactionType") == "Remove" or self.form_remove or event_remove
                   or subject_remove)
        group.keys.append((studyid, site or subject_site, subject, folder, folder_name, seq,
                           group.form.oid, el.get("ItemGroupRepeatKey") or "1", source.strip(),
                           "0" if removed else "1", (stamp or "").strip()))
