"""SAS XPT version 5 files, the FDA's transport format: written and read column-wise with
numpy, byte for byte what pyreadstat writes and values exactly as pyreadstat reads them.

pyreadstat (the ReadStat C library) is the reference: `write_xpt_reference` and
`read_xpt_reference` keep the pyreadstat path, and `tests/sdtm/test_xpt_writer.py` holds the
numpy path to it on every dataset the samples build and on random frames. pyreadstat itself is
too slow at scale: it converts one cell at a time (40 CPU s to write a 1.7 M-row LB, 40 to
read it; here 4 and 3). A
frame this module does not lay out itself (a dtype other than float, int and text, a format
string it does not parse) still goes through pyreadstat, so nothing is ever written
differently.

Writing checks the transport limits first (`sdtm.conform.check_transport`): pyreadstat would
truncate long labels and write long or non-ASCII values without a word.

Character lengths: each character variable is as wide as the byte length of its longest
value (at least 1), as pyreadstat does and as the FDA advises (no padding to 200);
`tests/sdtm/test_xpt.py` reads the widths back to keep it that way. Numerics are 8 bytes.

Timestamps: the library and member headers carry a fixed `timestamp` (pyreadstat writes the
wall-clock time, replaced afterwards) so the same data always give the same bytes.

Reading follows ReadStat's reader, quirks included, so a frame is what pyreadstat gave:
text loses trailing blanks (and anything from a NUL on), any missing number (., .A-.Z, ._) is
NaN, and trailing all-blank records are dropped (ReadStat cannot tell them from padding). An
XPT v8 file, or headers not laid out as v5 expects, go to pyreadstat. Reading never uses
`pandas.read_sas` (it returns 5.4e-79 instead of 0 for some zeros and guesses the record
count from blank words in the last 80 bytes).
"""
from __future__ import annotations

import datetime as dt
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyreadstat

from clinpipe.errors import ClinpipeError
from edc.sas_format import _restamp, _sas_stamp
from sdtm.conform import TextColumn, check_transport, checked_text

# SAS's epoch: a stamp that says "no real time" and keeps re-runs byte-identical
DEFAULT_TIMESTAMP = dt.datetime(1960, 1, 1)

RECORD = 80               # XPT is a sequence of 80-byte records
_NAMESTR = struct.Struct(">HHHH8s40s8sHHH2s8sHHI32sH18s")  # TS-140's 140-byte NAMESTR
_NUM, _CHAR = 1, 2        # NAMESTR ntype
_BLANK = 0x20
_CHUNK_BYTES = 16 << 20   # observations are laid out this many bytes at a time


@dataclass(frozen=True)
class XptMeta:
    """What an XPT file says about its dataset."""
    dataset: str
    label: str
    labels: dict[str, str]
    types: dict[str, str]      # 'Char' or 'Num'
    lengths: dict[str, int]    # storage width in bytes


# -- the reference: pyreadstat ------------------------------------------------------------------

def _write_pyreadstat(df: pd.DataFrame, path: Path, dataset: str, dataset_label: str,
                      labels: dict[str, str], timestamp: dt.datetime | None,
                      formats: dict[str, str] | None) -> Path:
    pyreadstat.write_xport(df, str(path), file_label=dataset_label, table_name=dataset,
                           column_labels=[labels[c] for c in df.columns], file_format_version=5,
                           variable_format=formats or None)
    # the edc SAS writer's helpers: same header layout in v5 and v8
    _restamp(path, _stamp(timestamp))
    return path


def write_xpt_reference(df: pd.DataFrame, path: str | Path, dataset: str, dataset_label: str,
                        labels: dict[str, str], *, timestamp: dt.datetime | None = None,
                        formats: dict[str, str] | None = None) -> Path:
    """`write_xpt` through pyreadstat, one cell at a time: the bytes `write_xpt` must match."""
    check_transport(df, dataset, labels, dataset_label)
    return _write_pyreadstat(df, Path(path), dataset, dataset_label, labels, timestamp, formats)


def _char(values: pd.Series) -> pd.Series:
    return values.where(values.notna(), "").astype(object)


