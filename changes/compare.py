"""Two builds of one study compared: records added, removed and changed per SDTM/ADaM dataset
(matched by natural key, changes.keys), and every ARD number that moved.

Everything is merges and column-wise array comparisons: no loop over records.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from changes import keys as K
from clinpipe.errors import OutputError

ARD_KEY = ["OUTID", "POP", "GRP1", "GRP1LVL", "GRP2", "GRP2LVL", "PARAMCD", "VARLVL", "STAT", "TIMEPT"]
ARD_VALUES = ["STATVAL", "STATC", "UNIT", "METHOD"]
RECORD_COLUMNS = ["LAYER", "DATASET", "CHANGE", "USUBJID", "KEY", "VARIABLE", "OLD", "NEW"]
ARD_COLUMNS = ["OUTID", "CHANGE", "POP", "GRP1", "GRP1LVL", "GRP2", "GRP2LVL", "PARAMCD", "VARLVL",
               "STAT", "TIMEPT", "OLD_STATVAL", "NEW_STATVAL", "DELTA", "OLD_STATC", "NEW_STATC"]
LAYERS = ("sdtm", "adam")
_CHANGE_ORDER = {"added": 0, "removed": 1, "changed": 2, "moved": 2}


@dataclass
class DatasetChange:
    """One dataset's comparison. status: compared / added (new build only) / removed."""
    layer: str
    dataset: str
    status: str
    keys: tuple[str, ...] = ()
    old_rows: int = 0
    new_rows: int = 0
    added: int = 0
    removed: int = 0
    changed: int = 0
    duplicate_keys_old: int = 0      # key groups with more than one record (matched by order)
    duplicate_keys_new: int = 0
    variables_added: tuple[str, ...] = ()
    variables_removed: tuple[str, ...] = ()

    @property
    def note(self) -> str:
        notes = []
        if self.status != "compared":
            notes.append(f"dataset only in the {'new' if self.status == 'added' else 'old'} build")
        if self.duplicate_keys_old or self.duplicate_keys_new:
            notes.append(f"keys not unique ({self.duplicate_keys_old} old / {self.duplicate_keys_new} "
                         "new key groups): records of one key matched in dataset order")
        if self.variables_added:
            notes.append("variables only in the new build: " + ", ".join(self.variables_added))
        if self.variables_removed:
            notes.append("variables only in the old build: " + ", ".join(self.variables_removed))
        return "; ".join(notes)


@dataclass
class OutputChange:
    outid: str
    status: str                      # compared / added / removed
    old_rows: int = 0
    new_rows: int = 0
    moved: int = 0
    added: int = 0
    removed: int = 0


