"""SE (Subject Elements) from the design's elements and the subject's own dates, and the
frame EPOCH is derived from. Rules are data: `mappings/<STUDY>/subject_elements.yaml`."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from clinpipe.config import StudyConfig
from clinpipe.errors import ConfigError
from clinpipe.paths import mappings_dir
from clinpipe.yamlio import load_yaml, validation_error
from sdtm import dates


class ArmStart(BaseModel):
    """An element's start rule for the subjects of one arm (e.g. follow-up of a shortened arm)."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    first: list[str] | None = None
    after: dict[str, int] | None = None
    # FORM.FIELD -> days after the subject's latest date of that field (e.g. 21 days after the
    # last consolidation dose); used when the subject has the date, else `after` applies.
    after_last: dict[str, int] | None = None

    @model_validator(mode="after")
    def _one_rule(self):
        if (self.first is None) == (self.after is None and self.after_last is None):
            raise ValueError("give exactly one of first (raw date fields) or after (element: days) / "
                             "after_last (raw date field: days)")
        return self

    def raw_fields(self) -> list[str]:
        return [*(self.first or []), *(self.after_last or {})]


class ElementStart(ArmStart):
    # ARMCD -> the rule for that arm's subjects (their ACTARMCD, else ARMCD), instead of this one.
    by_arm: dict[str, ArmStart] = {}


class ElementRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    starts: dict[str, ElementStart]


def load_element_rules(study: StudyConfig, forms, root: Path | None = None) -> ElementRules:
    loaded = load_yaml((root or mappings_dir()) / study.study.studyid / "subject_elements.yaml")
    try:
        rules = ElementRules.model_validate(loaded.data)
    except ValidationError as exc:
        raise validation_error(loaded, exc) from None
    etcds = {e.etcd for e in study.elements}
    armcds = {a.armcd for a in study.arms}
    for etcd, top in rules.starts.items():
        bad_arms = set(top.by_arm) - armcds
        if bad_arms:
            raise ConfigError(f"unknown arm {min(bad_arms)!r}", file=loaded.path, field=f"starts.{etcd}.by_arm",
                              hint=f"arms are {', '.join(sorted(armcds))}")
        for rule in (top, *top.by_arm.values()):
            bad = [e for e in [etcd, *(rule.after or {})] if e not in etcds]
            if bad:
                raise ConfigError(f"unknown element {bad[0]!r}", file=loaded.path, field=f"starts.{etcd}",
                                  hint=f"elements are {', '.join(sorted(etcds))}")
            for ref in rule.raw_fields():
                form, _, fld = ref.partition(".")
                if form not in forms.form_by_oid or fld not in forms.form(form).field_by_oid:
                    raise ConfigError(f"raw field {ref!r} is not in the study's forms", file=loaded.path,
                                      field=f"starts.{etcd}")
    missing = etcds - set(rules.starts)
    if missing:
        raise ConfigError(f"no start rule for element(s) {sorted(missing)}", file=loaded.path,
                          hint="every element in study.yaml needs a rule")
    return rules


def _full_dates(frame: pd.DataFrame, fld: str) -> tuple[pd.Series, np.ndarray]:
    """(SUBJECT, date text) of the records with a full date in the field; the date test runs
    once per distinct text."""
    codes, distinct = pd.factorize(frame[fld].to_numpy())
    full = np.append(pd.Series(distinct, dtype=object).str.match(r"^\d{4}-\d{2}-\d{2}$")
                     .to_numpy(dtype=bool), False)[codes]
    return frame["SUBJECT"][full], frame[fld].to_numpy()[full]


def _per_subject(parts: list[tuple[pd.Series, np.ndarray]], how: str) -> pd.Series:
    """Earliest (how='min') or latest ('max') date text per SUBJECT over the parts: a groupby
    min/max of the texts, done on their sorted codes (pandas would compare the texts one by
    one in Python)."""
    subjects = pd.concat([s for s, _ in parts]).rename("SUBJECT")
    codes, dates = pd.factorize(np.concatenate([d for _, d in parts]), sort=True)
    best = pd.Series(codes, index=subjects.index).groupby(subjects).agg(how)
    return pd.Series(np.asarray(dates, dtype=object)[best.to_numpy()], index=best.index, name="DTC",
                     dtype=object)


