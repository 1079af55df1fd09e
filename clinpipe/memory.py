"""Handing freed memory back to the operating system between the large steps of a build.

glibc keeps the pages of freed small allocations (the millions of str objects of object-dtype
columns, Arrow's temporaries) for reuse instead of returning them, so a process that frees a
gigabyte of raw frames keeps its peak RSS as if it had not. `malloc_trim(0)` returns every free
page; measured at 10,000 RS001 subjects after mapping: 2.60 -> 1.51 GiB in 0.1 s. Elsewhere
(macOS, musl, Windows) it is a no-op, and correctness never depends on it.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


def release_memory() -> None:
    """Return the pages of freed allocations to the OS (glibc); nothing elsewhere."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
