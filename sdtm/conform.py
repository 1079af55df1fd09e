"""The last step before an SDTM dataset leaves the pipeline: shape, types and transport limits.

- `split_long_text` moves text beyond 200 characters into SUPP-- records (SDTMIG 3.4 §4.5.3.2)
  instead of letting anything truncate it.
- `conform` puts a frame into SDTMIG shape: variable order, Req/Exp presence, Char/Num types.
- `check_transport` enforces the FDA / SAS XPT v5 limits that pyreadstat does not (it silently
  truncates labels over 40 characters and writes values over 200 bytes and non-ASCII text), as
  R's xportr does, reporting every violation at once.

All three take the metadata from `sdtm.metadata`; nobody types a label here.
"""
from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from clinpipe.errors import ClinpipeError
from edc.export import format_number
from sdtm.metadata import DomainMeta, VarMeta, domain

MAX_NAME = 8       # XPT v5 dataset and variable names
MAX_LABEL = 40     # XPT v5 dataset and variable labels
MAX_VALUE = 200    # FDA: character values, in bytes
_NAME = re.compile(r"^[A-Z][A-Z0-9]{0,7}$")


class TransportError(ClinpipeError):
    """A dataset breaks the XPT v5 / FDA transport limits; `problems` lists every violation."""

    def __init__(self, what: str, problems: list[str], **kwargs):
        self.problems = problems
        super().__init__(what, **kwargs)


@dataclass(frozen=True)
class TextColumn:
    """A Char column as its distinct values and one code per row, for the XPT writer."""
    values: pa.StringArray  # the distinct values (from `conform_text`, two raw values may
                            # give one text: repeats are harmless)
    codes: np.ndarray       # per row, an index into `values`; len(values) for a missing value


def _small_codes(codes: np.ndarray, missing: int) -> np.ndarray:
    """The codes in the narrowest unsigned type that holds `missing` (the most frequent
    Findings columns have a few dozen distinct values: a byte per row instead of eight)."""
    dtype = np.uint8 if missing < 1 << 8 else np.uint16 if missing < 1 << 16 else np.int64
    return np.where(codes < 0, missing, codes).astype(dtype)


# -- naming a record in messages -----------------------------------------------------------

def _text(value) -> str:
    if isinstance(value, str):
        return value
    if pd.isna(value):  # None, NaN, pd.NA, NaT
        return ""
    return format_number(value)


def _record_keys(dataset: str) -> tuple[str, ...]:
    return "USUBJID", f"{dataset}SEQ", "IDVAR", "IDVARVAL", "QNAM"


def record_ref(df: pd.DataFrame, dataset: str, row: int) -> str:
    """'USUBJID=X, AESEQ=2 (row 3)' for the 0-based position `row`: the keys the frame has,
    and the row counted from 1 as a reviewer counts rows in a dataset viewer."""
    keys = [k for k in _record_keys(dataset)
            if k in df.columns and isinstance(df.columns.get_loc(k), int)]  # not doubled
    ids = ", ".join(f"{k}={_text(df[k].iat[row])}" for k in keys)
    return f"{ids} (row {row + 1})" if ids else f"row {row + 1}"


# -- long text into SUPP-- (SDTMIG 3.4 §4.5.3.2) ---------------------------------------------

# A break is a space right after a non-space: the piece before it then ends in a non-space and
# the space starts the next piece. Never the other way round: XPT pads character values with
# blanks, so a trailing space would be lost on the way and the pieces would no longer
# concatenate back to the original text.
_BREAK = re.compile(r"(?<=\S) ")


def _cut(text: str, limit: int) -> int:
    """Where the first piece of `text` ends: the last word break within `limit` characters,
    else a hard cut at `limit` (a single word longer than the limit)."""
    last = None
    for last in _BREAK.finditer(text, 0, limit + 1):
        pass
    return last.start() if last else limit


def split_text(text: str, limit: int = MAX_VALUE) -> list[str]:
    """`text` in pieces of at most `limit` characters, split at word breaks where possible;
    `"".join(pieces) == text` always."""
    pieces = []
    while len(text) > limit:
        cut = _cut(text, limit)
        pieces.append(text[:cut])
        text = text[cut:]
    pieces.append(text)
    return pieces


