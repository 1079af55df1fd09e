"""Derivation rules written as data in the dataset specs, applied in the spec's order.

A spec entry may carry `rule:` — one of the kinds below — instead of code in a builder:

    copy:   DM.AGE                                      the predecessor variable, by USUBJID
    merge:  DS.DSDECOD, where: ..., order: [..], mode: first|last   from one record per subject
    first:  {EX.EXSTDTC: "EXCAT == 'CELL THERAPY'"}     earliest date over the sources
    last:   {...}                                       latest date over the sources
            (with impute: D|M for partial dates, time: true for a *DTM)
    date:   DTHDTC, impute: M, dtf: DTHDTF, max: [DCUTDT]   a date from the dataset's own --DTC
            (an imputed date is kept within min:/max: dates of the dataset)
    groups: [{if: "AGE < 65", value: "<65", n: 1}, ...], n_var: AGEGR1N
    map:    COUNTRY, values: {CHN: Asia, ...}
    flag:   "TRTSDT.notna()", false: N               Y where the condition holds
    exists: DS, where: "DSDECOD == 'DEATH'"            Y/N: the subject has such a record
    arm:    dose_level|cohort|arm, actual: true, numeric: true    treatment from study.yaml arms
    cutoff: true                                        the run's data cut-off date
    last_alive: {exclude: [DM]}                         latest complete date of any record
    disposition: "DSCAT == 'DISPOSITION EVENT'"         EOSSTT (+ EOSDT, DCSREAS) from the last such DS record

Builders handle what no rule expresses and say so in the spec's derivation text. A rule that
names an absent dataset or variable fails with the spec file and the variable.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from adam.categories import derive_var_flag, derive_var_map, derive_vars_cat
from adam.dates import compute_dt, compute_dtm
from adam.merged import (
    DateSource,
    RuleError,
    derive_var_extreme_dt,
    derive_var_merged_exist_flag,
    derive_vars_merged,
)
from adam.metadata import DatasetSpec, VarSpec

KINDS = ("copy", "merge", "first", "last", "date", "groups", "map", "flag", "exists", "arm",
         "cutoff", "last_alive", "disposition")
# Dataset-level and derived datasets carry no subject's own dates.
NOT_SUBJECT_DATES = ("TA", "TE", "TI", "TS", "TV", "RELREC")


def _split(ref: str, var: VarSpec) -> tuple[str, str]:
    if not isinstance(ref, str) or ref.count(".") != 1:
        raise RuleError(f"{ref!r} is not DATASET.VARIABLE", field=var.name, hint="e.g. EX.EXSTDTC")
    return tuple(ref.split("."))


def _sources(rule: dict, key: str, var: VarSpec) -> list[DateSource]:
    spec = rule[key]
    items = spec.items() if isinstance(spec, dict) else [(s, None) for s in ([spec] if isinstance(spec, str) else spec)]
    out = []
    for ref, where in items:
        dataset, date = _split(ref, var)
        out.append(DateSource(dataset, date, where, rule.get("impute", "n"), bool(rule.get("time"))))
    return out


def _arm_values(study, attr: str, numeric: bool) -> dict[str, object]:
    levels = [d.code for d in getattr(study, "dose_levels", [])]
    values: dict[str, object] = {}
    order: list[str] = []
    for arm in study.arms:
        if attr == "dose_level":
            level = next(d for d in study.dose_levels if d.code == arm.dose_level)
            text, n = f"{level.code} {level.label}", levels.index(level.code) + 1
        elif attr == "cohort":
            text = arm.cohort or arm.arm
            order += [text] if text not in order else []
            n = order.index(text) + 1
        else:
            text, n = arm.arm, [a.armcd for a in study.arms].index(arm.armcd) + 1
        values[arm.armcd] = float(n) if numeric else text
    return values


def apply_rule(adsl: pd.DataFrame, var: VarSpec, frames, study=None) -> pd.DataFrame:
    """`adsl` with `var` added by its rule (subject-level: one record per USUBJID)."""
    rule = var.rule or {}
    kinds = [k for k in KINDS if k in rule]
    if len(kinds) != 1:
        raise RuleError(f"a rule has exactly one of {', '.join(KINDS)}", field=var.name,
                        hint="fix the rule: entry of this variable in the dataset spec")
    kind = kinds[0]
    if kind == "copy":
        dataset, name = _split(rule["copy"], var)
        src = frames.get(dataset, (name,)) if dataset != "ADSL" else adsl
        if dataset == "ADSL":
            return adsl.assign(**{var.name: adsl[name]})
        return derive_vars_merged(adsl, src, {var.name: name})
    if kind == "merge":
        dataset, name = _split(rule["merge"], var)
        order = tuple(rule.get("order", ()))
        return derive_vars_merged(adsl, frames.get(dataset), {var.name: name}, where=rule.get("where"),
                                  order=order, mode=rule.get("mode", "first"))
    if kind in ("first", "last"):
        return derive_var_extreme_dt(adsl, var.name, frames, _sources(rule, kind, var), kind)
    if kind == "date":
        source = rule["date"]
        if source not in adsl.columns:
            raise RuleError(f"no variable {source} for the date", field=var.name, hint="copy it first or name another")
        if var.kind == "datetime":
            value, dflag, _ = compute_dtm(adsl[source], rule.get("impute", "h"))
        else:
            value, dflag = compute_dt(adsl[source], rule.get("impute", "n"), rule.get("imputation", "first"),
                                      [adsl[c] for c in rule.get("min", [])], [adsl[c] for c in rule.get("max", [])])
        out = adsl.assign(**{var.name: value})
        if rule.get("dtf"):
            out[rule["dtf"]] = dflag
        return out
    if kind == "groups":
        return derive_vars_cat(adsl, var.name, rule["groups"], rule.get("n_var"))
    if kind == "map":
        return derive_var_map(adsl, var.name, rule["map"], rule.get("values", {}))
    if kind == "flag":
        return derive_var_flag(adsl, var.name, rule["flag"], "Y", rule.get("false", "N"))
    if kind == "exists":
        return derive_var_merged_exist_flag(adsl, var.name, frames.get(rule["exists"]), rule.get("where"),
                                            "Y", rule.get("false", "N"))
    if kind == "cutoff":
        return adsl.assign(**{var.name: pd.Timestamp(frames.cutoff)})
    if kind == "last_alive":
        return adsl.assign(**{var.name: adsl["USUBJID"].map(compute_last_alive(frames, rule["last_alive"]))})
    if kind == "disposition":
        return derive_vars_disposition(adsl, frames.get("DS"), rule["disposition"])
    # arm
    if study is None:
        raise RuleError("an arm rule needs the study configuration", field=var.name)
    source = "ACTARMCD" if rule.get("actual") else "ARMCD"
    values = _arm_values(study, rule["arm"], bool(rule.get("numeric")))
    return adsl.assign(**{var.name: adsl[source].map(values)})


def compute_last_alive(frames, options: dict | None = None) -> pd.Series:
    """Per USUBJID, the latest complete date (YYYY-MM-DD) in any --DTC variable of any subject
    dataset, on or before the cut-off. `exclude` names datasets or DATASET.VARIABLE to skip
    (DM's reference dates are derived, not contacts; birth and death dates are not visits)."""
    exclude = set((options or {}).get("exclude", []))
    cutoff = pd.Timestamp(frames.cutoff).strftime("%Y-%m-%d")
    found = []
    for name in frames.names():
        if name in exclude or name in NOT_SUBJECT_DATES or name.startswith("SUPP"):
            continue
        df = frames.get(name)
        if df.empty or "USUBJID" not in df.columns:
            continue
        for col in (c for c in df.columns if c.endswith("DTC") and f"{name}.{c}" not in exclude):
            day = df[col].astype(str).str.slice(0, 10)
            full = day.str.fullmatch(r"\d{4}-\d{2}-\d{2}") & (day <= cutoff)
            found.append(pd.DataFrame({"USUBJID": df.USUBJID[full].to_numpy(), "DAY": day[full].to_numpy()}))
    if not found:
        return pd.Series(dtype="datetime64[ns]")
    days = pd.concat(found, ignore_index=True).groupby("USUBJID").DAY.max()
    return pd.to_datetime(days, format="%Y-%m-%d")


def derive_vars_disposition(adsl: pd.DataFrame, ds: pd.DataFrame, where: str) -> pd.DataFrame:
    """EOSSTT / EOSDT / DCSREAS from the last DS record meeting `where` (by DSSTDTC):
    COMPLETED when its DSDECOD is COMPLETED, else DISCONTINUED; ONGOING without one."""
    if not ds.empty and "DSSCAT" not in ds.columns:
        ds = ds.assign(DSSCAT="")      # Permissible in SDTMIG 3.4: absent means no subcategory
    out = derive_vars_merged(adsl, ds, {"_DECOD": "DSDECOD", "_DTC": "DSSTDTC"}, where=where,
                             order=("DSSTDTC",), mode="last")
    decod = out.pop("_DECOD").fillna("")
    out["EOSSTT"] = np.select([decod == "", decod == "COMPLETED"], ["ONGOING", "COMPLETED"], "DISCONTINUED")
    out["EOSDT"] = compute_dt(out.pop("_DTC").fillna(""))[0]
    out["DCSREAS"] = decod.where(out.EOSSTT == "DISCONTINUED", "")
    return out


def apply_rules(adsl: pd.DataFrame, spec: DatasetSpec, frames, study=None) -> pd.DataFrame:
    """Every spec variable with a rule, in spec order; errors name the spec file."""
    out = adsl
    for var in spec.variables:
        if var.rule is None:
            continue
        try:
            out = apply_rule(out, var, frames, study)
        except RuleError as exc:
            exc.file = exc.file or " + ".join(spec.sources)
            raise RuleError(exc.what, file=exc.file, field=exc.field, hint=exc.hint) from None
    return out