def _first_dates(raw_active: dict[str, pd.DataFrame], refs: list[str]) -> pd.Series:
    """Earliest full date per SUBJECT over the fields (partial dates cannot start an element)."""
    parts = []
    for ref in refs:
        form, _, fld = ref.partition(".")
        parts.append(_full_dates(raw_active[form], fld))
    return _per_subject(parts, "min")


def _last_plus(raw_active: dict[str, pd.DataFrame], rule: ArmStart) -> pd.Series:
    """Per SUBJECT: the first `after_last` field the subject has, its latest full date + days."""
    out = pd.Series(dtype=object)
    for ref, days in (rule.after_last or {}).items():
        form, _, fld = ref.partition(".")
        last = _per_subject([_full_dates(raw_active[form], fld)], "max").rename(fld)
        last = pd.to_datetime(last) + pd.Timedelta(days=days)
        out = out.combine_first(last.dt.strftime("%Y-%m-%d"))
    return out


def build_se(study: StudyConfig, rules: ElementRules, dm: pd.DataFrame,
             raw_active: dict[str, pd.DataFrame]) -> pd.DataFrame:
    first = {(e, None): _first_dates(raw_active, r.first) for e, r in rules.starts.items() if r.first}
    first.update({(e, a): _first_dates(raw_active, r.first) for e, top in rules.starts.items()
                  for a, r in top.by_arm.items() if r.first})
    last_plus = {(e, None): _last_plus(raw_active, r) for e, r in rules.starts.items() if r.after_last}
    last_plus.update({(e, a): _last_plus(raw_active, r) for e, top in rules.starts.items()
                      for a, r in top.by_arm.items() if r.after_last})
    arms = {a.armcd: a for a in study.arms}
    names = {e.etcd: e for e in study.elements}
    default_path = max((a.elements for a in study.arms), key=len)
    rows = []
    for rec in dm.itertuples(index=False):      # one subject at a time: a few elements each
        subject = rec.SUBJID
        if rec.ARMNRS == "SCREEN FAILURE":
            path = default_path[:1]
        else:
            arm = arms.get(rec.ACTARMCD) or arms.get(rec.ARMCD)
            path = arm.elements if arm else default_path
        starts: dict[str, str] = {}
        armcd = rec.ACTARMCD or rec.ARMCD
        for etcd in path:
            rule, key = rules.starts[etcd], (etcd, None)
            if armcd in rule.by_arm:
                rule, key = rule.by_arm[armcd], (etcd, armcd)
            if rule.first:
                value = first[key].get(subject)
            else:
                value = last_plus[key].get(subject) if key in last_plus else None
                base = next(((e, d) for e, d in (rule.after or {}).items() if e in starts), None)
                if value is None and base:
                    value = (dt.date.fromisoformat(starts[base[0]]) + dt.timedelta(days=base[1])).isoformat()
                if value and rec.RFPENDTC and value > rec.RFPENDTC[:10]:
                    value = None     # participation ended before this element began
            if value:
                starts[etcd] = value
        ordered = sorted(starts.items(), key=lambda kv: (kv[1], path.index(kv[0])))
        arm = arms.get(rec.ACTARMCD)
        for k, (etcd, start) in enumerate(ordered):
            end = ordered[k + 1][1] if k + 1 < len(ordered) else rec.RFPENDTC
            rows.append({"STUDYID": rec.STUDYID, "DOMAIN": "SE", "USUBJID": rec.USUBJID, "ETCD": etcd,
                         "ELEMENT": names[etcd].element,
                         "TAETORD": float(arm.elements.index(etcd) + 1) if arm and etcd in arm.elements else float("nan"),
                         "EPOCH": names[etcd].epoch, "SESTDTC": start, "SEENDTC": end})
    se = pd.DataFrame(rows)
    se["SESEQ"] = se.groupby("USUBJID").cumcount().astype("float64") + 1
    ref = se["USUBJID"].map(dm.set_index("USUBJID")["RFSTDTC"])
    se["SESTDY"] = dates.study_day(se["SESTDTC"], ref)
    se["SEENDY"] = dates.study_day(se["SEENDTC"], ref)
    return se