def supp_qnam(name: str, k: int) -> str:
    """QNAM of the k-th overflow piece of variable `name`.

    Rule (SDTMIG 3.4 §4.5.3.2): the parent variable name with the sequence number appended
    (AETERM -> AETERM1, AETERM2, ...); where that would exceed 8 characters, the name's last
    character(s) are replaced by the number (AEACNOTH -> AEACNOT1, as in the IG's example). We
    extend the same rule to 10+ pieces by dropping as many characters as the number needs
    (AEACNOTH, piece 10 -> AEACNO10).
    """
    suffix = str(k)
    return name[:MAX_NAME - len(suffix)] + suffix


def supp_qlabel(label: str, k: int) -> str:
    """The parent's label with ' k' appended, shortened to stay within 40 characters."""
    suffix = f" {k}"
    return label[:MAX_LABEL - len(suffix)].rstrip() + suffix


def _long_rows(values: pd.Series, limit: int) -> np.ndarray:
    """Positions of text longer than `limit` characters, measured in pyarrow's C kernels (a
    mapped Python len() costs seconds on a large Findings domain)."""
    if values.dtype.kind != "O" and not isinstance(values.dtype, pd.StringDtype):
        return np.array([], dtype=int)  # numbers, dates: not text to split
    try:
        arr = pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
        lengths = pc.fill_null(pc.utf8_length(arr), 0).to_numpy(zero_copy_only=False)
    except (pa.ArrowTypeError, pa.ArrowInvalid):  # not all text: conform() will say so
        lengths = values.map(lambda v: len(v) if isinstance(v, str) else 0).to_numpy()
    return np.flatnonzero(lengths > limit)


def has_long_text(texts: dict[str, TextColumn], limit: int = MAX_VALUE) -> bool:
    """Whether some conformed Char column holds text over `limit` characters: a look at each
    column's distinct values, where `split_long_text` reads every cell."""
    return any(len(t.values) and pc.max(pc.utf8_length(t.values)).as_py() > limit
               for t in texts.values())


# letters NFKD does not take apart, as they are usually written in ASCII (µg -> ug)
_ASCII = str.maketrans({"µ": "u", "μ": "u", "ß": "ss", "Ø": "O", "ø": "o", "Æ": "AE", "æ": "ae",
                        "Œ": "OE", "œ": "oe", "Ł": "L", "ł": "l", "Đ": "D", "đ": "d"})