def read_xpt_reference(path: str | Path) -> tuple[pd.DataFrame, XptMeta]:
    """`read_xpt` through pyreadstat: the frame and metadata `read_xpt` must match."""
    path = Path(path)
    try:
        # numbers stay numbers even where a SAS format says date: SDTM dates are ISO text
        df, meta = pyreadstat.read_xport(str(path), disable_datetime_conversion=True)
    except (pyreadstat.ReadstatError, pyreadstat.PyreadstatError, OSError) as exc:
        raise ClinpipeError(f"not a readable SAS XPT file ({exc})", file=path) from None
    except UnicodeDecodeError:
        # text that is not UTF-8 is Windows-1252, as in the fast reader (`_c_text`)
        try:
            df, meta = pyreadstat.read_xport(str(path), disable_datetime_conversion=True,
                                             encoding="WINDOWS-1252")
        except (pyreadstat.ReadstatError, pyreadstat.PyreadstatError, UnicodeDecodeError) as exc:
            raise ClinpipeError(f"not a readable SAS XPT file (text neither UTF-8 nor "
                                f"Windows-1252: {exc})", file=path) from None
    kinds = meta.readstat_variable_types
    types = {c: "Char" if kinds[c] == "string" else "Num" for c in df.columns}
    for c in df.columns:
        df[c] = _char(df[c]) if types[c] == "Char" else df[c].astype(np.float64)
    labels = {c: meta.column_names_to_labels.get(c) or "" for c in df.columns}
    return df, XptMeta(dataset=meta.table_name or "", label=meta.file_label or "", labels=labels,
                       types=types, lengths=dict(meta.variable_storage_width))


# -- writing ------------------------------------------------------------------------------------

def _stamp(timestamp: dt.datetime | None) -> bytes:
    return _sas_stamp((timestamp or DEFAULT_TIMESTAMP).isoformat())


def _c_string(text: str) -> bytes:
    """What C sees of a Python string pyreadstat passes on: UTF-8, up to the first NUL."""
    return text.encode("utf-8").split(b"\0", 1)[0]


def _pad(text: bytes, width: int) -> bytes:
    """C's "%-<w>.<w>s" (and ReadStat's copypad): cut or blank-padded to `width` bytes."""
    return text[:width].ljust(width)


def _record(text: bytes) -> bytes:
    """One header record as ReadStat writes it: at most 80 bytes, blank-padded to 80."""
    return text[:RECORD].ljust(RECORD)


def _header(name: bytes, *nums: int) -> bytes:
    fields = (list(nums) + [0] * 6)[:6]
    return _record(b"HEADER RECORD*******" + name.ljust(8) + b"HEADER RECORD!!!!!!!"
                   + b"".join(b"%05d" % n for n in fields))


def _pad_block(data: bytes) -> bytes:
    return data + b" " * (-len(data) % RECORD)


# ReadStat's format grammar (readstat_xport_parse_format.rl): a name of letters, digits and
# underscores that ends in a letter or underscore, a width, decimals
_NAME = r"(?:[A-Za-z_](?:[A-Za-z0-9_]+[A-Za-z_])?)"
_CHAR_FORMAT = re.compile(rf"(\${_NAME}?)(\d+)?\.?")
_NUM_FORMAT = re.compile(rf"({_NAME}?)(?:(\d+)?(?:\.(\d+)?)?)?")


def _parse_format(text: str) -> tuple[bytes, int, int] | None:
    """(name, width, decimals) of a SAS format as ReadStat parses it; None where ReadStat
    would refuse it (pyreadstat then raises its own error)."""
    raw = text.encode("utf-8")
    if not raw or len(raw) != len(text):
        return None
    found = _CHAR_FORMAT.fullmatch(text)
    if found:
        name, width, decimals = found.group(1), found.group(2), None
    else:
        found = _NUM_FORMAT.fullmatch(text)
        if not found:
            return None
        name, width, decimals = found.groups()
    if len(name) + 1 > 32:  # ReadStat's format name buffer
        return None
    return name.encode("ascii"), int(width or 0) & 0xFFFF, int(decimals or 0) & 0xFFFF


@dataclass
class _Column:
    name: str
    label: str
    char: bool
    width: int
    format: tuple[bytes, int, int] | None
    numbers: np.ndarray | None = None   # Num: float64, NaN for missing
    padded: np.ndarray | None = None    # Char: (distinct values + a blank, width) uint8
    codes: np.ndarray | None = None     # Char: a row of `padded` per record


