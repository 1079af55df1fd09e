"""Columns as integer codes into their distinct values, for work done once per distinct value."""
from __future__ import annotations

import numpy as np
import pandas as pd


def factorize(values: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(code per row, distinct values in first-seen order), a missing value (None/NaN) being one
    distinct value of its own, last.

    pandas' own use_na_sentinel=False runs isna over every cell of an object column first;
    here only the codes are looked at, and only when a missing value was seen."""
    codes, uniques = pd.factorize(values.to_numpy() if isinstance(values, pd.Series) else values)
    uniques = np.asarray(uniques)
    missing = codes < 0
    if missing.any():
        if uniques.dtype == object:
            first = int(np.argmax(missing))
            extra = np.empty(1, dtype=object)
            extra[0] = values.iloc[first] if isinstance(values, pd.Series) else values[first]
        else:    # float NaN, datetime NaT: the dtype's own missing value
            extra = np.full(1, np.nan if uniques.dtype.kind in "fc" else np.datetime64("NaT"), dtype=uniques.dtype)
        uniques = np.concatenate([uniques, extra])
        codes = np.where(missing, len(uniques) - 1, codes)
    return codes, uniques
