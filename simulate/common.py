"""Building blocks both study simulators use (RS001, GLOCART).

Everything here is study-neutral: a study module decides *what happens* to a subject
(timeline, doses, response) and uses these helpers to turn it into EDC records that look
like real ones: ISO dates with some partial ones, visit-window jitter, site-specific lab
units and reference ranges, AE records coded to a MedDRA-like hierarchy, CRS/ICANS graded by
ASTCT, cellular kinetics with an LLOQ, tumour lesions measured consistently with the response.

Rules every helper keeps:
- randomness comes only from the `numpy.random.Generator` passed in (no global state, no
  clock), and nothing iterates over a set, so a seed always gives the same records;
- no record is dated after the subject's last possible date (`Subject.last_date`: death,
  end of study or data transfer, whichever is first) — `Recorder.add` drops records dated
  later and refuses records whose other date fields are later (a simulator bug);
- field values follow `simulate/model.py`: ISO date strings, EDC codes (not decodes),
  numbers as int/float, text as str, missing as None.

Public API (stable; both simulators import it)
----------------------------------------------
Dates and draws
    iso(d) -> str;  from_iso(s) -> date;  add_days(d, n) -> date;  days_between(a, b) -> int (b - a)
    partial_iso(d, rng, p_day_unknown=0.05, p_month_unknown=0.0) -> "2025-03-07" | "2025-03" | "2025"
    clock(rng, earliest="07:30", latest="17:00", step_min=5) -> "HH:MM";  add_minutes(hhmm, minutes)
    window_offset(rng, window) -> int;  visit_days(visits, rng, fixed=()) -> {folder: study day}
    block_offset(rng, visits, latest=0) -> int;  timing_rng(seed, index) -> Generator
    lognormal(rng, {median, sigma}) / uniform(rng, [lo, hi]) / uniform_int(rng, [lo, hi]) -> number
    pick(rng, {key: weight}) -> key;  bernoulli(rng, p) -> bool;  weibull_days(rng, median, shape=1.0)
    subject_rngs(seed, n, stream=0) -> list[Generator]   (one independent stream per subject)
Subjects and the record sink
    Subject (dataclass): subject, site, sex, age, birth_date, race, ethnic, height_cm, weight_kg,
        consent_date, transfer_date, death_date, end_date, day0, extra;
        .siteid, .last_date, .on(day) -> date, .day_of(date) -> int, .bsa
    SubjectNumbering(width).next(siteid) -> "101-001";  SubjectNumbering.width_for(n_subjects)
    draw_site(rng, sites, weights=None) -> Site
    draw_subject(rng, subject_id, site, consent_date, transfer_date, age, female_rate=0.42) -> Subject
    Recorder(forms, transfer_date, rng, entry_lag=None, validate=True)
        .add(form, subj, folder, values, *, date, folderseq=1) -> dict | None;  .records
        .add_earlier(form, record, subj, values, *, date);  .history() -> RecordHistory
        .take() -> (records, RecordHistory), emptied (a group of finished subjects at a time)
Screening and history forms (common form library OIDs)
    add_consent(rec, subj, folder, version);  add_demographics(rec, subj, folder, p_year_only_birth=0.0)
    add_medical_history(rec, subj, rng, folder="LOGS", n_range=(0, 5))
    PriorLine;  draw_prior_lines(rng, family, n_lines, diagnosis_date, last_end, refractory_last)
        family: "NHL" (aggressive B-NHL), "MCL", "FL" or "ALL"
    add_prior_therapy(rec, subj, lines, rng, folder="LOGS")
    add_conmed(rec, subj, name, start, end, rng, indication, dose, unit, route, folder="LOGS")
    mh_codes(term) / cm_codes(name) / prior_codes(regimen) -> the MH / CM / PRIOR form's coding
        fields (made-up codes)
    add_standard_prophylaxis(rec, subj, rng, start, folder="LOGS")
Adverse events
    AE_TERMS: {PT: AeTerm};  MEDDRA_VERSION;  meddra_codes(term, llt) -> AE coding fields
    is_hematologic(pt) / is_hematologic_soc(soc, hlgt);  RELATED_CODES
    Segment(grade, start, end, dlt=None);  Episode(pt, segments, rel, rel_ld, scale, fatal,
        llt_index, aesi, partial_start, acn)
    segments_from_daily(grades, first_day, day0, min_grade=3, from_day=None) -> list[list[Segment]]
    add_ae_episode(rec, subj, ep, rng, folder="LOGS") -> list[dict]
    dlt_rules_met(ep, day0, dlt, limit) -> [(segment index, rule id)]
CRS / ICANS (ASTCT)
    crs_runs(rng, max_grade, long_g3=False, g4_days=(1, 3), fatal=False) -> [(grade, days)]
    icans_runs(rng, max_grade, fatal=False) -> [(grade, days)]
    runs_to_segments(runs, onset) -> [Segment];  fatal_runs_to_segments(runs, onset) -> (segments, death)
    daily_grades(runs, onset_day, first_day, n_days) -> np.ndarray
Labs, vital signs, ECG
    LAB_TESTS, LAB_PANELS;  uln_si / lln_si(test, sex, lab_units)
    grade_neutrophils / grade_platelets / grade_wbc / grade_lymphocytes / grade_hemoglobin(v, lln)
    CytopeniaPlan;  draw_cytopenia_plan(rng, disease, base_anc, base_plt, prolonged=None,
        marrow_recovery=True);  shorten_cytopenia(plan)
    LabDrivers(crs, hlh, alt_x_uln, creat_x_base, burden, car_lym);  LabCurves(first_day, values)
    build_lab_curves(rng, subj, disease, first_day, n_days, plan, drivers, base) -> LabCurves
    lab_result(test, si_value, units, sex, rng, noise=0.05) -> LB result fields
    add_lab_panels(rec, subj, folder, date, day, panels, curves, rng, folderseq=1, time=None, p_not_done=0.01)
    add_vitals(rec, subj, folder, date, rng, crs_grade=0, tpt=None, time=None, weight=False,
        height=False, folderseq=1);  add_ecg(rec, subj, folder, date, rng, crs_grade=0, tpt=None, folderseq=1)
Cellular kinetics (the study maps results to its own CK form)
    CkParams;  draw_ck_params(rng, median_cmax, sigma=1.0, z=None, tmax_median=10.0, alpha_half=3.5,
        beta_half=25.0, alpha_frac=0.93)
    ck_level(params, day, method="QPCR");  ck_curve(params, days, method="QPCR") -> np.ndarray
    ck_result(rng, params, day, method, assay_cv=0.25) -> CkResult(text, value, blq, lloq)
    CK_LLOQ, CK_UNITS
Tumour lesions (Lugano 2014 / LYRIC 2016; the study maps readings to its TL form)
    Lesion;  LesionReading;  draw_lesions(rng, n_target, n_nontarget, bulky=False) -> [Lesion]
    measure_lesions(rng, lesions, kind, nadir, ratio=None, new_lesion=False, n_new=0) -> [LesionReading]
    spd(readings) -> float
Follow-up, death, disposition
    add_survival_contact(rec, subj, folder, date, status="1", folderseq=1)
    add_subsequent_therapy(rec, subj, start, name, rng, folder="LOGS")
    add_death(rec, subj, cause, cause_text=None, folder="EOS", rng=None)
    add_disposition(rec, subj, date, code, term=None, folder="EOS")
"""
from __future__ import annotations

import datetime as dt
import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from clinpipe.config import Dlt, Site, Visit
from edc.forms import FormsConfig
from simulate.model import RecordHistory  # defined there (the chunks carry it); part of this API

# =============================================================================================
# Dates and random draws
# =============================================================================================


@lru_cache(maxsize=65536)
def iso(d: dt.date) -> str:
    """ISO 8601 date text; cached so the millions of records of a large run share strings."""
    return d.isoformat()


def from_iso(s: str) -> dt.date:
    return dt.date.fromisoformat(s)


def add_days(d: dt.date, n: float) -> dt.date:
    return d + dt.timedelta(days=int(n))


def days_between(a: dt.date, b: dt.date) -> int:
    """b - a in days."""
    return (b - a).days


def partial_iso(d: dt.date, rng: np.random.Generator, p_day_unknown: float = 0.05,
                p_month_unknown: float = 0.0) -> str:
    """The date as a site would record it when the exact day (or month) is not known."""
    u = rng.random()
    if u < p_month_unknown:
        return f"{d.year:04d}"
    if u < p_month_unknown + p_day_unknown:
        return f"{d.year:04d}-{d.month:02d}"
    return iso(d)


