"""ADAE: adverse events for analysis, read top to bottom like admiral's ad_adae.R template.

AE as of the cut-off -> ADSL variables -> analysis dates with imputation (bounded by death and
cut-off) -> study days, duration -> treatment emergence -> grading scale and grade -> AESI ->
first-occurrence and worst-grade flags -> (RS001) DLT window, investigator and rule-based DLT.
Categories are data (mappings/common/adam/ae_categories.yaml), DLT rules are study.yaml's.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from adam.categories import derive_vars_cat
from adam.dates import compute_dt, compute_study_day
from adam.dlt import derive_vars_dlt
from adam.merged import RuleError
from adam.metadata import DatasetSpec, load_spec
from adam.read import SdtmInputError
from clinpipe.paths import mappings_dir
from clinpipe.yamlio import load_yaml

AE_REQUIRED = ("USUBJID", "AESEQ", "AETERM", "AEDECOD", "AEBODSYS", "AESTDTC")
ADSL_VARS = ("SUBJID", "SITEID", "AGE", "SEX", "SAFFL", "TRT01A", "TRT01AN", "TRTSDT", "DTHDT",
             "EOSDT", "DCUTDT")


def load_categories(mappings: Path | None = None) -> dict:
    return load_yaml(Path(mappings or mappings_dir()) / "common" / "adam" / "ae_categories.yaml").data


def _optional(ae: pd.DataFrame, name: str) -> pd.Series:
    return ae[name] if name in ae.columns else pd.Series("", index=ae.index, dtype=object)


def derive_vars_ae_dates(adae: pd.DataFrame) -> pd.DataFrame:
    """ASTDT/ASTDTF, AENDT/AENDTF, ASTDY/AENDY, ADURN/ADURU (SAP §3 partial-date rules)."""
    out = adae.copy()
    bounds = [b for b in (out.DTHDT, out.DCUTDT)]
    out["ASTDT"], out["ASTDTF"] = compute_dt(out.AESTDTC, "M", "first", [out.TRTSDT], bounds)
    out["AENDT"], out["AENDTF"] = compute_dt(out.AEENDTC, "M", "last", None, bounds)
    # an end after the data cut-off was not yet known at it: the event is ongoing at the cut-off
    late = out.AENDT > out.DCUTDT
    out.loc[late, "AENDT"] = pd.NaT
    out.loc[late, "AENDTF"] = ""
    # an end imputed before the (imputed) start is moved to the start
    early = out.AENDT.notna() & out.ASTDT.notna() & (out.AENDT < out.ASTDT) & (out.AENDTF != "")
    out.loc[early, "AENDT"] = out.loc[early, "ASTDT"]
    out["ASTDY"] = compute_study_day(out.ASTDT, out.TRTSDT)
    out["AENDY"] = compute_study_day(out.AENDT, out.TRTSDT)
    out["ADURN"] = ((out.AENDT - out.ASTDT).dt.days + 1).astype("float64")
    out["ADURU"] = np.where(out.ADURN.notna(), "DAYS", "")
    return out


def derive_var_trtemfl(adae: pd.DataFrame) -> pd.DataFrame:
    out = adae.copy()
    after = out.ASTDT >= out.TRTSDT
    unknown_start = out.ASTDT.isna() & out.TRTSDT.notna() & (out.AENDT.isna() | (out.AENDT >= out.TRTSDT))
    out["TRTEMFL"] = np.where(after | unknown_start, "Y", "")
    return out


def derive_vars_first_occurrence(adae: pd.DataFrame) -> pd.DataFrame:
    """AOCCFL / AOCCPFL on the first treatment-emergent record, AWORSTFL per event."""
    out = adae.copy()
    order = out.sort_values(["USUBJID", "ASTDT", "AESEQ"], kind="stable", na_position="last")
    te = order[order.TRTEMFL == "Y"]
    out["AOCCFL"] = np.where(out.index.isin(te.drop_duplicates("USUBJID").index), "Y", "")
    out["AOCCPFL"] = np.where(out.index.isin(te.drop_duplicates(["USUBJID", "AEDECOD"]).index), "Y", "")
    event = out.AEGRPID.where(out.AEGRPID != "", "SEQ" + out.AESEQ.astype(str))
    worst = (out.assign(_EV=event, _G=out.ATOXGRN.fillna(-1))
             .sort_values(["USUBJID", "_EV", "_G", "ASTDT", "AESEQ"], ascending=[True, True, False, True, True],
                          kind="stable"))
    out["AWORSTFL"] = np.where(out.index.isin(worst.drop_duplicates(["USUBJID", "_EV"]).index), "Y", "")
    return out


def build_adae(frames, study, adsl: pd.DataFrame, spec: DatasetSpec | None = None,
               categories: dict | None = None) -> pd.DataFrame:
    spec = spec or load_spec("ADAE", study.study.studyid)
    categories = categories or load_categories()
    ae = frames.get("AE", AE_REQUIRED)
    orphans = sorted(set(ae.USUBJID) - set(adsl.USUBJID))
    if orphans:
        raise SdtmInputError(f"AE has records of {len(orphans)} subject(s) not in DM, first {orphans[0]}",
                             field="USUBJID", hint="deliver DM records for them or remove their AE records")
    adae = ae[[c for c in ae.columns if c not in ("SUBJID", "SITEID", "AGE", "SEX")]].copy()
    for name in ("AEGRPID", "AEHLGT", "AESOC", "AESER", "AESDTH", "AEREL", "AEOUT", "AEACN", "AETOXGR",
                 "AEENDTC"):
        adae[name] = _optional(adae, name)
    adae = adae.merge(adsl[["USUBJID", *ADSL_VARS]], on="USUBJID", how="left")
    adae = adae.rename(columns={"TRT01A": "TRTA", "TRT01AN": "TRTAN"})
    adae = derive_vars_ae_dates(adae)
    adae = derive_var_trtemfl(adae)

    scale = frames.sdtm.supp_value(ae, "AE", "AETOXSC") if hasattr(frames, "sdtm") else pd.Series("", index=ae.index)
    by_term = derive_vars_cat(adae, "_SCALE", categories["scales"])["_SCALE"]
    adae["ATOXSCL"] = np.where(scale.to_numpy() != "", scale.str.upper().to_numpy(), by_term)
    adae["ATOXGR"] = adae.AETOXGR
    adae["ATOXGRN"] = pd.to_numeric(adae.AETOXGR, errors="coerce")
    adae = derive_vars_cat(adae, "AESICAT", categories["aesi"])
    adae["AESIFL"] = np.where(adae.AESICAT != "", "Y", "")
    adae = derive_vars_first_occurrence(adae)
    adae["SRCDOM"], adae["SRCVAR"], adae["SRCSEQ"] = "AE", "AESEQ", adae.AESEQ

    if "DLTFL" in spec.names:
        last = pd.concat([adae.DTHDT, adae.EOSDT, adae.DCUTDT], axis=1).min(axis=1)
        investigator = frames.sdtm.supp_value(ae, "AE", "AEDLT") if hasattr(frames, "sdtm") else \
            pd.Series("", index=ae.index)
        adae = derive_vars_dlt(adae, study.dlt, categories, last, investigator)
    try:
        return adae.sort_values(["USUBJID", "AESEQ"], kind="stable").reset_index(drop=True)[spec.names]
    except KeyError as exc:
        raise RuleError(f"ADAE has no variable {exc} the spec names", file=" + ".join(spec.sources),
                        hint="derive it in adam/adae.py or remove it from the spec") from None
