"""Demographics and baseline characteristics from ADSL: descriptive statistics of numeric
variables and n (%) per level of categorical ones, by column group with a total."""
from __future__ import annotations

import numpy as np
import pandas as pd

from tlf.analyses.base import (
    Result,
    count_subjects,
    denominators,
    layout_rows,
    records_of,
    summarise,
)
from tlf.context import TlfInputError

MISSING = "Missing"
METHOD = ("Percentages of N, the subjects of the column; SD with n-1 degrees of freedom; "
          "quartiles by the SAS default (PCTLDEF=5).")


def _items(spec, key: str) -> list[dict]:
    items = spec.params.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) and "var" in i for i in items):
        raise TlfInputError(f"output {spec.id}: params.{key} must be a list of {{var, label}}",
                            field=f"params.{key}", hint="e.g. [{var: AGE, label: Age (years)}]")
    return items


def _need(ctx, spec, names: list[str], dataset: str = "ADSL") -> pd.DataFrame:
    df = ctx.dataset(dataset)
    missing = [n for n in names if n not in df]
    if missing:
        raise TlfInputError(f"output {spec.id}: {dataset} has no variable(s) {missing}",
                            file=ctx.adam_dir / f"{dataset.lower()}.parquet",
                            hint="fix the catalogue params or rebuild ADaM")
    return df


def level_order(adsl: pd.DataFrame, var: str, levels: list[str] | None = None) -> list[str]:
    """Display order of a categorical ADSL variable: the catalogue's `levels` first, then by its
    numeric twin `<var>N` where ADSL has one (AGEGR1N), else alphabetical; Missing last."""
    values = adsl[var].fillna("").astype(str)
    present = [v for v in values.unique() if v != ""]
    if f"{var}N" in adsl:
        twin = adsl.assign(_v=values).drop_duplicates("_v").set_index("_v")[f"{var}N"]
        present.sort(key=lambda v: (twin.get(v, np.inf), v))
    else:
        present.sort()
    given = [str(v) for v in levels or []]
    order = given + [v for v in present if v not in given]
    return order + ([MISSING] if (values == "").any() else [])


def categorical(adsl: pd.DataFrame, var: str, groups, outid: str):
    """n (%) of the population per level of `var` (PARAMCD = var, VARLVL = level)."""
    rec = records_of(adsl[["USUBJID", var]], "ADSL", seq=None)
    value = rec[var].fillna("").astype(str)
    rec = rec.assign(PARAMCD=var, VARLVL=value.where(value != "", MISSING))
    return count_subjects(rec, groups, outid)


def summary(ctx, spec) -> Result:
    """params: numeric [{var, label, digits (of min/max; mean/median/SD one more; default 1)}],
    categorical [{var, label, levels (optional display order)}]."""
    numeric, cats = _items(spec, "numeric"), _items(spec, "categorical")
    adsl = _need(ctx, spec, ["USUBJID", *(i["var"] for i in numeric + cats)])
    groups = ctx.groups(spec)
    ards, members = [], []
    a, m = denominators(groups, adsl, spec.id)
    ards.append(a), members.append(m)
    rows: list[tuple[str, dict, str]] = []
    for item in numeric:
        var = item["var"]
        if not pd.api.types.is_numeric_dtype(adsl[var]):
            raise TlfInputError(f"output {spec.id}: ADSL {var} is not numeric", field=var,
                                hint="list it under params.categorical")
        rec = records_of(adsl[["USUBJID", var]], "ADSL", seq=None).assign(PARAMCD=var)
        unit = str(item.get("unit", "")).upper()
        a, m = summarise(rec, var, groups, spec.id, digits=int(item.get("digits", 1)), unit=unit)
        ards.append(a), members.append(m)
        k = {"PARAMCD": var}
        rows += [(item.get("label", var), k, ""),
                 ("  n", k, "{n}"),
                 ("  Mean (SD)", k, "{mean} ({sd})"),
                 ("  Median", k, "{median}"),
                 ("  Q1, Q3", k, "{q1}, {q3}"),
                 ("  Min, Max", k, "{min}, {max}")]
    for item in cats:
        var = item["var"]
        a, m = categorical(adsl, var, groups, spec.id)
        ards.append(a), members.append(m)
        rows.append((f"{item.get('label', var)}, n (%)", {"PARAMCD": var}, ""))
        for lv in level_order(adsl[adsl["USUBJID"].isin(groups.frame["USUBJID"])], var,
                              item.get("levels")):
            rows.append((f"  {lv}", {"PARAMCD": var, "VARLVL": lv}, "{n} ({pct})"))
    ard = pd.concat(ards, ignore_index=True)
    table = layout_rows(ard, groups, rows, label_header="Characteristic")
    return Result(ard, pd.concat(members, ignore_index=True), table, method=METHOD)