def clock(rng: np.random.Generator, earliest: str = "07:30", latest: str = "17:00",
          step_min: int = 5) -> str:
    lo = int(earliest[:2]) * 60 + int(earliest[3:])
    hi = int(latest[:2]) * 60 + int(latest[3:])
    m = lo + step_min * int(rng.integers(0, (hi - lo) // step_min + 1))
    return f"{m // 60:02d}:{m % 60:02d}"


def add_minutes(hhmm: str, minutes: int) -> str:
    m = min(int(hhmm[:2]) * 60 + int(hhmm[3:]) + minutes, 23 * 60 + 59)
    return f"{m // 60:02d}:{m % 60:02d}"


def window_offset(rng: np.random.Generator, window: tuple[int, int]) -> int:
    """Days off the nominal visit day, within the window, most visits on or near the day
    (triangular): sites aim for the nominal day and drift when clinics or weekends intervene."""
    lo, hi = window
    if lo == hi == 0:
        return 0
    return round(rng.triangular(lo - 0.49, 0.0, hi + 0.49))


def visit_days(visits: Sequence[Visit], rng: np.random.Generator,
               fixed: Iterable[str] = ()) -> dict[str, int]:
    """Actual study day of each visit (nominal + window jitter), strictly increasing in visit
    order: narrow adjacent windows (Day 3 +-1, Day 4 +-1) must not swap or coincide. Visits
    in `fixed` keep their nominal day without a draw: the caller moves them as a block (see
    `block_offset`), e.g. the consecutive lymphodepletion days."""
    out: dict[str, int] = {}
    prev = None
    fixed = set(fixed)
    for v in sorted(visits, key=lambda v: v.visitnum):
        day = v.day + (0 if v.folder in fixed else window_offset(rng, v.window))
        if prev is not None and day <= prev:
            day = min(max(prev + 1, v.day + v.window[0]), v.day + v.window[1])
            if day <= prev:
                day = prev + 1
        out[v.folder] = day
        prev = day
    return out


def block_offset(rng: np.random.Generator, visits: Sequence[Visit], latest: int = 0) -> int:
    """One offset for visits that move together (a multi-day regimen: FC on Days -5/-4/-3,
    BEAM from ASCT Day -6), within the window all of them allow and never above `latest`
    (e.g. so a regimen does not start before enrolment). Most blocks keep the nominal days."""
    lo = max(v.window[0] for v in visits)
    hi = max(min(min(v.window[1] for v in visits), latest), lo)
    if lo == hi:
        return lo
    return int(np.clip(round(rng.triangular(lo - 0.49, min(0, hi), hi + 0.49)), lo, hi))


def timing_rng(seed: int, index: int) -> np.random.Generator:
    """A subject's generator for schedule jitter and administration times, apart from the
    subject's main stream, so adding these draws leaves every other simulated fact unchanged."""
    return np.random.default_rng([seed, index, 0x71AE])


def lognormal(rng: np.random.Generator, spec: dict | Sequence) -> float:
    """A profile lognormal {median, sigma} (sigma of the log)."""
    median, sigma = (spec["median"], spec["sigma"]) if isinstance(spec, dict) else spec
    return float(median * math.exp(sigma * rng.standard_normal()))


def uniform(rng: np.random.Generator, spec: Sequence[float]) -> float:
    return float(rng.uniform(spec[0], spec[1]))


def uniform_int(rng: np.random.Generator, spec: Sequence[int]) -> int:
    """Integer uniform over the closed interval [lo, hi]."""
    return int(rng.integers(int(spec[0]), int(spec[1]) + 1))


def pick(rng: np.random.Generator, weights: dict[str, float] | Sequence[tuple[str, float]]) -> str:
    """A key drawn with probability proportional to its weight (in the mapping's order)."""
    items = list(weights.items()) if isinstance(weights, dict) else list(weights)
    total = float(sum(w for _, w in items))
    u = rng.random() * total
    acc = 0.0
    for key, w in items:
        acc += w
        if u < acc:
            return key
    return items[-1][0]


def bernoulli(rng: np.random.Generator, p: float) -> bool:
    return bool(rng.random() < p)


def subject_rngs(seed: int, n: int, stream: int = 0) -> list[np.random.Generator]:
    """One independent generator per subject: what happens to one subject never shifts the
    random stream of the next, so adding a record type leaves other subjects unchanged."""
    children = np.random.SeedSequence([seed, stream]).spawn(n)
    return [np.random.default_rng(c) for c in children]


def weibull_days(rng: np.random.Generator, median: float, shape: float = 1.0) -> float:
    """Time to event with the given median; shape < 1 front-loads events (early relapses)."""
    scale = median / (math.log(2) ** (1.0 / shape))
    return float(scale * rng.weibull(shape))


# =============================================================================================
# Subjects and the record sink
# =============================================================================================

_RACE_BY_COUNTRY = {
    # EDC RACE codes (common form library): 1 White, 2 Black, 3 Asian, 6 Other, 99 not reported
    "CHN": {"3": 0.985, "6": 0.01, "99": 0.005},
    "USA": {"1": 0.66, "2": 0.13, "3": 0.08, "6": 0.05, "99": 0.08},
}
_HISPANIC_RATE = {"CHN": 0.0, "USA": 0.15}


@dataclass
class Subject:
    subject: str
    site: Site
    sex: str
    age: int
    birth_date: dt.date
    race: str
    ethnic: str
    height_cm: float
    weight_kg: float
    consent_date: dt.date
    transfer_date: dt.date
    death_date: dt.date | None = None
    end_date: dt.date | None = None      # end-of-study date (DS), None while ongoing
    day0: dt.date | None = None          # the study's Day 0 (first anchor), None if never dosed
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def siteid(self) -> str:
        return self.site.siteid

    @property
    def last_date(self) -> dt.date:
        """The last date any record of this subject may carry."""
        last = self.transfer_date
        for d in (self.death_date, self.end_date):
            if d is not None and d < last:
                last = d
        return last

    def on(self, day: int) -> dt.date:
        """Calendar date of a study day relative to Day 0 (Day 0 = day0)."""
        return self.day0 + dt.timedelta(days=int(day))

    def day_of(self, d: dt.date) -> int:
        return (d - self.day0).days

    @property
    def bsa(self) -> float:
        """Body surface area (Mosteller), m2, the way dosing sheets compute it."""
        return round(math.sqrt(self.height_cm * self.weight_kg / 3600.0), 2)


class SubjectNumbering:
    """Subject numbers as sites assign them: site number, dash, running number within site."""

    def __init__(self, width: int = 3):
        self.width = width
        self._next: dict[str, int] = {}

    @staticmethod
    def width_for(n_subjects: int) -> int:
        return max(3, len(str(n_subjects)))

    def next(self, siteid: str) -> str:
        n = self._next.get(siteid, 0) + 1
        self._next[siteid] = n
        return f"{siteid}-{n:0{self.width}d}"


def draw_site(rng: np.random.Generator, sites: Sequence[Site], weights: Sequence[float] | None = None) -> Site:
    w = list(weights) if weights is not None else [1.0] * len(sites)
    idx = pick(rng, [(str(i), w[i]) for i in range(len(sites))])
    return sites[int(idx)]


def draw_subject(rng: np.random.Generator, subject_id: str, site: Site, consent_date: dt.date,
                 transfer_date: dt.date, age: int, female_rate: float = 0.42) -> Subject:
    """Demographics and body size for one consented subject (race/ethnicity by site country)."""
    sex = "F" if rng.random() < female_rate else "M"
    # Birthday falls anywhere in the year before the age is reached on the consent date.
    birth = consent_date - dt.timedelta(days=int(age * 365.25 + rng.integers(1, 365)))
    races = _RACE_BY_COUNTRY.get(site.country, {"6": 0.9, "99": 0.1})
    race = pick(rng, races)
    hisp = _HISPANIC_RATE.get(site.country, 0.05)
    ethnic = "1" if rng.random() < hisp else ("99" if rng.random() < 0.03 else "2")
    asian = site.country in ("CHN", "JPN", "KOR")
    h_mean = (171.0 if sex == "M" else 159.0) + (0.0 if asian else 5.0)
    height = float(np.clip(rng.normal(h_mean, 6.5), 145, 200))
    bmi = float(np.clip(rng.normal(23.0 if asian else 26.5, 3.5), 16.5, 40))
    weight = round(bmi * (height / 100) ** 2, 1)
    return Subject(subject_id, site, sex, int(age), birth, race, ethnic, round(height, 1), weight,
                   consent_date, transfer_date)


@dataclass
class _LagPool:
    """Data-entry lags drawn in blocks (one generator call per 4096 records, not per record)."""
    rng: np.random.Generator
    median: float
    sigma: float
    max_days: int
    late_rate: float
    _buf: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    _pos: int = 0

    def next(self) -> int:
        if self._pos >= len(self._buf):
            n = 4096
            lag = self.median * np.exp(self.sigma * self.rng.standard_normal(n))
            late = self.rng.random(n) < self.late_rate
            lag = np.where(late, self.rng.uniform(30, self.max_days, n), lag)
            self._buf = np.minimum(np.round(lag), self.max_days).astype(np.int64)
            self._pos = 0
        v = int(self._buf[self._pos])
        self._pos += 1
        return v


_LOG_FOLDERS = ("LOGS",)   # log-form folders: each record entered on its own


class Recorder:
    """Collects records per form in the exporter's contract and keeps the dating rules.

    `add(form, subj, folder, values, date=...)`: `date` is the record's own date (visit or
    event date). The record is dropped when `date` is after `subj.last_date` (the subject was
    dead, off study, or the data were not yet transferred). Every declared field is present
    (None when not given). With `validate` (default) unknown fields, codes outside their
    codelist and other date fields after `last_date` raise ValueError: those are simulator
    bugs, never data features.

    `_ENTRY` (date entered in the EDC) is the visit's entry date — sites enter a whole visit
    at once — or, for log folders (AE, CM, ...), each record's own; a few records are entered
    weeks late; never after the transfer date.
    """

    def __init__(self, forms: FormsConfig, transfer_date: dt.date, rng: np.random.Generator,
                 entry_lag: dict | None = None, validate: bool = True):
        lag = {"median": 4, "sigma": 0.9, "max": 120, "late_rate": 0.03, **(entry_lag or {})}
        self.forms = forms
        self.transfer_date = transfer_date
        self.validate = validate
        self.records: dict[str, list[dict]] = {f.oid: [] for f in forms.forms}
        self._blank = {f.oid: dict.fromkeys(fd.oid for fd in f.fields) for f in forms.forms}
        self._date_fields = {f.oid: tuple(fd.oid for fd in f.fields if fd.type == "date")
                             for f in forms.forms}
        self._coded = {f.oid: tuple((fd.oid, forms.codelists[fd.codelist]) for fd in f.fields
                                    if fd.codelist) for f in forms.forms}
        self._numeric = {f.oid: tuple(fd.oid for fd in f.fields if fd.type in ("integer", "float"))
                         for f in forms.forms}
        self._visit_entry: dict[tuple[str, str, int], dt.date] = {}
        # Each record's own date and, where the simulator gave one, what the record said before
        # that date: a transfer cut earlier (simulate/cut.py) keeps exactly what was known then.
        self.dates: dict[str, list[dt.date]] = {f.oid: [] for f in forms.forms}
        self._earlier: dict[int, tuple[dt.date, dict[str, Any]]] = {}
        self._lags = _LagPool(rng, float(lag["median"]), float(lag["sigma"]), int(lag["max"]),
                              float(lag["late_rate"]))

    def has_form(self, form: str) -> bool:
        return form in self._blank

    def _entry(self, subj: Subject, folder: str, folderseq: int, date: dt.date) -> dt.date:
        if folder in _LOG_FOLDERS:
            entry = date + dt.timedelta(days=self._lags.next())
        else:
            key = (subj.subject, folder, folderseq)
            entry = self._visit_entry.get(key)
            if entry is None:
                entry = date + dt.timedelta(days=self._lags.next())
                self._visit_entry[key] = entry
            elif entry < date:
                entry = date
        return min(entry, self.transfer_date)

    def add(self, form: str, subj: Subject, folder: str, values: dict[str, Any], *,
            date: dt.date, folderseq: int = 1) -> dict | None:
        limit = subj.last_date
        if date > limit:
            return None
        if self.validate:
            self._check(form, subj, values, limit)
        rec = {"SITEID": subj.siteid, "SUBJECT": subj.subject, "FOLDER": folder,
               "FOLDERSEQ": int(folderseq), "_ENTRY": iso(self._entry(subj, folder, folderseq, date))}
        rec.update(self._blank[form])
        rec.update(values)
        self.records[form].append(rec)
        self.dates[form].append(date)
        return rec

    def add_earlier(self, form: str, record: dict, subj: Subject, values: dict[str, Any], *,
                    date: dt.date) -> None:
        """What `record` (returned by `add`) said from `date` until its own date: the values
        that replace its fields in a transfer cut in between (e.g. a contraindication on file
        before the procedure's own data). Not exported; the full record is unchanged."""
        if self.validate:
            self._check(form, subj, values, subj.last_date)
        self._earlier[id(record)] = (date, dict(values))

    def history(self) -> RecordHistory:
        """Record dates and earlier versions by (form, index in `records[form]`)."""
        earlier = {}
        if self._earlier:
            for form, recs in self.records.items():
                for i, r in enumerate(recs):
                    if id(r) in self._earlier:
                        earlier[(form, i)] = self._earlier[id(r)]
        return RecordHistory({k: list(v) for k, v in self.dates.items()}, earlier)

    def take(self) -> tuple[dict[str, list[dict]], RecordHistory]:
        """Hand over the records written so far with their history (indices within what is
        handed over) and start afresh, so a study can be exported a group of subjects at a time.
        Only between subjects: `first_recorded` and the visit entry dates read a subject's own
        records, which are then all in the same group."""
        records, history = self.records, self.history()
        self.records = {f: [] for f in records}
        self.dates = {f: [] for f in self.dates}
        # `_earlier` is keyed by id(): once the records are gone, an id can be reused; the
        # visit entry dates are per subject, and the subjects handed over are done.
        self._earlier = {}
        self._visit_entry = {}
        return records, history

    def _check(self, form: str, subj: Subject, values: dict[str, Any], limit: dt.date) -> None:
        blank = self._blank.get(form)
        if blank is None:
            raise ValueError(f"form {form!r} is not in forms.yaml")
        if not values.keys() <= blank.keys():       # one C-level test per record
            for key in values:
                if key not in blank:
                    raise ValueError(f"{form}: field {key!r} is not declared in forms.yaml")
        for oid, codes in self._coded[form]:
            v = values.get(oid)
            if v is not None and v not in codes:
                raise ValueError(f"{form}.{oid}: code {v!r} is not in its codelist")
        lim = iso(limit)
        for oid in self._date_fields[form]:
            v = values.get(oid)
            if v is not None and v > lim and not lim.startswith(v):
                raise ValueError(f"{subj.subject} {form}.{oid} = {v} is after the subject's "
                                 f"last date {lim}")
        for oid in self._numeric[form]:
            v = values.get(oid)
            if v is not None and not isinstance(v, (int, float)):
                raise ValueError(f"{form}.{oid}: {v!r} is not a number")


# =============================================================================================
# Screening and history forms
# =============================================================================================


def add_consent(rec: Recorder, subj: Subject, folder: str, version: str) -> dict | None:
    return rec.add("IC", subj, folder, {"ICDAT": iso(subj.consent_date), "ICVER": version},
                   date=subj.consent_date)


def add_demographics(rec: Recorder, subj: Subject, folder: str,
                     p_year_only_birth: float = 0.0) -> dict | None:
    """DM; `p_year_only_birth`: share of sites' subjects whose birth date is kept to the year
    (privacy rules in some countries), which exercises partial-date handling downstream."""
    brth = iso(subj.birth_date)
    if p_year_only_birth and subj.extra.get("u_birth", 1.0) < p_year_only_birth:
        brth = brth[:4]
    race_oth = "Mixed heritage" if subj.race == "6" else None
    return rec.add("DM", subj, folder, {"BRTHDAT": brth, "AGE": subj.age, "SEX": subj.sex,
                                        "RACE": subj.race, "RACEOTH": race_oth,
                                        "ETHNIC": subj.ethnic}, date=subj.consent_date)


# Conditions common in older adults with relapsed lymphoma/leukaemia, with how often they
# are still ongoing at screening and how far back they start (years).
_MH_TERMS = (
    ("Hypertension", 0.30, True, (1, 20)),
    ("Type 2 diabetes mellitus", 0.12, True, (1, 15)),
    ("Hyperlipidaemia", 0.15, True, (1, 15)),
    ("Chronic hepatitis B (inactive carrier)", 0.08, True, (3, 25)),
    ("Gastro-oesophageal reflux disease", 0.10, True, (1, 10)),
    ("Peripheral neuropathy", 0.15, True, (0.3, 4)),
    ("Herpes zoster", 0.06, False, (0.5, 8)),
    ("Depression", 0.07, True, (1, 10)),
    ("Hypothyroidism", 0.05, True, (1, 15)),
    ("Cholecystectomy", 0.05, False, (2, 25)),
    ("Benign prostatic hyperplasia", 0.08, True, (1, 10)),
    ("Pneumonia", 0.08, False, (0.2, 3)),
    ("Osteoarthritis", 0.08, True, (2, 20)),
    ("Anxiety", 0.06, True, (0.5, 5)),
    ("Deep vein thrombosis", 0.04, False, (0.3, 4)),
    ("Chronic kidney disease stage 2", 0.04, True, (1, 8)),
)


# The coding module's MedDRA-style coding of each medical-history term: (LLT, PT, SOC). Names
# follow MedDRA's published structure for these few terms; the codes come from `_code` below and
# are made up (prefix 9, never a real MedDRA code), as for AEs. No licensed content.
_MH_CODING = {
    "Hypertension": ("Hypertension", "Hypertension", "Vascular disorders"),
    "Type 2 diabetes mellitus": ("Type 2 diabetes mellitus", "Type 2 diabetes mellitus",
                                 "Metabolism and nutrition disorders"),
    "Hyperlipidaemia": ("Hyperlipidaemia", "Hyperlipidaemia", "Metabolism and nutrition disorders"),
    "Chronic hepatitis B (inactive carrier)": ("Hepatitis B carrier", "Chronic hepatitis B",
                                               "Infections and infestations"),
    "Gastro-oesophageal reflux disease": ("Gastro-oesophageal reflux disease",
                                          "Gastrooesophageal reflux disease", "Gastrointestinal disorders"),
    "Peripheral neuropathy": ("Peripheral neuropathy", "Neuropathy peripheral", "Nervous system disorders"),
    "Herpes zoster": ("Herpes zoster", "Herpes zoster", "Infections and infestations"),
    "Depression": ("Depression", "Depression", "Psychiatric disorders"),
    "Hypothyroidism": ("Hypothyroidism", "Hypothyroidism", "Endocrine disorders"),
    "Cholecystectomy": ("Cholecystectomy", "Cholecystectomy", "Surgical and medical procedures"),
    "Benign prostatic hyperplasia": ("Benign prostatic hyperplasia", "Benign prostatic hyperplasia",
                                     "Reproductive system and breast disorders"),
    "Pneumonia": ("Pneumonia", "Pneumonia", "Infections and infestations"),
    "Osteoarthritis": ("Osteoarthritis", "Osteoarthritis", "Musculoskeletal and connective tissue disorders"),
    "Anxiety": ("Anxiety", "Anxiety", "Psychiatric disorders"),
    "Deep vein thrombosis": ("Deep vein thrombosis", "Deep vein thrombosis", "Vascular disorders"),
    "Chronic kidney disease stage 2": ("Chronic kidney disease stage 2", "Chronic kidney disease",
                                       "Renal and urinary disorders"),
}


def mh_codes(term: str) -> dict[str, str | None]:
    """The MH form's coding fields for a verbatim term (all None for a term the coder has not
    coded yet). An LLT named like its PT shares the PT's code, as in MedDRA."""
    coded = _MH_CODING.get(term)
    if coded is None:
        return {"MHLLT": None, "MHLLTCD": None, "MHPT": None, "MHPTCD": None, "MHSOC": None,
                "MHSOCCD": None, "MHDICTV": None}
    llt, pt, soc = coded
    return {"MHLLT": llt, "MHLLTCD": _code("LLT", llt), "MHPT": pt, "MHPTCD": _code("PT", pt),
            "MHSOC": soc, "MHSOCCD": _code("SOC", soc), "MHDICTV": MEDDRA_VERSION}


def add_medical_history(rec: Recorder, subj: Subject, rng: np.random.Generator,
                        folder: str = "LOGS", n_range: tuple[int, int] = (0, 5)) -> list[dict]:
    """Relevant medical history; older start dates are often known only to the month or year."""
    out = []
    chosen = [t for t in _MH_TERMS if rng.random() < t[1]
              and not (t[0] == "Benign prostatic hyperplasia" and subj.sex == "F")]
    if len(chosen) > n_range[1]:
        chosen = chosen[: n_range[1]]
    for term, _, chronic, (ylo, yhi) in chosen:
        years = rng.uniform(ylo, min(yhi, max(ylo + 0.1, subj.age - 17)))
        start = subj.consent_date - dt.timedelta(days=int(years * 365.25))
        start_txt = partial_iso(start, rng, p_day_unknown=0.35, p_month_unknown=0.15)
        ongoing = chronic and rng.random() < 0.9
        end_txt = None
        if not ongoing:
            end = start + dt.timedelta(days=int(rng.integers(7, 120)))
            end = min(end, subj.consent_date - dt.timedelta(days=1))
            end_txt = partial_iso(end, rng, p_day_unknown=0.3) if end > start else None
            if end_txt is not None and end_txt < start_txt[: len(end_txt)]:
                end_txt = None
        r = rec.add("MH", subj, folder, {"MHTERM": term, "MHSTDAT": start_txt,
                                         "MHONGO": "Y" if ongoing else "N", "MHENDAT": end_txt,
                                         **mh_codes(term)},
                    date=subj.consent_date)
        if r is not None:
            out.append(r)
    return out


@dataclass
class PriorLine:
    line: int
    ptype: str         # PRTYPE code (common library)
    regimen: str
    start: dt.date
    end: dt.date
    best: str          # PRIORBOR code
    refractory: bool


# Regimens by line for the two disease families, roughly how r/r patients get there. Each
# entry: (PRTYPE code, regimen name, typical duration in days, response weights).
_PRIOR_REGIMENS = {
    "NHL": {
        1: [("1", "R-CHOP", 126), ("1", "Pola-R-CHP", 126), ("1", "DA-EPOCH-R", 126)],
        2: [("1", "R-DHAP", 63), ("1", "R-ICE", 63), ("1", "R-GemOx", 84), ("1", "Pola-BR", 105)],
        3: [("3", "Autologous SCT (BEAM conditioning)", 30), ("7", "Glofitamab", 252),
            ("7", "Epcoritamab", 180), ("1", "R-GDP", 63), ("6", "Lenalidomide + tafasitamab", 180)],
        4: [("5", "Autologous anti-CD19 CAR-T", 1), ("6", "Ibrutinib", 200), ("1", "R-GemOx", 84),
            ("2", "Involved-site radiotherapy", 21), ("6", "Zanubrutinib", 200)],
    },
    "MCL": {
        1: [("1", "R-CHOP/R-DHAP alternating", 126), ("1", "Bendamustine-rituximab", 168)],
        2: [("6", "Ibrutinib", 300), ("6", "Zanubrutinib", 300), ("6", "Acalabrutinib", 300)],
        3: [("6", "Venetoclax", 180), ("1", "R-BAC", 84), ("3", "Autologous SCT (BEAM conditioning)", 30)],
        4: [("6", "Lenalidomide-rituximab", 200), ("7", "Glofitamab", 252)],
    },
    "FL": {
        1: [("1", "R-CVP", 126), ("1", "Bendamustine-rituximab", 168), ("1", "R-CHOP", 126)],
        2: [("6", "Lenalidomide-rituximab", 300), ("1", "Obinutuzumab-bendamustine", 168)],
        3: [("6", "PI3K inhibitor (copanlisib)", 180), ("7", "Mosunetuzumab", 150),
            ("2", "Involved-site radiotherapy", 21)],
        4: [("3", "Autologous SCT (BEAM conditioning)", 30), ("6", "Tazemetostat", 200)],
    },
    "ALL": {
        1: [("1", "Hyper-CVAD", 180), ("1", "Pediatric-inspired ALL regimen (CALGB 10403)", 240),
            ("1", "VDCLP induction", 120)],
        2: [("7", "Blinatumomab", 56), ("1", "FLAG-IDA", 35), ("6", "Inotuzumab ozogamicin", 84)],
        3: [("4", "Allogeneic SCT", 30), ("6", "Inotuzumab ozogamicin", 84), ("7", "Blinatumomab", 56)],
        4: [("5", "Autologous anti-CD19 CAR-T", 1), ("1", "Clofarabine-based salvage", 35),
            ("6", "Ponatinib + chemotherapy", 120)],
    },
}


def draw_prior_lines(rng: np.random.Generator, family: str, n_lines: int, diagnosis_date: dt.date,
                     last_end: dt.date, refractory_last: bool) -> list[PriorLine]:
    """Prior lines between diagnosis and `last_end` (end of the last line, before screening).

    `family`: NHL (aggressive B-NHL), MCL, FL or ALL. Earlier lines respond better; the last
    line is refractory when `refractory_last` (the study's refractory-status field agrees).
    """
    book = _PRIOR_REGIMENS[family]
    used: list[str] = []
    picks = []
    for i in range(n_lines):
        options = [o for o in book[min(i + 1, 4)] if o[1] not in used]
        ptype, regimen, dur = options[int(rng.integers(len(options)))] if options else book[4][0]
        used.append(regimen)
        picks.append((ptype, regimen, max(1.0, dur * rng.uniform(0.7, 1.2))))
    # Remissions between lines: long after first line, shorter later (the disease speeds up).
    gaps = [float(rng.uniform(60, 700)) / (i + 1) for i in range(n_lines - 1)]
    first_start = diagnosis_date + dt.timedelta(days=int(rng.integers(7, 30)))
    span = (last_end - first_start).days
    need = sum(p[2] for p in picks) + sum(gaps)
    if need > span:                       # short history: compress treatment and gaps alike
        f = max(span, n_lines) / need
        picks = [(a, b, max(1.0, d * f)) for a, b, d in picks]
        gaps = [g * f for g in gaps]
    # Lay the lines out backwards from the end of the last line.
    lines: list[PriorLine] = []
    end = last_end
    for i in range(n_lines - 1, -1, -1):
        ptype, regimen, dur = picks[i]
        start = max(end - dt.timedelta(days=int(dur)), first_start)
        last = i == n_lines - 1
        if last and refractory_last:
            best, refr = pick(rng, {"SD": 0.45, "PD": 0.55}), True
        else:
            p_cr = max(0.1, 0.55 - 0.15 * i)
            best = pick(rng, {"CR": p_cr, "PR": 0.3, "SD": 0.1, "PD": 0.05, "UNK": 0.03})
            refr = best in ("SD", "PD")
        lines.append(PriorLine(i + 1, ptype, regimen, start, max(end, start), best, refr))
        if i:
            end = max(start - dt.timedelta(days=int(gaps[i - 1])), first_start)
    return lines[::-1]


# The drug dictionary's coding of prior drug regimens (same conventions as _CM_CODING below):
# the standardised name lists the regimen's agents as a multi-ingredient entry does; the
# ATC-style class codes are made up (anatomical group "X", not used by ATC). Radiotherapy and
# transplants are procedures (PR): no drug coding.
_PROCEDURE_TYPES = ("2", "3", "4")   # PRTYPE radiotherapy, autologous / allogeneic SCT
_COMBO = ("ANTINEOPLASTIC COMBINATION REGIMENS", "X10XC")
_PRIOR_CODING = {
    "R-CHOP": ("RITUXIMAB;CYCLOPHOSPHAMIDE;DOXORUBICIN;VINCRISTINE;PREDNISONE", *_COMBO),
    "Pola-R-CHP": ("POLATUZUMAB VEDOTIN;RITUXIMAB;CYCLOPHOSPHAMIDE;DOXORUBICIN;PREDNISONE", *_COMBO),
    "DA-EPOCH-R": ("ETOPOSIDE;PREDNISONE;VINCRISTINE;CYCLOPHOSPHAMIDE;DOXORUBICIN;RITUXIMAB", *_COMBO),
    "R-DHAP": ("RITUXIMAB;DEXAMETHASONE;CYTARABINE;CISPLATIN", *_COMBO),
    "R-ICE": ("RITUXIMAB;IFOSFAMIDE;CARBOPLATIN;ETOPOSIDE", *_COMBO),
    "R-GemOx": ("RITUXIMAB;GEMCITABINE;OXALIPLATIN", *_COMBO),
    "Pola-BR": ("POLATUZUMAB VEDOTIN;BENDAMUSTINE;RITUXIMAB", *_COMBO),
    "R-GDP": ("RITUXIMAB;GEMCITABINE;DEXAMETHASONE;CISPLATIN", *_COMBO),
    "Lenalidomide + tafasitamab": ("LENALIDOMIDE;TAFASITAMAB", *_COMBO),
    "R-CHOP/R-DHAP alternating": (("RITUXIMAB;CYCLOPHOSPHAMIDE;DOXORUBICIN;VINCRISTINE;PREDNISONE;"
                                   "DEXAMETHASONE;CYTARABINE;CISPLATIN"), *_COMBO),
    "Bendamustine-rituximab": ("BENDAMUSTINE;RITUXIMAB", *_COMBO),
    "R-BAC": ("RITUXIMAB;BENDAMUSTINE;CYTARABINE", *_COMBO),
    "Lenalidomide-rituximab": ("LENALIDOMIDE;RITUXIMAB", *_COMBO),
    "R-CVP": ("RITUXIMAB;CYCLOPHOSPHAMIDE;VINCRISTINE;PREDNISONE", *_COMBO),
    "Obinutuzumab-bendamustine": ("OBINUTUZUMAB;BENDAMUSTINE", *_COMBO),
    "Hyper-CVAD": ("CYCLOPHOSPHAMIDE;VINCRISTINE;DOXORUBICIN;DEXAMETHASONE;METHOTREXATE;CYTARABINE", *_COMBO),
    "Pediatric-inspired ALL regimen (CALGB 10403)": (("VINCRISTINE;DAUNORUBICIN;PREDNISONE;PEGASPARGASE;"
                                                      "CYCLOPHOSPHAMIDE;CYTARABINE;METHOTREXATE;MERCAPTOPURINE"), *_COMBO),
    "VDCLP induction": ("VINCRISTINE;DAUNORUBICIN;CYCLOPHOSPHAMIDE;PEGASPARGASE;PREDNISONE", *_COMBO),
    "FLAG-IDA": ("FLUDARABINE;CYTARABINE;FILGRASTIM;IDARUBICIN", *_COMBO),
    "Ponatinib + chemotherapy": ("PONATINIB;CYCLOPHOSPHAMIDE;VINCRISTINE;DOXORUBICIN;DEXAMETHASONE", *_COMBO),
    "Glofitamab": ("GLOFITAMAB", "CD20/CD3 BISPECIFIC ANTIBODIES", "X10FB"),
    "Epcoritamab": ("EPCORITAMAB", "CD20/CD3 BISPECIFIC ANTIBODIES", "X10FB"),
    "Mosunetuzumab": ("MOSUNETUZUMAB", "CD20/CD3 BISPECIFIC ANTIBODIES", "X10FB"),
    "Blinatumomab": ("BLINATUMOMAB", "CD19/CD3 BISPECIFIC ANTIBODIES", "X10FC"),
    "Inotuzumab ozogamicin": ("INOTUZUMAB OZOGAMICIN", "ANTIBODY-DRUG CONJUGATES", "X10FD"),
    "Ibrutinib": ("IBRUTINIB", "BRUTON TYROSINE KINASE INHIBITORS", "X10EL"),
    "Zanubrutinib": ("ZANUBRUTINIB", "BRUTON TYROSINE KINASE INHIBITORS", "X10EL"),
    "Acalabrutinib": ("ACALABRUTINIB", "BRUTON TYROSINE KINASE INHIBITORS", "X10EL"),
    "Venetoclax": ("VENETOCLAX", "BCL-2 INHIBITORS", "X10XG"),
    "PI3K inhibitor (copanlisib)": ("COPANLISIB", "PHOSPHATIDYLINOSITOL-3-KINASE INHIBITORS", "X10EM"),
    "Tazemetostat": ("TAZEMETOSTAT", "EZH2 INHIBITORS", "X10XH"),
    "Clofarabine-based salvage": ("CLOFARABINE", "PURINE ANALOGUES", "X10BB"),
    "Autologous anti-CD19 CAR-T": ("AUTOLOGOUS ANTI-CD19 CAR-T CELLS", "CAR-T CELL THERAPIES", "X10XK"),
}


def prior_codes(regimen: str) -> dict[str, str | None]:
    """The PRIOR form's drug coding of a regimen (None for procedures and uncoded names)."""
    coded = _PRIOR_CODING.get(regimen)
    if coded is None:
        return {"PTDRUG": None, "PTATC": None, "PTATCCD": None, "PTDICTV": None}
    std, cls, code = coded
    return {"PTDRUG": std, "PTATC": cls, "PTATCCD": code, "PTDICTV": DRUG_DICTIONARY_VERSION}


def add_prior_therapy(rec: Recorder, subj: Subject, lines: Sequence[PriorLine], rng: np.random.Generator,
                      folder: str = "LOGS") -> list[dict]:
    out = []
    for ln in lines:
        # Sites abstracting years-old charts often know only the month of early lines.
        p_partial = 0.25 if ln.line == 1 else 0.05
        r = rec.add("PRIOR", subj, folder, {
            "PTLINE": ln.line, "PTTYPE": ln.ptype, "PTTRT": ln.regimen,
            "PTSTDAT": partial_iso(ln.start, rng, p_day_unknown=p_partial),
            "PTENDAT": partial_iso(ln.end, rng, p_day_unknown=p_partial),
            "PTBOR": ln.best, "PTREFR": "Y" if ln.refractory else "N",
            **(prior_codes(ln.regimen) if ln.ptype not in _PROCEDURE_TYPES else prior_codes(""))},
            date=subj.consent_date)
        if r is not None:
            out.append(r)
    return out


# The coding module's drug dictionary: reported name -> (standardised name, class, class code).
# Standardised names are the generic (INN) names in the style of a WHODrug preferred name; the
# classes are ATC-style level-4 groups worded here. The class CODES are made up in the ATC shape
# with anatomical group "X", which the ATC system does not use, so they can never be mistaken
# for real ATC codes. No licensed dictionary content is included: only the drugs used here.
DRUG_DICTIONARY_VERSION = "SIMDRUG 2026.1"
_CM_CODING = {
    "Acyclovir": ("ACICLOVIR", "NUCLEOSIDE ANTIVIRALS", "X05AB"),
    "Letermovir": ("LETERMOVIR", "OTHER ANTIVIRALS", "X05AX"),
    "Sulfamethoxazole/trimethoprim": ("SULFAMETHOXAZOLE;TRIMETHOPRIM", "SULFONAMIDE-TRIMETHOPRIM COMBINATIONS",
                                      "X01EE"),
    "Fluconazole": ("FLUCONAZOLE", "TRIAZOLE ANTIMYCOTICS", "X02AC"),
    "Piperacillin/tazobactam": ("PIPERACILLIN;TAZOBACTAM", "PENICILLINS WITH BETA-LACTAMASE INHIBITOR",
                                "X01CR"),
    "Meropenem": ("MEROPENEM", "CARBAPENEMS", "X01DH"),
    "Allopurinol": ("ALLOPURINOL", "URIC ACID PRODUCTION INHIBITORS", "X04AA"),
    "Levetiracetam": ("LEVETIRACETAM", "OTHER ANTIEPILEPTICS", "X07AX"),
    "Tocilizumab": ("TOCILIZUMAB", "INTERLEUKIN INHIBITORS", "X04AC"),
    "Dexamethasone": ("DEXAMETHASONE", "GLUCOCORTICOIDS", "X02AB"),
    "Immunoglobulin (IVIG)": ("IMMUNOGLOBULIN HUMAN NORMAL", "IMMUNOGLOBULINS, NORMAL HUMAN", "X06BA"),
    "Filgrastim": ("FILGRASTIM", "COLONY STIMULATING FACTORS", "X03AA"),
    "Plerixafor": ("PLERIXAFOR", "OTHER IMMUNOSTIMULANTS", "X03AX"),
}


# One class per made-up class code, over both drug lists.
assert len({(code, cls) for _, cls, code in [*_CM_CODING.values(), *_PRIOR_CODING.values()]}) == \
    len({code for *_, code in [*_CM_CODING.values(), *_PRIOR_CODING.values()]})
# Every drug regimen the prior-line book can draw is coded.
assert {r for book in _PRIOR_REGIMENS.values() for opts in book.values() for t, r, _ in opts
        if t not in _PROCEDURE_TYPES} <= set(_PRIOR_CODING)


def cm_codes(name: str) -> dict[str, str | None]:
    """The CM form's coding fields for a reported medication (None for a drug not coded yet)."""
    coded = _CM_CODING.get(name)
    if coded is None:
        return {"CMDRUG": None, "CMATC": None, "CMATCCD": None, "CMDICTV": None}
    std, cls, code = coded
    return {"CMDRUG": std, "CMATC": cls, "CMATCCD": code, "CMDICTV": DRUG_DICTIONARY_VERSION}


def add_conmed(rec: Recorder, subj: Subject, name: str, start: dt.date, end: dt.date | None,
               rng: np.random.Generator, indication: str, dose: float | None, unit: str | None,
               route: str, folder: str = "LOGS") -> dict | None:
    """One concomitant medication; an end after the subject's last date becomes ongoing."""
    if start > subj.last_date:
        return None
    ongoing = end is None or end > subj.last_date
    return rec.add("CM", subj, folder, {
        "CMTRT": name, "CMINDC": indication, "CMDOSE": dose, "CMDOSU": unit, "CMROUTE": route,
        "CMSTDAT": partial_iso(start, rng, p_day_unknown=0.02),
        "CMENDAT": None if ongoing else iso(end), "CMONGO": "Y" if ongoing else "N",
        **cm_codes(name)}, date=start)


# Anti-infective prophylaxis most cell-therapy protocols mandate from lymphodepletion.
_PROPHYLAXIS = (
    ("Acyclovir", "Antiviral prophylaxis", 400.0, "mg", "PO", 365),
    ("Sulfamethoxazole/trimethoprim", "Pneumocystis prophylaxis", 960.0, "mg", "PO", 180),
    ("Fluconazole", "Antifungal prophylaxis", 200.0, "mg", "PO", 60),
    ("Allopurinol", "Tumour lysis prophylaxis", 300.0, "mg", "PO", 14),
)


def add_standard_prophylaxis(rec: Recorder, subj: Subject, rng: np.random.Generator, start: dt.date,
                             folder: str = "LOGS") -> list[dict]:
    out = []
    for name, ind, dose, unit, route, days in _PROPHYLAXIS:
        if rng.random() < 0.1:       # allergy, local practice: not every subject gets each one
            continue
        s = start + dt.timedelta(days=int(rng.integers(-2, 2)))
        e = s + dt.timedelta(days=int(days * rng.uniform(0.8, 1.2)))
        r = add_conmed(rec, subj, name, s, e, rng, ind, dose, unit, route, folder)
        if r is not None:
            out.append(r)
    return out


# =============================================================================================
# Adverse events: a MedDRA-like catalogue
# =============================================================================================
# The hierarchy NAMES below follow MedDRA's published structure for the few terms used here;
# the CODES are made up (8 digits, prefixed 9 so they can never be mistaken for real codes).
# No licensed MedDRA content is included: only the terms this simulator uses.

MEDDRA_VERSION = "27.1"


@dataclass(frozen=True)
class AeTerm:
    pt: str
    hlt: str
    hlgt: str
    soc: str
    llts: tuple[tuple[str, str], ...]   # (LLT, verbatim term as sites typically write it)
    aesi: bool = False

    @property
    def hematologic(self) -> bool:
        return is_hematologic_soc(self.soc, self.hlgt)


def is_hematologic_soc(soc: str, hlgt: str) -> bool:
    """Hematologic toxicity = blood/lymphatic SOC or the haematology-investigations HLGT; the
    rule the DLT derivation needs to tell "non-hematologic" toxicities apart."""
    return soc == "Blood and lymphatic system disorders" or hlgt == "Haematology investigations (incl blood groups)"


_BLOOD = "Blood and lymphatic system disorders"
_INV = "Investigations"
_HEMINV = "Haematology investigations (incl blood groups)"
_INFECT = "Infections and infestations"
_GI = "Gastrointestinal disorders"
_GEN = "General disorders and administration site conditions"
_META = "Metabolism and nutrition disorders"
_NERV = "Nervous system disorders"
_IMM = "Immune system disorders"

_AE_LIST = (
    AeTerm("Cytokine release syndrome", "Immune and associated conditions NEC", "Immune disorders NEC", _IMM,
           (("Cytokine release syndrome", "Cytokine release syndrome"), ("Cytokine release syndrome", "CRS"),
            ("Cytokine storm", "Cytokine storm")), aesi=True),
    AeTerm("Immune effector cell-associated neurotoxicity syndrome", "Encephalopathies NEC",
           "Encephalopathies", _NERV,
           (("Immune effector cell-associated neurotoxicity syndrome", "ICANS"),
            ("Immune effector cell-associated neurotoxicity syndrome", "Immune effector cell-associated neurotoxicity"),
            ("CAR-T neurotoxicity", "Neurotoxicity after CAR-T")), aesi=True),
    AeTerm("Neutrophil count decreased", "White blood cell analyses", _HEMINV, _INV,
           (("Neutrophil count decreased", "Neutrophil count decreased"), ("ANC decreased", "ANC decreased"),
            ("Neutrophil count decreased", "Low neutrophils"))),
    AeTerm("Platelet count decreased", "Platelet analyses", _HEMINV, _INV,
           (("Platelet count decreased", "Platelet count decreased"), ("Platelets decreased", "Low platelets"),
            ("Platelet count decreased", "Decreased platelet count"))),
    AeTerm("White blood cell count decreased", "White blood cell analyses", _HEMINV, _INV,
           (("White blood cell count decreased", "WBC decreased"),
            ("White blood cell count decreased", "White blood cell count decreased"))),
    AeTerm("Lymphocyte count decreased", "White blood cell analyses", _HEMINV, _INV,
           (("Lymphocyte count decreased", "Lymphocyte count decreased"), ("Lymphopenia", "Lymphopenia"))),
    AeTerm("Anaemia", "Anaemias NEC", "Anaemias nonhaemolytic and marrow depression", _BLOOD,
           (("Anaemia", "Anemia"), ("Anaemia", "Anaemia"), ("Hemoglobin low", "Low hemoglobin"))),
    AeTerm("Febrile neutropenia", "Neutropenias", "White blood cell disorders", _BLOOD,
           (("Febrile neutropenia", "Febrile neutropenia"), ("Neutropenic fever", "Neutropenic fever"))),
    AeTerm("Haemophagocytic lymphohistiocytosis", "Histiocytoses", "Haematological disorders NEC", _BLOOD,
           (("Haemophagocytic lymphohistiocytosis", "HLH"),
            ("Macrophage activation syndrome", "Macrophage activation syndrome")), aesi=True),
    AeTerm("Pyrexia", "Febrile disorders", "Body temperature conditions", _GEN,
           (("Fever", "Fever"), ("Pyrexia", "Pyrexia"))),
    AeTerm("Fatigue", "Asthenic conditions", "General system disorders NEC", _GEN,
           (("Fatigue", "Fatigue"), ("Tiredness", "Tiredness"))),
    AeTerm("Nausea", "Nausea and vomiting symptoms", "Gastrointestinal signs and symptoms", _GI,
           (("Nausea", "Nausea"),)),
    AeTerm("Vomiting", "Nausea and vomiting symptoms", "Gastrointestinal signs and symptoms", _GI,
           (("Vomiting", "Vomiting"), ("Emesis", "Emesis"))),
    AeTerm("Diarrhoea", "Diarrhoea (excl infective)", "Gastrointestinal motility and defaecation conditions", _GI,
           (("Diarrhea", "Diarrhea"), ("Loose stools", "Loose stools"))),
    AeTerm("Decreased appetite", "Appetite disorders", "Appetite and general nutritional disorders", _META,
           (("Appetite decreased", "Poor appetite"), ("Decreased appetite", "Decreased appetite"))),
    AeTerm("Hypokalaemia", "Potassium imbalance", "Electrolyte and fluid balance conditions", _META,
           (("Hypokalemia", "Hypokalemia"), ("Low potassium", "Low potassium"))),
    AeTerm("Hypophosphataemia", "Phosphorus metabolism disorders", "Electrolyte and fluid balance conditions", _META,
           (("Hypophosphatemia", "Hypophosphatemia"),)),
    AeTerm("Hypoalbuminaemia", "Protein metabolism disorders NEC", "Protein and amino acid metabolism disorders NEC", _META,
           (("Hypoalbuminemia", "Hypoalbuminemia"),)),
    AeTerm("Tumour lysis syndrome", "Tumour lysis syndromes", "Metabolism disorders NEC", _META,
           (("Tumor lysis syndrome", "Tumor lysis syndrome"), ("Tumour lysis syndrome", "TLS"))),
    AeTerm("Headache", "Headaches NEC", "Headaches", _NERV, (("Headache", "Headache"),)),
    AeTerm("Tremor", "Tremor (excl congenital)", "Movement disorders (incl parkinsonism)", _NERV,
           (("Tremor", "Tremor"),)),
    AeTerm("Hypotension", "Vascular hypotensive disorders", "Decreased and nonspecific blood pressure disorders and shock",
           "Vascular disorders", (("Hypotension", "Hypotension"), ("Low blood pressure", "Low blood pressure"))),
    AeTerm("Sinus tachycardia", "Rate and rhythm disorders NEC", "Cardiac arrhythmias", "Cardiac disorders",
           (("Sinus tachycardia", "Sinus tachycardia"), ("Tachycardia", "Tachycardia"))),
    AeTerm("Atrial fibrillation", "Supraventricular arrhythmias", "Cardiac arrhythmias", "Cardiac disorders",
           (("Atrial fibrillation", "Atrial fibrillation"), ("AF", "New onset AF"))),
    AeTerm("Hypoxia", "Breathing abnormalities", "Respiratory disorders NEC",
           "Respiratory, thoracic and mediastinal disorders", (("Hypoxia", "Hypoxia"), ("Desaturation", "Desaturation"))),
    AeTerm("Cough", "Coughing and associated symptoms", "Respiratory disorders NEC",
           "Respiratory, thoracic and mediastinal disorders", (("Cough", "Cough"),)),
    AeTerm("Alanine aminotransferase increased", "Liver function analyses", "Hepatobiliary investigations", _INV,
           (("ALT increased", "ALT increased"), ("Alanine aminotransferase increased", "Elevated ALT"))),
    AeTerm("Aspartate aminotransferase increased", "Liver function analyses", "Hepatobiliary investigations", _INV,
           (("AST increased", "AST increased"), ("Aspartate aminotransferase increased", "Elevated AST"))),
    AeTerm("Acute kidney injury", "Renal failure and impairment", "Renal disorders (excl nephropathies)",
           "Renal and urinary disorders", (("Acute kidney injury", "Acute kidney injury"), ("AKI", "AKI"))),
    AeTerm("Pneumonia", "Lower respiratory tract and lung infections", "Infections - pathogen unspecified", _INFECT,
           (("Pneumonia", "Pneumonia"), ("Lung infection", "Lung infection")), aesi=True),
    AeTerm("Upper respiratory tract infection", "Upper respiratory tract infections",
           "Infections - pathogen unspecified", _INFECT,
           (("Upper respiratory tract infection", "URTI"), ("Common cold", "Common cold")), aesi=True),
    AeTerm("Sepsis", "Sepsis, bacteraemia, viraemia and fungaemia NEC", "Infections - pathogen unspecified", _INFECT,
           (("Sepsis", "Sepsis"), ("Bacteremia", "Bacteremia")), aesi=True),
    AeTerm("Cytomegalovirus infection reactivation", "Cytomegaloviral infections", "Viral infectious disorders",
           _INFECT, (("CMV reactivation", "CMV reactivation"),
                     ("Cytomegalovirus viremia", "CMV viremia")), aesi=True),
    AeTerm("COVID-19", "Coronavirus infections", "Viral infectious disorders", _INFECT,
           (("COVID-19", "COVID-19"), ("SARS-CoV-2 infection", "SARS-CoV-2 positive")), aesi=True),
    AeTerm("Herpes zoster", "Herpes viral infections", "Viral infectious disorders", _INFECT,
           (("Herpes zoster", "Shingles"), ("Herpes zoster", "Herpes zoster")), aesi=True),
    AeTerm("Urinary tract infection", "Urinary tract infections", "Infections - pathogen unspecified", _INFECT,
           (("Urinary tract infection", "UTI"),), aesi=True),
    AeTerm("Hypogammaglobulinaemia", "Immunodeficiency syndromes", "Immunodeficiency syndromes", _IMM,
           (("Hypogammaglobulinemia", "Hypogammaglobulinemia"), ("Low IgG", "Low IgG"))),
    AeTerm("Graft versus host disease", "Graft versus host disease", "Transplant rejection and graft versus host disease",
           _IMM, (("Graft versus host disease", "GVHD"),
                  ("Acute graft versus host disease in skin", "Skin GVHD")), aesi=True),
    AeTerm("Rash maculo-papular", "Rashes, eruptions and exanthems NEC", "Epidermal and dermal conditions",
           "Skin and subcutaneous tissue disorders", (("Maculopapular rash", "Maculopapular rash"),
                                                      ("Rash", "Rash"))),
    AeTerm("Tumour flare", "Oncologic complications and emergencies", "Neoplasm related morbidities",
           "Neoplasms benign, malignant and unspecified (incl cysts and polyps)",
           (("Tumor flare", "Tumor flare"), ("Pseudoprogression", "Pseudoprogression"))),
    AeTerm("Infusion related reaction", "Infusion related reactions", "Administration site reactions", _GEN,
           (("Infusion related reaction", "Infusion reaction"), ("Chills", "Chills during infusion"))),
    # Fatal events a death form names without an AE course before it (add_death).
    AeTerm("Cardiac arrest", "Ventricular arrhythmias and cardiac arrest", "Cardiac arrhythmias", "Cardiac disorders",
           (("Cardiac arrest", "Cardiac arrest"), ("Cardiorespiratory arrest", "Cardiorespiratory arrest"))),
    AeTerm("Death", "Death and sudden death", "Fatal outcomes", _GEN, (("Death", "Death"),)),
)

AE_TERMS: dict[str, AeTerm] = {t.pt: t for t in _AE_LIST}


def is_hematologic(pt: str) -> bool:
    return AE_TERMS[pt].hematologic


def _code(level: str, name: str) -> str:
    prefix = {"SOC": "91", "HLGT": "92", "HLT": "93", "PT": "94", "LLT": "94"}[level]
    return f"{prefix}{zlib.crc32(name.encode('utf-8')) % 1_000_000:06d}"


def meddra_codes(term: AeTerm, llt: str) -> dict[str, str]:
    """The AE form's coding fields. An LLT named like its PT shares the PT's code, as in MedDRA."""
    return {"AELLT": llt, "AELLTCD": _code("LLT", llt), "AEPT": term.pt, "AEPTCD": _code("PT", term.pt),
            "AEHLT": term.hlt, "AEHLTCD": _code("HLT", term.hlt), "AEHLGT": term.hlgt,
            "AEHLGTCD": _code("HLGT", term.hlgt), "AESOC": term.soc, "AESOCCD": _code("SOC", term.soc),
            "MEDDRAV": MEDDRA_VERSION}


def _check_codes_unique() -> None:
    for level in ("SOC", "HLGT", "HLT"):
        names = sorted({getattr(t, level.lower()) for t in _AE_LIST})
        codes = [_code(level, n) for n in names]
        assert len(codes) == len(set(codes)), f"made-up {level} codes collide"
    pts = [t.pt for t in _AE_LIST]
    llts = sorted({llt for t in _AE_LIST for llt, _ in t.llts} | set(pts))
    llts = set(llts) | {n for llt, pt, _ in _MH_CODING.values() for n in (llt, pt)}
    codes = [_code("LLT", n) for n in sorted(llts)]
    assert len(codes) == len(set(codes)), "made-up LLT/PT codes collide"
    socs = sorted({t.soc for t in _AE_LIST} | {soc for _, _, soc in _MH_CODING.values()})
    assert len({_code("SOC", n) for n in socs}) == len(socs), "made-up SOC codes collide"


_check_codes_unique()


@dataclass
class Segment:
    """One AE record: the event at one grade. Sites open a new record when the grade changes
    (CDASH convention), so a CRS that goes 1 -> 3 -> 1 is three records; that is what lets the
    DLT rules measure how long a grade lasted."""
    grade: int
    start: dt.date
    end: dt.date | None          # None = still ongoing (at death or data transfer)
    dlt: str | None = None       # investigator's AEDLT: "Y", "N", or None (outside the window)


@dataclass
class Episode:
    pt: str
    segments: list[Segment]
    rel: str = "1"               # AEREL code (cell therapy): 1 not related ... 5 definitely related
    rel_ld: str | None = None    # relationship to lymphodepletion / conditioning
    # Relationship to a study's other treatments, by AE form field (GLOCART: AERELOBI,
    # AERELGLO, AERELAX); a treatment not named here that was given before onset: not related.
    rels: dict[str, str] = field(default_factory=dict)
    scale: str = "CTCAE"         # CTCAE | ASTCT (CRS, ICANS) | GVHD (GVHD grade in AETOXGR)
    fatal: bool = False          # the last segment is grade 5 and ends on the death date
    llt_index: int = 0
    aesi: bool | None = None     # override the catalogue's AESI flag
    partial_start: bool = False  # site knew only the month of onset
    acn: str = "5"               # AEACN: single-dose cell therapy -> "not applicable"

    @property
    def term(self) -> AeTerm:
        return AE_TERMS[self.pt]

    @property
    def max_grade(self) -> int:
        return max(s.grade for s in self.segments)


def segments_from_daily(grades: np.ndarray, first_day: int, day0: dt.date, min_grade: int = 3,
                        from_day: int | None = None) -> list[list[Segment]]:
    """Episodes (lists of grade segments) where a daily grade series is >= min_grade.

    `grades[i]` is the grade on study day `first_day + i`. A segment ends on the day the grade
    changes (the next segment starts that day); an episode ends on the first day back below
    `min_grade`, or is ongoing (end None) if the series ends at or above it. Days before
    `from_day` are ignored (pre-existing abnormalities are medical history, not AEs)."""
    g = np.asarray(grades, dtype=np.int64).copy()
    if from_day is not None and from_day > first_day:
        g[: min(len(g), from_day - first_day)] = 0
    g[g < min_grade] = 0
    episodes: list[list[Segment]] = []
    if not g.any():
        return episodes
    change = np.flatnonzero(np.diff(g)) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [len(g)]))
    current: list[Segment] = []
    for s, e in zip(starts, ends):
        grade = int(g[s])
        if grade == 0:
            if current:
                episodes.append(current)
                current = []
            continue
        start = day0 + dt.timedelta(days=int(first_day + s))
        end = day0 + dt.timedelta(days=int(first_day + e)) if e < len(g) else None
        current.append(Segment(grade, start, end))
    if current:
        episodes.append(current)
    return episodes