def transliterate(text: str) -> str:
    """ASCII for XPT: the letters of `_ASCII` as written there; letters with accents lose them
    (NFKD, combining marks dropped: 'è' -> 'e', 'ﬁ' -> 'fi'); any other non-ASCII character
    becomes '?'."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_ASCII))
    kept = "".join(c for c in decomposed if not unicodedata.combining(c))
    return kept.encode("ascii", "replace").decode("ascii")


def ascii_texts(texts: dict[str, TextColumn]) -> tuple[dict[str, TextColumn], dict[str, np.ndarray]]:
    """The XPT's text (FDA: ASCII) of conformed columns: non-ASCII distinct values through
    `transliterate`, looked at once per distinct value. Returns the texts for the XPT and, per
    changed column, the codes (indices into its distinct values) that changed."""
    out, changed = dict(texts), {}
    for name, text in texts.items():
        bad = np.flatnonzero(~pc.string_is_ascii(text.values).to_numpy(zero_copy_only=False))
        if not bad.size:
            continue
        values = text.values.to_pylist()
        for i in bad:
            values[i] = transliterate(values[i])
        out[name] = TextColumn(pa.array(values, type=pa.string()), text.codes)
        changed[name] = bad
    return out, changed


def _default_idvar(meta: DomainMeta) -> str:
    """--SEQ identifies a record; a dataset without one (DM) relates at subject level, where
    SDTMIG leaves IDVAR and IDVARVAL blank."""
    seq = f"{meta.name}SEQ"
    return seq if meta.has(seq) else ""


def _supp_records(df: pd.DataFrame, dataset: str, var: VarMeta, rows: np.ndarray,
                  pieces: list[list[str]], idvar: str, qorig: str) -> list[dict]:
    rdomain = df["DOMAIN"] if "DOMAIN" in df.columns else None
    records = []
    for row, parts in zip(rows, pieces):
        idvarval = _text(df[idvar].iat[row]) if idvar else ""
        if idvar and not idvarval:
            raise ClinpipeError(f"{dataset}.{var.name} needs SUPP{dataset} records but {idvar} is "
                                f"missing, so they could not be related to their parent record",
                                record=record_ref(df, dataset, row), field=idvar,
                                hint=f"derive {idvar} before splitting long text")
        for k, piece in enumerate(parts[1:], start=1):
            records.append({
                "STUDYID": _text(df["STUDYID"].iat[row]),
                "RDOMAIN": _text(rdomain.iat[row]) if rdomain is not None else dataset,
                "USUBJID": _text(df["USUBJID"].iat[row]),
                "IDVAR": idvar, "IDVARVAL": idvarval,
                "QNAM": supp_qnam(var.name, k), "QLABEL": supp_qlabel(var.label, k),
                "QVAL": piece, "QORIG": qorig, "QEVAL": ""})
    return records


def _check_unique_supp(supp: pd.DataFrame, dataset: str) -> None:
    """A QNAM made by shortening a name, or one already in `supp`, must not collide."""
    keys = ["STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM"]
    dup = np.flatnonzero(supp.duplicated(subset=keys).to_numpy())
    if dup.size:
        raise ClinpipeError(
            f"SUPP{dataset} would hold two records with the same key ({', '.join(keys)})",
            record=record_ref(supp, f"SUPP{dataset}", int(dup[0])), field="QNAM",
            hint="the QNAM is already in the SUPP frame passed in, or two long variables "
                 "shorten to the same QNAM; rename one")


def split_long_text(df: pd.DataFrame, dataset: str, supp: pd.DataFrame | None = None,
                    idvar: str | None = None, *, qorig: str = "CRF",
                    ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Move text beyond 200 characters of every Char variable into SUPP<dataset> records.

    The variable keeps the first piece (≤ 200 characters, ending at a word break where there
    is one); each further piece becomes a record QNAM=<name>1, 2, ... (see `supp_qnam`),
    appended to `supp` (None: a new frame). `idvar` relates the records to their parent
    (default <dataset>SEQ; '' for subject level). Nothing is dropped: the parent value followed
    by its pieces in QNAM order is the original text. Returns (df, supp); supp stays None when
    there was nothing to add to.

    Lengths are counted in characters: SDTM text is ASCII, where characters are bytes, and
    `check_transport` rejects anything else.
    """
    if dataset.startswith("SUPP") or dataset == "RELREC":
        raise ClinpipeError(f"{dataset} has no SUPP-- dataset to hold text over {MAX_VALUE} "
                            "characters", hint="shorten the text at its source")
    meta = domain(dataset)
    idvar = _default_idvar(meta) if idvar is None else idvar
    long = {v.name: rows for v in meta.variables if v.type == "Char" and v.name in df.columns
            for rows in [_long_rows(df[v.name], MAX_VALUE)] if rows.size}
    if not long:   # the usual case: no copy of the dataset
        return df, supp
    out = df.copy()
    records: list[dict] = []
    for var in (v for v in meta.variables if v.name in long):
        rows = long[var.name]
        for needed in ("STUDYID", "USUBJID", *([idvar] if idvar else [])):
            if needed not in df.columns:
                raise ClinpipeError(f"{dataset}.{var.name} has text over {MAX_VALUE} characters "
                                    f"but {dataset} has no {needed} to relate SUPP{dataset} "
                                    "records by", field=needed)
        pieces = [split_text(df[var.name].iat[r]) for r in rows]
        column = out[var.name].to_numpy(dtype=object, copy=True)
        column[rows] = [p[0] for p in pieces]
        out[var.name] = column
        records += _supp_records(df, dataset, var, rows, pieces, idvar, qorig)
    if not records:
        return out, supp
    new = pd.DataFrame(records, columns=domain(f"SUPP{dataset}").names)
    supp = new if supp is None else pd.concat([supp, new], ignore_index=True)
    _check_unique_supp(supp, dataset)
    return out, supp


# -- SDTMIG shape and types ---------------------------------------------------------------------

def _check_columns(df: pd.DataFrame, meta: DomainMeta) -> None:
    dup = df.columns[df.columns.duplicated()]
    if len(dup):
        raise ClinpipeError(f"{meta.name} has the column {dup[0]} twice", field=str(dup[0]))
    unknown = [c for c in df.columns if not meta.has(c)]
    if unknown:
        raise ClinpipeError(f"{meta.name} has {', '.join(map(str, unknown))}, not SDTMIG "
                            f"variable(s) of {meta.name}", field=str(unknown[0]),
                            hint=f"put non-standard variables in SUPP{meta.name} "
                                 f"(or fix the name in the mapping spec)")
    missing = [n for n in meta.required() if n not in df.columns]
    if missing:
        raise ClinpipeError(f"{meta.name} lacks the required variable(s) {', '.join(missing)}",
                            field=missing[0], hint="map them in the domain's mapping spec")


