"""SDTM trial design datasets (TE, TA, TV, TI, TS) built from the study configuration.

No raw data: every value comes from `mappings/<STUDY>/study.yaml` (design, schedule,
`trial_summary`), the EDC dictionary (eligibility criteria) and the few run facts TS needs
(data cut-off, first/last subject dates, subjects enrolled). Variable names and order come from
`sdtm.metadata`; coded values are checked against the packaged CDISC CT, so a value that is
not a submission value fails here instead of in a validator.

Planned study day (TV.VISITDY). SDTM study day has no day 0: the reference start date
(RFSTDTC) is Day 1 and the day before it Day -1. The configuration counts days from anchors
with Day 0 = the anchor's date. For the anchor named `trial_summary.design.study_day_anchor`
(its date is RFSTDTC), anchor day d maps to study day d + 1 when d >= 0 and to d when d < 0
(`planned_study_day`). Visits on any other anchor have no fixed planned study day (the gap
between the two anchors differs by subject), so their VISITDY is null and TVSTRL carries the
rule relative to their own anchor.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pandas as pd

from clinpipe.config import CodedText, StudyConfig, TrialSummary, Visit
from clinpipe.errors import ConfigError
from edc.forms import FormsConfig
from sdtm.metadata import CT_VERSION, IG_VERSION, codelist, domain

# SDTM model version each IG version implements (TS SDTMVER); a new IG needs its entry here.
SDTM_MODEL_FOR_IG = {"3.4": "2.0"}
MAX_TEXT = 200                      # longest SDTM character value (XPT v5)
IE_CODELIST = "IECRIT"              # EDC codelist of eligibility criterion codes and texts
IE_PREFIX_CATEGORY = {"IN": "INCLUSION", "EX": "EXCLUSION"}
CDISC_CT = "CDISC CT"
ISO_8601 = "ISO 8601"               # dates and durations: no code, the value is the standard form
ISO_3166 = "ISO 3166"               # CT DICTNAM term for country codes (alpha-3 here)

# ISO 21090 null flavours used in TSVALNF.
NF_NOT_APPLICABLE = "NA"
NF_UNKNOWN = "UNK"
NF_NOT_YET_AVAILABLE = "NAV"        # e.g. study end date of an ongoing study
NF_POSITIVE_INFINITY = "PINF"       # no upper age limit


# -- shared helpers -------------------------------------------------------------------------

def planned_study_day(anchor_day: int) -> int:
    """SDTM study day of a day counted from the RFSTDTC anchor (anchor Day 0 = study Day 1)."""
    return anchor_day + 1 if anchor_day >= 0 else anchor_day


def _summary(study: StudyConfig) -> TrialSummary:
    if study.trial_summary is None:
        raise ConfigError("study.yaml has no trial_summary section", record=study.study.studyid,
                          hint="add trial_summary (TS facts and design rules) to the study's study.yaml")
    return study.trial_summary


def _frame(name: str, study: StudyConfig, rows: list[dict], extra: Iterable[str] = ()) -> pd.DataFrame:
    """Rows as a dataset with every SDTMIG variable of `name`, in IG order (then `extra`):
    absent character values are empty strings, absent numbers NaN."""
    meta = domain(name)
    columns = meta.names + [c for c in extra if c not in meta.names]
    df = pd.DataFrame(rows, columns=columns)
    df["STUDYID"] = study.study.studyid
    df["DOMAIN"] = name
    for var in meta.variables:
        if var.type == "Num":
            df[var.name] = pd.to_numeric(df[var.name]).astype("float64")
        else:
            df[var.name] = df[var.name].fillna("").astype(str)
    for col in columns[len(meta.names):]:
        df[col] = df[col].fillna("").astype(str)
    return df


def _ct_term(value: str, ref: str, what: str) -> str:
    """C-code of `value` in codelist `ref`; a non-submission value is a configuration error."""
    cl = codelist(ref)
    if value not in cl.terms:
        hint = f"did you mean {cl.lookup(value)!r}?" if cl.lookup(value) else f"one of {sorted(cl.terms)}"
        raise ConfigError(f"{what} {value!r} is not a submission value of {cl.short} ({cl.code})", hint=hint)
    return cl.terms[value]


# -- TE -------------------------------------------------------------------------------------

def build_te(study: StudyConfig) -> pd.DataFrame:
    durations = _summary(study).design.element_durations
    rows = [{"ETCD": e.etcd, "ELEMENT": e.element, "TESTRL": e.start_rule, "TEENRL": e.end_rule,
             "TEDUR": durations.get(e.etcd, "")} for e in study.elements]
    return _frame("TE", study, rows)


# -- TA -------------------------------------------------------------------------------------

def _epoch(epoch: str, etcd: str, extensions: list[str]) -> str:
    """A CT EPOCH term, or a sponsor term the study declares (C99079 is extensible). A declared
    extension that CT has (or has as a synonym) is an error: the CT term must be used."""
    cl = codelist("EPOCH")
    if epoch in extensions:
        if cl.lookup(epoch) is not None:
            raise ConfigError(f"epoch extension {epoch!r} is a term of {cl.short} ({cl.code})",
                              hint=f"use {cl.lookup(epoch)!r} and drop it from epoch_extensions")
        if not cl.extensible:
            raise ConfigError(f"{cl.short} ({cl.code}) is not extensible; {epoch!r} cannot be added")
        return epoch
    _ct_term(epoch, "EPOCH", f"element {etcd} epoch")
    return epoch


def build_ta(study: StudyConfig) -> pd.DataFrame:
    rules = _summary(study).design
    elements = {e.etcd: e for e in study.elements}
    rows = []
    for arm in study.arms:
        for order, etcd in enumerate(arm.elements, start=1):
            el = elements[etcd]
            rows.append({
                "ARMCD": arm.armcd, "ARM": arm.arm, "TAETORD": order, "ETCD": etcd,
                "ELEMENT": el.element,
                # The branch sits on the element at whose end the assignment happens (SDTMIG TA).
                # A shortened arm is where the path ends at the branch: its subjects are not
                # assigned to a later stage.
                "TABRANCH": ("" if etcd != rules.branch_element
                             else "Not assigned to a later stage" if arm.shortened else f"Assigned to {arm.arm}"),
                "TATRANS": rules.transitions.get(etcd, ""),
                "EPOCH": _epoch(el.epoch, etcd, rules.epoch_extensions),
            })
    return _frame("TA", study, rows)


# -- TV -------------------------------------------------------------------------------------

def _in_sentence(text: str) -> str:
    # Anchor texts read as sentences ("First glofitamab-based dose"); keep acronyms ("CAR-T").
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def _signed(n: int) -> str:
    return f"{n:+d}" if n else "0"


def _relative(day: int, anchor: str) -> str:
    anchor = _in_sentence(anchor)
    if day == 0:
        return f"On the day of {anchor}"
    unit = "day" if abs(day) == 1 else "days"
    return f"{abs(day)} {unit} {'after' if day > 0 else 'before'} {anchor}"


def _visit_rules(study: StudyConfig, visit: Visit) -> tuple[str, str]:
    """TVSTRL (planned day and window) and TVENRL (last day of the window)."""
    anchor = study.anchors[visit.anchor]
    before, after = visit.window
    start = _relative(visit.day, anchor)
    if visit.window != (0, 0):
        start += f", window {_signed(before)} to {_signed(after)} days"
    return start, _relative(visit.day + after, anchor)


def build_tv(study: StudyConfig) -> pd.DataFrame:
    ref_anchor = _summary(study).design.study_day_anchor
    rows = []
    for v in study.visits:
        start, end = _visit_rules(study, v)
        base = {"VISITNUM": v.visitnum, "VISIT": v.name,
                "VISITDY": planned_study_day(v.day) if v.anchor == ref_anchor else None,
                "TVSTRL": start, "TVENRL": end}
        # A visit for every arm has a blank ARMCD; an arm-specific one gets a row per arm.
        for armcd in v.arms or [None]:
            arm = study.arm(armcd).arm if armcd else ""
            rows.append({**base, "ARMCD": armcd or "", "ARM": arm})
    return _frame("TV", study, rows)


# -- TI -------------------------------------------------------------------------------------

_CRITERION_LABEL = re.compile(r"^(inclusion|exclusion)\s*\d+\s*:\s*", re.IGNORECASE)


def _ie_criteria(forms: FormsConfig) -> dict[str, str]:
    enr = forms.form(forms.enrolment_form)
    if not any(f.codelist == IE_CODELIST for f in enr.fields):
        raise ConfigError(f"enrolment form {enr.oid} has no field with codelist {IE_CODELIST}",
                          hint="TI is built from the eligibility criteria codelist of the enrolment form")
    return forms.codelists[IE_CODELIST]


def _ie_category(code: str) -> str:
    category = IE_PREFIX_CATEGORY.get(code[:2])
    if category is None:
        raise ConfigError(f"criterion code {code!r} starts with neither IN nor EX",
                          field=IE_CODELIST, hint="inclusion criteria are IN*, exclusion criteria EX*")
    _ct_term(category, "IECAT", "IECAT")
    return category


def _criterion_text(code: str, text: str) -> str:
    # The EDC decode repeats the criterion's label ("Inclusion 1: ..."); IETEST is the criterion.
    body = _CRITERION_LABEL.sub("", text).strip()
    body = body[:1].upper() + body[1:]
    if len(body) > MAX_TEXT:
        raise ConfigError(f"criterion {code} text is {len(body)} characters (IETEST allows {MAX_TEXT})",
                          field=IE_CODELIST, hint="shorten the decode; the full text stays in the protocol")
    return body


def build_ti(study: StudyConfig, forms: FormsConfig) -> pd.DataFrame:
    version = _summary(study).criteria_version
    rows = [{"IETESTCD": code, "IETEST": _criterion_text(code, text), "IECAT": _ie_category(code),
             "TIVERS": version} for code, text in _ie_criteria(forms).items()]
    return _frame("TI", study, rows)


# -- TS -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TsValue:
    value: str = ""
    null_flavor: str = ""
    code: str = ""
    ref: str = ""
    version: str = ""


@dataclass(frozen=True)
class _RunFacts:
    data_cutoff: dt.date | None
    first_subject_date: dt.date | None
    last_subject_date: dt.date | None
    actual_subjects: int | None


def _text(value: str) -> TsValue:
    return TsValue(value=value)


def _number(n: int) -> TsValue:
    return TsValue(value=str(n))


def _iso8601(value: str | dt.date) -> TsValue:
    return TsValue(value=value.isoformat() if isinstance(value, dt.date) else value, ref=ISO_8601)


def _null(flavor: str) -> TsValue:
    return TsValue(null_flavor=flavor)


def _coded(item: CodedText) -> TsValue:
    return TsValue(value=item.value, code=item.code or "", ref=item.dictionary or "",
                   version=item.version or "")


def _ct(study: StudyConfig, value: str, ref: str, parmcd: str) -> TsValue:
    return TsValue(value=value, code=_ct_term(value, ref, f"TS {parmcd}"), ref=CDISC_CT,
                   version=study.ct_version)


def _yn(study: StudyConfig, flag: bool, parmcd: str) -> TsValue:
    return _ct(study, "Y" if flag else "N", "NY", parmcd)


def _each(items, make: Callable, if_empty: str) -> list[TsValue]:
    return [make(i) for i in items] if items else [_null(if_empty)]


def _or_null(value, make: Callable, flavor: str) -> list[TsValue]:
    return [make(value)] if value is not None else [_null(flavor)]


def _countries(study: StudyConfig) -> list[TsValue]:
    # Alpha-3 codes are their own code in ISO 3166, so the value is also TSVALCD.
    return [TsValue(value=c, code=c, ref=ISO_3166) for c in sorted({s.country for s in study.sites})]


def _cohort_count(study: StudyConfig) -> list[TsValue]:
    cohorts = {a.cohort for a in study.arms if a.cohort}
    return [_number(len(cohorts))] if cohorts else []


Getter = Callable[[StudyConfig, TrialSummary, _RunFacts], list[TsValue]]

# TSPARMCD -> its values, in the order TS lists them. Multiple values get TSSEQ 1..n.
_PARAMETERS: tuple[tuple[str, Getter], ...] = (
    ("TITLE", lambda s, t, r: [_text(s.study.title)]),
    ("SPONSOR", lambda s, t, r: [_text(s.study.sponsor)]),
    ("REGID", lambda s, t, r: _each(t.registry_ids, _coded, NF_UNKNOWN)),
    ("STYPE", lambda s, t, r: [_ct(s, t.study_type, "C99077", "STYPE")]),
    ("TPHASE", lambda s, t, r: [_ct(s, s.study.phase, "C66737", "TPHASE")]),
    ("TTYPE", lambda s, t, r: [_ct(s, v, "C66739", "TTYPE") for v in t.trial_types]),
    ("TINDTP", lambda s, t, r: [_ct(s, v, "C66736", "TINDTP") for v in t.intent_types]),
    ("THERAREA", lambda s, t, r: [_text(v) for v in t.therapeutic_areas]),
    ("INDIC", lambda s, t, r: [_coded(v) for v in t.indications]),
    ("TDIGRP", lambda s, t, r: [_coded(v) for v in t.diagnosis_groups]),
    ("HLTSUBJI", lambda s, t, r: [_yn(s, t.healthy_subjects, "HLTSUBJI")]),
    ("TRT", lambda s, t, r: [_coded(v) for v in t.investigational_treatments]),
    ("PCLAS", lambda s, t, r: _each(t.pharmacological_classes, _coded, NF_UNKNOWN)),
    ("CURTRT", lambda s, t, r: _each(t.current_treatments, _coded, NF_NOT_APPLICABLE)),
    ("COMPTRT", lambda s, t, r: _each(t.comparators, _coded, NF_NOT_APPLICABLE)),
    ("ADDON", lambda s, t, r: [_yn(s, t.add_on, "ADDON")]),
    ("INTMODEL", lambda s, t, r: [_ct(s, t.intervention_model, "C99076", "INTMODEL")]),
    ("INTTYPE", lambda s, t, r: [_ct(s, v, "C99078", "INTTYPE") for v in t.intervention_types]),
    # Planned arms only: a shortened arm (multistage assignment, DM assumption 4b) is not planned.
    ("NARMS", lambda s, t, r: [_number(sum(not a.shortened for a in s.arms))]),
    ("NCOHORT", lambda s, t, r: _cohort_count(s)),
    ("RANDOM", lambda s, t, r: [_yn(s, t.randomized, "RANDOM")]),
    ("TBLIND", lambda s, t, r: [_ct(s, t.blinding, "C66735", "TBLIND")]),
    ("TCNTRL", lambda s, t, r: [_ct(s, t.control_type, "C66785", "TCNTRL")]),
    ("ADAPT", lambda s, t, r: [_yn(s, t.adaptive, "ADAPT")]),
    ("EXTTIND", lambda s, t, r: [_yn(s, t.extension_trial, "EXTTIND")]),
    ("PLANSUB", lambda s, t, r: [_number(t.planned_subjects)]),
    ("ACTSUB", lambda s, t, r: _or_null(r.actual_subjects, _number, NF_NOT_YET_AVAILABLE)),
    ("AGEMIN", lambda s, t, r: [_iso8601(t.min_age)]),
    ("AGEMAX", lambda s, t, r: _or_null(t.max_age, _iso8601, NF_POSITIVE_INFINITY)),
    ("SEXPOP", lambda s, t, r: [_ct(s, t.sex, "C66732", "SEXPOP")]),
    ("LENGTH", lambda s, t, r: [_iso8601(t.planned_length)]),
    ("STOPRULE", lambda s, t, r: [_text(v) for v in t.stopping_rules]),
    ("FCNTRY", lambda s, t, r: _countries(s)),
    ("OBJPRIM", lambda s, t, r: [_text(v) for v in t.objectives_primary]),
    ("OBJSEC", lambda s, t, r: _each(t.objectives_secondary, _text, NF_NOT_APPLICABLE)),
    ("OUTMSPRI", lambda s, t, r: [_text(v) for v in t.outcomes_primary]),
    ("OUTMSSEC", lambda s, t, r: _each(t.outcomes_secondary, _text, NF_NOT_APPLICABLE)),
    ("SSTDTC", lambda s, t, r: _or_null(r.first_subject_date, _iso8601, NF_NOT_YET_AVAILABLE)),
    # No last-subject date means the study has not ended: its end date is not yet available.
    ("SENDTC", lambda s, t, r: _or_null(r.last_subject_date, _iso8601, NF_NOT_YET_AVAILABLE)),
    ("DCUTDTC", lambda s, t, r: _or_null(r.data_cutoff, _iso8601, NF_NOT_YET_AVAILABLE)),
    ("DCUTDESC", lambda s, t, r: [_text(t.data_cutoff_description)]),
    ("SDTIGVER", lambda s, t, r: [_text(IG_VERSION)]),
    ("SDTMVER", lambda s, t, r: [_text(SDTM_MODEL_FOR_IG[IG_VERSION])]),
)


def ts_parameter_name(parmcd: str) -> str:
    """TSPARM of a TSPARMCD: the C67152 term with the same C-code (the two lists pair by code)."""
    code = _ct_term(parmcd, "C66738", "TSPARMCD")
    names = {c: name for name, c in codelist("C67152").terms.items()}
    return names[code]


def split_text(text: str, width: int = MAX_TEXT) -> list[str]:
    """Text in pieces of at most `width` characters, broken between words where possible."""
    pieces, rest = [], " ".join(text.split())
    while len(rest) > width:
        cut = rest.rfind(" ", 0, width + 1)
        cut = cut if cut > 0 else width
        pieces.append(rest[:cut])
        rest = rest[cut:].lstrip()
    return pieces + [rest]


def _ts_row(parmcd: str, seq: int, item: TsValue) -> dict:
    first, *more = split_text(item.value)
    row = {"TSSEQ": seq, "TSPARMCD": parmcd, "TSPARM": ts_parameter_name(parmcd), "TSVAL": first,
           "TSVALNF": item.null_flavor, "TSVALCD": item.code, "TSVCDREF": item.ref,
           "TSVCDVER": item.version}
    # Text over 200 characters continues in TSVAL1, TSVAL2, ... (SDTMIG TS assumption).
    row.update({f"TSVAL{i}": piece for i, piece in enumerate(more, start=1)})
    return row


def _check_ct_version(study: StudyConfig) -> None:
    if study.ct_version != CT_VERSION:
        raise ConfigError(f"study ct_version {study.ct_version} differs from the packaged CT {CT_VERSION}",
                          record=study.study.studyid,
                          hint="TSVALCD codes come from the packaged CT; align the two versions")


def build_ts(study: StudyConfig, *, data_cutoff: dt.date | None = None,
             first_subject_date: dt.date | None = None, last_subject_date: dt.date | None = None,
             actual_subjects: int | None = None) -> pd.DataFrame:
    """TS for the study; the run facts default to null flavour NAV (not yet available).
    `first_subject_date` is the earliest informed consent (FDA's study start date) and
    `last_subject_date` the study end date, given only once the study has ended."""
    _check_ct_version(study)
    summary = _summary(study)
    run = _RunFacts(data_cutoff, first_subject_date, last_subject_date, actual_subjects)
    rows = [_ts_row(parmcd, seq, item)
            for parmcd, values in _PARAMETERS
            for seq, item in enumerate(values(study, summary, run), start=1)]
    extra = sorted({c for r in rows for c in r if re.fullmatch(r"TSVAL\d+", c)}, key=lambda c: int(c[5:]))
    df = _frame("TS", study, rows, extra=extra)
    # TSVALn belong right after TSVAL.
    cols = [c for c in df.columns if c not in extra]
    at = cols.index("TSVAL") + 1
    return df[cols[:at] + extra + cols[at:]]


# -- all ------------------------------------------------------------------------------------

def build_trial_design(study: StudyConfig, forms: FormsConfig, **ts_kwargs) -> dict[str, pd.DataFrame]:
    return {"TA": build_ta(study), "TE": build_te(study), "TV": build_tv(study),
            "TI": build_ti(study, forms), "TS": build_ts(study, **ts_kwargs)}
