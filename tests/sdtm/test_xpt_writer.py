"""sdtm.xpt's numpy writer and reader against pyreadstat, the reference they replace.

Every dataset the samples build (SDTM, ADaM with its SAS date formats, the TLF ARDs) is
written both ways and must give the same bytes; so must random frames full of the cases
ReadStat treats specially (missing, zero and -0, subnormals, numbers IBM floats cannot hold,
NUL bytes, empty and all-empty text, widths, label lengths, NAMESTR counts around record
boundaries, zero rows). What is written is read back with pyreadstat and with pandas'
independent SAS reader. The numpy reader must return what the pyreadstat reader returns.
"""
from __future__ import annotations

import datetime as dt
import json
import string

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyreadstat
import pytest

from clinpipe.errors import ClinpipeError
from sdtm import xpt
from sdtm.xpt import (
    RECORD,
    ibm_doubles,
    read_xpt,
    read_xpt_reference,
    write_xpt,
    write_xpt_reference,
)

SAS_EPOCH = pd.Timestamp("1960-01-01")

# numbers ReadStat's ieee2xpt treats each its own way
SPECIAL = np.array([
    0.0, -0.0, 1.0, -1.0, 0.5, 0.1, -0.1, 1 / 3, 2 / 3, 16.0, 255.0, 256.0, 1e-5, 1e5,
    123456789.0, 2.0 ** 53, 2.0 ** 53 + 2, -(2.0 ** 60), np.pi, -np.e,
    5e-324, 2.2250738585072014e-308, 1e-300, 1e-80, 5.397605346934028e-79, 5.4e-79, 1e-78,
    16.0 ** -64, 16.0 ** -65, 2.0 ** -260, 2.0 ** -261, 2.0 ** -257,
    7.2e75, 16.0 ** 62, 2.0 ** 248, 2.0 ** 249, 2.0 ** 252 * 0.999, 1e76, 1e300, -1e300,
    np.finfo(np.float64).max, -np.finfo(np.float64).max, np.inf, -np.inf, np.nan,
])
FORMATS = ["DATE9.", "DATETIME20.", "TIME8.", "8.2", "8.", "BEST12.", "E8601DA10.", "Z5.",
           "COMMA10.2", "F8.3", "YYMMDD10.", "DATE.", "A", "X1Y2.", "$CHAR20.", "$5.", "$.",
           "$", "$UPCASE.", "LONGFORMATNAME12.", "_X_9."]
TEXT = string.ascii_letters + string.digits + string.punctuation + " " * 10


def _names(rng: np.random.Generator, count: int) -> list[str]:
    names: dict[str, None] = {}
    while len(names) < count:
        size = int(rng.integers(1, 9))
        first = rng.choice(list(string.ascii_uppercase))
        rest = "".join(rng.choice(list(string.ascii_uppercase + string.digits), size - 1))
        names[first + rest] = None
    return list(names)


def _text(rng: np.random.Generator, longest: int) -> str:
    size = int(rng.integers(0, longest + 1))
    chars = rng.choice(list(TEXT + "\0" * 2 + "\t\n"), size)
    return "".join(chars)


def _numbers(rng: np.random.Generator, rows: int) -> np.ndarray:
    pick = rng.integers(0, 5)
    if pick == 0:  # the special cases, repeated
        return rng.choice(SPECIAL, rows)
    if pick == 1:  # any bit pattern: every exponent, NaN payloads, subnormals
        return rng.integers(0, 2 ** 63, rows, dtype=np.uint64).view(np.float64) * rng.choice(
            [1.0, -1.0], rows)
    if pick == 2:  # whole numbers, as --SEQ, --DY and counts are
        out = rng.integers(-500, 5000, rows).astype(np.float64)
    else:
        out = rng.normal(0, 10.0 ** rng.integers(-6, 12), rows)
    out[rng.random(rows) < 0.2] = np.nan
    return out


