"""ASTCT consensus grading of CRS and ICANS (Lee DW et al., Biol Blood Marrow Transplant
2019;25:625-38, Tables 3 and 5), encoded as data in `adam/metadata/astct_2019.csv`.

CRS: fever (>= 38 C) with hypotension and/or hypoxia; the grade is that of the more severe of
the two; fever alone is grade 1; without fever there is no CRS to grade — unless antipyretic or
anti-cytokine therapy (tocilizumab, steroids) was given, after which fever is no longer needed
(Table 3 footnote). ICANS (adults; ages >= 12): the grade is the most severe of the ICE score,
depressed level of consciousness, seizure, motor findings and raised intracranial pressure /
cerebral edema. Grade 5 of either is death due to it, which no component says: the caller
passes `fatal`.

Used where the components are collected; where only the investigator's ASTCT grade is
(these studies' AE form), ADAE takes that grade and this module's table documents its meaning.
"""
from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

TABLE = Path(__file__).resolve().parent / "metadata" / "astct_2019.csv"
CRS_COMPONENTS = ("fever", "hypotension", "hypoxia")
ICANS_COMPONENTS = ("ice_score", "consciousness", "seizure", "motor", "cerebral_edema")


@cache
def grade_table() -> dict[tuple[str, str], dict[str, int]]:
    """{(syndrome, component): {level: grade}}."""
    out: dict[tuple[str, str], dict[str, int]] = {}
    with TABLE.open(encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            out.setdefault((r["syndrome"], r["component"]), {})[r["level"]] = int(r["grade"])
    return out


def _component_grade(syndrome: str, component: str, levels: pd.Series) -> np.ndarray:
    table = grade_table()[(syndrome, component)]
    text = levels.astype(object).where(levels.notna(), "").astype(str).str.upper()
    unknown = sorted(set(text[(text != "") & ~text.isin(list(table))]))
    if unknown:
        raise ValueError(f"{syndrome} {component}: unknown level(s) {', '.join(unknown)}; "
                         f"one of {', '.join(table)}")
    return text.map(table).fillna(0).to_numpy(dtype=int)


def ice_level(score: pd.Series, unable: pd.Series | None = None) -> pd.Series:
    """The ICE score (0-10) as its Table 5 level; `unable` marks a patient who cannot be assessed."""
    s = pd.to_numeric(score, errors="coerce")
    level = pd.Series(np.select([s >= 10, s >= 7, s >= 3, s >= 0], ["10", "7-9", "3-6", "0-2"], ""),
                      index=score.index, dtype=object)
    if unable is not None:
        level = level.where(~unable.fillna(False).astype(bool), "UNABLE")
    return level


def compute_crs_grade(fever: pd.Series, hypotension: pd.Series, hypoxia: pd.Series,
                      anticytokine: pd.Series | None = None, fatal: pd.Series | None = None) -> np.ndarray:
    """ASTCT CRS grade 0-5 per record (0: not CRS by the consensus definition)."""
    has_fever = _component_grade("CRS", "fever", fever) > 0
    if anticytokine is not None:
        has_fever = has_fever | anticytokine.fillna(False).astype(bool).to_numpy()
    organ = np.maximum(_component_grade("CRS", "hypotension", hypotension),
                       _component_grade("CRS", "hypoxia", hypoxia))
    grade = np.where(has_fever, np.maximum(organ, 1), 0)
    if fatal is not None:
        grade = np.where(fatal.fillna(False).astype(bool).to_numpy() & (grade > 0), 5, grade)
    return grade


def compute_icans_grade(ice: pd.Series, consciousness: pd.Series, seizure: pd.Series, motor: pd.Series,
                        cerebral_edema: pd.Series, fatal: pd.Series | None = None) -> np.ndarray:
    """ASTCT ICANS grade 0-5 per record: the most severe component."""
    parts = [_component_grade("ICANS", c, v) for c, v in zip(
        ICANS_COMPONENTS, (ice, consciousness, seizure, motor, cerebral_edema), strict=True)]
    grade = np.maximum.reduce(parts)
    if fatal is not None:
        grade = np.where(fatal.fillna(False).astype(bool).to_numpy() & (grade > 0), 5, grade)
    return grade