def _as_numbers(values: pd.Series) -> np.ndarray | None:
    """float64 as pyreadstat would convert the column; None for dtypes it types differently
    (float16 it writes as text) or that are not numbers."""
    dtype = values.dtype
    if dtype.kind not in "iuf" or (dtype.kind == "f" and dtype.itemsize < 4):
        return None
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _padded_values(values: pa.StringArray) -> tuple[np.ndarray, int]:
    """The distinct values as a (k + 1, width) block of blank-padded bytes, the last row
    blank (for missing), and the width: the longest value in bytes, at least 1."""
    values = pa.concat_arrays([values, pa.array([""], type=pa.string())])  # fresh buffers
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32)[:len(values) + 1]
    data = np.frombuffer(values.buffers()[2] or b"", dtype=np.uint8)
    lengths = np.diff(offsets)
    width = max(1, int(lengths.max()))
    padded = np.full((len(values), width), _BLANK, dtype=np.uint8)
    rows = np.repeat(np.arange(len(values)), lengths)
    cols = np.arange(offsets[-1]) - np.repeat(offsets[:-1], lengths)
    padded[rows, cols] = data[:offsets[-1]]
    # ReadStat copies a value with strlen: from the first NUL on, the field stays blank
    nul = padded == 0
    if nul.any():
        padded[np.logical_or.accumulate(nul, axis=1)] = _BLANK
    return padded, width


def _columns(df: pd.DataFrame, labels: dict[str, str], formats: dict[str, str] | None,
             texts: dict[str, TextColumn]) -> list[_Column] | None:
    """Each variable's NAMESTR facts and its data ready to lay out; None if some column or
    format is not one this writer reproduces (pyreadstat writes the file then)."""
    formats = formats or {}
    columns = []
    for name in df.columns:
        wanted = formats.get(name)
        fmt = None
        if wanted and (not isinstance(wanted, str) or (fmt := _parse_format(wanted)) is None):
            return None
        label = labels[name]
        if not isinstance(label, str):
            return None
        text = texts.get(name)
        if text is not None:
            if pd.api.types.infer_dtype(text.values.to_numpy(zero_copy_only=False),
                                        skipna=True) not in ("string", "empty"):
                return None  # bytes and the like: pyreadstat writes their str()
            padded, width = _padded_values(text.values)
            columns.append(_Column(name, label, True, width, fmt, padded=padded,
                                   codes=text.codes))
            continue
        numbers = _as_numbers(df[name])
        if numbers is None:
            return None
        columns.append(_Column(name, label, False, 8, fmt, numbers=numbers))
    return columns


def _namestr(i: int, column: _Column, position: int) -> bytes:
    if column.format:
        fmt_name, width, decimals = column.format
        form = _pad(fmt_name, 8)
    else:
        form, width, decimals = b" " * 8, 0, 0
    return _NAMESTR.pack(
        _CHAR if column.char else _NUM, 0, column.width, i + 1,
        _pad(_c_string(column.name), 8), _pad(_c_string(column.label), 40),
        form, width, decimals, 0 if column.char else 1,  # numbers right-aligned (nfj)
        # no informat: pyreadstat 1.3.7 fills the informat fields only from `variable_informat`
        b"\0\0", b" " * 8, 0, 0, position & 0xFFFFFFFF, b"\0" * 32, 0, b"\0" * 18)


def _headers(columns: list[_Column], dataset: str, dataset_label: str, stamp: bytes) -> bytes:
    """Library, member and descriptor headers, the NAMESTRs and the OBS header: TS-140's
    layout with ReadStat's choices (SAS 6.06 on bsd4.2, blank padding)."""
    stamp = stamp.rjust(16)[:16]
    name = _c_string(dataset)[:32] or b"DATASET"
    system = b"SAS".ljust(8) + b"SAS".ljust(8) + b"SASLIB".ljust(8) + b"6.06".ljust(8)
    member = b"SAS".ljust(8) + _pad(name, 8) + b"SASDATA".ljust(8) + b"6.06".ljust(8)
    namestrs, position = [], 0
    for i, column in enumerate(columns):
        namestrs.append(_namestr(i, column, position))
        position += column.width
    return b"".join([
        _header(b"LIBRARY"),
        _record(system + b"bsd4.2".ljust(8) + b" " * 24 + stamp),
        _record(stamp),
        _header(b"MEMBER", 0, 0, 0, 160, 0, 140),
        _header(b"DSCRPTR"),
        _record(member + b"bsd4.2".ljust(8) + b" " * 24 + stamp),
        _record(stamp + b" " * 16 + _pad(_c_string(dataset_label), 40) + b" " * 8),
        _header(b"NAMESTR", 0, len(columns)),
        _pad_block(b"".join(namestrs)),
        _header(b"OBS"),
    ])