def _serious(term: AeTerm, grade: int, fatal_seg: bool, rng: np.random.Generator) -> dict[str, str | None]:
    """Seriousness criteria consistent with the grade: grade 5 -> death, grade 4 ->
    life-threatening, grade 3 infections/CRS/ICANS/FN -> (prolonged) hospitalisation."""
    crit = {"AESDTH": "N", "AESLIFE": "N", "AESHOSP": "N", "AESDISAB": "N", "AESCONG": "N", "AESMIE": "N"}
    if fatal_seg:
        crit["AESDTH"] = "Y"
    # Expected lab cytopenias after lymphodepletion are reported as AEs but, by protocol
    # convention, not as SAEs unless fatal: grade 4 there is a number, not a crisis.
    lab_only = term.hlgt == _HEMINV
    if grade >= 4 and not lab_only:
        crit["AESLIFE"] = "Y"
    hosp_terms = term.aesi or term.pt in ("Febrile neutropenia", "Acute kidney injury", "Tumour lysis syndrome",
                                          "Atrial fibrillation", "Hypotension", "Hypoxia")
    if grade >= 3 and hosp_terms:
        crit["AESHOSP"] = "Y"
    elif grade == 2 and term.pt in ("Cytokine release syndrome", "Immune effector cell-associated neurotoxicity syndrome"):
        # Many sites report CRS/ICANS >= grade 2 as serious (prolonged hospitalisation).
        crit["AESHOSP"] = "Y" if rng.random() < 0.6 else "N"
    if grade >= 3 and not lab_only and crit["AESHOSP"] == "N" and crit["AESLIFE"] == "N" and rng.random() < 0.1:
        crit["AESMIE"] = "Y"
    if "Y" not in crit.values():
        return {"AESER": "N", **{k: None for k in crit}}
    return {"AESER": "Y", **crit}


