"""The study's EDC data dictionary: forms, fields and codelists, from `mappings/<STUDY>/forms.yaml`.

One source for the generator (what it writes), the CSV and ODM writers (columns,
MetaDataVersion) and the readers (labels, codelists, required system columns).

Column conventions of an export frame, per field type:
- `date`     -> `<OID>_RAW` (as the site typed it, e.g. "UN JAN 2025") and `<OID>` (ISO 8601,
               partial allowed, empty when the raw text is not a valid date)
- coded      -> `<OID>` (the code) and `<OID>_DEC` (its decode; empty for an unknown code)
- any other  -> `<OID>`
All values are text: the raw layer keeps exactly what the EDC held; typing happens in SDTM.
"""
from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from clinpipe.paths import mappings_dir
from clinpipe.yamlio import load_yaml, validation_error

# System columns every form's CSV starts with (ODM carries the same facts structurally).
SYSTEM_COLUMNS = (
    "STUDYID",        # ClinicalData/@StudyOID
    "SITEID",         # SubjectData/SiteRef/@LocationOID
    "SUBJECT",        # SubjectData/@SubjectKey
    "FOLDER",         # StudyEventData/@StudyEventOID
    "FOLDERNAME",     # StudyEventDef/@Name
    "FOLDERSEQ",      # StudyEventData/@StudyEventRepeatKey
    "FORM",           # FormData/@FormOID
    "RECORDPOSITION", # ItemGroupData/@ItemGroupRepeatKey
    "RECORDID",       # ItemGroupData/AuditRecord/SourceID
    "RECORDACTIVE",   # ItemGroupData/@TransactionType ("Remove" = inactivated -> 0)
    "LASTMODIFIED",   # ItemGroupData/AuditRecord/DateTimeStamp
)

FieldType = Literal["text", "integer", "float", "date", "time"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldDef(_Strict):
    oid: str = Field(pattern=r"^[A-Z][A-Z0-9]{0,7}$")
    label: str = Field(max_length=200)
    type: FieldType = "text"
    codelist: str | None = None
    required: bool = False
    length: int = Field(default=200, gt=0)
    range: tuple[float, float] | None = None   # EDC edit-check range for numerics
    unit: str | None = None

    def columns(self) -> list[str]:
        if self.type == "date":
            return [f"{self.oid}_RAW", self.oid]
        if self.codelist:
            return [self.oid, f"{self.oid}_DEC"]
        return [self.oid]


class FormDef(_Strict):
    oid: str = Field(pattern=r"^[A-Z][A-Z0-9]{0,7}$")
    name: str
    repeating: bool = False
    fields: list[FieldDef] = Field(min_length=1)

    @cached_property
    def field_by_oid(self) -> dict[str, FieldDef]:
        return {f.oid: f for f in self.fields}

    def data_columns(self) -> list[str]:
        return [c for f in self.fields for c in f.columns()]

    def columns(self) -> list[str]:
        return list(SYSTEM_COLUMNS) + self.data_columns()

    def labels(self) -> dict[str, str]:
        out = {}
        for f in self.fields:
            if f.type == "date":
                out[f"{f.oid}_RAW"] = f"{f.label} (as entered)"
            if f.codelist:
                out[f"{f.oid}_DEC"] = f"{f.label} (decode)"
            out[f.oid] = f.label
        return out


class FormsConfig(_Strict):
    enrolment_form: str  # every real subject has a record here; others are orphans
    codelists: dict[str, dict[str, str]]
    forms: list[FormDef] = Field(min_length=1)

    @model_validator(mode="after")
    def _refs(self):
        seen = set()
        for form in self.forms:
            if form.oid in seen:
                raise ValueError(f"form {form.oid!r} is defined twice")
            seen.add(form.oid)
            names = set()
            for f in form.fields:
                if f.oid in names:
                    raise ValueError(f"form {form.oid}: field {f.oid!r} is defined twice")
                names.add(f.oid)
                if f.codelist and f.codelist not in self.codelists:
                    raise ValueError(f"form {form.oid}: field {f.oid} names unknown codelist {f.codelist!r}")
        if self.enrolment_form not in seen:
            raise ValueError(f"enrolment_form {self.enrolment_form!r} is not a form here")
        return self

    @cached_property
    def form_by_oid(self) -> dict[str, FormDef]:
        return {f.oid: f for f in self.forms}

    def form(self, oid: str) -> FormDef:
        try:
            return self.form_by_oid[oid]
        except KeyError:
            raise KeyError(f"unknown form {oid!r}; forms are {sorted(self.form_by_oid)}") from None


def load_forms(study: str, root: Path | None = None) -> FormsConfig:
    """Load a study's forms.yaml; `common: [OID, ...]` pulls forms (and the codelists they
    use) from the sponsor library `mappings/common/forms.yaml`, ahead of the study's own."""
    base = root or mappings_dir()
    loaded = load_yaml(base / study / "forms.yaml")
    data = dict(loaded.data or {})
    common = data.pop("common", [])
    if common:
        library = load_yaml(base / "common" / "forms.yaml")
        lib_forms = {f["oid"]: f for f in library.data["forms"]}
        missing = [oid for oid in common if oid not in lib_forms]
        if missing:
            from clinpipe.errors import ConfigError
            raise ConfigError(f"common form(s) {missing} not in {library.path}", file=loaded.path,
                              field="common", hint=f"use one of {sorted(lib_forms)}")
        taken = [lib_forms[oid] for oid in common]
        # `extend: {AE: [fields]}` adds a study's own fields to a library form (e.g. GLOCART's
        # relationship to each of its study treatments), after the library's fields.
        extend = data.pop("extend", None) or {}
        unknown = [oid for oid in extend if oid not in common]
        if unknown:
            from clinpipe.errors import ConfigError
            raise ConfigError(f"extend names form(s) {unknown} the study does not take from the library",
                              file=loaded.path, field="extend", hint=f"extend one of {common}")
        taken = [{**f, "fields": [*f["fields"], *extend.get(f["oid"], [])]} for f in taken]
        used = {fld.get("codelist") for form in taken for fld in form["fields"]} - {None}
        codelists = {k: v for k, v in library.data["codelists"].items() if k in used}
        codelists.update(data.get("codelists") or {})
        data["codelists"] = codelists
        data["forms"] = taken + list(data.get("forms") or [])
    try:
        return FormsConfig.model_validate(data)
    except ValidationError as exc:
        raise validation_error(loaded, exc) from None
