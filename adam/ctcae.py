"""CTCAE v5.0 grading of laboratory results from the numeric result (ADLB ATOXGRL/ATOXGRH, BTOXGR*).

Criteria: NCI Common Terminology Criteria for Adverse Events v5.0 (27 Nov 2017), laboratory
terms as read by pharmaverse/admiral, in `adam/metadata/ctcae_v5_lab.csv` (built by
`tools/build_ctcae.py`; its docstring describes the columns). The project's LB tests and their
terms per direction are in `adam/metadata/ctcae_lab_terms.csv`.

Grammar follows admiral: `derive_vars_atoxdsc` (ATOXDSCL/ATOXDSCH from the test code),
`derive_var_atoxgr_dir` (ATOXGRL or ATOXGRH), `derive_var_atoxgr` (ATOXGR, low grades negative)
and `derive_var_btoxgr` (BTOXGR*: the grade of the ABLFL record). `compute_ctcae_grade` does
the work on plain arrays. Everything is vectorised: Python loops run over terms and rules, never
over records.

A grade is "0".."4" or missing:
- the rules of a term are tried in order; the first that holds gives the grade, or no grade
  when the rule says the criterion cannot be applied (AVAL missing; LLN/ULN/BASE missing where
  the criterion needs them);
- "0" when AVAL is present and no rule holds (within the criteria, not abnormal per CTCAE);
- missing when the term is unknown, has no criteria in the requested direction, or its criteria
  are in a unit (`unit` column) other than the result's (compared case-insensitively; a missing
  unit is not the criteria's unit). Terms graded on multiples of LLN/ULN/baseline have no unit.
Rounding as admiral: both sides of every comparison are rounded to `signif_dig` significant
digits (default 8, R `signif`), so 3 x 1.1 compares as 3.3, not 3.3000000000000003.
Baseline normal/abnormal (ALT, AST, ALP, GGT, bilirubin) is BNRIND in `high_indicator`
("HIGH"), as admiral; a missing BNRIND counts as normal. Without BNRIND at all,
`compute_ctcae_grade` takes BASE > ANRHI as abnormal.
"""
from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

METADATA_DIR = Path(__file__).resolve().parent / "metadata"
CRITERIA_FILE = METADATA_DIR / "ctcae_v5_lab.csv"
LAB_TERMS_FILE = METADATA_DIR / "ctcae_lab_terms.csv"
SIGNIF_DIG = 8
GRADES = ("0", "1", "2", "3", "4")
DIRECTIONS = {"L": "ATOXDSCL", "H": "ATOXDSCH"}


@cache
def criteria() -> pd.DataFrame:
    """All criteria rows (both unit systems), as strings except `rule`, `clause`, `number`."""
    df = pd.read_csv(CRITERIA_FILE, dtype=str, keep_default_na=False)
    df["rule"] = df["rule"].astype(int)
    df["clause"] = df["clause"].astype(int)
    df["number"] = pd.to_numeric(df["number"].replace("", np.nan))
    return df


@cache
def lab_terms() -> pd.DataFrame:
    """The project's LB tests graded by CTCAE: LBTESTCD, direction (L/H), term, unit."""
    return pd.read_csv(LAB_TERMS_FILE, dtype=str, keep_default_na=False)


def signif(x, digits: int = SIGNIF_DIG) -> np.ndarray:
    """R's `signif`: round to `digits` significant digits; 0, NaN and inf unchanged."""
    x = np.asarray(x, dtype=float)
    ok = np.isfinite(x) & (x != 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        e = np.where(ok, digits - 1 - np.floor(np.log10(np.abs(np.where(ok, x, 1.0)))), 0.0)
        up = np.round(x * 10.0 ** np.maximum(e, 0)) / 10.0 ** np.maximum(e, 0)
        down = np.round(x / 10.0 ** np.maximum(-e, 0)) * 10.0 ** np.maximum(-e, 0)
    return np.where(ok, np.where(e >= 0, up, down), x)


def _num(values, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, np.nan)
    if np.ndim(values) == 0:
        values = [values] * n
    s = pd.to_numeric(pd.Series(np.asarray(values, dtype=object)), errors="coerce")
    return s.astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def _text(values, n: int) -> np.ndarray:
    if values is None or np.ndim(values) == 0:
        values = [values] * n
    s = pd.Series(np.asarray(values, dtype=object))
    return s.where(s.notna(), "").astype(str).str.strip().to_numpy(dtype=object)


def _reference(kind: str, k: float, x: dict[str, np.ndarray], n: int) -> np.ndarray:
    """The threshold of a clause: a value, k x LLN/ULN/BASE, or ULN + k."""
    if kind == "value":
        return np.full(n, k)
    if kind == "ULN+":
        return x["ANRHI"] + k
    return k * x[{"LLN": "ANRLO", "ULN": "ANRHI", "BASE": "BASE"}[kind]]


_OPS = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}


