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
from edc.codes import factorize
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


def _lookup(dates: pd.Series, subjects: np.ndarray) -> np.ndarray:
    """Per subject: its date in the SUBJECT-indexed series, None when it has none."""
    values = dates.reindex(subjects).to_numpy(dtype=object)
    values[pd.isna(values)] = None
    return values


def _present(values: np.ndarray) -> np.ndarray:
    """Which subjects have a start (a date text; None or '' is none)."""
    return pd.notna(values) & (values != "")


def _days_after(starts: np.ndarray, days: int) -> np.ndarray:
    """Each start date + days, computed once per distinct date."""
    shifted = {d: (dt.date.fromisoformat(d) + dt.timedelta(days=days)).isoformat() for d in set(starts)}
    return pd.Series(starts, dtype=object).map(shifted).to_numpy(dtype=object)


def _situations(dm: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(situation per DM row, first row of each situation): subjects alike in screen-failure
    status, actual and planned arm follow the same element path under the same rules."""
    key = np.zeros(len(dm), dtype=np.int64)
    for column in ("ARMNRS", "ACTARMCD", "ARMCD"):
        values = dm[column].to_numpy()
        if column == "ARMNRS":
            values = values == "SCREEN FAILURE"
        codes, uniques = factorize(values)
        key = key * max(len(uniques), 1) + codes
    group, distinct = pd.factorize(key)
    first = np.zeros(len(distinct), dtype=np.intp)
    first[group[::-1]] = np.arange(len(dm))[::-1]
    return group, first


def build_se(study: StudyConfig, rules: ElementRules, dm: pd.DataFrame,
             raw_active: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One SE record per element a subject entered, in start order, each ending where the next
    begins (the last at RFPENDTC). The subjects of one situation (screen failure, arms) are
    worked out together, element by element along their path, on arrays over the subjects."""
    first = {(e, None): _first_dates(raw_active, r.first) for e, r in rules.starts.items() if r.first}
    first.update({(e, a): _first_dates(raw_active, r.first) for e, top in rules.starts.items()
                  for a, r in top.by_arm.items() if r.first})
    last_plus = {(e, None): _last_plus(raw_active, r) for e, r in rules.starts.items() if r.after_last}
    last_plus.update({(e, a): _last_plus(raw_active, r) for e, top in rules.starts.items()
                      for a, r in top.by_arm.items() if r.after_last})
    arms = {a.armcd: a for a in study.arms}
    names = {e.etcd: e for e in study.elements}
    default_path = max((a.elements for a in study.arms), key=len)
    subjects = dm["SUBJID"].to_numpy()
    end_of_study = dm["RFPENDTC"].to_numpy()
    last_day = pd.Series(end_of_study, dtype=object).str[:10].to_numpy(dtype=object)
    group, firsts = _situations(dm)
    parts = []      # (DM row, ETCD, start, position in the path, TAETORD) per element entered
    for g, row in enumerate(firsts):
        rec = dm.iloc[row]
        rows = np.flatnonzero(group == g)
        if rec["ARMNRS"] == "SCREEN FAILURE":
            path = default_path[:1]
        else:
            arm = arms.get(rec["ACTARMCD"]) or arms.get(rec["ARMCD"])
            path = arm.elements if arm else default_path
        armcd = rec["ACTARMCD"] or rec["ARMCD"]
        actual = arms.get(rec["ACTARMCD"])
        who, ends, cut_at = subjects[rows], end_of_study[rows], last_day[rows]
        starts: dict[str, np.ndarray] = {}
        for etcd in path:
            rule, key = rules.starts[etcd], (etcd, None)
            if armcd in rule.by_arm:
                rule, key = rule.by_arm[armcd], (etcd, armcd)
            if rule.first:
                value = _lookup(first[key], who)
            else:
                value = _lookup(last_plus[key], who) if key in last_plus else np.full(len(rows), None, dtype=object)
                based = np.zeros(len(rows), dtype=bool)   # the first `after` element the subject entered
                for base, days in (rule.after or {}).items():
                    if base not in starts:
                        continue
                    has = _present(starts[base]) & ~based
                    fill = has & pd.isna(value)
                    if fill.any():
                        value[fill] = _days_after(starts[base][fill], days)
                    based |= has
                # participation ended before this element began
                check = _present(value) & _present(ends)
                late = np.zeros(len(rows), dtype=bool)
                late[check] = value[check] > cut_at[check]
                value[late] = None
            entered = _present(value)
            if etcd in starts:
                starts[etcd] = np.where(entered, value, starts[etcd])
            else:
                starts[etcd] = np.where(entered, value, None)
        for etcd, value in starts.items():
            entered = _present(value)
            taetord = float(actual.elements.index(etcd) + 1) if actual and etcd in actual.elements else float("nan")
            parts.append((rows[entered], etcd, value[entered], path.index(etcd), taetord))
    if not parts:
        return pd.DataFrame()
    row = np.concatenate([p[0] for p in parts])
    etcd = np.concatenate([np.full(len(p[0]), p[1], dtype=object) for p in parts])
    start = np.concatenate([p[2] for p in parts]).astype(object)
    place = np.concatenate([np.full(len(p[0]), p[3]) for p in parts])
    taetord = np.concatenate([np.full(len(p[0]), p[4], dtype="float64") for p in parts])
    start_rank, _ = pd.factorize(start, sort=True)
    order = np.lexsort((place, start_rank, row))
    row, etcd, start, taetord = row[order], etcd[order], start[order], taetord[order]
    # each element ends where the subject's next one starts, the last at RFPENDTC
    end = end_of_study[row].astype(object)
    same = np.zeros(len(row), dtype=bool)
    same[:-1] = row[1:] == row[:-1]
    end[same] = start[1:][same[:-1]]
    se = pd.DataFrame({"STUDYID": dm["STUDYID"].to_numpy()[row], "DOMAIN": "SE",
                       "USUBJID": dm["USUBJID"].to_numpy()[row], "ETCD": etcd,
                       "ELEMENT": pd.Series(etcd).map({e: n.element for e, n in names.items()}).to_numpy(),
                       "TAETORD": taetord,
                       "EPOCH": pd.Series(etcd).map({e: n.epoch for e, n in names.items()}).to_numpy(),
                       "SESTDTC": start, "SEENDTC": end})
    se["SESEQ"] = se.groupby("USUBJID").cumcount().astype("float64") + 1
    ref = se["USUBJID"].map(dm.set_index("USUBJID")["RFSTDTC"])
    se["SESTDY"] = dates.study_day(se["SESTDTC"], ref)
    se["SEENDY"] = dates.study_day(se["SEENDTC"], ref)
    return se
