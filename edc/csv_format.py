"""CSV per form: the "CSV extract" shape of commercial EDCs.

One file per form (`<form oid lower>.csv`), UTF-8, header = the form's columns, RFC 4180
minimal quoting, "\\n" line endings. The reader is strict about shape (a short or long row,
an unterminated quote, a header that does not match forms.yaml are fatal) because a damaged
file read leniently silently loses records.
"""
from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from clinpipe.errors import ExportError
from edc.export import check_columns, frames_for
from edc.forms import FormDef, FormsConfig


def csv_name(form_oid: str) -> str:
    return f"{form_oid.lower()}.csv"


class _RowEnds:
    """Let csv.writer believe rows end in CRLF, so it quotes any field holding a bare CR
    (RFC 4180 requires it; with lineterminator="\\n" the csv module leaves CR unquoted),
    then write the row with "\\n"."""

    def __init__(self, handle):
        self._write = handle.write

    def write(self, row: str) -> None:
        self._write(row[:-2] + "\n")


def write_csv(frames: dict[str, pd.DataFrame], forms: FormsConfig, outdir: Path) -> list[Path]:
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for form, df in frames_for(forms, frames):
        path = outdir / csv_name(form.oid)
        columns = form.columns()
        with open(path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(_RowEnds(handle), lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
            writer.writerow(columns)
            writer.writerows(zip(*(df[c].tolist() for c in columns)))
        paths.append(path)
    return paths


def decode_check(data: bytes, path: Path, encoding: str) -> str:
    """The encoding to parse one file with, decided per file: UTF-8 when the bytes are valid
    UTF-8 (a BOM is dropped), whatever `encoding` says, since text in another encoding is
    almost never valid UTF-8 by chance; else `encoding`, the fallback for files that are not
    (e.g. cp1252), after proving the bytes decode in it. So `--encoding cp1252` reads a
    transfer whose files are partly UTF-8 and partly Windows-1252 without garbling either. A
    failure names the line and byte so the user can look at it (a parser would only say
    "invalid data")."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ExportError(f"unknown encoding {encoding!r}", file=path,
                          hint="use a Python codec name such as utf-8 or cp1252") from None
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if data.isascii():   # ASCII is valid UTF-8: no decoding pass needed
        return "utf-8"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if _is_utf8(encoding):
            raise _not_decodable(data, path, "utf-8", exc) from None
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise _not_decodable(data, path, encoding, exc) from None
    return encoding


def _not_decodable(data: bytes, path: Path, encoding: str, exc: UnicodeDecodeError) -> ExportError:
    line = data.count(b"\n", 0, exc.start) + 1
    column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
    return ExportError(
        f"not valid {encoding}: byte 0x{data[exc.start]:02x} at line {line}, byte {column} "
        f"of the line (byte {exc.start} of the file)", file=path, record=f"line {line}",
        hint="the file was probably saved as Windows-1252/Latin-1: pass `--encoding cp1252` "
             "(clinpipe read, sdtm or run; read_transfer(..., encoding='cp1252')), which applies "
             "only to files that are not valid UTF-8, or ask for a UTF-8 re-export")


def _header(data: bytes, encoding: str, path: Path) -> list[str]:
    end = data.find(b"\n")     # not split(): that would copy the rest of the file
    first = data[:end if end >= 0 else len(data)].decode(encoding).rstrip("\r")
    if not first.strip():
        raise ExportError("file is empty (no header row)", file=path,
                          hint="re-export the form; an empty form still has its header row")
    return next(csv.reader([first]))


def read_csv_form(path: Path, form: FormDef, encoding: str = "utf-8") -> pd.DataFrame:
    """One form's CSV as an export frame (unsorted; the caller finishes it)."""
    return read_csv_table(path, form, encoding).to_pandas()


def read_csv_table(path: Path, form: FormDef, encoding: str = "utf-8") -> pa.Table:
    """One form's CSV as an Arrow table of text columns (what `read_csv_form` turns into the
    export frame; the reader also checks the system columns on it, without converting back).

    pyarrow parses (multi-threaded, and strict: a row with the wrong number of fields or an
    unterminated quote is an error, where pandas pads a short row or reads a trailing empty
    field as missing); the csv module then locates the problem by line for the message.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ExportError(f"cannot read the file ({exc.strerror})", file=path,
                          hint="check the file exists and is readable") from None
    encoding = decode_check(data, path, encoding)
    header = _header(data, encoding, path)
    check_columns(header, form, path)
    try:
        return pa_csv.read_csv(
            io.BytesIO(data),
            read_options=pa_csv.ReadOptions(skip_rows=1, column_names=header, block_size=1 << 24,
                                            encoding="utf8" if _is_utf8(encoding) else encoding),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(column_types={c: pa.string() for c in header},
                                                  strings_can_be_null=False,
                                                  quoted_strings_can_be_null=False))
    except pa.ArrowInvalid as exc:
        raise _locate_error(data, encoding, len(header), path, exc) from None


def _is_utf8(encoding: str) -> bool:
    return encoding.replace("-", "").replace("_", "").lower() in ("utf8", "utf8sig")


def _locate_error(data: bytes, encoding: str, width: int, path: Path,
                  exc: Exception) -> ExportError:
    """Find the first malformed row with the csv module (slow, but only on the error path)."""
    reader = csv.reader(io.StringIO(data.decode(encoding), newline=""), strict=True)
    last_line = data.rstrip(b"\r\n").count(b"\n") + 1
    try:
        next(reader, None)
        for row in reader:
            if row and len(row) != width:
                line = reader.line_num
                short = len(row) < width
                cut = " (the last row is cut short)" if short and line == last_line else ""
                return ExportError(
                    f"line {line} has {len(row)} fields, the header has {width}{cut}",
                    file=path, record=f"line {line}",
                    hint="the file looks truncated: ask for a complete re-transfer" if short
                    else "a value with a comma is probably not quoted; re-export with RFC 4180 "
                         "quoting")
    except csv.Error:
        return ExportError(f"unterminated quote: the file ends inside a quoted value (after line "
                           f"{reader.line_num})", file=path, record=f"line {reader.line_num}",
                           hint="the file looks truncated: ask for a complete re-transfer")
    return ExportError(f"not a readable CSV file ({exc})", file=path,
                       hint="check the file is a comma-separated export")


def peek_studyid(path: Path, encoding: str = "utf-8") -> str | None:
    """STUDYID of the first data row, without reading the whole file (None if no rows)."""
    try:
        with open(path, encoding=encoding, newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            row = next(reader, None)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None  # the full read reports the problem with its details
    header = [h.lstrip("\ufeff") for h in header or []]
    if not row or "STUDYID" not in header:
        return None
    i = header.index("STUDYID")
    return row[i] if i < len(row) and row[i] else None
