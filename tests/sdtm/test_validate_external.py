"""The validator on SDTM it did not write (issue 13, item 8).

A hand-built folder in the shape of the CDISC pilot study's SDTM (cdiscpilot01): written by
another writer (pyreadstat), without a manifest; LB split into LBCH and LBHE as the pilot's
original package has it; VISITNUM with the binary noise a SAS numeric carries through
(1.2000000000000002); variables the SDTM model allows beyond the IG tables (MHSEV, CMDTC,
VISITNUM/VISIT in DS, AEDTC); a below-limit result '<3.42'; QS and SC datasets; one text in
Windows-1252 as the pilot's TS has it. The values come from the RS001 sample build, which
validates clean, so each ERROR the validator gives is one planted on purpose:

| finding | why a reviewer agrees |
|---|---|
| XR005 on DM.RFSTDTC, once | every --DY of one subject is 1000 days off: one root cause, not one finding per record |
| SCH-VAR AE.AEXYZ | no SDTM model variable: a sponsor variable belongs in SUPPAE |
| XR024 TS.TSVAL | a right single quote (Windows-1252 0x92): the FDA takes ASCII only |

Run by hand on the public pilot SDTM (cdisc-org/sdtm-adam-pilot-project, updated package,
the 18 datasets stored there): 398 ERRORs before this work, 384 after; what is left is real
(DM ARMCD 'Scrnfail' not in TA, as SDTMIG 3.4 wants screen failures with a null ARMCD and
ARMNRS; AEOUT not recovered with an end date; TS parameters FDA now requires; non-ASCII TS
text; an AESTDY of 366 on the day of RFSTDTC; RFXENDTC before the last EX end).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyreadstat
import pytest
from click.testing import CliRunner

from clinpipe.cli import main
from sdtm import metadata

SHIFTED = 1000      # days added to every --DY of one subject


def _write(folder, name: str, df: pd.DataFrame, label: str | None = None) -> None:
    domain = name[:2] if not name.startswith("SUPP") else "SUPPQUAL"
    labels = {}
    for c in df.columns:
        v = metadata.model_variable(domain, c) if domain != "SUPPQUAL" else None
        known = metadata.domain(domain).has(c)
        labels[c] = (metadata.domain(domain).var(c).label if known else v.label if v else c)[:40]
    pyreadstat.write_xport(df, str(folder / f"{name.lower()}.xpt"), table_name=name,
                           file_label=label or metadata.domain(domain).label, column_labels=labels)


def _first_term(var) -> str:
    return next(iter(metadata.codelist(var.codelists[0]).terms)) if len(var.codelists) == 1 else "X"


def _findings_domain(dm: pd.DataFrame, domain: str, testcd: str, test: str) -> pd.DataFrame:
    meta = metadata.domain(domain)
    rows = []
    for i, usubjid in enumerate(dm["USUBJID"].head(4)):
        row = {}
        for v in meta.variables:
            if v.core == "Perm":
                continue
            if v.name in ("STUDYID", "USUBJID"):
                row[v.name] = dm.loc[dm.USUBJID == usubjid, v.name].iloc[0]
            elif v.name == "DOMAIN":
                row[v.name] = domain
            elif v.name.endswith("SEQ"):
                row[v.name] = float(1)
            elif v.name.endswith("TESTCD"):
                row[v.name] = testcd
            elif v.name.endswith("TEST"):
                row[v.name] = test
            elif v.name.endswith("DTC"):
                row[v.name] = dm.loc[dm.USUBJID == usubjid, "RFSTDTC"].iloc[0][:10]
            elif v.type == "Num":
                row[v.name] = float(i + 1)
            elif v.codelists:
                row[v.name] = _first_term(v)
            else:
                row[v.name] = str(i + 1)
        rows.append(row)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def external(sample_build, tmp_path_factory):
    src = sample_build["RS001"].sdtm_run.folder
    folder = tmp_path_factory.mktemp("pilot-shaped") / "sdtm"
    folder.mkdir()
    datasets = {p.stem.upper(): pd.read_parquet(p) for p in sorted(src.glob("*.parquet"))}
    dm = datasets["DM"]
    victim = dm.loc[dm.RFSTDTC.fillna("") != "", "USUBJID"].iloc[0]
    for name, df in datasets.items():
        for dy in [c for c in df.columns if c.endswith(("DY", "STDY", "ENDY")) and c[:2] == name[:2]]:
            if name not in ("DM", "TV", "TA", "TE", "TI", "TS") and "USUBJID" in df:
                at = (df.USUBJID == victim) & df[dy].notna()
                df.loc[at, dy] = df.loc[at, dy] + SHIFTED
        if "VISITNUM" in df and name not in ("SV", "TV"):
            # the noise of a SAS numeric written elsewhere; SV keeps the exact values
            df["VISITNUM"] = df["VISITNUM"].map(lambda v: np.nextafter(v, np.inf) if pd.notna(v) else v)
    datasets["MH"]["MHSEV"] = "MILD"
    datasets["CM"]["CMDTC"] = datasets["CM"]["CMSTDTC"]
    ds = datasets["DS"]
    ds["VISITNUM"], ds["VISIT"] = np.nan, ""
    datasets["AE"]["AEDTC"] = datasets["AE"]["AESTDTC"]
    datasets["AE"]["AEXYZ"] = "sponsor-defined"
    lb = datasets.pop("LB")
    numeric = lb.LBSTRESN.notna()
    first = lb.index[numeric][0]
    lb.loc[first, ["LBORRES", "LBSTRESC", "LBSTRESN"]] = ["<3.42", "<3.42", np.nan]
    cats = sorted(lb.LBCAT.dropna().unique())
    assert len(cats) >= 2
    splits = {"LBCH": lb[lb.LBCAT == cats[0]], "LBHE": lb[lb.LBCAT != cats[0]]}
    ts = datasets["TS"]
    ts.loc[ts.index[0], "TSVAL"] = ts.loc[ts.index[0], "TSVAL"] + " \u2019"   # cp1252 byte 0x92
    for name, df in datasets.items():
        if name != "TS":
            _write(folder, name, df)
    for name, df in splits.items():
        _write(folder, name, df.reset_index(drop=True), "Laboratory Test Results")
    _write(folder, "QS", _findings_domain(dm, "QS", "ADCOG01", "Word Recall Task"))
    _write(folder, "SC", _findings_domain(dm, "SC", "EDLEVEL", "Level of Education Attained"))
    # TS in Windows-1252, as a SAS session on Windows writes it
    pyreadstat.write_xport(ts, str(folder / "ts.xpt"), table_name="TS", file_label="Trial Summary",
                           column_labels={c: metadata.domain("TS").var(c).label for c in ts.columns})
    # one byte for three, blank-padded: the record keeps its width
    raw = (folder / "ts.xpt").read_bytes().replace("\u2019".encode("utf-8"), b"\x92  ")
    (folder / "ts.xpt").write_bytes(raw)
    out = tmp_path_factory.mktemp("pilot-out")
    res = CliRunner().invoke(main, ["validate", "--study", "RS001", "--sdtm", str(folder), "--out", str(out)])
    assert "Traceback" not in res.output, res.output
    reports = list(out.rglob("conformance.parquet"))
    assert reports, res.output
    findings = pd.read_parquet(reports[0])
    return res, findings, victim


def test_only_the_planted_defects_are_errors(external):
    res, findings, _ = external
    errors = findings[(findings.SEVERITY == "ERROR") & (findings.WAIVED != "Y")]
    got = sorted(set(zip(errors.RULE, errors.DATASET, errors.VARIABLE)))
    assert got == [("SCH-VAR", "AE", "AEXYZ"), ("XR005", "DM", "RFSTDTC"), ("XR024", "TS", "TSVAL")], \
        errors.groupby(["RULE", "DATASET", "VARIABLE"]).size()
    assert res.exit_code == 1


def test_a_wrong_reference_day_is_one_finding_with_the_count(external):
    _, findings, victim = external
    xr005 = findings[findings.RULE == "XR005"]
    assert len(xr005) == 1 and xr005.iloc[0].USUBJID == victim
    assert "every study day of the subject disagrees with RFSTDTC" in xr005.iloc[0].MESSAGE
    assert f"{SHIFTED:+d} days" in xr005.iloc[0].MESSAGE


def test_split_datasets_qs_sc_and_model_variables_are_known(external):
    _, findings, _ = external
    assert not (findings.RULE == "SCH-DS").any(), findings[findings.RULE == "SCH-DS"]
    assert {"LBCH", "LBHE"}.isdisjoint(findings.DATASET)   # validated as LB
    model = findings[(findings.RULE == "SCH-VAR")
                     & findings.VARIABLE.isin(["MHSEV", "CMDTC", "AEDTC", "VISITNUM", "VISIT"])]
    assert model.empty, model
    assert not ((findings.RULE == "XR009") | (findings.RULE == "XR008")).any()   # VISITNUM by value
    assert not findings.VALUE.astype(str).eq("<3.42").any()


def test_text_in_windows_1252_is_read_and_reported_as_not_ascii(external):
    _, findings, _ = external
    hit = findings[(findings.DATASET == "TS") & (findings.RULE == "XR024")]
    assert len(hit) == 1 and hit.iloc[0].VALUE.endswith("\u2019")