FIRST_DOSE = "first_dose"   # Subject.extra key: AE relationship field -> first date of that treatment


def set_first_doses(subj: Subject, doses: dict[str, dt.date | None]) -> None:
    """Register when each study treatment was first given, by the AE form field that asks for
    the relationship to it (None: never given). add_ae_episode attributes no relationship to a
    treatment the subject had not yet received when the event started."""
    subj.extra[FIRST_DOSE] = dict(doses)


def first_recorded(rec: Recorder, subj: Subject, form: str, date_field: str) -> dt.date | None:
    """Earliest date in `date_field` of the subject's records of `form` written so far (the
    subject's records are the latest ones: subjects are generated one after another), so the
    relationship rule follows the dates actually given, schedule jitter included."""
    dates = []
    for r in reversed(rec.records.get(form, [])):
        if r["SUBJECT"] != subj.subject:
            break
        if r.get(date_field) and len(r[date_field]) == 10:      # full dates only
            dates.append(r[date_field])
    return from_iso(min(dates)) if dates else None


def relationships(rec: Recorder, subj: Subject, ep: Episode) -> dict[str, str | None]:
    """The AE form's relationship answers for an episode. The episode says which treatments
    caused it (rel, rel_ld, rels); an event that starts before a treatment's first dose is
    "Not related" to it (blank when the subject never had an optional one, e.g. agent X), and
    an already given treatment the episode does not name is "Not related"."""
    fields = rec.forms.form("AE").field_by_oid
    given = {"AEREL": ep.rel, "AERELLD": ep.rel_ld}
    names = [f for f in fields if f.startswith("AEREL")]
    out = {f: given[f] if f in given else ep.rels.get(f, "1") for f in names}
    onset = ep.segments[0].start
    for f, first in subj.extra.get(FIRST_DOSE, {}).items():
        if f not in out:
            continue
        if first is None or onset < first:
            out[f] = "1" if (fields[f].required or first is not None) else None
        elif out[f] is None:
            out[f] = "1"
    return out