@dataclass
class ChangeReport:
    study: str
    old: Path
    new: Path
    old_transfer: str
    new_transfer: str
    datasets: list[DatasetChange] = field(default_factory=list)
    outputs: list[OutputChange] = field(default_factory=list)
    records: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=RECORD_COLUMNS))
    ard: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ARD_COLUMNS))

    def dataset_summary(self) -> pd.DataFrame:
        rows = [{"LAYER": d.layer, "DATASET": d.dataset, "STATUS": d.status,
                 "OLD_RECORDS": d.old_rows, "NEW_RECORDS": d.new_rows, "ADDED": d.added,
                 "REMOVED": d.removed, "CHANGED": d.changed, "KEYS": " ".join(d.keys), "NOTE": d.note}
                for d in self.datasets]
        return pd.DataFrame(rows, columns=["LAYER", "DATASET", "STATUS", "OLD_RECORDS", "NEW_RECORDS",
                                           "ADDED", "REMOVED", "CHANGED", "KEYS", "NOTE"])

    def output_summary(self) -> pd.DataFrame:
        rows = [{"OUTID": o.outid, "STATUS": o.status, "OLD_ROWS": o.old_rows, "NEW_ROWS": o.new_rows,
                 "MOVED": o.moved, "ADDED": o.added, "REMOVED": o.removed} for o in self.outputs]
        return pd.DataFrame(rows, columns=["OUTID", "STATUS", "OLD_ROWS", "NEW_ROWS", "MOVED",
                                           "ADDED", "REMOVED"])

    def totals(self) -> dict[str, int]:
        ds = self.datasets
        return {"records_added": sum(d.added for d in ds), "records_removed": sum(d.removed for d in ds),
                "records_changed": sum(d.changed for d in ds),
                "datasets_added": sum(d.status == "added" for d in ds),
                "datasets_removed": sum(d.status == "removed" for d in ds),
                "ard_moved": sum(o.moved for o in self.outputs),
                "ard_added": sum(o.added for o in self.outputs),
                "ard_removed": sum(o.removed for o in self.outputs),
                "outputs_added": sum(o.status == "added" for o in self.outputs),
                "outputs_removed": sum(o.status == "removed" for o in self.outputs)}

    def top_moved(self, n: int = 10) -> pd.DataFrame:
        """The numbers that moved most (relative to their old value), largest first."""
        moved = self.ard[self.ard["CHANGE"] == "moved"]
        if moved.empty:
            return moved
        old = moved["OLD_STATVAL"].astype(float).to_numpy()
        delta = moved["DELTA"].astype(float).to_numpy()
        rel = np.abs(np.nan_to_num(delta, nan=0.0)) / np.maximum(np.abs(np.nan_to_num(old, nan=0.0)), 1.0)
        order = np.lexsort((moved["OUTID"].to_numpy(), -rel))
        return moved.iloc[order[:n]]

    def to_metadata(self, top: int = 10) -> dict:
        """Small, JSON-able: totals, per-dataset counts, and the top moved numbers as a
        markdown table (wrap `top_moved_md` in dagster.MetadataValue.md)."""
        per_dataset = {f"{d.layer}.{d.dataset}": {"status": d.status, "added": d.added,
                                                   "removed": d.removed, "changed": d.changed}
                       for d in self.datasets if d.status != "compared" or d.added or d.removed or d.changed}
        lines = ["| output | statistic | cell | old | new |", "|---|---|---|---|---|"]
        for r in self.top_moved(top).itertuples(index=False):
            cell = " / ".join(v for v in (r.POP, r.GRP1LVL, r.GRP2LVL, r.PARAMCD, r.VARLVL, r.TIMEPT) if v)
            lines.append(f"| {r.OUTID} | {r.STAT} | {_md(cell)} | {_md(r.OLD_STATC)} | {_md(r.NEW_STATC)} |")
        return {"old_transfer": self.old_transfer, "new_transfer": self.new_transfer,
                **self.totals(), "datasets": per_dataset,
                "top_moved_md": "\n".join(lines) if len(lines) > 2 else "no TLF number moved"}


def _md(text: str) -> str:
    return str(text).replace("|", "\\|")


# --- inputs -----------------------------------------------------------------------------------

