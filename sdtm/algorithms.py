"""The named mapping algorithms a spec may use (sdtm.oak's vocabulary, vectorised).

Each algorithm maps the source frame (one row per raw record, other forms' fields joined per
subject as `FORM.FIELD`) to one Series. `fields()` names the raw fields it reads so a spec
is checked when it loads, before any data is touched.
"""
from __future__ import annotations

import weakref
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sdtm import dates, metadata
from sdtm.distinct import Encoded, align, combine, distinct_args, encode, expand, per_distinct


@dataclass
class Context:
    """What an algorithm may look at while mapping one domain."""
    study: Any                              # clinpipe.config.StudyConfig
    src: pd.DataFrame                       # source rows (+ joined FORM.FIELD columns)
    out: pd.DataFrame                       # SDTM variables computed so far, same index
    ref_start: pd.Series | None = None      # USUBJID -> RFSTDTC (for --DY)
    ref_exposure: pd.Series | None = None   # USUBJID -> RFXSTDTC (for --LOBXFL: before first treatment)
    elements: pd.DataFrame | None = None    # SE-like frame: USUBJID, SESTDTC, SEENDTC, EPOCH
    raw: dict = field(default_factory=dict)      # form -> active raw frame (for per-subject looks)
    unscheduled: pd.Series | None = None         # (SUBJECT, FOLDERSEQ) -> VISITNUM, study-wide
    spec_split: list = field(default_factory=list)   # the spec's split items (rows carry _ITEM)
    issues: list = field(default_factory=list)   # (variable, row index, value, message)
    # Work shared by the algorithms of one domain (a column's codes, a standardized result
    # read by STRESC, STRESN and STRESU). Entries are checked against the very column arrays
    # they came from, so a column replaced (or a context with other frames) is encoded anew;
    # the engine assigns each variable once and never writes into ctx.src or ctx.out in place.
    memo: dict = field(default_factory=dict, repr=False)

    def column(self, ref: str) -> pd.Series:
        """A raw field (`FIELD`, `FORM.FIELD`) or an SDTM variable computed earlier."""
        if ref in self.out.columns:
            return self.out[ref]
        if ref in self.src.columns:
            return self.src[ref]
        raise KeyError(f"{ref} is neither a raw field of the source nor an SDTM variable mapped above it")

    def encoded(self, ref: str) -> Encoded:
        """ctx.column(ref) as codes into its distinct values, encoded once per domain."""
        return self.encode_column(ref, self.column(ref))

    def encode_column(self, key, values: pd.Series) -> Encoded:
        """`values` encoded, reusing the codes of an earlier call with the same key and the
        same array (the same memory, held by the memo so it cannot be reused)."""
        arr = values.to_numpy()
        hit = self.memo.get(("encoded", key))
        if hit is not None and _same_array(hit[0], arr):
            return hit[1]
        enc = encode(values)
        self.memo[("encoded", key)] = (arr, enc)
        return enc

    def per_value(self, what, enc: Encoded, func):
        """func(enc's distinct values), computed once per encoded column (e.g. its dates)."""
        hit = self.memo.get((what, id(enc)))
        if hit is None or hit[0] is not enc:
            hit = self.memo[(what, id(enc))] = (enc, func(enc.distinct()))
        return hit[1]


def _same_array(a: np.ndarray, b: np.ndarray) -> bool:
    return (a.dtype == b.dtype and a.shape == b.shape and a.strides == b.strides
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])


class _Names(MutableMapping):
    """The names a condition may use, resolved when the expression reads them: SDTM variables
    mapped so far win over raw fields of the same name (e.g. STUDYID). Stands for the frame
    `src.drop(<mapped>).join(out)` that DataFrame.eval would need, without building it."""

    def __init__(self, ctx: Context):
        from pandas.core.computation.parsing import clean_column_name

        self._ctx = ctx
        self._where = {clean_column_name(c): ("src", c) for c in ctx.src.columns if not isinstance(c, int)}
        self._where.update({clean_column_name(c): ("out", c) for c in ctx.out.columns if not isinstance(c, int)})
        self._got: dict = {}
        self._aligned = ctx.out.index.equals(ctx.src.index)

    def __getitem__(self, key):
        if key in self._got:
            return self._got[key]
        where, name = self._where[key]
        if where == "src":
            col = self._ctx.src[name]
        else:
            col = self._ctx.out[name]
            if not self._aligned:      # the SUPP-- pass hands over `out` in --SEQ order
                col = col.reindex(self._ctx.src.index)
        self._got[key] = col
        return col

    def __setitem__(self, key, value):
        self._got[key] = value

    def __delitem__(self, key):
        del self._got[key]

    def __contains__(self, key):
        return key in self._got or key in self._where

    def __iter__(self):
        return iter({**dict.fromkeys(self._where), **dict.fromkeys(self._got)})

    def __len__(self):
        return len({**dict.fromkeys(self._where), **dict.fromkeys(self._got)})