def add_ae_episode(rec: Recorder, subj: Subject, ep: Episode, rng: np.random.Generator,
                   folder: str = "LOGS") -> list[dict]:
    """AE records for one episode, one per grade segment, kept consistent with the subject's
    fate: segments starting after the last date are not reported; a segment running past it is
    ongoing (no end date, outcome not recovered); a fatal episode ends on the death date with
    outcome fatal. Every record of the episode carries the same event id (AEGRPID), so the
    event (its worst grade, duration, seriousness over time) can be rebuilt from its records.

    Outcome agrees with the end date: a record without an end date is not recovered or
    recovering; a record closed by a grade change is recovered/resolved *at that grade* (the
    event goes on in the next record of the same AEGRPID); a closed last record is recovered
    (a few with sequelae); a fatal one is fatal, ending on the death date."""
    term = ep.term
    limit = subj.last_date
    segs = [s for s in ep.segments if s.start <= limit]
    out: list[dict] = []
    llt, verbatim = term.llts[ep.llt_index % len(term.llts)]
    coding = meddra_codes(term, llt)
    aesi = ep.aesi if ep.aesi is not None else term.aesi
    n_events = subj.extra.get("ae_events", 0)
    grpid = f"AE{n_events + 1:03d}"
    rels = relationships(rec, subj, ep)
    for i, seg in enumerate(segs):
        last = i == len(segs) - 1
        # A death after the data transfer is not yet known: the event is simply ongoing.
        fatal_seg = (ep.fatal and last and subj.death_date is not None and subj.death_date <= limit
                     and seg.start <= subj.death_date)
        end = seg.end
        if fatal_seg:
            end, outcome = subj.death_date, "5"
        elif end is not None and end > limit:
            end = None
        if not fatal_seg:
            if end is None:
                outcome = "2" if (seg.grade <= 2 and rng.random() < 0.3) else "3"
            elif not last:
                outcome = "1"
            else:
                outcome = "4" if (seg.grade >= 3 and rng.random() < 0.05) else "1"
        start_txt = iso(seg.start)
        if ep.partial_start and i == 0:
            start_txt = start_txt[:7]
        grade = str(seg.grade)
        values = {
            "AETERM": verbatim, "AEGRPID": grpid, "AESTDAT": start_txt, "AEENDAT": iso(end) if end else None,
            "AEONGO": "N" if end else "Y",
            "AETOXGR": None if ep.scale == "ASTCT" else grade,
            "AEASTCT": grade if ep.scale == "ASTCT" else None,
            **_serious(term, seg.grade, fatal_seg, rng),
            **rels, "AEACN": ep.acn, "AEOUT": outcome,
            "AEDLT": seg.dlt, "AESI": "Y" if aesi else "N", **coding,
        }
        r = rec.add("AE", subj, folder, values, date=seg.start)
        if r is not None:
            out.append(r)
            if fatal_seg:
                subj.extra["fatal_ae"] = True
    if out:
        subj.extra["ae_events"] = n_events + 1
    return out


RELATED_CODES = ("3", "4", "5")   # possibly, probably, definitely related


def dlt_rules_met(ep: Episode, day0: dt.date, dlt: Dlt, limit: dt.date) -> list[tuple[int, str]]:
    """(segment index, rule id) for every segment of the episode that meets a DLT rule.

    Conventions (the pipeline's re-derivation must use the same ones): a segment is in the
    window when its start is on Day 0..window_days; its duration is end - start in whole days
    (x 24 h), an ongoing segment lasting until `limit`; a rule's duration is met when the
    duration is at least `min_duration_hours`; related = AEREL possibly/probably/definitely;
    hematologic = blood/lymphatic SOC or haematology-investigations HLGT (`is_hematologic`)."""
    term = ep.term
    hits = []
    for i, seg in enumerate(ep.segments):
        day = (seg.start - day0).days
        if not 0 <= day <= dlt.window_days or seg.start > limit:
            continue
        end = seg.end if seg.end is not None else limit
        if ep.fatal and i == len(ep.segments) - 1:
            end = seg.end or limit
        hours = max(0, (min(end, limit) - seg.start).days) * 24
        for rule in dlt.rules:
            if rule.terms and ep.pt not in rule.terms:
                continue
            if ep.pt in rule.exclude_terms:
                continue
            if rule.category == "non-hematologic" and term.hematologic:
                continue
            if rule.category == "hematologic" and not term.hematologic:
                continue
            if rule.grade_scale == "ASTCT" and ep.scale != "ASTCT":
                continue
            if not rule.min_grade <= seg.grade <= rule.max_grade:
                continue
            if rule.related_required and ep.rel not in RELATED_CODES:
                continue
            if hours < rule.min_duration_hours:
                continue
            hits.append((i, rule.id))
    return hits


# =============================================================================================
# CRS and ICANS (ASTCT consensus grading)
# =============================================================================================


def daily_grades(runs: Sequence[tuple[int, int]], onset_day: int, first_day: int, n_days: int) -> np.ndarray:
    """Daily grade series (index 0 = `first_day`) from runs of (grade, days) starting at `onset_day`."""
    out = np.zeros(n_days, dtype=np.int64)
    d = onset_day - first_day
    for grade, days in runs:
        lo, hi = max(d, 0), min(d + days, n_days)
        if hi > lo:
            out[lo:hi] = grade
        d += days
    return out


def runs_to_segments(runs: Sequence[tuple[int, int]], onset: dt.date) -> list[Segment]:
    segs, d = [], onset
    for grade, days in runs:
        end = d + dt.timedelta(days=int(days))
        segs.append(Segment(int(grade), d, end))
        d = end
    return segs


