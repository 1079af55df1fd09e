"""Field-level reconciliation: every collected field of every raw form lands somewhere.

A form counts as mapped only when each of its collected fields is either read by a mapping
spec (an SDTM variable, a SUPP-- qualifier, a filter or condition, or a subject-element start
rule) or listed as intentionally not submitted, with a reason, in
`mappings/common/not_submitted.yaml` (library forms) or `mappings/<STUDY>/not_submitted.yaml`
(the study's own forms; an entry there overrides the library's). Anything else is UNMAPPED:
the reconciliation report lists it and the tests fail on it.

The lists are data, read by people: form OID -> field OID -> reason. A listed field that a spec
does read is reported as stale (the list must say what is true), and a listed field the study's
forms do not have is a configuration error.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from clinpipe.errors import ConfigError
from clinpipe.paths import mappings_dir
from clinpipe.yamlio import load_yaml
from edc.forms import FormsConfig

NOT_SUBMITTED = "not_submitted.yaml"
COLUMNS = ["FORM", "FIELD", "LABEL", "STATUS", "USED_BY", "REASON"]
MAPPED, NOT_SUBMITTED_STATUS, UNMAPPED, STALE = "mapped", "not submitted", "UNMAPPED", "mapped but listed as not submitted"
_IDENT = re.compile(r"`([^`]+)`|\b([A-Z][A-Z0-9_]*(?:\.[A-Z][A-Z0-9_]*)?)\b")
_SUFFIXES = ("_DEC", "_RAW")


def load_not_submitted(study: str, forms: FormsConfig, root: Path | None = None) -> dict[tuple[str, str], str]:
    """(FORM, FIELD) -> reason, from the library list (forms the study takes) and the study's."""
    root = root or mappings_dir()
    out: dict[tuple[str, str], str] = {}
    for path in (root / "common" / NOT_SUBMITTED, root / study / NOT_SUBMITTED):
        if not path.exists():
            continue
        loaded = load_yaml(path)
        data = loaded.data or {}
        if not isinstance(data, dict):
            raise ConfigError("expected FORM: {FIELD: reason}", file=path)
        library = path.parent.name == "common"
        for form, fields in data.items():
            if form not in forms.form_by_oid:
                if library:
                    continue            # a library form this study does not take
                raise ConfigError(f"form {form!r} is not in the study's forms", file=path, field=form)
            known = forms.form(form).field_by_oid
            for fld, reason in (fields or {}).items():
                if fld not in known:
                    raise ConfigError(f"field {fld!r} is not in form {form}", file=path, field=f"{form}.{fld}",
                                      hint=f"{form} has {', '.join(known)}")
                if not isinstance(reason, str) or not reason.strip():
                    raise ConfigError("a field not submitted needs a reason", file=path, field=f"{form}.{fld}")
                out[(form, fld)] = " ".join(reason.split())
    return out


def _identifiers(text: str) -> list[str]:
    return [a or b for a, b in _IDENT.findall(text or "")]


def _condition_texts(arg, options: dict) -> list[str]:
    """Expressions of an `if:` mapping and of the `if:` mappings nested in its branches."""
    texts = [arg] if isinstance(arg, str) else []
    for key in ("then", "else"):
        branch = options.get(key)
        if isinstance(branch, dict) and "if" in branch:
            texts += _condition_texts(branch["if"], branch)
    return texts


def _field_ref(ref: str, source: str | None) -> tuple[str, str] | None:
    """'FIELD' or 'FORM.FIELD' as (FORM, FIELD), the form defaulting to the spec's source and
    FIELD without its _DEC / _RAW column suffix."""
    form, _, fld = ref.rpartition(".")
    form = form or source
    for suffix in _SUFFIXES:
        fld = fld.removesuffix(suffix)
    return (form, fld) if form else None


def variable_field_refs(spec) -> dict[str, set[tuple[str, str]]]:
    """SDTM variable -> the (FORM, FIELD) pairs its mapping reads (its algorithm's fields; the
    items' fields of a split; not the fields of a filter, which decide records, not values)."""
    from sdtm.algorithms import ALGORITHMS

    out = {}
    for var in spec.variables.values():
        refs = list(ALGORITHMS[var.algorithm].fields(var))
        if var.algorithm == "split_field":
            refs += [item[var.arg] for item in spec.split or [] if item.get(var.arg)]
        out[var.name] = {r for r in (_field_ref(ref, spec.source) for ref in refs) if r}
    return out


