"""The named mapping algorithms a spec may use (sdtm.oak's vocabulary, vectorised).

Each algorithm maps the source frame (one row per raw record, other forms' fields joined per
subject as `FORM.FIELD`) to one Series. `fields()` names the raw fields it reads so a spec
is checked when it loads, before any data is touched.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sdtm import dates, metadata


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

    def column(self, ref: str) -> pd.Series:
        """A raw field (`FIELD`, `FORM.FIELD`) or an SDTM variable computed earlier."""
        if ref in self.out.columns:
            return self.out[ref]
        if ref in self.src.columns:
            return self.src[ref]
        raise KeyError(f"{ref} is neither a raw field of the source nor an SDTM variable mapped above it")


class Algorithm:
    options: tuple[str, ...] = ()

    def fields(self, var) -> list[str]:
        return []

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
        decode = ctx.src[dec_name] if dec_name in ctx.src.columns else raw
        mapping = {str(k): str(v) for k, v in (var.options.get("map") or {}).items()}
        cl = metadata.codelist(str(var.options["codelist"])) if "codelist" in var.options else None
        values = {}
        for code, dec in set(zip(raw, decode)):
            if code == "":
                values[(code, dec)] = ""
            elif code in mapping:
                values[(code, dec)] = mapping[code]
            elif cl is not None and (hit := cl.lookup(dec) or cl.lookup(code)):
                values[(code, dec)] = hit
            else:
                values[(code, dec)] = None
        if not values:
            return raw.copy()
        table = pd.Series(list(values.values()), index=pd.MultiIndex.from_tuples(list(values)), dtype=object)
        keys = pd.MultiIndex.from_arrays([raw.to_numpy(), decode.to_numpy()])
        out = pd.Series(table.reindex(keys).to_numpy(), index=raw.index, dtype=object)
        missing = out.isna()
        why = "collected value has no controlled term; add it to the spec's map or the study's CT extension"
        if "." in str(var.arg):
            # a field joined from another form: the issue's record is this spec's, so name the field
            why = f"{var.arg}: {why}"
        for idx in out.index[missing]:
            ctx.issues.append((var.name, idx, raw[idx], why))
        return out.where(~missing, raw.str.upper())


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
        date = ctx.column(date_f).astype(object)
        raw_name = f"{date_f}_RAW"
        if raw_name in ctx.src.columns:
            bad = (ctx.src[raw_name] != "") & (date == "")
            for idx in date.index[bad]:
                ctx.issues.append((var.name, idx, ctx.src.at[idx, raw_name],
                                   "collected date is not a valid date; left empty"))
        time = ctx.column(time_f).astype(object) if time_f else None
        return dates.combine(date, time)


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

    def run(self, ctx, var):
        # SDTM variables mapped so far win over raw fields of the same name (e.g. STUDYID).
        frame = ctx.src.drop(columns=[c for c in ctx.out.columns if c in ctx.src.columns]).join(ctx.out)
        cond = frame.eval(var.arg, engine="python").astype(bool)
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
        dtc = ctx.column(var.arg)
        if ctx.ref_start is not None:
            ref = ctx.out["USUBJID"].map(ctx.ref_start)
        elif "RFSTDTC" in ctx.out.columns:      # DM itself (DMDY): its own RFSTDTC, mapped above
            ref = ctx.out["RFSTDTC"]
        else:
            return pd.Series(np.nan, index=ctx.src.index)
        return dates.study_day(dtc, ref)


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
        return visit_columns(ctx.study, ctx.src, ctx.unscheduled)[part]


class Epoch(Algorithm):
    """EPOCH of the subject element the date falls in (SE); empty for partial dates."""

    def run(self, ctx, var):
        from sdtm.epochs import epoch_of

        return epoch_of(ctx.out["USUBJID"], ctx.column(var.arg), ctx.elements)


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
        long = []
        for date_ref, time_ref in self._entries(var):
            form, _, fld = date_ref.rpartition(".")
            frame = ctx.raw[form]
            dtc = frame[fld]
            if time_ref:
                dtc = dates.combine(dtc, frame[time_ref.rpartition(".")[2]])
            has = dtc != ""
            long.append(pd.DataFrame({"SUBJECT": frame.loc[has, "SUBJECT"], "DTC": dtc[has]}))
        values = pd.concat(long, ignore_index=True).groupby("SUBJECT")["DTC"]
        # ISO 8601 text sorts in time order; a partial date sorts before the full dates of its
        # month, a date without a time before the same date with one.
        picked = values.max() if var.options.get("last") else values.min()
        return ctx.src["SUBJECT"].map(picked).fillna("").astype(object)


class LastParticipation(Algorithm):
    """{last_participation: all}: the subject's latest date over every date field of every
    active record of every form (AE and CM end dates, labs, survival contacts, death, ...):
    SDTMIG 3.4 DM RFPENDTC, "the last known date of contact". Date fields are those the export
    carries with their typed text (`<FIELD>_RAW`). `exclude` names FORM.FIELD dates that are
    not contacts (none by default)."""
    options = ("exclude",)

    def run(self, ctx, var):
        exclude = set(var.options.get("exclude") or ())
        long = []
        for form, frame in ctx.raw.items():
            cols = [c for c in frame.columns if f"{c}_RAW" in frame.columns and f"{form}.{c}" not in exclude]
            if not cols or frame.empty:
                continue
            part = frame[["SUBJECT", *cols]].melt(id_vars="SUBJECT", value_name="DTC")
            long.append(part.loc[part["DTC"].fillna("") != "", ["SUBJECT", "DTC"]])
        if not long:
            return _blank(ctx)
        picked = pd.concat(long, ignore_index=True).groupby("SUBJECT")["DTC"].max()
        return ctx.src["SUBJECT"].map(picked).fillna("").astype(object)


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