def ibm_doubles(numbers: np.ndarray) -> np.ndarray:
    """IEEE float64 as IBM System/370 doubles (big-endian uint64), bit for bit ReadStat's
    ieee2xpt (SAS TS-140): the 53-bit fraction shifted onto a base-16 exponent, so no bit is
    lost; below 16^-65 becomes 0, beyond 16^63 the largest magnitude; NaN is SAS missing '.'."""
    bits = np.ascontiguousarray(numbers, dtype=np.float64).view(np.uint64)
    sign = bits >> np.uint64(63)
    exponent = ((bits >> np.uint64(52)) & np.uint64(0x7FF)).astype(np.int64) - 1023
    fraction = (bits & np.uint64((1 << 52) - 1)) | np.uint64(1 << 52)
    shift = (exponent & 3).astype(np.uint64)
    hex_exponent = ((exponent >> 2) + 65).astype(np.uint64) & np.uint64(0x7F)
    out = ((hex_exponent | (sign << np.uint64(7))) << np.uint64(56)) | (fraction << shift)
    out[exponent < -260] = 0  # zero, -0, subnormals and what IBM cannot hold
    big = exponent > 248
    out[big] = ((np.uint64(0x7F) | (sign[big] << np.uint64(7))) << np.uint64(56)
                | np.uint64(0x00FFFFFFFFFFFFFF))
    out[np.isnan(numbers)] = np.uint64(0x2E << 56)  # '.' then seven zero bytes
    return out.astype(">u8")