def crs_runs(rng: np.random.Generator, max_grade: int, long_g3: bool = False,
             g4_days: tuple[int, int] = (1, 3), fatal: bool = False) -> list[tuple[int, int]]:
    """Grade course of one CRS episode: fever first (grade 1), worsening to the maximum grade
    (hypotension / hypoxia), then stepping down as tocilizumab/steroids act.

    Grade-3 time is kept away from the 72-h DLT boundary on purpose: <= 2 days when it
    resolves (not a DLT), >= 4 days when `long_g3` (a DLT), so the truth is never a matter of
    rounding. A fatal course ends with a 0-day grade-5 run on the day of death."""
    runs: list[tuple[int, int]] = [(1, int(rng.integers(1, 3)))]
    if max_grade >= 2:
        runs.append((2, int(rng.integers(1, 3))))
    if max_grade >= 3:
        runs.append((3, int(rng.integers(4, 7)) if long_g3 else int(rng.integers(1, 3))))
    if max_grade >= 4:
        runs.append((4, int(rng.integers(g4_days[0], g4_days[1] + 1))))
    if fatal:
        runs.append((5, 0))
        return runs
    if max_grade >= 3:
        runs.append((2, int(rng.integers(1, 3))))
    if max_grade >= 2:
        runs.append((1, int(rng.integers(1, 3))))
    else:
        runs[0] = (1, int(rng.integers(2, 5)))
    return runs


def icans_runs(rng: np.random.Generator, max_grade: int, fatal: bool = False) -> list[tuple[int, int]]:
    """ICANS course: usually shorter than CRS; high grades resolve over several days on steroids."""
    runs: list[tuple[int, int]] = []
    if max_grade == 1:
        return [(1, int(rng.integers(1, 4)))]
    runs.append((1, int(rng.integers(1, 2))))
    runs.append((2, int(rng.integers(1, 4))))
    if max_grade >= 3:
        runs.append((3, int(rng.integers(2, 5))))
    if max_grade >= 4:
        runs.append((4, int(rng.integers(1, 4))))
    if fatal:
        runs.append((5, 0))
        return runs
    if max_grade >= 3:
        runs.append((2, int(rng.integers(1, 3))))
    runs.append((1, int(rng.integers(1, 3))))
    return runs


def fatal_runs_to_segments(runs: Sequence[tuple[int, int]], onset: dt.date) -> tuple[list[Segment], dt.date]:
    """Segments for a fatal course and the death date (the day the grade-5 run starts)."""
    segs = runs_to_segments([r for r in runs if r[0] != 5], onset)
    death = segs[-1].end if segs else onset
    segs.append(Segment(5, death, death))
    return segs, death


# =============================================================================================
# Laboratory: units, reference ranges, latent daily curves
# =============================================================================================


@dataclass(frozen=True)
class LabTest:
    code: str
    cat: str
    si_unit: str
    conv_unit: str
    conv_factor: float            # conventional value = SI value * factor
    si_decimals: int
    conv_decimals: int
    si_range: dict[str, tuple[float | None, float]]     # by sex ("M", "F")
    conv_range: dict[str, tuple[float | None, float]]
    loq_si: float | None = None   # results below are reported as "<loq"


def _both(lo, hi):
    return {"M": (lo, hi), "F": (lo, hi)}


# SI ranges as a Chinese hospital laboratory reports them (WS/T 405 adult ranges), conventional
# ranges as a US hospital laboratory does. Sites with the same unit system share ranges.
LAB_TESTS: dict[str, LabTest] = {t.code: t for t in (
    LabTest("WBC", "HEM", "10^9/L", "10^3/uL", 1.0, 2, 2, _both(3.5, 9.5), _both(4.5, 11.0)),
    LabTest("NEUT", "HEM", "10^9/L", "10^3/uL", 1.0, 2, 2, _both(1.8, 6.3), _both(1.8, 7.7)),
    LabTest("LYM", "HEM", "10^9/L", "10^3/uL", 1.0, 2, 2, _both(1.1, 3.2), _both(1.0, 4.8)),
    LabTest("HGB", "HEM", "g/L", "g/dL", 0.1, 0, 1, {"M": (130, 175), "F": (115, 150)},
            {"M": (13.5, 17.5), "F": (12.0, 15.5)}),
    LabTest("PLAT", "HEM", "10^9/L", "10^3/uL", 1.0, 0, 0, _both(125, 350), _both(150, 400)),
    LabTest("ALT", "CHEM", "U/L", "U/L", 1.0, 0, 0, {"M": (9, 50), "F": (7, 40)}, _both(7, 56)),
    LabTest("AST", "CHEM", "U/L", "U/L", 1.0, 0, 0, {"M": (15, 40), "F": (13, 35)}, _both(10, 40)),
    LabTest("BILI", "CHEM", "umol/L", "mg/dL", 1 / 17.1, 1, 2, _both(3.4, 20.5), _both(0.1, 1.2)),
    LabTest("CREAT", "CHEM", "umol/L", "mg/dL", 1 / 88.4, 0, 2, {"M": (57, 111), "F": (41, 81)},
            {"M": (0.74, 1.35), "F": (0.59, 1.04)}),
    LabTest("ALB", "CHEM", "g/L", "g/dL", 0.1, 1, 1, _both(40, 55), _both(3.5, 5.0)),
    LabTest("LDH", "CHEM", "U/L", "U/L", 1.0, 0, 0, _both(120, 250), _both(140, 280)),
    LabTest("FIBRINO", "COAG", "g/L", "mg/dL", 100.0, 2, 0, _both(2.0, 4.0), _both(200, 400)),
    LabTest("CRP", "INFL", "mg/L", "mg/dL", 0.1, 1, 2, _both(None, 10), _both(None, 0.9), loq_si=5.0),
    LabTest("FERRITIN", "INFL", "ug/L", "ng/mL", 1.0, 0, 0, {"M": (30, 400), "F": (15, 150)},
            {"M": (24, 336), "F": (11, 307)}),
    LabTest("IL6", "INFL", "pg/mL", "pg/mL", 1.0, 1, 1, _both(None, 7.0), _both(None, 5.0), loq_si=1.5),
)}

LAB_PANELS: dict[str, tuple[str, ...]] = {}
for _t in LAB_TESTS.values():
    LAB_PANELS.setdefault(_t.cat, ())
    LAB_PANELS[_t.cat] = LAB_PANELS[_t.cat] + (_t.code,)


def uln_si(test: str, sex: str, lab_units: str) -> float:
    """Upper limit of normal in SI units for the site's laboratory (what CTCAE grades use)."""
    t = LAB_TESTS[test]
    if lab_units == "SI":
        return float(t.si_range[sex][1])
    return float(t.conv_range[sex][1]) / t.conv_factor


def lln_si(test: str, sex: str, lab_units: str) -> float:
    t = LAB_TESTS[test]
    lo = t.si_range[sex][0] if lab_units == "SI" else t.conv_range[sex][0]
    if lo is None:
        return 0.0
    return float(lo) if lab_units == "SI" else float(lo) / t.conv_factor


# CTCAE v5.0 lab thresholds used to grade the latent curves when they become AEs (SI units).
def grade_neutrophils(v: np.ndarray, lln: float) -> np.ndarray:
    return np.select([v < 0.5, v < 1.0, v < 1.5, v < lln], [4, 3, 2, 1], 0)


def grade_platelets(v: np.ndarray, lln: float) -> np.ndarray:
    return np.select([v < 25, v < 50, v < 75, v < lln], [4, 3, 2, 1], 0)


def grade_wbc(v: np.ndarray, lln: float) -> np.ndarray:
    return np.select([v < 1.0, v < 2.0, v < 3.0, v < lln], [4, 3, 2, 1], 0)


def grade_lymphocytes(v: np.ndarray, lln: float) -> np.ndarray:
    return np.select([v < 0.2, v < 0.5, v < 0.8, v < lln], [4, 3, 2, 1], 0)


def grade_hemoglobin(v: np.ndarray, lln: float) -> np.ndarray:
    return np.select([v < 80, v < 100, v < lln], [3, 2, 1], 0)


@dataclass
class LabCurves:
    """Latent daily values (SI units) for one subject; index 0 is study day `first_day`."""
    first_day: int
    values: dict[str, np.ndarray]

    def at(self, test: str, day: int) -> float:
        arr = self.values[test]
        i = min(max(day - self.first_day, 0), len(arr) - 1)
        return float(arr[i])

    @property
    def n_days(self) -> int:
        return len(next(iter(self.values.values())))

    def days(self) -> np.ndarray:
        return np.arange(self.first_day, self.first_day + self.n_days)


def _smooth(drive: np.ndarray, half_life: float, lag: int = 0) -> np.ndarray:
    """Exponentially decaying response to a daily input (a biomarker's rise and clearance)."""
    n = len(drive)
    kernel = np.exp(-math.log(2) / half_life * np.arange(n))
    out = np.convolve(drive, kernel)[:n]
    if lag:
        out = np.concatenate((np.zeros(lag), out[:-lag]))
    return out


def _log_path(days: np.ndarray, points: Sequence[tuple[float, float]]) -> np.ndarray:
    """Piecewise log-linear path through (day, value) points, flat outside them."""
    xs = [p[0] for p in points]
    ys = [math.log(max(p[1], 1e-6)) for p in points]
    return np.exp(np.interp(days, xs, ys))


@dataclass
class CytopeniaPlan:
    """Count recovery after lymphodepletion, in study days (Day 0 = cell infusion).

    `anc_recovery_day`/`plt_recovery_day`: when counts start to climb from the nadir; a
    prolonged cytopenia (a DLT) climbs only after Day 35+."""
    ld_day: int = -5
    anc_nadir: float = 0.1
    anc_nadir_day: int = 2
    anc_recovery_day: int = 12
    anc_recovery_len: int = 10
    anc_recovered: float = 2.5
    plt_nadir: float = 30.0
    plt_nadir_day: int = 8
    plt_recovery_day: int = 16
    plt_recovery_len: int = 14
    plt_recovered: float = 150.0
    hgb_drop: float = 0.82
    # Biphasic (late) cytopenia: counts partly recover, then fall again from `dip_day` and
    # stay down until the recovery day -- how prolonged cytopenia after CAR-T usually looks.
    anc_dip_day: int | None = None
    plt_dip_day: int | None = None


def draw_cytopenia_plan(rng: np.random.Generator, disease: str, base_anc: float, base_plt: float,
                        prolonged: str | None = None, marrow_recovery: bool = True) -> CytopeniaPlan:
    """Typical FC-lymphodepletion cytopenias: neutrophil nadir in the first days after
    infusion with recovery around Day 7-16, platelets lower later and slower.

    `prolonged`: "NEUT" or "PLT" for a grade-4 cytopenia lasting well over 28 days (a DLT),
    otherwise grade-4 time is kept under ~3 weeks. `marrow_recovery` False (leukaemia not in
    remission): counts recover only partially, to grade 2-3 levels, never grade 4."""
    p = CytopeniaPlan()
    p.anc_nadir = float(np.clip(math.exp(rng.normal(math.log(0.12), 0.7)), 0.02, 0.9))
    p.anc_nadir_day = int(rng.integers(1, 4))
    p.anc_recovery_day = int(rng.integers(6, 15))
    p.anc_recovery_len = int(rng.integers(4, 10))
    p.anc_recovered = float(np.clip(base_anc * rng.uniform(0.6, 1.0), 1.6, 6.0))
    p.plt_nadir = float(np.clip(math.exp(rng.normal(math.log(35), 0.5)), 9, 90))
    p.plt_nadir_day = int(rng.integers(6, 11))
    p.plt_recovery_day = int(rng.integers(p.plt_nadir_day + 2, 20))
    p.plt_recovery_len = int(rng.integers(7, 21))
    p.plt_recovered = float(np.clip(base_plt * rng.uniform(0.7, 1.05), 90, 350))
    p.hgb_drop = float(rng.uniform(0.75, 0.92))
    if disease == "B-ALL" and marrow_recovery:
        # Low screening counts were the leukaemia's doing: a marrow in remission regrows to
        # ordinary levels, whatever the baseline was.
        p.anc_recovered = float(np.clip(lognormal(rng, {"median": 2.6, "sigma": 0.35}), 1.2, 6.0))
        p.plt_recovered = float(np.clip(lognormal(rng, {"median": 170, "sigma": 0.3}), 80, 350))
        # Heavily treated marrow regrows platelets slowly: many Day-28 remissions are CRi.
        p.plt_recovery_len = int(rng.integers(10, 35))
    if disease == "B-ALL" and not marrow_recovery:
        p.anc_recovered = float(rng.uniform(0.6, 1.2))
        p.plt_recovered = float(rng.uniform(30, 70))
        p.anc_nadir = max(p.anc_nadir, 0.55)    # disease, not toxicity: kept out of grade 4
        p.plt_nadir = max(p.plt_nadir, 28.0)
    if prolonged == "NEUT":
        p.anc_dip_day = int(rng.integers(8, 15))
        p.anc_recovery_day = int(rng.integers(48, 60))
        p.anc_recovery_len = int(rng.integers(10, 20))
    elif prolonged == "PLT":
        p.plt_nadir = float(rng.uniform(32, 45))
        p.plt_dip_day = int(rng.integers(9, 15))
        p.plt_recovery_day = int(rng.integers(50, 62))
        p.plt_recovery_len = int(rng.integers(14, 28))
    return p


def shorten_cytopenia(p: CytopeniaPlan) -> CytopeniaPlan:
    """The same plan with quick count recovery (used when a draw would look like a DLT)."""
    p.anc_recovery_day = min(p.anc_recovery_day, 8)
    p.anc_recovery_len = min(p.anc_recovery_len, 5)
    p.plt_recovery_day = min(p.plt_recovery_day, p.plt_nadir_day + 3)
    p.plt_recovery_len = min(p.plt_recovery_len, 8)
    return p


@dataclass
class LabDrivers:
    """What moves the labs besides lymphodepletion: daily CRS/ICANS grades, HLH, organ
    toxicity episodes (daily multiples of ULN), tumour burden (relative, 1 = baseline)."""
    crs: np.ndarray
    hlh: np.ndarray | None = None
    alt_x_uln: np.ndarray | None = None      # > 0 where a transaminase AE sets the level
    creat_x_base: np.ndarray | None = None   # > 0 where an AKI episode sets the level
    burden: np.ndarray | None = None
    car_lym: np.ndarray | None = None        # CAR+ cells in blood, 10^9/L