def _column(rng: np.random.Generator, rows: int):
    kind = rng.choice(["num", "num", "text", "text", "text", "empty", "int", "small", "nullable",
                       "float32", "strings", "arrow", "category", "none"])
    if kind == "num":
        return _numbers(rng, rows)
    if kind == "int":
        return rng.integers(-2 ** 62, 2 ** 62, rows)
    if kind == "small":
        return rng.integers(-100, 100, rows).astype(rng.choice([np.int8, np.int16, np.int32,
                                                                 np.uint8, np.uint16]))
    if kind == "nullable":
        return pd.array(np.where(rng.random(rows) < 0.3, None, rng.integers(0, 99, rows)),
                        dtype="Int64")
    if kind == "float32":
        return _numbers(rng, rows).astype(np.float32)
    longest = int(rng.choice([1, 2, 8, 40, 200]))
    if kind == "empty":
        return np.array([""] * rows, dtype=object)
    values = np.array([_text(rng, longest) for _ in range(rows)], dtype=object)
    if rows:  # few distinct values, as most SDTM text columns have
        values = rng.choice(values[: max(1, rows // int(rng.choice([1, 3, 50])))], rows)
    if kind in ("strings", "arrow"):
        return pd.array(np.where(rng.random(rows) < 0.2, None, values),
                        dtype="string" if kind == "strings" else "string[pyarrow]")
    if kind == "category":
        return pd.Categorical(values)
    if kind == "none":
        values = values.copy()
        values[rng.random(rows) < 0.3] = rng.choice([None, np.nan])
    return values


def random_frame(seed: int):
    """(frame, dataset, label, labels, formats, timestamp) drawn with `seed`."""
    rng = np.random.default_rng(seed)
    rows = int(rng.choice([0, 1, 2, 3, 7, 10, 41, 97, 500]))
    count = int(rng.choice([1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 31]))
    names = _names(rng, count + 1)
    dataset, names = names[0], names[1:]
    df = pd.DataFrame({n: _column(rng, rows) for n in names}, index=rng.permutation(rows))
    labels = {n: "".join(rng.choice(list(TEXT), int(rng.integers(1, 41)))) for n in names}
    label = "".join(rng.choice(list(TEXT), int(rng.integers(1, 41))))
    formats = {n: str(rng.choice(FORMATS)) for n in names if rng.random() < 0.3} or None
    timestamp = dt.datetime(1960, 1, 1) + dt.timedelta(seconds=int(rng.integers(0, 3e9)))
    return df, dataset, label, labels, formats, timestamp


def assert_same_file(tmp_path, df, dataset, label, labels, formats=None, timestamp=None):
    """write_xpt gives pyreadstat's bytes, or pyreadstat's error (a format ReadStat's grammar
    refuses, such as a two-letter name: 'AB9.')."""
    try:
        ref = write_xpt_reference(df, tmp_path / "ref.xpt", dataset, label, labels,
                                  timestamp=timestamp, formats=formats)
    except pyreadstat.ReadstatError as exc:
        with pytest.raises(pyreadstat.ReadstatError, match=str(exc)):
            write_xpt(df, tmp_path / "new.xpt", dataset, label, labels, timestamp=timestamp,
                      formats=formats)
        return None
    with pytest.MonkeyPatch.context() as patch:  # the numpy path, not the fallback
        patch.setattr(xpt, "_write_pyreadstat", None)
        new = write_xpt(df, tmp_path / "new.xpt", dataset, label, labels, timestamp=timestamp,
                        formats=formats)
    got, want = new.read_bytes(), ref.read_bytes()
    if got != want:
        at = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b) if len(got) == len(
            want) else min(len(got), len(want))
        pytest.fail(f"{dataset}: {len(got)} bytes vs pyreadstat's {len(want)}, first difference "
                    f"at byte {at} (record {at // RECORD}): {got[at - 8:at + 8]!r} vs "
                    f"{want[at - 8:at + 8]!r}")
    return new


# -- the IBM doubles ----------------------------------------------------------------------------

def test_ibm_doubles_known_values():
    # TS-140's examples and the edges: 1, -1, the SAS missing '.', 0 and -0 as all zeros
    got = ibm_doubles(np.array([1.0, -1.0, np.nan, 0.0, -0.0, 0.1, 100.0, np.inf, -np.inf]))
    assert [got[i:i + 1].tobytes().hex() for i in range(len(got))] == [
        "4110000000000000", "c110000000000000", "2e00000000000000", "0000000000000000",
        "0000000000000000", "401999999999999a", "4264000000000000", "7fffffffffffffff",
        "ffffffffffffffff"]


# -- random frames --------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(300))
def test_random_frames_same_bytes_as_pyreadstat(tmp_path, seed):
    df, dataset, label, labels, formats, timestamp = random_frame(seed)
    assert_same_file(tmp_path, df, dataset, label, labels, formats, timestamp)


@pytest.mark.parametrize("count", range(1, 13))
@pytest.mark.parametrize("rows", [0, 1, 9, 10, 11])
def test_namestr_and_observation_padding_around_record_boundaries(tmp_path, count, rows):
    # 140-byte NAMESTRs fill whole records every 4 variables; 10 rows of 8 bytes are exactly
    # one record, 9 or 11 are not
    df = pd.DataFrame({f"V{i}": np.arange(rows, dtype=float) + i for i in range(count)})
    labels = {c: f"Label {c}" for c in df.columns}
    assert_same_file(tmp_path, df, "DS", "Data", labels)


def test_all_blank_trailing_rows_and_zero_rows(tmp_path):
    df = pd.DataFrame({"A": ["x", "", ""], "B": ["", "", ""]})
    assert_same_file(tmp_path, df, "DS", "Data", {"A": "A", "B": "B"})
    assert_same_file(tmp_path, df.iloc[:0], "DS", "Data", {"A": "A", "B": "B"})
    assert_same_file(tmp_path, pd.DataFrame({"A": pd.Series([], dtype=object)}), "DS", "Data",
                     {"A": "A"})


def test_a_label_like_a_timestamp_is_restamped_as_pyreadstat_does(tmp_path):
    df = pd.DataFrame({"A": [1.0]})
    assert_same_file(tmp_path, df, "DS", "Cut 01FEB25:10:11:12:13 data", {"A": "A"},
                     timestamp=dt.datetime(2025, 3, 28, 14, 5, 9))


@pytest.mark.parametrize("fmt", ["9DATE.", "AB9.", "_X9.", "DATE9.X", "$CHAR5.2", "A" * 32 + "."])
def test_a_format_readstat_refuses_is_pyreadstats_error(tmp_path, fmt):
    df = pd.DataFrame({"A": [1.0]})
    with pytest.raises(pyreadstat.ReadstatError, match="format string could not be understood"):
        write_xpt(df, tmp_path / "a.xpt", "DS", "Data", {"A": "A"}, formats={"A": fmt})
    with pytest.raises(pyreadstat.ReadstatError, match="format string could not be understood"):
        write_xpt_reference(df, tmp_path / "b.xpt", "DS", "Data", {"A": "A"},
                            formats={"A": fmt})


def test_what_the_numpy_writer_does_not_lay_out_goes_through_pyreadstat(tmp_path):
    # float16 pyreadstat writes as text; bytes as their str()
    df = pd.DataFrame({"A": np.array([1.5, 2], dtype=np.float16),
                       "B": np.array([b"ab", "c"], dtype=object)})
    assert_fallback = write_xpt(df, tmp_path / "a.xpt", "DS", "Data", {"A": "A", "B": "B"})
    ref = write_xpt_reference(df, tmp_path / "b.xpt", "DS", "Data", {"A": "A", "B": "B"})
    assert assert_fallback.read_bytes() == ref.read_bytes()


# -- reading back -------------------------------------------------------------------------------

def _expected(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """What XPT keeps of a frame: text blank-padded (so no trailing blanks, cut at a NUL),
    numbers as IBM doubles (3 bits finer than IEEE below, so read back exactly), NaN missing."""
    out = {}
    for name in df.columns:
        col = df[name]
        if col.dtype.kind in "iuf":
            out[name] = col.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            out[name] = np.array(["" if pd.isna(v) else v.split("\0")[0].rstrip(" ")
                                  for v in col], dtype=object)
    return out


def _trimmed_rows(df: pd.DataFrame) -> int:
    """ReadStat drops trailing records that are all blank (it cannot tell them from padding)."""
    text = _expected(df)
    blank = np.ones(len(df), dtype=bool)
    for name in df.columns:
        blank &= (text[name] == "") if text[name].dtype == object else False
    keep = np.flatnonzero(~blank)
    return int(keep[-1]) + 1 if keep.size else 0


@pytest.mark.parametrize("seed", range(0, 300, 3))
def test_random_frames_read_back_by_pyreadstat_pandas_and_read_xpt(tmp_path, seed):
    df, dataset, label, labels, formats, timestamp = random_frame(seed)
    path = write_xpt(df, tmp_path / "new.xpt", dataset, label, labels, timestamp=timestamp,
                     formats=formats)
    rows = _trimmed_rows(df)
    want = {k: v[:rows] for k, v in _expected(df).items()}

    back, meta = xpt._read_fast(path)
    ref, ref_meta = read_xpt_reference(path)
    pd.testing.assert_frame_equal(back, ref)
    assert meta == ref_meta
    assert meta.dataset == dataset and meta.label == label.rstrip(" ")
    assert meta.labels == {k: v.rstrip(" ") for k, v in labels.items()}
    assert list(back.columns) == list(df.columns) and len(back) == rows
    for name, values in want.items():
        if values.dtype == object:
            assert back[name].tolist() == values.tolist(), name
        else:
            got = back[name].to_numpy()
            # IBM doubles hold every IEEE value ReadStat converts exactly; beyond 2^249 it
            # writes the largest magnitude (read back as infinity), below 2^-260 zero
            held = np.isfinite(values) & (np.abs(values) < 2.0 ** 249)
            small = np.abs(values) < 2.0 ** -260
            np.testing.assert_array_equal(got[held & ~small], values[held & ~small], err_msg=name)
            assert (got[held & small] == 0).all(), name
            np.testing.assert_array_equal(got[~held], np.sign(values[~held]) * np.inf)

    # pandas' reader is a second, independent decoder; it turns some true zeros into 5.4e-79
    # (IBM's smallest magnitude) and reads the overflow marker as a huge number
    try:
        theirs = pd.read_sas(path, format="xport", encoding="utf-8")
    except StopIteration:  # pandas counted no records (see below)
        assert rows <= RECORD // 8
        return
    assert list(theirs.columns) == list(df.columns)
    # its record count is a guess from blank 8-byte words in the last 80 bytes: it keeps
    # trailing blank records ReadStat drops, and drops short records that end in blanks
    common = min(rows, len(theirs))
    assert len(theirs) >= rows - RECORD // 8
    for name, values in want.items():
        got, values = theirs[name].to_numpy()[:common], values[:common]
        if values.dtype == object:
            # it strips every trailing whitespace character, not only blanks
            assert [("" if pd.isna(v) else v) for v in got] == [v.rstrip() for v in values], name
        else:
            assert np.isnan(got[np.isnan(values)]).all(), name
            held = np.abs(values) < 2.0 ** 249  # beyond, IBM's largest magnitude: a marker
            np.testing.assert_allclose(got[held], values[held], rtol=1e-15, atol=1e-78,
                                       err_msg=name)


def test_read_of_a_broken_or_truncated_file_names_it(tmp_path):
    df = pd.DataFrame({"A": ["x", "y"], "B": [1.0, 2.0]})
    good = write_xpt(df, tmp_path / "good.xpt", "DS", "Data", {"A": "A", "B": "B"}).read_bytes()
    for name, data in {"empty.xpt": b"", "short.xpt": good[:700],
                       "noobs.xpt": good[:RECORD * 9], "garbage.xpt": b"x" * 2000,
                       "v5lie.xpt": good[:RECORD * 7] + b"HEADER RECORD*******NAMESTR HEADER "
                                                      b"RECORD!!!!!!!000000009900000000000000000000  "}.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ClinpipeError, match=f"{name}: not a readable SAS XPT file"):
            read_xpt(path)


# -- every dataset the samples build --------------------------------------------------------------

def _field_meta(field: pa.Field) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in (field.metadata or {}).items()}


def _xpt_frame(table: pa.Table) -> pd.DataFrame:
    """A built parquet file as the frame its writer gave write_xpt: ADaM dates back to SAS
    numbers (days, or seconds, since 1960-01-01), text with '' for missing."""
    out = {}
    for field, column in zip(table.schema, table.columns):
        if pa.types.is_date(field.type) or pa.types.is_timestamp(field.type):
            stamps = pd.Series(column.to_pandas()).astype("datetime64[ns]")
            delta = stamps - SAS_EPOCH
            out[field.name] = ((delta.dt.days if pa.types.is_date(field.type)
                                else delta.dt.total_seconds()).to_numpy(dtype=np.float64))
        elif pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            out[field.name] = np.array(column.fill_null("").to_pylist(), dtype=object)
        else:
            out[field.name] = column.to_numpy().astype(np.float64)
    return pd.DataFrame(out)


def _built(sample_build):
    for study, build in sample_build.items():
        for layer in ("sdtm", "adam"):
            for parquet in sorted(getattr(build, layer).glob("*.parquet")):
                yield study, layer, parquet
        for parquet in sorted(build.tlf.rglob("*.parquet")):
            if parquet.with_suffix(".xpt").exists():
                yield study, "tlf", parquet


def test_every_built_dataset_same_bytes_as_pyreadstat_and_read_alike(sample_build, tmp_path):
    seen = {"sdtm": 0, "adam": 0, "tlf": 0}
    for study, layer, parquet in _built(sample_build):
        table = pq.read_table(parquet)
        meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
        df = _xpt_frame(table)
        if layer == "tlf":
            from tlf.ard import ARD_LABELS
            dataset, labels, formats = "ARD", ARD_LABELS, None
            label = read_xpt_reference(parquet.with_suffix(".xpt"))[1].label
            stamp = dt.datetime(1960, 1, 1)
        else:
            dataset, label = meta["clinpipe.dataset"], meta["clinpipe.label"]
            labels = json.loads(meta["clinpipe.labels"])
            formats = {f.name: _field_meta(f)["sas_format"] for f in table.schema
                       if "sas_format" in _field_meta(f)} or None
            stamp = None
        out = tmp_path / f"{study}_{layer}_{parquet.stem}"
        out.mkdir()
        new = assert_same_file(out, df, dataset, label, labels, formats, stamp)
        # the pipeline's own file came from write_xpt too: same bytes again, up to the stamp
        built = parquet.with_suffix(".xpt").read_bytes()
        assert len(built) == len(new.read_bytes())
        assert built[560:] == new.read_bytes()[560:], f"{study} {layer} {parquet.stem}"
        back, back_meta = xpt._read_fast(new)
        ref, ref_meta = read_xpt_reference(new)
        pd.testing.assert_frame_equal(back, ref)
        assert back_meta == ref_meta
        seen[layer] += 1
    assert seen["sdtm"] > 20 and seen["adam"] > 5 and seen["tlf"] > 5, seen


def test_write_dataset_lays_out_conforms_encoding_as_pyreadstat_writes_the_frame(tmp_path):
    # conform_text's codes come from the raw values: numbers, dates, None and NaN in Char
    # variables, two raw values giving one text (1 and '1'), an added empty Exp variable
    from sdtm.conform import conform
    from sdtm.metadata import domain
    from sdtm.write import write_dataset

    rng = np.random.default_rng(7)
    rows = 400
    raw = pd.DataFrame({
        "STUDYID": "S1", "DOMAIN": "AE",
        "USUBJID": rng.choice(["S1-001", "S1-002", "S1-010"], rows),
        "AESEQ": np.arange(1, rows + 1),
        "AETERM": rng.choice(np.array(["Headache", 1, "1", 2.5, " x"], dtype=object), rows),
        "AEDECOD": rng.choice(["Headache", "Nausea"], rows),
        "AELLT": rng.choice(np.array(["Headache", "", None, np.nan, 3, "3"], dtype=object), rows),
        "AESTDTC": rng.choice(np.array([dt.date(2024, 1, 2), "2024-02", "", None], dtype=object),
                              rows),
    })
    with pytest.MonkeyPatch.context() as patch:  # conform's encoding, not a second pass
        patch.setattr("sdtm.conform._encode_text", None)
        written = write_dataset(raw, "AE", tmp_path / "new")
    data = conform(raw, "AE")
    meta = domain("AE")
    ref = write_xpt_reference(data, tmp_path / "ref.xpt", "AE", meta.label,
                              {c: meta.var(c).label for c in data.columns})
    assert written["xpt"].read_bytes() == ref.read_bytes()
    # the frame written holds its text as string[pyarrow]: the same texts as conform's objects
    text = [c for c in data.columns if data[c].dtype == object]
    assert text and all(written["data"][c].dtype == "string[pyarrow]" for c in text)
    pd.testing.assert_frame_equal(written["data"].astype({c: object for c in text}), data)


# -- reading what pyreadstat never writes ---------------------------------------------------------

@pytest.mark.parametrize("seed", range(20))
def test_read_xpt_decodes_any_bytes_as_readstat_does(tmp_path, seed):
    # hand-made files: short numbers (3..7 bytes, and 2: not a number to ReadStat), an empty
    # text field, random record bytes (unnormalised IBM numbers, special missings .A-.Z and
    # ._, NULs and blanks in text), a truncated last record and all-blank trailing records
    rng = np.random.default_rng(seed)
    widths = [int(rng.choice([2, 3, 5, 7, 8, 8])) if rng.random() < 0.6 else -int(
        rng.choice([0, 1, 4, 12])) for _ in range(int(rng.integers(1, 9)))]
    columns = [xpt._Column(f"V{i}", f"Label {i}", w <= 0, abs(w), None)
               for i, w in enumerate(widths)]
    row_length = sum(c.width for c in columns)
    if not row_length:
        columns.append(xpt._Column("LAST", "Last", False, 8, None))
        row_length = 8
    rows = int(rng.integers(0, 60))
    data = rng.integers(0, 256, (rows, row_length), dtype=np.uint8)
    position = 0
    for column in columns:
        field = data[:, position:position + column.width]
        if column.char:
            field[:] = rng.choice(np.frombuffer(b"ab Z9\0   ", dtype=np.uint8), field.shape)
        elif column.width:
            pick = rng.random(rows)
            field[pick < 0.3, 1:] = 0  # a first byte and zeros: '.', a tag, or other
            field[pick < 0.15, 0] = rng.choice(np.frombuffer(b".AZ_\0\x41\x80", dtype=np.uint8),
                                               int((pick < 0.15).sum()))
        position += column.width
    if rows > 3 and rng.random() < 0.5:
        data[-2:] = _BLANK_BYTE
    # a cut-off record (ASCII: with the blank padding it may make one more whole record)
    body = data.tobytes() + bytes(rng.choice(np.frombuffer(b"abc9 .", dtype=np.uint8),
                                             int(rng.integers(0, row_length))))
    path = tmp_path / "hand.xpt"
    path.write_bytes(xpt._headers(columns, "HAND", "Hand made", b"01JAN60:00:00:00")
                     + body + b" " * (-len(body) % RECORD))
    back, meta = xpt._read_fast(path)  # the numpy reader, not its fallback
    ref, ref_meta = read_xpt_reference(path)
    pd.testing.assert_frame_equal(back, ref)
    assert meta == ref_meta


_BLANK_BYTE = 0x20


def test_text_that_is_not_utf8_is_read_as_windows_1252_both_ways(tmp_path):
    """XPT declares no encoding; what is not UTF-8 is what SAS on Windows writes (WLATIN1),
    so it is read (validation then reports the non-ASCII text) rather than refused."""
    path = write_xpt(pd.DataFrame({"A": ["abc", "def"]}), tmp_path / "bad.xpt", "DS", "Data",
                     {"A": "A"})
    data = bytearray(path.read_bytes())
    data[data.rindex(b"abc")] = 0x92            # Windows-1252's right single quote
    path.write_bytes(bytes(data))
    for read in (read_xpt, read_xpt_reference):
        df, _ = read(path)
        assert df["A"].tolist() == ["\u2019bc", "def"], read


def test_read_xpt_of_xpt_v8_goes_through_pyreadstat(tmp_path):
    df = pd.DataFrame({"LONGNAME_OVER_8": ["x", "yy"], "N": [1.0, np.nan]})
    path = tmp_path / "v8.xpt"
    pyreadstat.write_xport(df, str(path), file_format_version=8, table_name="V8")
    back, meta = read_xpt(path)
    ref, ref_meta = read_xpt_reference(path)
    pd.testing.assert_frame_equal(back, ref)
    assert meta == ref_meta and list(back.columns) == list(df.columns)
