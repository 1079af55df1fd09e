"""Groupings and flags from conditions (admiral's derive_vars_cat, derive_var_*_flag roles).

Groupings are data in the dataset spec: ordered (condition, value, number) rows, the first
condition a record meets wins; a record meeting none stays missing, never a default group.
Flags are one condition each. Conditions use pandas expression syntax on the dataset's own
variables (`AGE >= 65`, `TRTSDT.notna()`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from adam.merged import RuleError, condition_mask


def derive_vars_cat(dataset: pd.DataFrame, new_var: str, groups: list[dict],
                    new_var_n: str | None = None) -> pd.DataFrame:
    """Add `new_var` (and its numeric `new_var_n`) from `groups`: [{if, value, n}, ...]."""
    out = dataset.copy()
    conds = [condition_mask(out, g["if"], new_var) for g in groups]
    out[new_var] = np.select(conds, [g["value"] for g in groups], default="") if groups else ""
    if new_var_n:
        out[new_var_n] = np.select(conds, [float(g["n"]) for g in groups], default=np.nan)
    return out


def derive_var_flag(dataset: pd.DataFrame, new_var: str, condition: str, true: str = "Y",
                    false: str = "") -> pd.DataFrame:
    """Add `new_var` = `true` where `condition` holds, else `false` (ADSL population flags use
    Y/N; record-level flags Y/null, as ADaMIG 1.3 says)."""
    out = dataset.copy()
    out[new_var] = np.where(condition_mask(out, condition, new_var), true, false)
    return out


def derive_var_map(dataset: pd.DataFrame, new_var: str, source: str, values: dict) -> pd.DataFrame:
    """Add `new_var` = `values[source]`; a source value with no entry is an error naming it
    (a new country or code must be placed in a group on purpose, not fall out of tables)."""
    if source not in dataset.columns:
        raise RuleError(f"no variable {source} to map from", field=new_var, hint="name a variable of the dataset")
    out = dataset.copy()
    present = pd.Series(out[source].unique())
    unknown = sorted(str(v) for v in present if v not in values and v not in ("", None) and not pd.isna(v))
    if unknown:
        raise RuleError(f"{source} value(s) {', '.join(unknown)} have no {new_var} entry", field=new_var,
                        hint=f"add them to the {new_var} map in the dataset spec")
    out[new_var] = out[source].map(values).fillna("")
    return out