def build_lab_curves(rng: np.random.Generator, subj: Subject, disease: str, first_day: int, n_days: int,
                     plan: CytopeniaPlan | None, drivers: LabDrivers, base: dict[str, float]) -> LabCurves:
    """Latent SI curves for every LAB_TESTS analyte.

    `base`: screening values (NEUT, PLT, HGB, LYM, LDH ...) drawn by the study (disease
    dependent); missing analytes get population defaults. Lymphodepletion (`plan`) drives the
    counts; CRS drives CRP/IL-6/ferritin/fibrinogen and a little ALT/creatinine/albumin."""
    days = np.arange(first_day, first_day + n_days)
    crs = drivers.crs.astype(float)
    sex, units = subj.sex, subj.site.lab_units
    v: dict[str, np.ndarray] = {}
    anc0, plt0, hgb0 = base["NEUT"], base["PLAT"], base["HGB"]
    lym0 = base.get("LYM", 0.9)
    if plan is None:
        anc = np.full(n_days, anc0)
        plt = np.full(n_days, plt0)
        hgb = np.full(n_days, hgb0)
        lym = np.full(n_days, lym0)
    else:
        ld = plan.ld_day
        anc_pts = [(ld, anc0), (plan.anc_nadir_day, plan.anc_nadir)]
        if plan.anc_dip_day is not None:
            dip = float(rng.uniform(0.05, 0.2))
            anc_pts += [(plan.anc_nadir_day + 3, 0.75), (plan.anc_dip_day - 1, 0.7), (plan.anc_dip_day + 2, dip),
                        (plan.anc_recovery_day, dip * 1.2)]
        else:
            anc_pts += [(plan.anc_recovery_day, plan.anc_nadir * 1.15)]
        anc = _log_path(days, anc_pts + [(plan.anc_recovery_day + plan.anc_recovery_len, plan.anc_recovered)])
        plt_pts = [(ld + 1, plt0), (plan.plt_nadir_day, plan.plt_nadir)]
        if plan.plt_dip_day is not None:
            dip = float(rng.uniform(6, 15))
            plt_pts += [(plan.plt_dip_day - 1, plan.plt_nadir), (plan.plt_dip_day + 3, dip),
                        (plan.plt_recovery_day, dip * 1.3)]
        else:
            plt_pts += [(plan.plt_recovery_day, plan.plt_nadir * 1.1)]
        plt = _log_path(days, plt_pts + [(plan.plt_recovery_day + plan.plt_recovery_len, plan.plt_recovered)])
        hgb = _log_path(days, [(ld, hgb0), (12, hgb0 * plan.hgb_drop), (60, hgb0 * 0.97)])
        lym = _log_path(days, [(ld, lym0), (-1, rng.uniform(0.04, 0.15)), (14, rng.uniform(0.1, 0.3)),
                               (90, rng.uniform(0.4, 1.0)), (240, rng.uniform(0.7, 1.4))])
    if drivers.car_lym is not None:
        lym = lym + drivers.car_lym
    # Day-to-day biological wobble, autocorrelated so consecutive days look alike.
    wob = np.exp(_smooth(rng.normal(0, 0.05, n_days), 2.0) * 0.6)
    v["NEUT"] = anc * wob
    v["PLAT"] = np.maximum(plt * wob, 5.0)
    v["HGB"] = np.maximum(hgb, 70.0)        # transfused below ~70 g/L
    v["LYM"] = np.maximum(lym, 0.01)
    mono = 0.08 + 0.1 * np.minimum(v["NEUT"] / 2.5, 1.5)
    v["WBC"] = v["NEUT"] + v["LYM"] + mono
    crs_s = _smooth(crs, 1.2, lag=1) / 1.6          # ~grade, smoothed and lagged one day
    # Inflammation markers
    crp0 = base.get("CRP", lognormal(rng, {"median": 6.0, "sigma": 0.8}))
    crp_k = lognormal(rng, {"median": 35.0, "sigma": 0.35})
    v["CRP"] = crp0 + crp_k * _smooth(crs ** 1.4, 1.6, lag=1)
    il6_0 = base.get("IL6", lognormal(rng, {"median": 4.0, "sigma": 0.6}))
    il6_drive = np.where(crs > 0, 20.0 * 3.2 ** crs, 0.0)
    v["IL6"] = il6_0 + lognormal(rng, {"median": 1.0, "sigma": 0.4}) * _smooth(il6_drive, 0.8)
    fer0 = base.get("FERRITIN", lognormal(rng, {"median": 450.0, "sigma": 0.7}))
    fer = fer0 * (1 + 0.5 * _smooth(crs, 5.0, lag=2))
    if drivers.hlh is not None:
        fer = fer * (1 + 12 * _smooth(drivers.hlh.astype(float), 6.0))
    v["FERRITIN"] = fer
    fib0 = base.get("FIBRINO", float(np.clip(rng.normal(3.2, 0.5), 2.1, 4.6)))
    fib = fib0 * (1 + 0.22 * np.minimum(crs_s, 2.0))
    severe = _smooth((crs >= 3).astype(float), 2.0, lag=1)
    fib = fib * np.clip(1 - 0.35 * severe, 0.3, 1)
    if drivers.hlh is not None:
        fib = fib * np.clip(1 - 0.3 * _smooth(drivers.hlh.astype(float), 3.0), 0.25, 1)
    v["FIBRINO"] = fib
    # Chemistry
    alt_uln, ast_uln = uln_si("ALT", sex, units), uln_si("AST", sex, units)
    alt0 = base.get("ALT", float(np.clip(lognormal(rng, {"median": 0.45 * alt_uln, "sigma": 0.35}),
                                         0.2 * alt_uln, 0.9 * alt_uln)))
    ast0 = base.get("AST", float(np.clip(alt0 * rng.uniform(0.8, 1.3), 0.3 * ast_uln, 0.95 * ast_uln)))
    bump = 1 + 0.12 * crs_s
    alt, ast = alt0 * bump, ast0 * bump
    if drivers.alt_x_uln is not None:
        on = drivers.alt_x_uln > 0
        alt = np.where(on, drivers.alt_x_uln * alt_uln, alt)
        ast = np.where(on, drivers.alt_x_uln * ast_uln * rng.uniform(0.7, 0.95), ast)
    v["ALT"], v["AST"] = alt, ast
    bil0 = base.get("BILI", float(np.clip(rng.normal(9.0, 3.0), 4.0, 17.0)))
    v["BILI"] = bil0 * (1 + 0.25 * severe)
    cr_uln = uln_si("CREAT", sex, units)
    cr0 = base.get("CREAT", float(np.clip(lognormal(rng, {"median": 0.68 * cr_uln, "sigma": 0.15}),
                                          0.45 * cr_uln, 0.95 * cr_uln)))
    cr = cr0 * (1 + 0.06 * crs_s)
    if drivers.creat_x_base is not None:
        cr = np.where(drivers.creat_x_base > 0, cr0 * drivers.creat_x_base, cr)
    v["CREAT"] = cr
    alb0 = base.get("ALB", float(np.clip(rng.normal(37.5, 3.5), 28, 46)))
    v["ALB"] = np.maximum(alb0 - 2.8 * _smooth(crs, 3.0, lag=1) / 2.2, 21.0)
    ldh0 = base.get("LDH", 220.0)
    burden = drivers.burden if drivers.burden is not None else np.ones(n_days)
    normal_ldh = min(ldh0, 190.0)
    v["LDH"] = (normal_ldh + max(ldh0 - normal_ldh, 0.0) * burden) * (1 + 0.1 * crs_s)
    return LabCurves(first_day, v)


def _fmt(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}" if decimals > 0 else str(round(value))


def lab_result(test: str, si_value: float, units: str, sex: str, rng: np.random.Generator,
               noise: float = 0.05) -> dict[str, Any]:
    """LB fields for one result in the site's units: measurement noise, the lab's rounding,
    '<LoQ' text under the quantitation limit, the lab's own reference range."""
    t = LAB_TESTS[test]
    val = si_value * math.exp(noise * rng.standard_normal())
    if units == "SI":
        unit, dec, rng_lohi, factor = t.si_unit, t.si_decimals, t.si_range[sex], 1.0
    else:
        unit, dec, rng_lohi, factor = t.conv_unit, t.conv_decimals, t.conv_range[sex], t.conv_factor
    lo, hi = rng_lohi
    if t.loq_si is not None and val < t.loq_si:
        text = f"<{t.loq_si * factor:g}"
    else:
        shown = val * factor
        text = _fmt(shown, dec)
        if float(text) <= 0:
            text = _fmt(10 ** -max(dec, 1), max(dec, 1)) if dec else "1"
    return {"LBORRES": text, "LBORRESU": unit,
            "LBORNRLO": None if lo is None else _fmt(lo, dec), "LBORNRHI": _fmt(hi, dec)}


def add_lab_panels(rec: Recorder, subj: Subject, folder: str, date: dt.date, day: int,
                   panels: Iterable[str], curves: LabCurves, rng: np.random.Generator,
                   folderseq: int = 1, time: str | None = None, p_not_done: float = 0.01) -> list[dict]:
    """Local-lab results for the given panels (LBCAT codes) on one sampling occasion."""
    if date > subj.last_date:
        return []
    out = []
    tim = time or clock(rng, "06:30", "10:30")
    d = iso(date)
    units, sex = subj.site.lab_units, subj.sex
    for cat in panels:
        # A haemolysed or clotted tube takes out the whole panel, as it does in real life.
        not_done = rng.random() < p_not_done
        for test in LAB_PANELS[cat]:
            values = {"LBDAT": d, "LBTIM": tim, "LBCAT": cat, "LBTESTCD": test}
            if not_done:
                values.update({"LBORRES": None, "LBNDRSN": "Sample haemolysed" if cat != "COAG" else "Sample clotted"})
            else:
                noise = 0.12 if cat == "INFL" else 0.04
                values.update(lab_result(test, curves.at(test, day), units, sex, rng, noise))
            r = rec.add("LB", subj, folder, values, date=date, folderseq=folderseq)
            if r is not None:
                out.append(r)
    return out


# =============================================================================================
# Vital signs and ECG
# =============================================================================================


def add_vitals(rec: Recorder, subj: Subject, folder: str, date: dt.date, rng: np.random.Generator,
               crs_grade: int = 0, tpt: str | None = None, time: str | None = None,
               weight: bool = False, height: bool = False, folderseq: int = 1) -> dict | None:
    """Vital signs consistent with the day's CRS grade: fever from grade 1, hypotension from
    grade 2, low saturation from grade 2 (oxygen), tachycardia with fever."""
    temp = rng.normal(36.7, 0.3) if crs_grade == 0 else rng.uniform(38.1, 39.0 + 0.3 * crs_grade)
    sys_bp = rng.normal(124, 13) if crs_grade < 2 else rng.uniform(82, 98)
    dia_bp = min(sys_bp - 25, rng.normal(76, 8) if crs_grade < 2 else rng.uniform(45, 60))
    pulse = rng.normal(80, 10) + 9 * max(temp - 37.0, 0)
    spo2 = rng.integers(95, 100) if crs_grade < 2 else rng.integers(89, 95)
    resp = rng.integers(14, 20) if crs_grade < 2 else rng.integers(20, 28)
    sys_bp, dia_bp = float(np.clip(sys_bp, 75, 190)), float(np.clip(dia_bp, 40, 110))
    pulse = float(np.clip(pulse, 48, 150))
    values = {"VSDAT": iso(date), "VSTIM": time or clock(rng, "07:30", "11:30"), "VSTPT": tpt,
              "SYSBP": round(sys_bp), "DIABP": round(dia_bp), "PULSE": round(pulse),
              "TEMP": round(float(temp), 1), "RESP": int(resp), "SPO2": int(spo2),
              "WEIGHT": round(subj.weight_kg + float(rng.normal(0, 0.4)), 1) if weight else None,
              "HEIGHT": subj.height_cm if height else None}
    return rec.add("VS", subj, folder, values, date=date, folderseq=folderseq)


def add_ecg(rec: Recorder, subj: Subject, folder: str, date: dt.date, rng: np.random.Generator,
            crs_grade: int = 0, tpt: str | None = None, folderseq: int = 1) -> dict | None:
    hr = float(np.clip(rng.normal(78, 10) + (18 if crs_grade >= 1 else 0), 48, 150))
    qtcf = float(np.clip(rng.normal(412 if subj.sex == "M" else 422, 15), 360, 500))
    intp = pick(rng, {"1": 0.82, "2": 0.16, "3": 0.02}) if crs_grade < 2 else pick(rng, {"1": 0.5, "2": 0.45, "3": 0.05})
    values = {"EGDAT": iso(date), "EGTPT": tpt, "EGHR": round(hr), "QTCF": round(qtcf), "EGINTP": intp}
    return rec.add("EG", subj, folder, values, date=date, folderseq=folderseq)


# =============================================================================================
# Cellular kinetics
# =============================================================================================


@dataclass(frozen=True)
class CkParams:
    """CAR+ cell kinetics in blood: log-linear expansion from a low level just after infusion to
    Cmax at Tmax, then a bi-exponential contraction (fast effector die-off, slow persistence).
    qPCR in transgene copies/ug gDNA; flow = qPCR x `flow_per_copy` (CAR+ cells/uL)."""
    cmax: float
    tmax: float
    start_level: float
    alpha_half: float
    beta_half: float
    alpha_frac: float
    flow_per_copy: float


def draw_ck_params(rng: np.random.Generator, median_cmax: float, sigma: float = 1.0, z: float | None = None,
                   tmax_median: float = 10.0, alpha_half: float = 3.5, beta_half: float = 25.0,
                   alpha_frac: float = 0.93) -> CkParams:
    """`z`: the subject's expansion propensity (standard normal) shared with the other
    outcomes it drives (CRS, response), so exposure and effects correlate as they do clinically."""
    zz = float(rng.standard_normal()) if z is None else z
    cmax = median_cmax * math.exp(sigma * zz)
    tmax = float(np.clip(tmax_median * math.exp(rng.normal(0, 0.3)), 4.0, 24.0))
    return CkParams(cmax=cmax, tmax=tmax, start_level=float(np.clip(cmax * 10 ** -rng.uniform(1.8, 2.6), 1, None)),
                    alpha_half=float(alpha_half * math.exp(rng.normal(0, 0.25))),
                    beta_half=float(beta_half * math.exp(rng.normal(0, 0.35))),
                    alpha_frac=float(np.clip(alpha_frac + rng.normal(0, 0.03), 0.8, 0.99)),
                    flow_per_copy=float(1e-3 * math.exp(rng.normal(0, 0.4))))


def ck_level(p: CkParams, day: float, method: str = "QPCR") -> float:
    """True level at `day` after infusion (0 before infusion: the product is not in blood)."""
    if day <= 0:
        return 0.0
    if day < p.tmax:
        frac = (day - 0.5) / (p.tmax - 0.5) if day > 0.5 else 0.0
        q = math.exp(math.log(p.start_level) + frac * (math.log(p.cmax) - math.log(p.start_level)))
    else:
        t = day - p.tmax
        q = p.cmax * (p.alpha_frac * math.exp(-math.log(2) * t / p.alpha_half)
                      + (1 - p.alpha_frac) * math.exp(-math.log(2) * t / p.beta_half))
    return q if method == "QPCR" else q * p.flow_per_copy