def evaluate(ctx: Context, expr: str) -> pd.Series:
    """A pandas condition over raw fields and variables mapped so far, as a boolean mask on
    the source rows (DataFrame.eval semantics, python engine)."""
    got = pd.eval(expr, engine="python", parser="pandas", resolvers=(_Names(ctx),))
    if not isinstance(got, pd.Series):
        got = pd.Series(got, index=ctx.src.index)
    return got.astype(bool)


class Algorithm:
    options: tuple[str, ...] = ()

    def fields(self, var) -> list[str]:
        return []

    def forms(self, var) -> set[str] | None:
        """The other raw forms `var` reads (FORM of its FORM.FIELD fields); None: every form.
        The build lets a raw frame go once no domain left to map reads it."""
        return {ref.rpartition(".")[0] for ref in self.fields(var) if "." in ref}

    def run(self, ctx: Context, var) -> pd.Series:
        raise NotImplementedError


def _blank(ctx: Context) -> pd.Series:
    return pd.Series("", index=ctx.src.index, dtype=object)


class Assign(Algorithm):
    """The raw value as collected (no controlled terminology)."""

    def fields(self, var):
        return [var.arg]

    def run(self, ctx, var):
        return ctx.column(var.arg).astype(object)


class AssignCT(Algorithm):
    """Collected value -> CDISC submission value: through `map` (raw code -> value) if given,
    else the decode or code looked up in the codelist (submission value, synonym, NCI term)."""
    options = ("codelist", "map")

    def fields(self, var):
        return [var.arg]

    def run(self, ctx, var):
        raw = ctx.column(var.arg).astype(object)
        dec_name = f"{var.arg}_DEC"
        codes = ctx.encoded(var.arg)
        decodes = ctx.encode_column(dec_name, ctx.src[dec_name]) if dec_name in ctx.src.columns else codes
        if len(raw) == 0:
            return raw.copy()
        mapping = {str(k): str(v) for k, v in (var.options.get("map") or {}).items()}
        cl = metadata.codelist(str(var.options["codelist"])) if "codelist" in var.options else None

        def lookup(code: pd.Series, dec: pd.Series) -> pd.Series:
            values = []
            for c, d in zip(code, dec):
                if c == "":
                    values.append("")
                elif c in mapping:
                    values.append(mapping[c])
                elif cl is not None and (hit := cl.lookup(d) or cl.lookup(c)):
                    values.append(hit)
                else:
                    values.append(None)
            return pd.Series(values, index=code.index, dtype=object)

        # one look-up per distinct (code, decode) pair, not per record
        index = codes.index
        columns = [codes, align(decodes, index)]
        combo = combine(columns)
        table = lookup(*distinct_args(columns, combo))
        out = expand(table, combo.codes, index)
        missing = table.isna().to_numpy()[combo.codes]
        if not missing.any():
            return out
        why = "collected value has no controlled term; add it to the spec's map or the study's CT extension"
        if "." in str(var.arg):
            # a field joined from another form: the issue's record is this spec's, so name the field
            why = f"{var.arg}: {why}"
        unmapped = raw[missing]
        ctx.issues.extend((var.name, idx, value, why) for idx, value in zip(unmapped.index, unmapped))
        out.iloc[np.flatnonzero(missing)] = unmapped.str.upper().to_numpy()
        return out


class Hardcode(Algorithm):
    options = ("codelist",)

    def run(self, ctx, var):
        return pd.Series(str(var.arg), index=ctx.src.index, dtype=object)


