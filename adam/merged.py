"""Variables merged from another dataset (admiral's derive_vars_merged / derive_var_extreme_dt).

A `DateSource` names where a date comes from: a dataset, its --DTC variable, an optional
record filter and whether the first or last such record counts — the role of admiral's
`date_source()`. The extreme over several sources gives dates such as "first exposure to the
cell therapy" or "last known alive". The filter is a condition on the source's variables in
pandas' expression syntax (`EXCAT == 'CELL THERAPY'`), written in the dataset spec, so a
programmer reads the rule where define.xml will read its text.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from adam.dates import compute_dt, compute_dtm
from clinpipe.errors import ClinpipeError


class RuleError(ClinpipeError):
    """A derivation rule cannot be applied to the data it names."""


def condition_mask(df: pd.DataFrame, condition: str, what: str) -> np.ndarray:
    """True/false per record of `condition` (pandas expression syntax on `df`'s variables); a
    condition naming an absent variable, or not giving one truth value per record, is an
    error naming `what`."""
    try:
        result = df.eval(condition, engine="python")
    except Exception as exc:  # noqa: BLE001 - pandas raises many kinds (UndefinedVariableError, SyntaxError, ...)
        raise RuleError(f"the condition {condition!r} cannot be evaluated ({exc})", field=what,
                        hint="use the dataset's variable names and pandas expression syntax, "
                             "e.g. EXCAT == 'CELL THERAPY'") from None
    if isinstance(result, (bool, np.bool_)):
        return np.full(len(df), bool(result))
    if not isinstance(result, pd.Series) or result.dtype != bool:
        raise RuleError(f"the condition {condition!r} does not give true/false per record", field=what,
                        hint="compare a variable with a value, e.g. DSDECOD == 'DEATH'")
    return result.to_numpy()


def filter_records(df: pd.DataFrame, where: str | None, what: str) -> pd.DataFrame:
    """The records of `df` meeting `where` (all when None)."""
    if not where or df is None or df.empty:
        return df if df is not None else pd.DataFrame()
    return df[condition_mask(df, where, what)]


@dataclass(frozen=True)
class DateSource:
    dataset: str                 # SDTM (or ADaM) dataset name
    date: str                    # its --DTC (or numeric date) variable
    where: str | None = None     # condition on the dataset's variables
    # what a partial date may become: "n" none, "D"/"M" day/month imputed (first of the period)
    highest_imputation: str = "n"
    time: bool = False           # keep the time of day (for *DTM variables)

    def describe(self) -> str:
        text = f"{self.dataset}.{self.date}"
        return text + (f" where {self.where}" if self.where else "")


def _source_dates(frames, src: DateSource, mode: str) -> pd.DataFrame:
    df = frames.get(src.dataset)
    if df is None or df.empty:
        return pd.DataFrame({"USUBJID": pd.Series(dtype=object), "VALUE": pd.Series(dtype="datetime64[ns]")})
    if src.date not in df.columns:
        raise RuleError(f"{src.dataset} has no variable {src.date}", field=src.describe(),
                        hint="name a variable of the dataset")
    rows = filter_records(df, src.where, src.describe())
    if src.time:
        value = compute_dtm(rows[src.date], "h" if src.highest_imputation == "n" else src.highest_imputation,
                            time_imputation="first" if mode == "first" else "last")[0]
    else:
        value = compute_dt(rows[src.date], src.highest_imputation,
                           "first" if mode == "first" else "last")[0]
    return pd.DataFrame({"USUBJID": rows["USUBJID"].to_numpy(), "VALUE": value.to_numpy()})


def compute_extreme_dt(frames, sources: list[DateSource], mode: str = "first"
                       ) -> pd.Series:
    """Per USUBJID, the first (or last) date over all `sources`."""
    if mode not in ("first", "last"):
        raise ValueError("mode is first or last")
    dates = pd.concat([_source_dates(frames, s, mode) for s in sources], ignore_index=True)
    dates = dates[dates.VALUE.notna()]
    grouped = dates.groupby("USUBJID").VALUE
    return grouped.min() if mode == "first" else grouped.max()


def derive_var_extreme_dt(dataset: pd.DataFrame, new_var: str, frames,
                          sources: list[DateSource], mode: str = "first") -> pd.DataFrame:
    """Add `new_var`: the first/last date over `sources`, by USUBJID (missing where none)."""
    out = dataset.copy()
    extreme = compute_extreme_dt(frames, sources, mode)
    out[new_var] = pd.to_datetime(out["USUBJID"].map(extreme))
    return out


def derive_vars_merged(dataset: pd.DataFrame, add: pd.DataFrame, new_vars: dict[str, str],
                       by: tuple[str, ...] = ("USUBJID",), where: str | None = None,
                       order: tuple[str, ...] = (), mode: str = "first") -> pd.DataFrame:
    """Add `new_vars` ({new name: variable of `add`}) from the first/last record of `add`
    per `by` (after `where`, sorted by `order`). Keeps `dataset`'s rows and order."""
    rows = filter_records(add, where, ", ".join(new_vars))
    missing = [v for v in (*by, *order, *new_vars.values()) if v not in rows.columns]
    if missing and not rows.empty:
        raise RuleError(f"the dataset to merge has no variable(s) {', '.join(missing)}",
                        field=", ".join(new_vars), hint="name variables of the source dataset")
    out = dataset.copy()
    if rows.empty:
        for new in new_vars:
            out[new] = np.nan
        return out
    rows = rows.sort_values([*by, *order], kind="stable")
    picked = rows.drop_duplicates(list(by), keep="first" if mode == "first" else "last")
    picked = picked[[*by, *new_vars.values()]].rename(columns={v: k for k, v in new_vars.items()})
    return out.drop(columns=[c for c in new_vars if c in out.columns]).merge(picked, on=list(by), how="left")


def derive_var_merged_exist_flag(dataset: pd.DataFrame, new_var: str, add: pd.DataFrame,
                                 where: str | None = None, true: str = "Y", false: str = "N") -> pd.DataFrame:
    """Add `new_var` = `true` where the subject has a record of `add` meeting `where`."""
    rows = filter_records(add, where, new_var)
    out = dataset.copy()
    has = out["USUBJID"].isin(rows["USUBJID"]) if not rows.empty else pd.Series(False, index=out.index)
    out[new_var] = np.where(has, true, false)
    return out