def ck_curve(p: CkParams, days: np.ndarray, method: str = "QPCR") -> np.ndarray:
    """`ck_level` over an array of days (for daily latent series such as CAR+ lymphocytes)."""
    d = np.asarray(days, dtype=float)
    frac = np.clip((d - 0.5) / (p.tmax - 0.5), 0.0, 1.0)
    rise = np.exp(math.log(p.start_level) + frac * (math.log(p.cmax) - math.log(p.start_level)))
    t = np.maximum(d - p.tmax, 0.0)
    fall = p.cmax * (p.alpha_frac * np.exp(-math.log(2) * t / p.alpha_half)
                     + (1 - p.alpha_frac) * np.exp(-math.log(2) * t / p.beta_half))
    q = np.where(d <= 0, 0.0, np.where(d < p.tmax, rise, fall))
    return q if method == "QPCR" else q * p.flow_per_copy


@dataclass(frozen=True)
class CkResult:
    text: str             # as reported: number or "<LLOQ"
    value: float | None   # numeric result, None when BLQ
    blq: bool
    lloq: float


CK_LLOQ = {"QPCR": 50.0, "FLOW": 0.5}          # copies/ug gDNA; CAR+ cells/uL
CK_UNITS = {"QPCR": "copies/ug gDNA", "FLOW": "cells/uL"}


def _sig(x: float, digits: int = 3) -> float:
    if x <= 0:
        return 0.0
    return round(x, -math.floor(math.log10(x)) + digits - 1)


def ck_result(rng: np.random.Generator, p: CkParams, day: float, method: str,
              assay_cv: float = 0.25) -> CkResult:
    lloq = CK_LLOQ[method]
    true = ck_level(p, day, method)
    if true <= 0:
        return CkResult("<LLOQ", None, True, lloq)
    val = true * math.exp(assay_cv * rng.standard_normal())
    if val < lloq:
        return CkResult("<LLOQ", None, True, lloq)
    shown = _sig(val, 3)
    text = f"{shown:.0f}" if method == "QPCR" else (f"{shown:.2f}" if shown < 10 else f"{shown:.1f}")
    return CkResult(text, float(text), False, lloq)


# =============================================================================================
# Tumour lesions (B-NHL, Lugano 2014 / LYRIC 2016)
# =============================================================================================

NODAL_SITES = ("CERV", "AXIL", "MEDI", "HILA", "ABDO", "PELV", "INGU")
EXTRANODAL_SITES = ("SPLE", "LIVE", "LUNG", "BONE", "OTHX")


@dataclass(frozen=True)
class Lesion:
    lid: str          # T01.., NT01.., NEW01..
    cat: str          # T, NT, NEW
    loc: str          # TLLOC code
    nodal: bool
    ldi: float        # baseline LDi, mm (targets)
    sdi: float


@dataclass(frozen=True)
class LesionReading:
    lesion: Lesion
    ldi: float | None
    sdi: float | None
    status: str | None     # non-target / new lesion status: PRES, ABS, UNEQ
    deauville: int | None

    @property
    def ppd(self) -> float:
        return (self.ldi or 0.0) * (self.sdi or 0.0)


def draw_lesions(rng: np.random.Generator, n_target: int, n_nontarget: int, bulky: bool = False) -> list[Lesion]:
    """Baseline lesions as a radiologist selects them: up to 6 measurable targets (nodes with
    LDi > 15 mm, extranodal > 10 mm), mostly nodal, the rest followed as non-targets."""
    out = []
    sites = list(NODAL_SITES)
    for i in range(n_target):
        nodal = i == 0 or rng.random() < 0.75
        loc = sites[int(rng.integers(len(sites)))] if nodal else EXTRANODAL_SITES[int(rng.integers(len(EXTRANODAL_SITES)))]
        ldi = float(np.clip(lognormal(rng, {"median": 32.0, "sigma": 0.45}), 16 if nodal else 11, 140))
        if bulky and i == 0:
            ldi = float(rng.uniform(76, 130))
        sdi = round(ldi * rng.uniform(0.5, 0.9), 0)
        out.append(Lesion(f"T{i + 1:02d}", "T", loc, nodal, round(ldi, 0), max(sdi, 8.0)))
    for j in range(n_nontarget):
        nodal = rng.random() < 0.6
        loc = sites[int(rng.integers(len(sites)))] if nodal else EXTRANODAL_SITES[int(rng.integers(len(EXTRANODAL_SITES)))]
        out.append(Lesion(f"NT{j + 1:02d}", "NT", loc, nodal, 0.0, 0.0))
    return out


def spd(readings: Iterable[LesionReading]) -> float:
    """Sum of the products of the perpendicular diameters of the target lesions."""
    return float(sum(r.ppd for r in readings if r.lesion.cat == "T"))


def _scaled(ldi: float, sdi: float, area_ratio: float) -> tuple[float, float]:
    f = math.sqrt(max(area_ratio, 0.0))
    return round(ldi * f, 0), round(sdi * f, 0)


def measure_lesions(rng: np.random.Generator, lesions: Sequence[Lesion], kind: str,
                    nadir: dict[str, tuple[float, float]], ratio: float | None = None,
                    new_lesion: bool = False, n_new: int = 0) -> list[LesionReading]:
    """Readings of all lesions at one assessment, consistent with the overall response `kind`.

    `nadir`: smallest (LDi, SDi) so far per target lesion id (baseline at first assessment).
    kind:
      CR     nodes regress to LDi <= 15 mm, extranodal lesions disappear, non-targets absent,
             Deauville 1-3;
      PR     target SPD falls to `ratio` (<= 0.5) of baseline, never growing from nadir;
      SD     SPD `ratio` of baseline in (0.5, 1.25), no lesion >= 50 % over its nadir;
      STABLE continued response: each lesion at or a little below its nadir;
      PD     one or two targets grow >= 50 % over their nadir PPD to LDi > 15 mm (plus a new
             lesion when `new_lesion`); non-targets may progress unequivocally;
      FLARE  (LYRIC IR1) every target grows, SPD >= 50 % over baseline, no new lesion;
      NEWONLY (LYRIC IR2) targets about stable, new lesion(s) appear.
    """
    readings: list[LesionReading] = []
    targets = [l for l in lesions if l.cat == "T"]
    base_spd = sum(l.ldi * l.sdi for l in targets) or 1.0
    deauv = {"CR": int(rng.integers(1, 4)), "PR": 4, "SD": int(rng.choice([4, 5])),
             "STABLE": None, "PD": 5, "FLARE": 5, "NEWONLY": 5}[kind]
    sizes: dict[str, tuple[float, float]] = {}
    if kind == "CR":
        for l in targets:
            if l.nodal:
                ldi = float(rng.integers(6, 16))
                sizes[l.lid] = (ldi, float(min(ldi, rng.integers(4, 11))))
            else:
                sizes[l.lid] = (0.0, 0.0)
    elif kind in ("PR", "SD", "FLARE"):
        r = ratio if ratio is not None else {"PR": 0.35, "SD": 0.85, "FLARE": 1.7}[kind]
        raw = np.array([r * math.exp(rng.normal(0, 0.12)) for _ in targets])
        areas = np.array([l.ldi * l.sdi for l in targets])
        raw *= r * base_spd / float((raw * areas).sum())
        for l, a in zip(targets, raw):
            nl, ns = nadir.get(l.lid, (l.ldi, l.sdi))
            ldi, sdi = _scaled(l.ldi, l.sdi, float(a))
            if kind != "FLARE":
                # Response is judged against baseline, progression against the nadir: never
                # let one lesion grow 50 % over its own nadir while calling the whole PR/SD.
                cap = 1.3 * nl * ns
                if ldi * sdi > cap and nl * ns > 0:
                    ldi, sdi = _scaled(nl, ns, 1.3)
            sizes[l.lid] = (ldi, max(sdi, 0.0))
        if kind == "PR":
            tot = sum(a * b for a, b in sizes.values())
            if tot > 0.5 * base_spd:
                f = 0.48 * base_spd / tot
                sizes = {k: _scaled(a, b, f) for k, (a, b) in sizes.items()}
    elif kind == "STABLE":
        for l in targets:
            nl, ns = nadir.get(l.lid, (l.ldi, l.sdi))
            f = float(rng.uniform(0.85, 1.0))
            sizes[l.lid] = _scaled(nl, ns, f)
    elif kind == "PD":
        n_grow = min(len(targets), int(rng.integers(1, 3)))
        grow = {int(i) for i in rng.choice(len(targets), size=n_grow, replace=False)}
        for idx, l in enumerate(targets):
            nl, ns = nadir.get(l.lid, (l.ldi, l.sdi))
            if idx in grow:
                ldi = max(nl * rng.uniform(1.35, 1.7), rng.uniform(18, 30), nl + 10)
                sdi = max(ns * rng.uniform(1.35, 1.7), ldi * rng.uniform(0.55, 0.85))
                if nl * ns > 0:
                    sdi = max(sdi, 1.6 * nl * ns / ldi)
                sizes[l.lid] = (round(ldi, 0), round(min(sdi, ldi), 0))
            else:
                sizes[l.lid] = _scaled(nl, ns, float(rng.uniform(0.95, 1.15)))
    elif kind == "NEWONLY":
        for l in targets:
            nl, ns = nadir.get(l.lid, (l.ldi, l.sdi))
            sizes[l.lid] = _scaled(nl, ns, float(rng.uniform(0.95, 1.2)))
    else:
        raise ValueError(f"unknown lesion course {kind!r}")
    for l in lesions:
        if l.cat == "T":
            ldi, sdi = sizes[l.lid]
            d = deauv
            if kind == "STABLE":
                d = None
            elif kind == "CR" and ldi == 0:
                d = 1
            readings.append(LesionReading(l, ldi, sdi, None, d))
        else:
            if kind == "CR":
                st = "ABS"
            elif kind == "PD" and rng.random() < 0.3:
                st = "UNEQ"
            else:
                st = "PRES"
            readings.append(LesionReading(l, None, None, st, None))
    if new_lesion or kind == "NEWONLY":
        for k in range(max(1, n_new)):
            nodal = rng.random() < 0.6
            loc = NODAL_SITES[int(rng.integers(len(NODAL_SITES)))] if nodal else EXTRANODAL_SITES[int(rng.integers(len(EXTRANODAL_SITES)))]
            ldi = float(rng.integers(16, 36))
            les = Lesion(f"NEW{k + 1:02d}", "NEW", loc, nodal, ldi, round(ldi * 0.7))
            readings.append(LesionReading(les, ldi, round(ldi * float(rng.uniform(0.5, 0.85)), 0), "PRES", 5))
    return readings


# =============================================================================================
# Follow-up, death, disposition
# =============================================================================================


def add_survival_contact(rec: Recorder, subj: Subject, folder: str, date: dt.date, status: str = "1",
                         folderseq: int = 1) -> dict | None:
    """SURV record: status 1 alive (last known alive = contact date), 2 dead (dated the day of
    death: the contact that learned of it is not dated later than the death), 3 lost. A new
    anti-cancer therapy learned of at a contact goes on the subsequent-therapy log
    (`add_subsequent_therapy`), not on the contact."""
    values = {"SVDAT": iso(date), "SURVSTAT": status,
              "LKADAT": iso(date) if status == "1" else None}
    return rec.add("SURV", subj, folder, values, date=date, folderseq=folderseq)


# Therapy type (library codelist PRTYPE) of each subsequent therapy the simulators give.
SUBSEQUENT_THERAPY_TYPES = {
    "R-GemOx": "1", "Polatuzumab-BR": "1", "Polatuzumab vedotin + bendamustine + rituximab": "1",
    "FLAG-IDA": "1", "Palliative radiotherapy": "2", "Allogeneic SCT": "4",
    "Allogeneic haematopoietic stem-cell transplant": "4", "Glofitamab": "7", "Epcoritamab": "7",
    "Blinatumomab": "7", "Loncastuximab tesirine": "6", "Inotuzumab ozogamicin": "6",
    "Tafasitamab + lenalidomide": "6",
}


def add_subsequent_therapy(rec: Recorder, subj: Subject, start: dt.date, name: str,
                           rng: np.random.Generator, folder: str = "LOGS") -> dict | None:
    """SUBTX log record: a new anti-cancer therapy started after the study treatment (any time,
    not only at a survival contact). Started on or after the death date or after the subject's
    last date, it is not recorded. Drug therapy runs 6-24 weeks, radiotherapy 1-3 weeks, a
    transplant is one day; an end after the subject's last date is ongoing."""
    if start > subj.last_date or (subj.death_date is not None and start >= subj.death_date):
        return None
    kind = SUBSEQUENT_THERAPY_TYPES[name]
    if kind in ("3", "4"):
        end = start
    elif kind == "2":
        end = add_days(start, int(rng.integers(7, 22)))
    else:
        end = add_days(start, int(rng.integers(42, 169)))
    ongoing = end > subj.last_date
    return rec.add("SUBTX", subj, folder, {
        "STXTYPE": kind, "STXTRT": name, "STXSTDAT": iso(start),
        "STXENDAT": None if ongoing else iso(end), "STXONGO": "Y" if ongoing else "N"}, date=start)


def add_death(rec: Recorder, subj: Subject, cause: str, cause_text: str | None = None,
              folder: str = "EOS", rng: np.random.Generator | None = None,
              fatal_pt: str | None = None) -> dict | None:
    """DTH record on the subject's death date; DTHCAUS: 1 disease progression, 2 AE, 3 other, 4 unknown.

    A death due to an AE has its grade-5 AE (AEOUT fatal, AESDTH yes, ending on the death
    date): when no fatal AE episode was written for the subject (a sudden death such as a
    cardiac arrest in follow-up), one is written here for `fatal_pt` (MedDRA PT; "Death" if
    not known). Call after the subject's AEs. Its draws come from a stream of its own so the
    subject's other records do not change."""
    autopsy = "N"
    if rng is not None:
        autopsy = pick(rng, {"N": 0.85, "Y": 0.05, "U": 0.10})
    r = rec.add("DTH", subj, folder, {"DTHDAT": iso(subj.death_date), "DTHCAUS": cause,
                                      "DTHCAUSO": cause_text, "AUTOPSY": autopsy}, date=subj.death_date)
    if r is not None and cause == "2" and not subj.extra.get("fatal_ae"):
        pt = fatal_pt if fatal_pt in AE_TERMS else "Death"
        ep = Episode(pt, [Segment(5, subj.death_date, subj.death_date)], fatal=True)
        own = np.random.default_rng([zlib.crc32(subj.subject.encode("utf-8")), 12007])
        add_ae_episode(rec, subj, ep, own)
    return r


def add_disposition(rec: Recorder, subj: Subject, date: dt.date, code: str, term: str | None = None,
                    folder: str = "EOS") -> dict | None:
    """End of study (DSDECOD codes of the common library: 1 completed, 2 death, 3 lost to
    follow-up, 4 withdrawal by subject, 5 physician decision, 6 PD, 7 AE, 8 screen failure)."""
    return rec.add("DS", subj, folder, {"DSSTDAT": iso(date), "DSDECOD": code, "DSTERM": term}, date=date)