def compute_ctcae_grade(term, aval, anrlo=None, anrhi=None, base=None, *, unit=None, bnrind=None,
                        pchg=None, direction: str | None = None, system: str = "SI",
                        signif_dig: int = SIGNIF_DIG,
                        high_indicator: tuple[str, ...] = ("HIGH",)) -> pd.Series:
    """CTCAE v5.0 grade ("0".."4", or None) of each result; arguments are arrays or scalars.

    `term` is the CTCAE term of each record (e.g. ATOXDSCL); `direction` ("L"/"H"), when
    given, grades only terms of that direction. `pchg` defaults to 100 x (AVAL - BASE) / BASE.
    `system` "SI" or "CV" (US conventional) picks the criteria's unit system.
    """
    index = aval.index if isinstance(aval, pd.Series) else None
    n = len(aval) if np.ndim(aval) else (len(term) if np.ndim(term) else 1)
    terms = _text(term, n)
    x = {"AVAL": _num(aval, n), "ANRLO": _num(anrlo, n), "ANRHI": _num(anrhi, n),
         "BASE": _num(base, n)}
    if pchg is None:
        with np.errstate(divide="ignore", invalid="ignore"):
            b = np.where(x["BASE"] == 0, np.nan, x["BASE"])
            x["PCHG"] = 100 * (x["AVAL"] - b) / b
    else:
        x["PCHG"] = _num(pchg, n)
    units = np.char.upper(_text(unit, n).astype(str))
    if bnrind is None:
        abnormal = signif(x["BASE"], signif_dig) > signif(x["ANRHI"], signif_dig)
    else:
        abnormal = np.isin(_text(bnrind, n), [h.strip() for h in high_indicator])
    r = {k: signif(v, signif_dig) for k, v in x.items()}

    out = np.full(n, None, dtype=object)
    crit = criteria()
    crit = crit[crit["system"] == system]
    if direction is not None:
        crit = crit[crit["direction"] == direction]
    for t, rules in crit.groupby("term", sort=False):
        rows = terms == t
        need = rules["unit"].iloc[0]
        if need:
            rows &= units == need.upper()
        if not rows.any():
            continue
        decided = np.zeros(n, dtype=bool)
        for _, clauses in rules.groupby("rule", sort=True):
            hold = rows & ~decided
            first = clauses.iloc[0]
            if first["baseline"] == "abnormal":
                hold &= abnormal
            elif first["baseline"] == "normal":
                hold &= ~abnormal
            for c in clauses.itertuples(index=False):
                if c.comparison == "missing":
                    hold &= np.isnan(x[c.variable])
                    continue
                ref = _reference(c.reference, c.number, x, n)
                with np.errstate(invalid="ignore"):
                    hold &= _OPS[c.comparison](r[c.variable], signif(ref, signif_dig))
            out[hold] = first["grade"] or None
            decided |= hold
        out[rows & ~decided & ~np.isnan(x["AVAL"])] = "0"
    return pd.Series(out, index=index, dtype=object)


def _col(dataset: pd.DataFrame, name: str):
    return dataset[name] if name in dataset.columns else None


def _unit_of(dataset: pd.DataFrame, unit_var: str | None) -> pd.Series:
    if unit_var is not None:
        return dataset[unit_var]
    # admiral's extract_unit(PARAM): the text in the last parentheses, "Hemoglobin (g/L)" -> g/L
    return dataset["PARAM"].astype("string").str.extract(r"\(([^()]*)\)\s*$", expand=False)


