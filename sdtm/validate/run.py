"""Validate SDTM (this pipeline's or any folder of XPT/parquet) and write the conformance reports.

Findings come from the metadata-built schemas (`schemas.py`) and the cross-dataset rules
(`rules.py`). A reviewed waiver file (`mappings/<STUDY>/waivers.yaml`) can waive a known
finding; waived findings stay in the reports, marked, with the reason and who approved it.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clinpipe.errors import ClinpipeError
from clinpipe.outputs import staged_layer
from clinpipe.paths import manifest_transfer, mappings_dir
from clinpipe.reports import write_report
from clinpipe.yamlio import load_yaml, validation_error
from sdtm.validate.findings import COLUMNS, findings_frame


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


def load_sdtm_folder(folder: Path) -> dict[str, pd.DataFrame]:
    """Every dataset of a folder: XPT (read with pyreadstat) or, where there is no XPT, parquet."""
    from sdtm.xpt import read_xpt

    folder = Path(folder)
    if not folder.is_dir():
        raise ClinpipeError("SDTM folder not found", file=folder,
                            hint="run `clinpipe sdtm` first or give the folder holding the .xpt files")
    out = {}
    for path in sorted(folder.glob("*.xpt")):
        out[path.stem.upper()] = read_xpt(path)[0]
    for path in sorted(folder.glob("*.parquet")):
        if path.stem.upper() in out:
            continue
        try:
            out[path.stem.upper()] = pd.read_parquet(path)
        except (OSError, ValueError) as exc:   # pyarrow's ArrowInvalid is a ValueError
            raise ClinpipeError(f"not a readable parquet file ({exc})", file=path,
                                hint="re-export the dataset, or remove the file from the folder") from None
    if not out:
        raise ClinpipeError("no .xpt or .parquet datasets in the folder", file=folder)
    return out


@dataclass
class Validation:
    study: str
    findings: pd.DataFrame          # COLUMNS + WAIVED, WAIVER

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


def validate(datasets: dict[str, pd.DataFrame], study_cfg=None, waivers: list[Waiver] | None = None,
             study: str = "") -> Validation:
    from sdtm.validate.rules import run_rules
    from sdtm.validate.schemas import schema_findings

    parts = [f for f in (schema_findings(datasets), run_rules(datasets, study_cfg)) if len(f)]
    found = pd.concat(parts, ignore_index=True)[COLUMNS] if parts else findings_frame()
    return Validation(study, apply_waivers(found.reset_index(drop=True), waivers or []))


def query_listing(validation: Validation, traces: pd.DataFrame | None, raw=None) -> pd.DataFrame:
    """Findings in raw-form terms a data manager can send to a site: form, subject, visit,
    field, value, question. Needs the build's trace (SDTM record -> raw RECORDID)."""
    cols = ["FORM", "RECORDID", "SUBJECT", "VISIT", "FIELD", "VALUE", "QUESTION", "RULE", "SEVERITY"]
    f = validation.findings[(validation.findings["WAIVED"] != "Y") & validation.findings["SEQ"].notna()]
    if traces is None or f.empty:
        return pd.DataFrame(columns=cols)
    hit = f.merge(traces, on=["DATASET", "USUBJID", "SEQ"], how="inner")
    if raw is not None and len(hit):
        visits = pd.concat([df[["RECORDID", "FOLDERNAME"]].assign(FORM=form) for form, df in raw.frames.items()])
        hit = hit.merge(visits, on=["FORM", "RECORDID"], how="left")
    else:
        hit["FOLDERNAME"] = ""
    return pd.DataFrame({
        "FORM": hit["FORM"], "RECORDID": hit["RECORDID"], "SUBJECT": hit["USUBJID"].str.split("-", n=1).str[1],
        "VISIT": hit["FOLDERNAME"].fillna(""), "FIELD": hit["VARIABLE"], "VALUE": hit["VALUE"],
        "QUESTION": "Please check and correct: " + hit["MESSAGE"], "RULE": hit["RULE"],
        "SEVERITY": hit["SEVERITY"]}, columns=cols)


def build_traces(build) -> pd.DataFrame:
    """SDTM record -> raw record, for every mapped domain of a build."""
    parts = [res.trace.dropna(subset=["SEQ"]).assign(DATASET=name) for name, res in build.results.items()]
    t = pd.concat([p for p in parts if len(p)], ignore_index=True)
    return t[["DATASET", "USUBJID", "SEQ", "FORM", "RECORDID"]]


def write_conformance(validation: Validation, out_root: Path | None = None, queries: pd.DataFrame | None = None,
                      meta: dict | None = None, transfer: str | None = None) -> Path:
    details = validation.findings.sort_values(["SEVERITY", "RULE", "DATASET", "USUBJID", "SEQ"], kind="stable")
    sheets = {"summary": validation.summary(), "details": details.reset_index(drop=True)}
    if queries is not None:
        sheets["data queries"] = queries
    counts = validation.findings.groupby("SEVERITY").size().to_dict() if len(validation.findings) else {}
    about = {"study": validation.study,
             "open ERROR findings": str(len(validation.open("ERROR"))),
             "findings by severity": ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none",
             "waivers": "mappings/<STUDY>/waivers.yaml (reason and approver shown per finding)",
             **(meta or {})}
    with staged_layer(validation.study, "reports", out_root, replace=("conformance.",),
                      transfer=transfer) as folder:
        write_report(folder, "conformance", f"{validation.study}: SDTM conformance", sheets, about,
                     csv_sheet="details")
    return folder.parent / "reports" / "conformance.html"


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