class Iso8601(Algorithm):
    """ISO 8601 from the export's parsed date (partial kept partial) and an optional time."""

    def _parts(self, var):
        if isinstance(var.arg, dict):
            return var.arg["date"], var.arg.get("time")
        return var.arg, None

    def fields(self, var):
        return [f for f in self._parts(var) if f]

    def run(self, ctx, var):
        date_f, time_f = self._parts(var)
        date = ctx.encoded(date_f)
        index = date.index
        raw_name = f"{date_f}_RAW"
        empty = (date.distinct() == "").to_numpy()[date.codes]
        if raw_name in ctx.src.columns and empty.any():
            # typed text without a date: looked at only where the date is empty
            typed = ctx.src[raw_name]
            typed = (typed if typed.index.equals(index) else typed.reindex(index)).to_numpy()
            rows = np.flatnonzero(empty)
            rows = rows[typed[rows] != ""]
            ctx.issues.extend((var.name, idx, value, "collected date is not a valid date; left empty")
                              for idx, value in zip(index[rows], typed[rows]))
        if time_f is None:
            return per_distinct(lambda d: dates.combine(d.astype(object), None), date)
        time = ctx.encoded(time_f)
        typed_times = time.distinct().fillna("").astype(str)
        bad = ((typed_times != "") & ~dates.valid_time(typed_times)).to_numpy()
        if bad.any():
            rows = np.flatnonzero(bad[time.codes])
            typed = time.values()
            message = ("collected time is not a valid time (hh:mm, 24-hour clock); the date is "
                       "kept without it")
            ctx.issues.extend((var.name, idx, value, message)
                              for idx, value in zip(time.index[rows], typed[rows]))
        return per_distinct(lambda d, t: dates.combine(d.astype(object), t.astype(object)),
                            date, time)


class Condition(Algorithm):
    """{if: <pandas expression over fields/variables>, then: {alg}, else: {alg}}; names with a
    dot are backtick-quoted: "`ENR.ELIG` == 'N'"."""
    options = ("then", "else")

    def _branches(self, var):
        from sdtm.spec import VarSpec

        out = {}
        for key in ("then", "else"):
            entry = var.options.get(key)
            if entry is None:
                continue
            alg = next(k for k in entry if k in ALGORITHMS)
            out[key] = VarSpec(var.name, alg, entry[alg], {k: v for k, v in entry.items() if k != alg},
                               var.line)
        return out

    def fields(self, var):
        refs = [r for b in self._branches(var).values() for r in ALGORITHMS[b.algorithm].fields(b)]
        return refs + _expr_fields(var.arg)

    def forms(self, var):
        read = super().forms(var)
        for branch in self._branches(var).values():
            more = ALGORITHMS[branch.algorithm].forms(branch)
            if more is None:
                return None
            read |= more
        return read

    def run(self, ctx, var):
        cond = evaluate(ctx, var.arg)
        branches = self._branches(var)
        then = ALGORITHMS[branches["then"].algorithm].run(ctx, branches["then"])
        other = (ALGORITHMS[branches["else"].algorithm].run(ctx, branches["else"])
                 if "else" in branches else _blank(ctx))
        return then.where(cond, other)


def _expr_fields(expr: str) -> list[str]:
    """Backtick-quoted names in a condition (`ENR.ELIG` == 'N') are raw fields to check."""
    parts = expr.split("`")
    return [p for p in parts[1::2] if p.replace(".", "").replace("_", "").isalnum()
            and p == p.upper() and "." in p]


class StudyDay(Algorithm):
    """--DY per SDTMIG: date - RFSTDTC + 1 on/after the reference start, date - RFSTDTC before
    it (no day 0); empty when either date is partial."""

    def run(self, ctx, var):
        dtc = ctx.encoded(var.arg)
        if ctx.ref_start is not None:
            subject = align(ctx.encode_column("USUBJID", ctx.out["USUBJID"]), dtc.index)
            ref_start = ctx.ref_start
            starts = ctx.per_value(("ref_start", id(ref_start)), subject, lambda s: _when(s.map(ref_start)))
            ref = subject.values(starts)
        elif "RFSTDTC" in ctx.out.columns:      # DM itself (DMDY): its own RFSTDTC, mapped above
            start = align(ctx.encode_column("RFSTDTC", ctx.out["RFSTDTC"]), dtc.index)
            ref = start.values(_when(start.distinct()))
        else:
            return pd.Series(np.nan, index=ctx.src.index)
        # dates.study_day's rule on dates read once per distinct text
        day_codes, when = ctx.per_value("days", dtc, _days)
        days = (when[day_codes[dtc.codes]] - ref) / np.timedelta64(1, "D")
        return pd.Series(np.where(days >= 0, days + 1, days), index=dtc.index, dtype="float64")


