"""Validate SDTM (this pipeline's or any folder of XPT/parquet) and write the conformance reports.

Findings come from the metadata-built schemas (`schemas.py`) and the cross-dataset rules
(`rules.py`). A reviewed waiver file (`mappings/<STUDY>/waivers.yaml`) can waive a known
finding; waived findings stay in the reports, marked, with the reason and who approved it.

A folder is read by `load_sdtm_folder` (`load.py`: parquet first, the XPT beside it checked);
`validate` first brings any frames to the data contract the checks assume (`load.normalise`).
"""
from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clinpipe.outputs import staged_layer
from clinpipe.paths import manifest_transfer, mappings_dir
from clinpipe.reports import arrow_table, write_report, write_table
from clinpipe.yamlio import load_yaml, validation_error
from edc.export import generator_version
from sdtm import metadata
from sdtm.validate.catalogue import rule_catalogue
from sdtm.validate.findings import COLUMNS, SEVERITIES, findings_frame
from sdtm.validate.load import SdtmFolder, load_sdtm_folder, normalise  # noqa: F401  (load_sdtm_folder: imported from here)


class Waiver(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    rule: str
    dataset: str | None = None
    usubjid: str | None = None
    variable: str | None = None
    reason: str = Field(min_length=10)
    approved_by: str = Field(min_length=2)
    approved_on: dt.date


class WaiverFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    waivers: list[Waiver] = []


def load_waivers(study: str, root: Path | None = None) -> list[Waiver]:
    path = (root or mappings_dir()) / study / "waivers.yaml"
    if not path.is_file():
        return []
    loaded = load_yaml(path)
    try:
        return WaiverFile.model_validate(loaded.data or {}).waivers
    except ValidationError as exc:
        raise validation_error(loaded, exc) from None


def apply_waivers(findings: pd.DataFrame, waivers: list[Waiver]) -> pd.DataFrame:
    """Mark findings matched by a waiver (WAIVED = Y, with its reason and approver)."""
    out = findings.assign(WAIVED="", WAIVER="")
    for w in waivers:
        hit = out["RULE"] == w.rule
        for col, value in (("DATASET", w.dataset), ("USUBJID", w.usubjid), ("VARIABLE", w.variable)):
            if value is not None:
                hit &= out[col] == value
        out.loc[hit, "WAIVED"] = "Y"
        out.loc[hit, "WAIVER"] = f"{w.reason} (approved by {w.approved_by}, {w.approved_on})"
    return out


@dataclass
class Validation:
    study: str
    findings: pd.DataFrame          # COLUMNS + WAIVED, WAIVER
    seconds: float = 0.0            # how long the checks took
    finished: str = ""              # when they finished (UTC, ISO 8601)

    def open(self, severity: str = "ERROR") -> pd.DataFrame:
        """Findings of a severity that are not waived (what blocks downstream on ERROR)."""
        f = self.findings
        return f[(f["SEVERITY"] == severity) & (f["WAIVED"] != "Y")]

    def summary(self) -> pd.DataFrame:
        f = self.findings
        if f.empty:
            return pd.DataFrame(columns=["RULE", "SEVERITY", "DATASET", "COUNT", "WAIVED"])
        return (f.assign(W=(f["WAIVED"] == "Y").astype(int))
                .groupby(["RULE", "SEVERITY", "DATASET"], as_index=False)
                .agg(COUNT=("RULE", "size"), WAIVED=("W", "sum"))
                .sort_values(["SEVERITY", "RULE", "DATASET"], kind="stable").reset_index(drop=True))

    def issues(self) -> pd.DataFrame:
        """One row per issue: rule, severity, dataset, variable, message and distinct value,
        with its number of findings (COUNT), of subjects (SUBJECTS), of waived findings and a
        few examples (USUBJID/SEQ, the first in subject and SEQ order). Most severe first,
        then the most frequent. Vectorised: group ids, then counts with numpy."""
        return issue_summary(self.findings)


ISSUE_KEYS = ["RULE", "SEVERITY", "DATASET", "VARIABLE", "MESSAGE", "VALUE"]
ISSUE_COLUMNS = [*ISSUE_KEYS, "COUNT", "SUBJECTS", "WAIVED", "EXAMPLES"]
EXAMPLES = 3
DETAIL_ROWS = 50   # detail records per rule (and severity) in each dataset, in the xlsx and html
ISSUE_ROWS = 1_000  # issues in the xlsx and html (distinct values can run to one per record)


def issue_summary(findings: pd.DataFrame) -> pd.DataFrame:
    f = findings
    if f.empty:
        return pd.DataFrame(columns=ISSUE_COLUMNS)
    gid = f.groupby(ISSUE_KEYS, sort=False, dropna=False).ngroup().to_numpy()
    groups = int(gid.max()) + 1
    count = np.bincount(gid, minlength=groups)
    subject_code, subjects = pd.factorize(f["USUBJID"], sort=True)
    named = (subject_code >= 0) & (np.asarray(subjects, dtype=object)[subject_code] != "")
    pairs = np.unique(gid[named].astype(np.int64) * len(subjects) + subject_code[named])
    n_subjects = np.bincount(pairs // max(len(subjects), 1), minlength=groups)
    waived = np.bincount(gid, weights=(f["WAIVED"] == "Y").to_numpy(), minlength=groups).astype(np.int64)
    seq = pd.to_numeric(f["SEQ"], errors="coerce").to_numpy(dtype=np.float64)
    # examples: the first EXAMPLES rows of each issue in (USUBJID, SEQ) order
    order = np.lexsort((seq, subject_code, gid))
    starts = np.r_[0, np.cumsum(count)[:-1]]
    rank = np.arange(len(order)) - starts[gid[order]]
    shown = rank < EXAMPLES
    pick = order[shown]
    text = _example_text(f["USUBJID"].to_numpy(dtype=object)[pick], seq[pick])
    # one column per example slot, joined across (a dataset-level finding has none)
    slots = np.full((EXAMPLES, groups), "", dtype=text.dtype)
    slots[rank[shown], gid[pick]] = text
    joined = slots[0]
    for slot in slots[1:]:
        joined = np.where(slot != "", np.char.add(np.char.add(joined, ", "), slot), joined)
    first = np.unique(gid, return_index=True)[1]
    out = f.iloc[first][ISSUE_KEYS].reset_index(drop=True)
    out["COUNT"], out["SUBJECTS"], out["WAIVED"] = count, n_subjects, waived
    out["EXAMPLES"] = joined.astype(object)
    rank_sev = out["SEVERITY"].map({s: i for i, s in enumerate(SEVERITIES)}).fillna(len(SEVERITIES))
    out = out.assign(_S=rank_sev, _C=-out["COUNT"])
    return (out.sort_values(["_S", "_C", "RULE", "DATASET", "VARIABLE", "VALUE", "MESSAGE"], kind="stable")
            .drop(columns=["_S", "_C"]).reset_index(drop=True))


def _example_text(usubjid: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """'USUBJID/SEQ' (SEQ as an integer where it is one), 'USUBJID' without a SEQ."""
    subj = usubjid.astype(str)
    has_seq = ~np.isnan(seq)
    whole = has_seq & (seq == np.floor(np.where(has_seq, seq, 0)))
    seq_text = np.where(whole, np.where(whole, seq, 0).astype(np.int64).astype(str), seq.astype(str))
    text = np.where(has_seq, np.char.add(np.char.add(subj, "/"), seq_text), subj)
    return np.where(subj == "", "", text)


def validate(datasets: dict[str, pd.DataFrame], study_cfg=None, waivers: list[Waiver] | None = None,
             study: str = "") -> Validation:
    """Findings of the schemas and rules on `datasets` (a folder `load_sdtm_folder` read, with
    its XPT-SYNC findings, or any frames, e.g. the SDTM writer's), waivers applied."""
    from sdtm.validate.rules import run_rules
    from sdtm.validate.schemas import schema_findings

    t0 = time.perf_counter()
    # the checks may assume the data contract (sdtm.validate.load): Char string[pyarrow], Num float64
    datasets = normalise(datasets)
    files = datasets.file_findings if isinstance(datasets, SdtmFolder) else findings_frame()
    # the schemas run on a second thread beside the rules: both spend much of their time in
    # Arrow's kernels, outside the GIL
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sdtm-schemas") as pool:
        schemas = pool.submit(schema_findings, datasets)
        rules = run_rules(datasets, study_cfg)
        parts = [f for f in (files, schemas.result(), rules) if len(f)]
    found = pd.concat(parts, ignore_index=True)[COLUMNS] if parts else findings_frame()
    return Validation(study, apply_waivers(found.reset_index(drop=True), waivers or []),
                      time.perf_counter() - t0,
                      dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))


QUERY_COLUMNS = ["FORM", "RECORDID", "SUBJECT", "VISIT", "FIELD", "FIELD_LABEL", "VALUE", "QUESTION",
                 "SDTM", "RULE", "SEVERITY"]
# Controlled-terminology findings are the sponsor's (the mapping to CDISC CT), except where the
# site entered a code the CRF's own codelist does not have (the reader's unknown_code finding).
SPONSOR_RULES = ("SCH-CT", "SCH-CTEXT")


def query_listing(validation: Validation, traces: pd.DataFrame | None, raw=None) -> pd.DataFrame:
    """Findings a data manager can send to a site, in the CRF's terms: form, record, subject,
    visit, the CRF field(s) the SDTM variable is mapped from (and their labels), the value, a
    question; the SDTM dataset.variable stays beside them for the data manager. Needs the
    build's trace (SDTM record -> raw RECORDID); with the raw transfer (`raw`) the visit, the
    fields and the site-or-sponsor split of terminology findings (`SPONSOR_RULES`) too."""
    f = validation.findings[(validation.findings["WAIVED"] != "Y") & validation.findings["SEQ"].notna()]
    if traces is None or f.empty:
        return pd.DataFrame(columns=QUERY_COLUMNS)
    hit = f.merge(traces, on=["DATASET", "USUBJID", "SEQ"], how="inner")
    fields = _crf_fields(raw) if raw is not None else pd.DataFrame(
        columns=["DATASET", "FORM", "VARIABLE", "FIELD", "FIELD_LABEL"])
    hit = hit.merge(fields, on=["DATASET", "FORM", "VARIABLE"], how="left")
    hit["FIELD"] = hit["FIELD"].fillna("")
    hit["FIELD_LABEL"] = hit["FIELD_LABEL"].fillna("")
    if raw is not None and len(hit):
        visits = pd.concat([df[["RECORDID", "FOLDERNAME"]].assign(FORM=form) for form, df in raw.frames.items()])
        hit = hit.merge(visits, on=["FORM", "RECORDID"], how="left")
        hit = hit[~hit["RULE"].isin(SPONSOR_RULES) | _site_codes(hit, raw)]
    else:
        hit["FOLDERNAME"] = ""
    named = hit["FIELD_LABEL"].where(hit["FIELD_LABEL"] != "", hit["VARIABLE"])
    field = hit["FIELD"].where(hit["FIELD"] != "", hit["VARIABLE"])
    question = ("Please check " + named + " (" + field + ") = '" + hit["VALUE"].astype(str)
                + "' and correct it or confirm it as entered. Finding: " + hit["MESSAGE"])
    return pd.DataFrame({
        "FORM": hit["FORM"], "RECORDID": hit["RECORDID"], "SUBJECT": _subject(hit["USUBJID"]),
        "VISIT": hit["FOLDERNAME"].fillna(""), "FIELD": hit["FIELD"], "FIELD_LABEL": hit["FIELD_LABEL"],
        "VALUE": hit["VALUE"], "QUESTION": question, "SDTM": hit["DATASET"] + "." + hit["VARIABLE"],
        "RULE": hit["RULE"], "SEVERITY": hit["SEVERITY"]}, columns=QUERY_COLUMNS).reset_index(drop=True)


def _crf_fields(raw) -> pd.DataFrame:
    """(DATASET, FORM, VARIABLE) -> the CRF field(s) of FORM the variable is mapped from, with
    their labels ('; ' between several); a variable mapped from another form's field names it
    as FORM.FIELD."""
    from sdtm.field_coverage import variable_field_refs
    from sdtm.spec import load_specs

    rows = []
    for group in load_specs(raw.study, raw.forms).values():
        for spec in group:
            for variable, refs in variable_field_refs(spec).items():
                own = sorted(fld for form, fld in refs if form == spec.source)
                other = sorted(f"{form}.{fld}" for form, fld in refs if form != spec.source)
                names = own or other
                if names:
                    labels = [_field_label(raw.forms, n if "." in n else f"{spec.source}.{n}") for n in names]
                    rows.append((spec.domain, spec.source, variable, "; ".join(names),
                                 "; ".join(label for label in labels if label)))
    cols = ["DATASET", "FORM", "VARIABLE", "FIELD", "FIELD_LABEL"]
    return pd.DataFrame(rows, columns=cols).drop_duplicates(["DATASET", "FORM", "VARIABLE"])


def _field_label(forms, ref: str) -> str:
    form, _, oid = ref.partition(".")
    if form not in forms.form_by_oid:
        return ""
    return next((f.label for f in forms.form(form).fields if f.oid == oid), "")


def _site_codes(hit: pd.DataFrame, raw) -> pd.Series:
    """Rows whose raw field holds a code the CRF's codelist does not have (a site's entry)."""
    unknown = pd.DataFrame([(x.form, str(x.record), x.field) for x in raw.findings
                            if x.kind == "unknown_code"], columns=["FORM", "RECORDID", "ONE"])
    if unknown.empty or hit.empty:
        return pd.Series(False, index=hit.index)
    rows = pd.DataFrame({"FORM": hit["FORM"].to_numpy(), "RECORDID": hit["RECORDID"].astype(str).to_numpy(),
                         "ONE": hit["FIELD"].str.split("; ").to_numpy(), "ROW": np.arange(len(hit))})
    found = rows.explode("ONE").merge(unknown, on=["FORM", "RECORDID", "ONE"])["ROW"]
    return pd.Series(np.isin(np.arange(len(hit)), found.to_numpy()), index=hit.index)


def _subject(usubjid: pd.Series) -> pd.Series:
    """The site's subject id: USUBJID after its study prefix (NaN without one)."""
    parts = pc.extract_regex(pa.array(usubjid.to_numpy(dtype=object), type=pa.string(), from_pandas=True),
                             r"^[^-]*-(?P<subject>.*)$")
    return pd.Series(pc.struct_field(parts, "subject").to_numpy(zero_copy_only=False), index=usubjid.index,
                     dtype=object)


def build_traces(build) -> pd.DataFrame:
    """SDTM record -> raw record, for every mapped domain of a build."""
    parts = [res.trace.dropna(subset=["SEQ"]).assign(DATASET=name) for name, res in build.results.items()]
    t = pd.concat([p for p in parts if len(p)], ignore_index=True)
    return t[["DATASET", "USUBJID", "SEQ", "FORM", "RECORDID"]]


def write_conformance(validation: Validation, out_root: Path | None = None, queries: pd.DataFrame | None = None,
                      meta: dict | None = None, transfer: str | None = None) -> Path:
    """`reports/conformance.*`: every finding in conformance.csv and .parquet (and the data
    queries, when given, in conformance_queries.*); the xlsx and html show the issue summary,
    the per-dataset summary and the first DETAIL_ROWS findings of each rule in each dataset."""
    details = _ordered(arrow_table(validation.findings), [
        "RULE", "DATASET", "USUBJID", "SEQ", "VARIABLE", "VALUE", "MESSAGE", "WAIVED", "WAIVER"])
    shown = _first_rows(details, ["SEVERITY", "RULE", "DATASET"])
    n = len(validation.findings)
    issues = validation.issues()
    rules = rule_catalogue(validation.findings)
    sheets = {"issues": issues.head(ISSUE_ROWS), "summary": validation.summary(), "details": shown,
              "rules": rules}
    notes = {"issues": "One row per rule, severity, dataset, variable, message and value, with the number "
                       f"of findings, of subjects and of waived findings, and up to {EXAMPLES} examples "
                       "(USUBJID/SEQ), most severe and most frequent first"
                       + (f"; the first {ISSUE_ROWS:,} of {len(issues):,} issues." if len(issues) > ISSUE_ROWS
                          else "."),
             "summary": "Findings per rule and dataset.",
             "rules": f"Every rule the validator runs ({len(rules)}): what it checks, its SDTMIG / FDA "
                      "source, and its findings in this run (OPEN: not waived).",
             "details": f"The first {DETAIL_ROWS} findings of each rule in each dataset ({len(shown):,} of "
                        f"{n:,}, by severity, rule, dataset, subject and SEQ); every finding is in "
                        "conformance.csv and conformance.parquet."}
    query_table = None
    if queries is not None:
        query_table = _ordered(arrow_table(queries), [
            "RULE", "FORM", "SUBJECT", "RECORDID", "VISIT", "FIELD", "VALUE", "QUESTION"])
        sheets["data queries"] = _first_rows(query_table, ["SEVERITY", "RULE", "FORM"])
        notes["data queries"] = (f"The first {DETAIL_ROWS} queries of each rule on each form "
                                 f"({len(sheets['data queries']):,} of {len(queries):,}); every query is in "
                                 "conformance_queries.csv and conformance_queries.parquet. Questions name "
                                 "the CRF field; terminology findings (SCH-CT, SCH-CTEXT) are the sponsor's "
                                 "(the mapping to CDISC CT) and not sent to sites, unless the site entered "
                                 "a code the CRF's codelist lacks: they are in the issues sheet.")
    counts = validation.findings.groupby("SEVERITY").size().to_dict() if n else {}
    about = {"study": validation.study,
             "open ERROR findings": str(len(validation.open("ERROR"))),
             "findings by severity": ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none",
             "waivers": "mappings/<STUDY>/waivers.yaml (reason and approver shown per finding)",
             "detail": f"all {n:,} findings in conformance.csv and conformance.parquet; this report "
                       f"shows the first {DETAIL_ROWS} of each rule in each dataset",
             "standards": f"SDTMIG {metadata.IG_VERSION}, SDTM CT {metadata.CT_VERSION}",
             "code": generator_version(),
             "validated at (UTC)": validation.finished or "not recorded",
             "validation time": f"{validation.seconds:.1f} s",
             **(meta or {})}
    with staged_layer(validation.study, "reports", out_root, replace=("conformance.", "conformance_queries."),
                      transfer=transfer) as folder:
        write_report(folder, "conformance", f"{validation.study}: SDTM conformance", sheets, about,
                     detail=details, notes=notes)
        if query_table is not None:
            write_table(query_table, folder / "conformance_queries.csv", folder / "conformance_queries.parquet")
    return folder.parent / "reports" / "conformance.html"


def _ordered(table: pa.Table, keys: list[str]) -> pa.Table:
    """Rows most severe first, then by `keys` (nulls, a finding without SEQ, last): one order
    for the same rows, whatever order they came in."""
    rank = pc.fill_null(pc.index_in(table["SEVERITY"].cast(pa.string()), value_set=pa.array(SEVERITIES)),
                        len(SEVERITIES))
    order = pc.sort_indices(table.append_column("_S", rank),
                            sort_keys=[("_S", "ascending")] + [(k, "ascending") for k in keys if k in
                                                               table.column_names])
    return table.take(order)


def _first_rows(table: pa.Table, by: list[str], n: int = DETAIL_ROWS) -> pd.DataFrame:
    """The first `n` rows of each `by` group of a table `_ordered` by them (groups are runs)."""
    if table.num_rows == 0:
        return table.to_pandas()
    new_run = np.zeros(table.num_rows, dtype=bool)
    new_run[0] = True
    for col in by:
        values = table[col]
        differs = pc.not_equal(values.slice(1), values.slice(0, table.num_rows - 1))
        new_run[1:] |= pc.fill_null(differs, True).to_numpy(zero_copy_only=False)
    at = np.arange(table.num_rows)
    start = np.maximum.accumulate(np.where(new_run, at, 0))
    return table.take(pa.array(np.flatnonzero(at - start < n))).to_pandas()


def validate_run(run, out_root: Path | None = None, root: Path | None = None) -> tuple[Validation, Path]:
    """Validate what `sdtm.run.write_sdtm` produced, with the data-query listing in raw terms."""
    from clinpipe.config import load_study

    study = run.study
    result = validate(run.datasets, load_study(study, root), load_waivers(study, root), study=study)
    queries = query_listing(result, build_traces(run.build), run.raw)
    # the reports go beside the SDTM they describe, in the same transfer's build
    page = write_conformance(result, out_root or run.folder.parents[2], queries, {"SDTM": str(run.folder)},
                             transfer=run.transfer)
    return result, page


def report_transfer(study: str, folder: Path) -> str:
    """Which build a validation of `folder` reports into: the build the folder belongs to, else
    the transfer its manifest names, else `external` (never over the demo's own reports)."""
    folder = Path(folder)
    if folder.name == "sdtm" and folder.parent.parent.name == study:
        return folder.parent.name
    return manifest_transfer(folder) or "external"