def _manifest(folder: Path) -> dict:
    path = folder / "sdtm" / "manifest.json"
    if not path.is_file():
        raise OutputError("build folder has no sdtm/manifest.json", file=folder,
                          hint="give a build folder holding sdtm/, adam/ and tlf/ (out/<STUDY>/<TRANSFER>)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise OutputError(f"unreadable manifest ({exc.msg})", file=path, hint="rebuild SDTM") from None


def _datasets(folder: Path) -> dict[str, Path]:
    return {p.stem.upper(): p for p in sorted(folder.glob("*.parquet"))}


def _check_layers(old: Path, new: Path) -> list[str]:
    layers = []
    for layer in ("adam", "tlf"):
        has = [(b / layer).is_dir() for b in (old, new)]
        if has[0] != has[1]:
            missing = old if not has[0] else new
            raise OutputError(f"build folder has no {layer}/ (the other build has one)", file=missing,
                              hint=f"build {layer.upper()} for it, or compare two builds with the same layers")
        if has[0]:
            layers.append(layer)
    return ["sdtm", *layers]


# --- comparing frames -------------------------------------------------------------------------

def _is_cat(s: pd.Series) -> bool:
    return isinstance(s.dtype, pd.CategoricalDtype)


def _numeric(s: pd.Series) -> bool:
    return s.dtype.kind in "fiub"


def codes(old: pd.Series, new: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Both columns as integer codes in one space (equal value, equal code); missing and empty
    text are -1. Text columns arrive dictionary-encoded (categorical): only the categories are
    compared, never the rows as Python strings."""
    if _is_cat(old) and _is_cat(new):
        cats = old.cat.categories.append(new.cat.categories).unique()
        blank = cats.get_indexer([""])[0]
        out = []
        for s in (old, new):
            where = cats.get_indexer(s.cat.categories)
            c = s.cat.codes.to_numpy()
            mapped = np.where(c >= 0, where[np.maximum(c, 0)] if len(where) else -1, -1)
            if blank >= 0:
                mapped[mapped == blank] = -1
            out.append(mapped.astype(np.int64))
        return out[0], out[1]
    if (old.dtype != new.dtype and not (_numeric(old) and _numeric(new))) or _is_cat(old) or _is_cat(new):
        arr = np.concatenate([K.as_text(old).to_numpy(), K.as_text(new).to_numpy()])
    else:
        arr = np.concatenate([old.to_numpy(), new.to_numpy()])
    if arr.dtype == object:
        arr = np.where(pd.isna(arr) | (arr == ""), None, arr)
    c, _ = pd.factorize(arr)
    return c[:len(old)].astype(np.int64), c[len(old):].astype(np.int64)


def differs_at(old: pd.Series, new: pd.Series, old_pos: np.ndarray, new_pos: np.ndarray) -> np.ndarray:
    """For matched records (old_pos[i] <-> new_pos[i]): does the column's value differ? Missing
    equals missing, empty text equals missing, numbers equal within 1e-9 relative."""
    if _numeric(old) and _numeric(new):
        x, y = old.to_numpy(dtype=float)[old_pos], new.to_numpy(dtype=float)[new_pos]
        return ~(np.isclose(x, y, rtol=1e-9, atol=0.0) | (np.isnan(x) & np.isnan(y)))
    a, b = codes(old, new)
    return a[old_pos] != b[new_pos]


def match(old: pd.DataFrame, new: pd.DataFrame, keys: list[str]) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Positions (old_pos, new_pos) of the records matched by `keys` (the n-th record of a key
    group to the n-th), and the number of key groups with several records in old and new."""
    n_o = len(old)
    code = np.zeros(n_o + len(new), dtype=np.int64)
    span = 1
    for k in keys:
        a, b = codes(old[k], new[k])
        c = np.concatenate([a, b]) + 1
        radix = int(c.max(initial=0)) + 1
        if span * radix >= 2 ** 62:             # keep the mixed-radix code within int64
            code, uniq = pd.factorize(code)
            code, span = code.astype(np.int64), len(uniq)
        code, span = code * radix + c, span * radix
    code, _ = pd.factorize(code)
    code = code.astype(np.int64)
    dup = np.concatenate([pd.Series(part).groupby(part).cumcount().to_numpy()
                          for part in (code[:n_o], code[n_o:])])
    pair = code * (int(dup.max(initial=0)) + 1) + dup
    hit = pd.Index(pair[n_o:]).get_indexer(pair[:n_o])
    old_pos = np.flatnonzero(hit >= 0)
    counts_o = np.bincount(code[:n_o]) if n_o else np.zeros(0, dtype=np.int64)
    counts_n = np.bincount(code[n_o:]) if len(new) else np.zeros(0, dtype=np.int64)
    return old_pos, hit[old_pos], int((counts_o > 1).sum()), int((counts_n > 1).sum())


def compare_frames(layer: str, dataset: str, old: pd.DataFrame, new: pd.DataFrame,
                   keys: list[str], exclude: set[str] = frozenset()) -> tuple[DatasetChange, pd.DataFrame]:
    """Records added, removed and changed between two versions of one dataset, by `keys`;
    columns in `exclude` and sequence numbers are not compared."""
    keys = [k for k in keys if k in old.columns and k in new.columns]
    old_pos, new_pos, dup_o, dup_n = match(old, new, keys)
    ch = DatasetChange(layer, dataset, "compared", tuple(keys), len(old), len(new),
                       duplicate_keys_old=dup_o, duplicate_keys_new=dup_n,
                       variables_added=tuple(c for c in new.columns if c not in old.columns),
                       variables_removed=tuple(c for c in old.columns if c not in new.columns))
    values = [c for c in old.columns if c in new.columns and c not in keys and c not in exclude
              and not K.is_sequence(c)]
    removed = np.setdiff1d(np.arange(len(old)), old_pos, assume_unique=True)
    added = np.setdiff1d(np.arange(len(new)), new_pos, assume_unique=True)
    parts = []
    for change, frame, pos in (("added", new, added), ("removed", old, removed)):
        if len(pos):
            sub = frame.iloc[pos]
            parts.append(pd.DataFrame({"CHANGE": change, "USUBJID": _subjects(sub),
                                       "KEY": K.text_key(sub, keys).to_numpy(),
                                       "VARIABLE": "", "OLD": "", "NEW": ""}))
    changed_rows = np.zeros(len(old_pos), dtype=bool)
    for col in values:
        diff = differs_at(old[col], new[col], old_pos, new_pos)
        if not diff.any():
            continue
        changed_rows |= diff
        sub = old.iloc[old_pos[diff]]
        parts.append(pd.DataFrame({"CHANGE": "changed", "USUBJID": _subjects(sub),
                                   "KEY": K.text_key(sub, keys).to_numpy(), "VARIABLE": col,
                                   "OLD": K.as_text(old[col].iloc[old_pos[diff]]).to_numpy(),
                                   "NEW": K.as_text(new[col].iloc[new_pos[diff]]).to_numpy()}))
    ch.added, ch.removed, ch.changed = len(added), len(removed), int(changed_rows.sum())
    detail = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=RECORD_COLUMNS[2:])
    detail.insert(0, "DATASET", dataset)
    detail.insert(0, "LAYER", layer)
    return ch, detail[RECORD_COLUMNS]


def _subjects(frame: pd.DataFrame) -> np.ndarray:
    if "USUBJID" not in frame.columns:
        return np.full(len(frame), "", dtype=object)
    return K.as_text(frame["USUBJID"]).to_numpy()


def compare_ard(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """ARD rows that moved (STATVAL/STATC/UNIT/METHOD differ), appeared or disappeared."""
    old, new = old.reset_index(drop=True), new.reset_index(drop=True)
    old_pos, new_pos, _, _ = match(old, new, ARD_KEY)
    moved = np.zeros(len(old_pos), dtype=bool)
    for col in ARD_VALUES:
        moved |= differs_at(old[col], new[col], old_pos, new_pos)
    removed = np.setdiff1d(np.arange(len(old)), old_pos, assume_unique=True)
    added = np.setdiff1d(np.arange(len(new)), new_pos, assume_unique=True)
    o_idx = np.concatenate([old_pos[moved], removed])
    out = pd.concat([pd.DataFrame({k: old[k].to_numpy()[o_idx] for k in ARD_KEY}),
                     pd.DataFrame({k: new[k].to_numpy()[added] for k in ARD_KEY})], ignore_index=True)
    out.insert(1, "CHANGE", ["moved"] * int(moved.sum()) + ["removed"] * len(removed) + ["added"] * len(added))
    val_o, val_n = old["STATVAL"].to_numpy(dtype=float), new["STATVAL"].to_numpy(dtype=float)
    txt_o, txt_n = K.as_text(old["STATC"]).to_numpy(), K.as_text(new["STATC"]).to_numpy()
    none_a, none_r = np.full(len(added), np.nan), np.full(len(removed), np.nan)
    out["OLD_STATVAL"] = np.concatenate([val_o[o_idx], none_a])
    out["NEW_STATVAL"] = np.concatenate([val_n[new_pos[moved]], none_r, val_n[added]])
    out["DELTA"] = out["NEW_STATVAL"] - out["OLD_STATVAL"]
    out["OLD_STATC"] = np.concatenate([txt_o[o_idx], np.full(len(added), "", dtype=object)])
    out["NEW_STATC"] = np.concatenate([txt_n[new_pos[moved]], np.full(len(removed), "", dtype=object),
                                       txt_n[added]])
    return out[ARD_COLUMNS]


# --- builds -----------------------------------------------------------------------------------

def read_dataset(path: Path) -> pd.DataFrame:
    """A parquet dataset with its text columns dictionary-encoded (pandas categoricals): read
    and compared without a Python string per value, which at 10,000 subjects is most of the time."""
    schema = pq.read_schema(path)
    text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    return pq.read_table(path, read_dictionary=text).to_pandas(date_as_object=False)


def _read_layer(folder: Path) -> dict[str, pd.DataFrame]:
    paths = _datasets(folder)
    with ThreadPoolExecutor(max_workers=4) as pool:      # parquet decoding releases the GIL
        frames = list(pool.map(read_dataset, paths.values()))
    return dict(zip(paths, frames))


def _prepare(study: str, layer: str, frames: dict[str, pd.DataFrame],
             sdtm: dict[str, pd.DataFrame], index_cache: dict) -> dict[str, tuple[pd.DataFrame, list[str]]]:
    """Each dataset with the columns its natural key needs, and the key."""
    if "index" not in index_cache:
        index_cache["index"] = {name: K.record_index(f, K.sdtm_keys(study, name, list(f.columns)))
                                for name, f in sdtm.items() if not name.startswith("SUPP")}
    index = index_cache["index"]
    out = {}
    for name, frame in frames.items():
        if layer == "sdtm":
            if name.startswith("SUPP"):
                frame = K.supp_with_parent_keys(frame, index)
            out[name] = (frame, K.sdtm_keys(study, name, list(frame.columns)))
        else:
            out[name] = K.adam_keys(study, name, frame, index)
    return out


def _read_ard(folder: Path) -> dict[str, pd.DataFrame]:
    ard = folder / "ard"
    return {p.stem: pd.read_parquet(p) for p in sorted(ard.glob("*.parquet"))} if ard.is_dir() else {}


def compare_builds(study: str, old: Path, new: Path) -> ChangeReport:
    """Compare two build folders of `study` (each holding sdtm/, adam/, tlf/): per SDTM/ADaM
    dataset the records added, removed and changed by natural key; every ARD row that moved."""
    old, new = Path(old), Path(new)
    for folder in (old, new):
        if not folder.is_dir():
            raise OutputError("build folder does not exist", file=folder,
                              hint="give a build folder holding sdtm/, adam/ and tlf/")
        if not (folder / "sdtm").is_dir():
            raise OutputError("build folder has no sdtm/", file=folder,
                              hint="give a build folder holding sdtm/, adam/ and tlf/ (out/<STUDY>/<TRANSFER>)")
    man = {b: _manifest(b) for b in (old, new)}
    for b in (old, new):
        if man[b].get("study") != study:
            raise OutputError(f"build is of study {man[b].get('study')!r}, not {study!r}", file=b,
                              hint="compare two builds of the same study")
    layers = _check_layers(old, new)
    report = ChangeReport(study, old, new, str(man[old].get("transfer_date", "")),
                          str(man[new].get("transfer_date", "")))
    sdtm_o, sdtm_n = _read_layer(old / "sdtm"), _read_layer(new / "sdtm")
    cache_o: dict = {}
    cache_n: dict = {}
    details = []
    for layer in (la for la in LAYERS if la in layers):
        fo = sdtm_o if layer == "sdtm" else _read_layer(old / layer)
        fn = sdtm_n if layer == "sdtm" else _read_layer(new / layer)
        po, pn = _prepare(study, layer, fo, sdtm_o, cache_o), _prepare(study, layer, fn, sdtm_n, cache_n)
        for name in sorted(set(po) | set(pn)):
            if name not in pn:
                report.datasets.append(DatasetChange(layer, name, "removed", old_rows=len(po[name][0])))
                continue
            if name not in po:
                report.datasets.append(DatasetChange(layer, name, "added", new_rows=len(pn[name][0])))
                continue
            (a, keys_a), (b, keys_b) = po[name], pn[name]
            keys = [k for k in keys_a if k in keys_b]
            ch, detail = compare_frames(layer, name, a, b, keys)
            report.datasets.append(ch)
            details.append(detail)
    if details:
        rec = pd.concat(details, ignore_index=True)
        order = rec["CHANGE"].map(_CHANGE_ORDER)
        rec = (rec.assign(_O=order).sort_values(["LAYER", "DATASET", "_O", "USUBJID", "KEY", "VARIABLE"],
                                                kind="stable")
               .drop(columns="_O").reset_index(drop=True))
        report.records = rec
    if "tlf" in layers:
        report.outputs, report.ard = _compare_outputs(_read_ard(old / "tlf"), _read_ard(new / "tlf"))
    return report


def _compare_outputs(old: dict[str, pd.DataFrame],
                     new: dict[str, pd.DataFrame]) -> tuple[list[OutputChange], pd.DataFrame]:
    outputs = []
    for outid in sorted(set(old) | set(new)):
        status = "compared" if outid in old and outid in new else ("added" if outid in new else "removed")
        outputs.append(OutputChange(outid, status, len(old.get(outid, ())), len(new.get(outid, ()))))
    empty = pd.DataFrame(columns=ARD_KEY + ARD_VALUES)
    cat = [f for f in old.values()]
    a = pd.concat(cat, ignore_index=True) if cat else empty
    cat = [f for f in new.values()]
    b = pd.concat(cat, ignore_index=True) if cat else empty
    ard = compare_ard(a, b)
    ard = (ard.assign(_O=ard["CHANGE"].map(_CHANGE_ORDER))
           .sort_values(["OUTID", "_O", *ARD_KEY[1:]], kind="stable").drop(columns="_O")
           .reset_index(drop=True))
    counts = ard.groupby(["OUTID", "CHANGE"]).size()
    for o in outputs:
        o.moved = int(counts.get((o.outid, "moved"), 0))
        o.added = int(counts.get((o.outid, "added"), 0))
        o.removed = int(counts.get((o.outid, "removed"), 0))
    return outputs, ard