def spec_field_refs(spec) -> set[tuple[str, str]]:
    """(FORM, FIELD) pairs a spec reads, FIELD without its _DEC / _RAW column suffix."""
    from sdtm.algorithms import ALGORITHMS

    out = set().union(*variable_field_refs(spec).values())
    refs: list[str] = []
    for var in (s.var for s in spec.supp):
        refs += list(ALGORITHMS[var.algorithm].fields(var))
        if var.algorithm == "split_field":
            refs += [item[var.arg] for item in spec.split or [] if item.get(var.arg)]
    for var in [*spec.variables.values(), *(s.var for s in spec.supp)]:
        if var.algorithm == "if":
            for text in _condition_texts(var.arg, var.options):
                refs += _identifiers(text)
    if spec.filter:
        refs += _identifiers(spec.filter)
    # A split item's `field` is the raw result field of its SDTM record (sdtm.spec._split).
    refs += [item["field"] for item in spec.split or [] if item.get("field")]
    return out | {r for r in (_field_ref(ref, spec.source) for ref in refs) if r}


def field_coverage(forms: FormsConfig, specs: dict[str, list], not_submitted: dict[tuple[str, str], str],
                   element_rules=None, form_oids: list[str] | None = None) -> pd.DataFrame:
    """One row per collected field of each form (all the study's forms, or `form_oids`)."""
    used: dict[tuple[str, str], set[str]] = {}
    for group in specs.values():
        for spec in group:
            for ref in spec_field_refs(spec):
                used.setdefault(ref, set()).add(spec.path.name)
    if element_rules is not None:
        for top in element_rules.starts.values():
            for rule in (top, *top.by_arm.values()):
                for ref in rule.raw_fields():
                    form, _, fld = ref.partition(".")
                    used.setdefault((form, fld), set()).add("subject_elements.yaml")
    rows = []
    for oid in form_oids or list(forms.form_by_oid):
        form = forms.form(oid)
        for f in form.fields:
            key = (oid, f.oid)
            where = ", ".join(sorted(used.get(key, ())))
            reason = not_submitted.get(key, "")
            if where:
                status = STALE if reason else MAPPED
            else:
                status = NOT_SUBMITTED_STATUS if reason else UNMAPPED
            rows.append((oid, f.oid, f.label, status, where, reason))
    return pd.DataFrame(rows, columns=COLUMNS)


def form_field_summary(coverage: pd.DataFrame) -> pd.DataFrame:
    """Per form: how many fields are mapped / not submitted, and which are UNMAPPED or stale."""
    counts = pd.crosstab(coverage["FORM"], coverage["STATUS"])
    out = pd.DataFrame(index=pd.Index(coverage["FORM"].unique(), name="FORM"))
    out["FIELDS"] = coverage.groupby("FORM").size()
    for status, col in ((MAPPED, "FIELDS_MAPPED"), (NOT_SUBMITTED_STATUS, "FIELDS_NOT_SUBMITTED")):
        out[col] = counts.get(status, 0)
    for status, col in ((UNMAPPED, "FIELDS_UNMAPPED"), (STALE, "FIELDS_STALE")):
        bad = coverage[coverage["STATUS"] == status]
        out[col] = bad.groupby("FORM")["FIELD"].agg(", ".join)
    return out.fillna({"FIELDS_UNMAPPED": "", "FIELDS_STALE": "", "FIELDS_MAPPED": 0,
                       "FIELDS_NOT_SUBMITTED": 0}).reset_index()


def problems(coverage: pd.DataFrame, study: str) -> list[str]:
    """What a person must do about each unmapped or stale field (empty: every field lands)."""
    out = []
    for r in coverage[coverage["STATUS"] == UNMAPPED].itertuples(index=False):
        out.append(f"{study} form {r.FORM} field {r.FIELD} ({r.LABEL}) is UNMAPPED: map it in a spec under "
                   f"mappings/{study}/sdtm/ or mappings/common/sdtm/, or list it with the reason it is not "
                   f"submitted in mappings/{study}/{NOT_SUBMITTED} (or mappings/common/{NOT_SUBMITTED} "
                   f"for a library form)")
    for r in coverage[coverage["STATUS"] == STALE].itertuples(index=False):
        out.append(f"{study} form {r.FORM} field {r.FIELD} is read by {r.USED_BY} but listed as not "
                   f"submitted: remove it from the {NOT_SUBMITTED} list")
    return out