def _write_observations(handle, columns: list[_Column], rows: int) -> int:
    """The records, `_CHUNK_BYTES` at a time, as a structured array with a field per variable
    at its position: numpy copies each field as fixed-size items, a memcpy per value."""
    row_length = sum(c.width for c in columns)
    if not row_length:
        return 0
    offsets = np.cumsum([0] + [c.width for c in columns[:-1]]).tolist()
    record = np.dtype({"names": [f"f{i}" for i in range(len(columns))],
                       "formats": [f"V{c.width}" for c in columns],
                       "offsets": offsets, "itemsize": row_length})
    distinct = [c.padded.view(f"V{c.width}").ravel() if c.char else None for c in columns]
    step = max(1, _CHUNK_BYTES // row_length)
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        block = np.empty(stop - start, dtype=record)
        for i, column in enumerate(columns):
            block[f"f{i}"] = (distinct[i][column.codes[start:stop]] if column.char
                              else ibm_doubles(column.numbers[start:stop]).view("V8"))
        handle.write(block.view(np.uint8).data)
    return rows * row_length


def write_xpt(df: pd.DataFrame, path: str | Path, dataset: str, dataset_label: str,
              labels: dict[str, str], *, timestamp: dt.datetime | None = None,
              formats: dict[str, str] | None = None) -> Path:
    """Write `df` as the XPT v5 dataset `dataset` after checking the transport limits; the
    header's created/modified times are `timestamp` (default 1960-01-01T00:00:00). `formats`
    gives SAS display formats (ADaM's numeric dates: DATE9.)."""
    return write_conformed_xpt(df, path, dataset, dataset_label, labels, {},
                               timestamp=timestamp, formats=formats)


def write_conformed_xpt(df: pd.DataFrame, path: str | Path, dataset: str, dataset_label: str,
                        labels: dict[str, str], texts: dict[str, TextColumn], *,
                        timestamp: dt.datetime | None = None,
                        formats: dict[str, str] | None = None) -> Path:
    """`write_xpt` of a frame whose text columns `sdtm.conform.conform_text` has encoded
    (`texts`), so they are not hashed a second time."""
    texts = checked_text(df, dataset, labels, dataset_label, texts)
    path = Path(path)
    columns = _columns(df, labels, formats, texts)
    if columns is None:
        return _write_pyreadstat(df, path, dataset, dataset_label, labels, timestamp, formats)
    stamp = _stamp(timestamp)
    with open(path, "wb") as handle:
        handle.write(_headers(columns, dataset, dataset_label, stamp))
        written = _write_observations(handle, columns, len(df))
        handle.write(b" " * (-written % RECORD))
    # what the pyreadstat path does too: a label that looks like a stamp is restamped alike
    _restamp(path, stamp)
    return path


# -- reading ------------------------------------------------------------------------------------

class _NotFast(Exception):
    """A file the numpy reader does not take apart itself (XPT v8, a header it does not
    expect, a name that is not UTF-8): pyreadstat reads it, or says why it cannot."""


def _c_text(raw: bytes) -> str:
    """ReadStat's readstat_convert: trailing blanks and NULs off, then C's string up to a
    NUL, decoded as UTF-8. XPT declares no encoding: bytes that are not UTF-8 are read as
    Windows-1252 (SAS's WLATIN1, what a SAS session on Windows writes; Latin-1 for its five
    unassigned bytes), so such a file is read and its non-ASCII text reported (XR024), not
    refused."""
    text = raw.rstrip(b" \0").split(b"\0", 1)[0]
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return text.decode("cp1252")
        except UnicodeDecodeError:
            return text.decode("latin-1")


_HEADER_TAIL = b"HEADER RECORD!!!!!!!"


def _expect_header(record: bytes, name: bytes) -> None:
    if (len(record) < RECORD or record[:28] != b"HEADER RECORD*******" + name.ljust(8)
            or record[28:48] != _HEADER_TAIL or not record[48:58].isdigit()):
        raise _NotFast


def _xpt_layout(head: bytes) -> tuple[str, str, list[tuple], int]:
    """(dataset, label, NAMESTRs, where the observations start) of a v5 file's headers, read
    as ReadStat reads them (readstat_xport_read.c)."""
    records = [head[i * RECORD:(i + 1) * RECORD] for i in range(8)]
    _expect_header(records[0], b"LIBRARY")
    _expect_header(records[3], b"MEMBER")
    _expect_header(records[4], b"DSCRPTR")
    _expect_header(records[7], b"NAMESTR")
    dataset, label = _c_text(records[5][8:16]), _c_text(records[6][32:72])
    count = int(records[7][53:58])
    start = 8 * RECORD
    end = start + count * _NAMESTR.size
    if not count or len(head) < end:
        raise _NotFast
    namestrs = [_NAMESTR.unpack_from(head, start + i * _NAMESTR.size) for i in range(count)]
    obs = end + (-end % RECORD)
    _expect_header(head[obs:obs + RECORD], b"OBS")
    return dataset, label, namestrs, obs + RECORD


def _read_head(path: Path) -> bytes:
    """The header records, the NAMESTRs and the OBS header (what the NAMESTR header's count
    says there is)."""
    with open(path, "rb") as handle:
        head = handle.read(8 * RECORD)
        count = head[7 * RECORD + 53:7 * RECORD + 58]
        if count.isdigit():
            head += handle.read(int(count) * _NAMESTR.size + 2 * RECORD)
    return head


# xpt2ieee shifts the fraction right until its leading hex digit is 1: by the position of
# that digit's top bit
_SHIFT = np.array([0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3], dtype=np.uint64)


def ieee_doubles(ibm: np.ndarray) -> np.ndarray:
    """IBM System/370 doubles (big-endian uint64, zero-padded past a short storage width) as
    float64, bit for bit ReadStat's xpt2ieee; a missing value (a first byte and seven zero
    bytes: '.', '.A'-'.Z', '._') is NaN."""
    x = ibm.astype(np.uint64)
    first = x >> np.uint64(56)
    fraction = x & np.uint64(0x00FFFFFFFFFFFFFF)
    shift = _SHIFT[(x >> np.uint64(52)) & np.uint64(0xF)]
    # ((exponent - 65) * 4 + shift + 1023), kept unsigned: the IBM exponent is at least 0
    exponent = (first & np.uint64(0x7F)) * np.uint64(4) + shift + np.uint64(1023 - 65 * 4)
    bits = ((first & np.uint64(0x80)) << np.uint64(56) | exponent << np.uint64(52)
            | ((fraction >> shift) & ~np.uint64(1 << 52)))
    out = bits.view(np.float64)
    none = fraction == 0
    out[none] = np.where(first[none] == 0, 0.0, np.nan)
    infinite = (x & np.uint64(0x7FFFFFFFFFFFFFFF)) == np.uint64(0x7FFFFFFFFFFFFFFF)
    out[infinite] = np.where(first[infinite] & np.uint64(0x80), -np.inf, np.inf)
    return out


def _numbers(block: np.ndarray) -> np.ndarray:
    """A Num column's (rows, width) bytes as float64."""
    rows, width = block.shape
    if not 3 <= width <= 8:  # ReadStat: not a SAS number, so missing
        return np.full(rows, np.nan)
    if width == 8:
        return ieee_doubles(block.view(">u8").ravel())
    full = np.zeros((rows, 8), dtype=np.uint8)
    full[:, :width] = block
    return ieee_doubles(full.view(">u8").ravel())


def _texts(block: np.ndarray) -> np.ndarray:
    """A Char column's contiguous (rows, width) bytes as str, trimmed as ReadStat trims,
    decoded once per distinct value."""
    rows, width = block.shape
    if not width or not rows:
        return np.full(rows, "", dtype=object)
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), rows,
                                                 [None, pa.py_buffer(block)])
    encoded = fixed.dictionary_encode()
    distinct = np.frombuffer(encoded.dictionary.buffers()[1], dtype=np.uint8)
    distinct = distinct[:len(encoded.dictionary) * width].reshape(-1, width)
    values = np.array([_c_text(row.tobytes()) for row in distinct] or [""], dtype=object)
    return values[encoded.indices.to_numpy()]