def _when(text: pd.Series) -> np.ndarray:
    """dates.to_datetime of (distinct) texts as datetime64 values."""
    codes, when = _days(text)
    return when[codes]


def _days(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The texts as codes into their distinct days, and those days as dates.to_datetime reads
    them: it reads only the first 10 characters, so date/times of one day are read once."""
    day = text.fillna("").astype(str).str[:10]
    codes, uniques = pd.factorize(day.to_numpy(dtype=object))
    return codes, dates.to_datetime(pd.Series(uniques, dtype=object)).to_numpy(dtype="datetime64[ns]")


class Visit(Algorithm):
    """VISITNUM / VISIT / VISITDY from the EDC folder and the study schedule. Unscheduled
    folders are numbered once per study (sdtm.visits.unscheduled_visits): the previous
    scheduled VISITNUM + 0.01 per unscheduled visit after it (VISIT "UNSCHEDULED n.nn")."""
    options = ("part",)

    def fields(self, var):
        return ["FOLDER", "FOLDERSEQ"]

    def run(self, ctx, var):
        from sdtm.visits import visit_columns

        part = var.options.get("part", var.name)
        keys = [ctx.encode_column(k, ctx.src[k]) for k in _VISIT_KEYS]
        hit = ctx.memo.get("visit")
        # VISITNUM, VISIT and VISITDY of a domain come from one computation
        if hit is None or hit[0] != keys or hit[1] is not ctx.unscheduled or hit[2] is not ctx.study:
            study, unscheduled = ctx.study, ctx.unscheduled

            def columns(*values):
                got = visit_columns(study, pd.DataFrame(dict(zip(_VISIT_KEYS, values))), unscheduled)
                return tuple(got[p] for p in _VISIT_PARTS)

            hit = ctx.memo["visit"] = (keys, unscheduled, study,
                                       dict(zip(_VISIT_PARTS, per_distinct(columns, *keys))))
        return hit[3][part].copy()


_VISIT_KEYS = ("SUBJECT", "FOLDER", "FOLDERSEQ")     # what visit_columns reads of a record
_VISIT_PARTS = ("VISITNUM", "VISIT", "VISITDY")


class Epoch(Algorithm):
    """EPOCH of the subject element the date falls in (SE); empty for partial dates."""

    def run(self, ctx, var):
        dtc = ctx.encoded(var.arg)
        index = dtc.index
        out = np.full(len(index), "", dtype=object)
        elements = ctx.elements
        if elements is None or elements.empty:
            return pd.Series(out, index=index, dtype=object)
        # sdtm.epochs.epoch_of once per distinct (subject, day), each day read once
        subject = align(ctx.encode_column("USUBJID", ctx.out["USUBJID"]), index)
        day_codes, when = ctx.per_value("days", dtc, _days)
        day = Encoded(day_codes[dtc.codes], when, when.dtype, index)
        combo = combine([subject, day])
        rec = pd.DataFrame({"USUBJID": subject.uniques[subject.codes[combo.rows]],
                            "when": when[day.codes[combo.rows]]}).dropna(subset=["when"])
        if rec.empty:
            return pd.Series(out, index=index, dtype=object)
        se = _element_dates(elements)
        merged = pd.merge_asof(rec.reset_index().sort_values("when"), se, left_on="when", right_on="start",
                               by="USUBJID", direction="backward")
        # SDTMIG: a date on the day one element ends and the next starts belongs to the next.
        inside = (merged["end"].isna() | (merged["when"] <= merged["end"])).to_numpy()
        epoch = np.full(len(combo), "", dtype=object)
        epoch[merged["index"].to_numpy()[inside]] = merged.loc[inside, "EPOCH"].fillna("").to_numpy()
        out[:] = epoch[combo.codes]
        return pd.Series(out, index=index, dtype=object)


_ELEMENT_COLUMNS = ["USUBJID", "SESTDTC", "SEENDTC", "EPOCH"]
_ELEMENT_DATES: list = [None, [], None]     # (weak reference to the SE frame, its columns, dated)


def _element_dates(elements: pd.DataFrame) -> pd.DataFrame:
    """SE's elements with start/end as dates, sorted by start, as sdtm.epochs.epoch_of reads
    them; kept for the frame every domain of a build shares (while its columns are the same
    arrays)."""
    ref, columns, dated = _ELEMENT_DATES
    now = [elements[c].to_numpy() for c in _ELEMENT_COLUMNS]
    if ref is not None and ref() is elements and all(map(_same_array, columns, now)):
        return dated
    se = elements.assign(start=dates.to_datetime(elements["SESTDTC"]),
                         end=dates.to_datetime(elements["SEENDTC"]))
    dated = se.dropna(subset=["start"]).sort_values("start")[["USUBJID", "start", "end", "EPOCH"]]
    _ELEMENT_DATES[:] = [weakref.ref(elements), now, dated]
    return dated


class SubjectDate(Algorithm):
    """Earliest (or with `last: true` latest) date per subject over every active record of one
    or more FORM.FIELD date fields, e.g. RFICDTC or the last contact date. An entry may be
    {date: FORM.FIELD, time: FORM.FIELD} to carry the collected time (RFXSTDTC must have the
    time EX has: SDTMIG 3.4 DM, "equal to the earliest value of EXSTDTC")."""
    options = ("last",)

    @staticmethod
    def _entries(var) -> list[tuple[str, str | None]]:
        items = var.arg if isinstance(var.arg, list) else [var.arg]
        return [(i["date"], i.get("time")) if isinstance(i, dict) else (i, None) for i in items]

    def fields(self, var):
        return [f for pair in self._entries(var) for f in pair if f]

    def run(self, ctx, var):
        subjects, values = [], []
        for date_ref, time_ref in self._entries(var):
            form, _, fld = date_ref.rpartition(".")
            frame = ctx.raw[form]
            dtc = frame[fld]
            if time_ref:
                dtc = per_distinct(dates.combine, dtc, frame[time_ref.rpartition(".")[2]])
            has = (dtc != "").to_numpy()
            subjects.append(frame["SUBJECT"].to_numpy()[has])
            values.append(dtc.to_numpy()[has])
        # ISO 8601 text sorts in time order; a partial date sorts before the full dates of its
        # month, a date without a time before the same date with one.
        picked = subject_extreme(subjects, values, last=bool(var.options.get("last")))
        return ctx.src["SUBJECT"].map(picked).fillna("").astype(object)


class LastParticipation(Algorithm):
    """{last_participation: all}: the subject's latest date over every date field of every
    active record of every form (AE and CM end dates, labs, survival contacts, death, ...):
    SDTMIG 3.4 DM RFPENDTC, "the last known date of contact". Date fields are those the export
    carries with their typed text (`<FIELD>_RAW`). `exclude` names FORM.FIELD dates that are
    not contacts (none by default)."""
    options = ("exclude",)

    def forms(self, var):
        return None

    def run(self, ctx, var):
        exclude = set(var.options.get("exclude") or ())
        subjects, values = [], []
        for form, frame in ctx.raw.items():
            cols = [c for c in frame.columns if f"{c}_RAW" in frame.columns and f"{form}.{c}" not in exclude]
            if not cols or frame.empty:
                continue
            subject = frame["SUBJECT"].to_numpy()
            for c in cols:
                dtc = frame[c]
                has = (dtc.notna() & (dtc != "")).to_numpy()
                subjects.append(subject[has])
                values.append(dtc.to_numpy()[has])
        if not subjects:
            return _blank(ctx)
        picked = subject_extreme(subjects, values, last=True)
        return ctx.src["SUBJECT"].map(picked).fillna("").astype(object)


def subject_extreme(subjects: list[np.ndarray], values: list[np.ndarray], last: bool) -> pd.Series:
    """Per subject the greatest (`last`) or least text value, missing values skipped: a
    groupby max/min of text runs in Python per group, so the values are ranked once (their
    sorted distinct texts) and the ranks aggregated."""
    subject = np.concatenate(subjects) if subjects else np.array([], dtype=object)
    value = np.concatenate(values) if values else np.array([], dtype=object)
    codes, uniques = pd.factorize(value, sort=True)
    ranks = pd.Series(np.where(codes < 0, np.nan, codes.astype("float64")))
    grouped = ranks.groupby(subject)
    best = grouped.max() if last else grouped.min()
    found = best.notna().to_numpy()
    out = np.full(len(best), np.nan, dtype=object)
    out[found] = np.asarray(uniques, dtype=object)[best.to_numpy()[found].astype(np.intp)]
    return pd.Series(out, index=best.index)


class Arm(Algorithm):
    """ARMCD/ARM (or ACTARMCD/ACTARM) of the study.yaml arm whose attributes match collected
    values, e.g. {arm: {cohort: ENR.COHORT, dose_level: ENR.DOSELVL}, part: ARMCD}; '' when
    nothing matches (screen failure, not treated: say why in ARMNRS).

    `unassigned: ARMCD` names the arm a record gets when every key field is empty: the
    shortened arm of a multistage assignment (SDTMIG 3.4 DM assumption 4b), for subjects who
    stopped before the later stage; wrap it in `if:` so that only those subjects get it."""
    options = ("part", "unassigned")

    def fields(self, var):
        return list(var.arg.values())

    def run(self, ctx, var):
        part = var.options.get("part", "ARMCD")
        attr = "armcd" if part.endswith("CD") else "arm"
        keys = pd.DataFrame({a: ctx.column(f).astype(str) for a, f in var.arg.items()})
        table = {tuple(str(getattr(arm, a) or "") for a in var.arg): getattr(arm, attr)
                 for arm in ctx.study.arms if not arm.shortened}
        if var.options.get("unassigned"):
            table[("",) * len(var.arg)] = getattr(ctx.study.arm(var.options["unassigned"]), attr)
        rows = [tuple(row) for row in keys.itertuples(index=False)]
        out = pd.Series([table.get(row, "") for row in rows], index=ctx.src.index, dtype=object)
        # All keys collected but no arm has them: a code the design does not know.
        unknown = [(i, row) for i, row in zip(ctx.src.index, rows) if all(row) and row not in table]
        for idx, row in unknown:
            values = ", ".join(f"{f}={v!r}" for f, v in zip(var.arg.values(), row))
            ctx.issues.append((var.name, idx, values, f"{values} match no arm in study.yaml; {var.name} left empty"))
        return out


class Site(Algorithm):
    """An attribute of the subject's site from study.yaml (e.g. COUNTRY, ISO 3166-1 alpha-3)."""

    def fields(self, var):
        return ["SITEID"]

    def run(self, ctx, var):
        table = {site.siteid: getattr(site, var.arg) for site in ctx.study.sites}
        return ctx.src["SITEID"].map(table).fillna("").astype(object)


ALGORITHMS: dict[str, Algorithm] = {
    "arm": Arm(),
    "site": Site(),
    "assign": Assign(),
    "assign_ct": AssignCT(),
    "hardcode": Hardcode(),
    "iso8601": Iso8601(),
    "if": Condition(),
    "study_day": StudyDay(),
    "visit": Visit(),
    "epoch": Epoch(),
    "subject_date": SubjectDate(),
    "last_participation": LastParticipation(),
}


class SplitValue(Algorithm):
    """For specs with `split:` (one raw record -> one SDTM record per item): the item's value
    under this key, e.g. VSTESTCD: {split_value: testcd}."""

    def run(self, ctx, var):
        per_item = np.array([str(item.get(var.arg, "")) for item in ctx.spec_split], dtype=object)
        return pd.Series(per_item[ctx.src["_ITEM"].to_numpy()], index=ctx.src.index, dtype=object)


class SplitField(Algorithm):
    """For specs with `split:`: the raw field the item names under this key, e.g.
    VSORRES: {split_field: field} reads SYSBP on the systolic item and PULSE on the pulse item."""

    def run(self, ctx, var):
        items = ctx.src["_ITEM"].to_numpy()
        out = pd.Series("", index=ctx.src.index, dtype=object)
        for k, item in enumerate(ctx.spec_split):    # one pass per split item, not per record
            name = item.get(var.arg, "")
            if name:
                rows = items == k
                out[rows] = ctx.src.loc[rows, name]
        return out


ALGORITHMS["split_value"] = SplitValue()
ALGORITHMS["split_field"] = SplitField()


def _discover() -> None:
    """Algorithms from `sdtm/alg_*.py` modules (each exports EXTRA = {name: Algorithm()})."""
    import importlib
    import pkgutil
    from pathlib import Path

    # this file's own folder, not sdtm.__path__: under pytest a tests/sdtm folder on sys.path
    # can shadow the package's path and hide the modules
    here = [str(Path(__file__).resolve().parent)]
    for mod in sorted(m.name for m in pkgutil.iter_modules(here) if m.name.startswith("alg_")):
        extra = importlib.import_module(f"sdtm.{mod}").EXTRA
        clash = set(extra) & set(ALGORITHMS)
        if clash:
            raise RuntimeError(f"sdtm.{mod} redefines algorithm(s) {sorted(clash)}")
        ALGORITHMS.update(extra)


_discover()