def _char_text(value) -> str:
    """One cell of a Char variable as text: numbers in their canonical text, dates in ISO 8601."""
    if isinstance(value, str):
        return value
    if isinstance(value, (dt.date, dt.time)):  # datetime and pd.Timestamp included
        return value.isoformat()
    return format_number(value) if isinstance(value, (int, float, np.number)) else str(value)


def _char_codes(values: pd.Series) -> tuple[list[str], np.ndarray, TextColumn | None]:
    """A Char column converted once per distinct value rather than per cell: the distinct
    texts, a code per row (their count for missing) and the two as a TextColumn, which the XPT
    writer lays out without hashing the column again (None if Arrow refuses a text: the
    writer's check says why)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    texts = [_char_text(u) for u in uniques]
    codes = _small_codes(codes, len(texts))
    try:
        return texts, codes, TextColumn(pa.array(texts, type=pa.string()), codes)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return texts, codes, None


def _char_column(texts: list[str], codes: np.ndarray, text: TextColumn | None, arrow: bool):
    """The column from `_char_codes`, '' for missing; `arrow`: as string[pyarrow] taken from
    the distinct texts, not a Python object per cell (LB at 10,000 subjects: 0.55 GiB of
    object pointers)."""
    if arrow and text is not None:
        return _arrow_column(text), text
    return np.array(texts + [""], dtype=object)[codes], text    # code len(texts): the ''


def _arrow_column(text: TextColumn) -> pd.arrays.ArrowStringArray:
    """A TextColumn's rows as string[pyarrow], '' for missing."""
    table = pa.concat_arrays([text.values, pa.array([""], type=pa.string())])
    return pd.arrays.ArrowStringArray(pa.chunked_array(
        [table.take(pa.array(text.codes)).cast(pa.large_string())]))


def _as_num(values: pd.Series, df: pd.DataFrame, dataset: str, name: str) -> np.ndarray:
    """float64 with NaN for missing ('' or blank counts as missing); anything that is not a
    finite number fails, naming the first such record."""
    if values.dtype.kind in "iuf":
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.isinf(numbers)
    else:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        parsed = np.array([_parse_number(u) for u in uniques] + [math.nan], dtype=np.float64)
        unparsed = np.array([_is_bad_number(u, p) for u, p in zip(uniques, parsed)] + [False])
        numbers, bad = parsed[codes], unparsed[codes]
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ClinpipeError(f"{dataset}.{name} is Num but holds {values.iat[row]!r}, not a number",
                            record=record_ref(df, dataset, row), field=name,
                            hint="fix the mapping (or the raw value); Num variables hold "
                                 "numbers only")
    return numbers


def _parse_number(value) -> float:
    # float() rather than pd.to_numeric: pandas' fast parser can miss the last bit
    if isinstance(value, str):
        if not value.strip():
            return math.nan
        try:
            return float(value)
        except ValueError:
            return math.nan
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        return math.nan
    return float(value)


def _is_bad_number(value, parsed: float) -> bool:
    blank = isinstance(value, str) and not value.strip()
    return not blank and not math.isfinite(parsed)


def _empty(col: pd.Series, text: TextColumn | None) -> np.ndarray:
    """Where a conformed column is '' (Char) or NaN (Num); for text, looked up per distinct
    value through the codes rather than compared cell by cell."""
    if text is not None:
        blank = pc.equal(pc.binary_length(text.values), 0).to_numpy(zero_copy_only=False)
        return np.append(blank, True)[text.codes]
    return (col == "").to_numpy() if col.dtype == object else col.isna().to_numpy()


def _check_required_values(out: pd.DataFrame, df: pd.DataFrame, meta: DomainMeta,
                           texts: dict[str, TextColumn]) -> None:
    for name in meta.required():
        empty = _empty(out[name], texts.get(name))
        if empty.any():
            row = int(np.flatnonzero(empty)[0])
            raise ClinpipeError(f"{meta.name}.{name} is required but missing in "
                                f"{int(empty.sum())} record(s)",
                                record=record_ref(df, meta.name, row), field=name,
                                hint="SDTMIG Req variables can never be null")