def _last_record(rows: np.ndarray) -> int:
    """How many records ReadStat reports: it holds back all-blank records until a record
    with data follows, so trailing blank records (the padding, or real ones) are dropped."""
    end = len(rows)
    while end:
        start = max(0, end - 4096)
        filled = np.flatnonzero((rows[start:end] != _BLANK).any(axis=1))
        if filled.size:
            return start + int(filled[-1]) + 1
        end = start
    return 0


def _records(path: Path, start: int, widths: list[int]) -> np.ndarray:
    """The observations as a structured array over the file (a field per variable of
    non-zero width), without the trailing blank records."""
    row_length = sum(widths)
    positions = np.cumsum([0] + widths[:-1]).tolist()
    record = np.dtype({"names": [f"f{i}" for i, w in enumerate(widths) if w],
                       "formats": [f"V{w}" for w in widths if w],
                       "offsets": [p for p, w in zip(positions, widths) if w],
                       "itemsize": row_length})
    count = max(0, path.stat().st_size - start) // row_length
    if not count:
        return np.zeros(0, dtype=record)
    raw = np.memmap(path, dtype=np.uint8, mode="r", offset=start, shape=(count, row_length))
    return np.memmap(path, dtype=record, mode="r", offset=start, shape=(count,))[
        :_last_record(raw)]


def _read_fast(path: Path) -> tuple[pd.DataFrame, XptMeta]:
    dataset, label, namestrs, start = _xpt_layout(_read_head(path))
    names = [_c_text(n[4]) for n in namestrs]
    if len(set(names)) != len(names) or "" in names:
        raise _NotFast
    widths = [n[2] for n in namestrs]
    if not sum(widths):
        raise _NotFast
    data = _records(path, start, widths)
    columns = {}
    for i, (name, width, namestr) in enumerate(zip(names, widths, namestrs)):
        # a field copied out as whole items: far cheaper than a strided byte slice
        block = (np.ascontiguousarray(data[f"f{i}"]).view(np.uint8).reshape(len(data), width)
                 if width else np.zeros((len(data), 0), dtype=np.uint8))
        columns[name] = _texts(block) if namestr[0] == _CHAR else _numbers(block)
    del data
    # one block per column, as the pyreadstat reader's frame ends up: no consolidating copy
    df = pd.DataFrame(columns, columns=names, copy=False)
    types = {n: "Char" if s[0] == _CHAR else "Num" for n, s in zip(names, namestrs)}
    labels = {n: _c_text(s[5]) for n, s in zip(names, namestrs)}
    return df, XptMeta(dataset=dataset, label=label, labels=labels, types=types,
                       lengths=dict(zip(names, widths)))


def read_xpt(path: str | Path) -> tuple[pd.DataFrame, XptMeta]:
    """An XPT file as a frame (Char as str with '' for missing, Num as float64) and its
    metadata. SAS pads text with blanks, so trailing blanks do not survive a round trip."""
    path = Path(path)
    try:
        return _read_fast(path)
    except _NotFast:
        return read_xpt_reference(path)
    except OSError as exc:
        raise ClinpipeError(f"not a readable SAS XPT file ({exc})", file=path) from None