def derive_vars_atoxdsc(dataset: pd.DataFrame, testcd_var: str = "PARAMCD") -> pd.DataFrame:
    """Add ATOXDSCL / ATOXDSCH, the CTCAE term of each direction, from the test code.

    From `ctcae_lab_terms.csv`; populated only where AVAL is (ADaMIG 1.3), missing for tests
    CTCAE does not grade in that direction.
    """
    out = dataset.copy()
    terms = lab_terms()
    has_aval = out["AVAL"].notna() if "AVAL" in out.columns else True
    for direction, var in DIRECTIONS.items():
        m = terms[terms["direction"] == direction].set_index("LBTESTCD")["term"]
        out[var] = out[testcd_var].map(m).where(has_aval).astype(object)
        out[var] = out[var].where(out[var].notna(), None)
    return out


def derive_var_atoxgr_dir(dataset: pd.DataFrame, new_var: str, tox_description_var: str,
                          criteria_direction: str, unit_var: str | None = None, *,
                          system: str = "SI", signif_dig: int = SIGNIF_DIG,
                          high_indicator: tuple[str, ...] = ("HIGH",)) -> pd.DataFrame:
    """Add `new_var` (ATOXGRL with ATOXDSCL, "L"; ATOXGRH with ATOXDSCH, "H") as admiral.

    Reads AVAL, ANRLO, ANRHI, BASE, BNRIND and PCHG where present. The unit is `unit_var`, or
    (None) the last parenthesised text of PARAM as admiral's `extract_unit(PARAM)`.
    """
    if criteria_direction not in DIRECTIONS:
        raise ValueError(f"criteria_direction must be 'L' or 'H', not {criteria_direction!r}")
    out = dataset.copy()
    out[new_var] = compute_ctcae_grade(
        out[tox_description_var], out["AVAL"], _col(out, "ANRLO"), _col(out, "ANRHI"),
        _col(out, "BASE"), unit=_unit_of(out, unit_var), bnrind=_col(out, "BNRIND"),
        pchg=_col(out, "PCHG"), direction=criteria_direction, system=system,
        signif_dig=signif_dig, high_indicator=high_indicator).to_numpy()
    return out


def derive_var_atoxgr(dataset: pd.DataFrame, lotox_description_var: str = "ATOXDSCL",
                      hitox_description_var: str = "ATOXDSCH") -> pd.DataFrame:
    """Add ATOXGR from ATOXGRL/ATOXGRH as admiral: low grades negative ("-1".."-4"), high
    grades as is, "0" when each direction graded is "0" (or has no term), else missing."""
    out = dataset.copy()
    lo, hi = out["ATOXGRL"], out["ATOXGRH"]
    lo_pos, hi_pos = lo.isin(GRADES[1:]), hi.isin(GRADES[1:])
    lo_zero = (lo == "0") | out[lotox_description_var].isna()
    hi_zero = (hi == "0") | out[hitox_description_var].isna()
    both_none = out[lotox_description_var].isna() & out[hitox_description_var].isna()
    res = np.select([lo_pos, hi_pos, lo_zero & hi_zero & ~both_none],
                    ["-" + lo.astype(str), hi.astype(str), "0"], default="")
    out["ATOXGR"] = pd.Series(res, index=out.index, dtype=object).replace("", None)
    return out


def derive_var_btoxgr(dataset: pd.DataFrame, source_var: str, new_var: str,
                      by_vars: tuple[str, ...] = ("STUDYID", "USUBJID", "PARAMCD", "BASETYPE"),
                      flag_var: str = "ABLFL") -> pd.DataFrame:
    """Add `new_var` (BTOXGRL/BTOXGRH/BTOXGR): `source_var` of the record with `flag_var` "Y"
    in each by group (the by variables absent from the dataset are ignored)."""
    by = [v for v in by_vars if v in dataset.columns]
    base = dataset.loc[dataset[flag_var] == "Y", by + [source_var]]
    if base.duplicated(by).any():
        raise ValueError(f"more than one {flag_var} record in a by group {by}")
    base = base.rename(columns={source_var: new_var})
    out = dataset.drop(columns=[new_var], errors="ignore")
    merged = out[by].merge(base, on=by, how="left")
    out[new_var] = merged[new_var].astype(object).where(merged[new_var].notna(), None).to_numpy()
    return out