def conform(df: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """`df` in SDTMIG shape: variables in IG order, Req and Exp always present (a missing Exp
    variable is added empty), Perm only if mapped; Char as str with '' for missing, Num as
    float64. Rows keep their order and index. Fails on a column the IG does not define for
    the dataset, a missing Req variable or value, or a non-number in a Num variable."""
    return conform_text(df, dataset)[0]


def conform_text(df: pd.DataFrame, dataset: str, arrow: bool = False, consume: bool = False
                 ) -> tuple[pd.DataFrame, dict[str, TextColumn]]:
    """`conform`, and each Char variable as distinct texts and codes (`TextColumn`) for
    `sdtm.xpt.write_conformed_xpt`: conform has hashed every text column already. `arrow`:
    Char columns as string[pyarrow] (the same texts) where Arrow takes them.

    `consume`: each of `df`'s columns is deleted once converted, so that a large dataset is
    not held twice (`df` is left without columns) -- unless a Char variable holds text over
    200 characters (`has_long_text`): then `df` is left whole, for `split_long_text`."""
    meta = domain(dataset)
    _check_columns(df, meta)
    # every Char column hashed first: whether there is long text is known before any goes
    chars = {v.name: _char_codes(df[v.name]) for v in meta.variables
             if v.type == "Char" and v.name in df.columns}
    texts = {name: text for name, (_, _, text) in chars.items() if text is not None}
    consume = consume and not has_long_text(texts)
    keys = set(_record_keys(dataset))     # what record_ref names a record by: kept to the end
    columns = {}
    for var in meta.variables:
        if var.name in df.columns:
            if var.type == "Char":
                columns[var.name] = _char_column(*chars.pop(var.name), arrow)[0]
            else:
                columns[var.name] = _as_num(df[var.name], df, dataset, var.name)
            if consume and var.name not in keys:
                del df[var.name]
        elif var.core in ("Req", "Exp"):
            if var.type == "Char":
                texts[var.name] = TextColumn(pa.array([], type=pa.string()),
                                             np.zeros(len(df), dtype=np.uint8))
                columns[var.name] = (_arrow_column(texts[var.name]) if arrow
                                     else np.full(len(df), "", dtype=object))
            else:
                columns[var.name] = np.full(len(df), np.nan)
    texts = {v.name: texts[v.name] for v in meta.variables if v.name in texts}   # IG order, as before
    out = pd.DataFrame(columns, index=df.index)
    _check_required_values(out, df, meta, texts)
    if consume:
        for name in list(df.columns):
            del df[name]
    return out, texts


# -- XPT v5 / FDA transport limits ------------------------------------------------------------

def _name_problem(kind: str, name: str) -> str | None:
    if _NAME.match(name):
        return None
    if len(name) > MAX_NAME:
        why = f"is {len(name)} characters (max {MAX_NAME})"
    elif not name or not name[0].isalpha() or not name[0].isascii():
        why = "must start with a letter"
    elif name != name.upper():
        why = "must be uppercase"
    else:
        why = "may hold only letters A-Z and digits"
    return f"{kind} name {name!r} {why}"


def _first_non_ascii(text: str) -> str:
    pos, char = next((i, c) for i, c in enumerate(text) if ord(c) > 127)
    return f"non-ASCII character {char!r} (U+{ord(char):04X}) at position {pos + 1}"


def _label_problem(what: str, label: str | None) -> str | None:
    if not label:
        return f"{what} has no label"
    if len(label) > MAX_LABEL:
        return f"{what} label is {len(label)} characters (max {MAX_LABEL}): {label!r}"
    if not label.isascii():
        return f"{what} label has a {_first_non_ascii(label)}: {label!r}"
    return None


def _encode_text(values: pd.Series) -> TextColumn | None:
    """The column's distinct values as Arrow strings; None if any value is not text. The
    distinct values go through Arrow, so exactly what `pa.array(..., type=string,
    from_pandas=True)` accepts passes (str, and None / NaN / pd.NA / NaT as missing). Arrow-
    backed text is factorized in Arrow, never turned into Python strings row by row."""
    try:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        distinct = pa.array(np.asarray(uniques, dtype=object), type=pa.string(), from_pandas=True)
        missing = codes < 0
        if missing.any():  # the missing markers, as Arrow would take them
            pa.array(values[missing].to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    except (TypeError, pa.ArrowTypeError, pa.ArrowInvalid):
        return None
    return TextColumn(distinct, _small_codes(codes, len(distinct)))


def _first_row(bad_values: np.ndarray, codes: np.ndarray) -> tuple[int, int]:
    """(rows holding one of the flagged distinct values, the first such row)."""
    rows = np.flatnonzero(np.append(bad_values, False)[codes])
    return rows.size, int(rows[0])


def _value_problems(df: pd.DataFrame, dataset: str, name: str,
                    text: TextColumn | None) -> list[str]:
    """Byte lengths and ASCII of a text column, measured in pyarrow's C kernels on its distinct
    values; only an offending record is looked at one by one."""
    if text is None:
        return [f"{dataset}.{name} holds values that are not text (run sdtm.conform.conform first)"]
    problems = []
    nbytes = pc.fill_null(pc.binary_length(text.values), 0).to_numpy(zero_copy_only=False)
    too_long = nbytes > MAX_VALUE
    if too_long.any():
        count, row = _first_row(too_long, text.codes)
        where = record_ref(df, dataset, row)
        problems.append(f"{dataset}.{name}: {count} value(s) over {MAX_VALUE} bytes, "
                        f"the first at {where} with {int(nbytes[text.codes[row]])} bytes "
                        f"(split it into SUPP{dataset} with sdtm.conform.split_long_text)")
    ascii_ = pc.fill_null(pc.string_is_ascii(text.values), True).to_numpy(zero_copy_only=False)
    if not ascii_.all():
        count, row = _first_row(~ascii_, text.codes)
        where, char = record_ref(df, dataset, row), _first_non_ascii(df[name].iat[row])
        problems.append(f"{dataset}.{name}: {count} value(s) not ASCII, the first at "
                        f"{where} has a {char}")
    return problems


def _is_text(dtype) -> bool:
    return dtype.kind in "OSU" or isinstance(dtype, pd.StringDtype)


def _column_problems(df: pd.DataFrame, dataset: str, name: str,
                     text: TextColumn | None) -> list[str]:
    dtype = df[name].dtype
    if dtype.kind in "iuf":
        return []
    if _is_text(dtype):
        return _value_problems(df, dataset, name, text)
    return [(f"{dataset}.{name} has dtype {dtype}; SDTM variables are text or numbers "
            f"(dates as ISO 8601 text)")]


def check_transport(df: pd.DataFrame, dataset: str, labels: dict[str, str],
                    dataset_label: str) -> None:
    """Fail with every violation of the FDA / SAS XPT v5 limits, listed in one TransportError:
    names ≤ 8 characters, uppercase letters and digits, starting with a letter; labels ≤ 40
    ASCII characters; character values ≤ 200 bytes of ASCII."""
    checked_text(df, dataset, labels, dataset_label)


def checked_text(df: pd.DataFrame, dataset: str, labels: dict[str, str], dataset_label: str,
                 known: dict[str, TextColumn] | None = None) -> dict[str, TextColumn]:
    """`check_transport`, returning each text column's distinct values and codes: the XPT
    writer lays the records out from them, so the column's objects are walked only once.
    `known` are columns already encoded (by `conform_text`), taken as they are."""
    known = known or {}
    problems = [p for p in (_name_problem("dataset", dataset),
                            _label_problem(f"dataset {dataset}", dataset_label)) if p]
    dup = set(df.columns[df.columns.duplicated()])
    problems += [f"{dataset} has the variable {d} more than once" for d in sorted(dup)]
    texts = {}
    for name in dict.fromkeys(df.columns):
        problems += [p for p in (_name_problem(f"{dataset} variable", str(name)),
                                 _label_problem(f"{dataset}.{name}", labels.get(name))) if p]
        if name in dup:  # df[name] of a doubled name is a frame, not a column
            continue
        text = None
        if _is_text(df[name].dtype):
            text = known.get(name)
            if text is None or len(text.codes) != len(df):
                text = _encode_text(df[name])
            texts[name] = text
        problems += _column_problems(df, dataset, name, text)
    if problems:
        raise TransportError(f"{dataset} cannot be submitted as SAS XPT v5 ({len(problems)} "
                             "problem(s)):\n  - " + "\n  - ".join(problems), problems,
                             hint="FDA Study Data Technical Conformance Guide limits; "
                                  "pyreadstat would truncate or write these silently")
    return texts
