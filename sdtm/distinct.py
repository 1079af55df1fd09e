"""Compute on distinct values, map back by codes (issue 18: columnar mapping).

A findings domain repeats the same few thousand texts (results, units, test codes, dates,
subjects) over millions of records, and every step on pandas object strings is one Python
call per cell. The algorithms therefore encode their inputs once (`encode`: pandas factorize,
a code per row and the distinct values), do their string work on the distinct values or
distinct combinations of several inputs (`per_distinct`), and take the answers back by code.
That is exact for any function whose answer for a row depends only on that row's values:
the function sees each distinct value, in the same dtype, so it gives the same answer.

Missing values (None, NaN) are one distinct value: the algorithms read them as "".
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True, eq=False)
class Encoded:
    """A column as a code per row into its distinct values (first-seen order)."""
    codes: np.ndarray        # int32 (or intp), one per row
    uniques: np.ndarray      # the distinct values, the column's own numpy dtype
    dtype: object            # the column's dtype, so a function sees what it would have
    index: pd.Index          # the column's row labels

    def __len__(self) -> int:
        return len(self.codes)

    def values(self, uniques: np.ndarray | None = None) -> np.ndarray:
        """Per row: the distinct values (or values derived per distinct value) taken back."""
        return (self.uniques if uniques is None else np.asarray(uniques))[self.codes]

    def distinct(self) -> pd.Series:
        return pd.Series(self.uniques, dtype=self.dtype)


def encode(values: pd.Series) -> Encoded:
    codes, uniques = pd.factorize(values.to_numpy(), use_na_sentinel=False)
    if len(uniques) < 2**31:   # half the memory while a domain's columns are held encoded
        codes = codes.astype(np.int32)
    return Encoded(codes, np.asarray(uniques), values.dtype, values.index)


def align(enc: Encoded, index: pd.Index) -> Encoded:
    """The codes in the order of `index` (the same labels, as pandas would align them)."""
    if enc.index is index or enc.index.equals(index):
        return enc
    where = enc.index.get_indexer(index)
    if (where < 0).any():
        raise ValueError("columns to combine do not hold the same records")
    return Encoded(enc.codes[where], enc.uniques, enc.dtype, index)


@dataclass(frozen=True)
class Combined:
    """Distinct combinations of several encoded columns: a code per row and, per combination,
    one row that has it."""
    codes: np.ndarray
    rows: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)


def combine(columns: Sequence[Encoded]) -> Combined:
    """Columns with the same row labels (in the same order: see `align`)."""
    key = columns[0].codes.astype(np.int64, copy=False)
    size = len(columns[0].uniques)
    for col in columns[1:]:
        # renumber after each step so the key stays below rows x distinct values
        key, uniques = pd.factorize(key * len(col.uniques) + col.codes)
        size = len(uniques)
    rows = np.zeros(size, dtype=np.intp)
    # any row of a combination stands for it: all its rows hold the same values
    rows[key] = np.arange(len(key))
    return Combined(np.asarray(key, dtype=np.intp), rows)


def distinct_args(columns: Sequence[Encoded], combo: Combined) -> list[pd.Series]:
    """The distinct combinations as one Series per column (RangeIndex, the column's dtype)."""
    return [pd.Series(col.uniques[col.codes[combo.rows]], dtype=col.dtype) for col in columns]


def expand(result, codes: np.ndarray, index: pd.Index):
    """A result computed on distinct rows 0..n-1 (Series, DataFrame or tuple of them) back
    per row."""
    if isinstance(result, tuple):
        return tuple(expand(r, codes, index) for r in result)
    if isinstance(result, pd.DataFrame):
        return pd.DataFrame({c: expand(result[c], codes, index) for c in result.columns}, index=index)
    if not result.index.equals(pd.RangeIndex(len(result))):
        result = result.reindex(pd.RangeIndex(len(result)))
    return pd.Series(result.to_numpy()[codes], index=index, dtype=result.dtype, name=result.name)


def per_distinct(func: Callable, *columns: pd.Series | Encoded):
    """func(*columns) computed once per distinct combination of the columns' values (each a
    Series with a RangeIndex) and mapped back to the rows of the first column; the others
    are aligned to it by label, as pandas would."""
    enc = [c if isinstance(c, Encoded) else encode(c) for c in columns]
    index = enc[0].index
    enc = [enc[0], *(align(e, index) for e in enc[1:])]
    combo = combine(enc)
    return expand(func(*distinct_args(enc, combo)), combo.codes, index)
