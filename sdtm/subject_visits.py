"""SV (Subject Visits): one record per subject and visit actually done, from every mapped
record that carries VISITNUM (EX included, so dosing-only visits such as Day -4 are visits):
start/end = earliest/latest of the records' dates; SVPRESP/SVOCCUR "Y" on planned visits."""
from __future__ import annotations

import numpy as np
import pandas as pd

from sdtm import dates


def build_sv(datasets: dict[str, pd.DataFrame], dm: pd.DataFrame,
             unscheduled_prefix: str = "UNSCHEDULED") -> pd.DataFrame:
    parts = []
    for name, df in datasets.items():
        dtc = f"{name}DTC" if f"{name}DTC" in df.columns else f"{name}STDTC"
        if "VISITNUM" not in df.columns or dtc not in df.columns:
            continue
        has = df["VISITNUM"].notna()
        parts.append(df.loc[has, ["STUDYID", "USUBJID", "VISITNUM", "VISIT", dtc]]
                     .set_axis(["STUDYID", "USUBJID", "VISITNUM", "VISIT", "DTC"], axis=1))
    if not parts:
        return pd.DataFrame()
    rec = pd.concat(parts, ignore_index=True)
    rec["DATE"] = rec["DTC"].str[:10].where(rec["DTC"].str.match(r"^\d{4}-\d{2}-\d{2}"), "")
    keys = ["STUDYID", "USUBJID", "VISITNUM", "VISIT"]
    dated = rec[rec["DATE"] != ""]
    sv = dated.groupby(keys, as_index=False).agg(SVSTDTC=("DATE", "min"), SVENDTC=("DATE", "max"))
    undated = rec.loc[~rec.set_index(keys).index.isin(sv.set_index(keys).index), keys].drop_duplicates()
    sv = pd.concat([sv, undated.assign(SVSTDTC="", SVENDTC="")], ignore_index=True)
    sv = sv.sort_values(["USUBJID", "VISITNUM"], kind="stable").reset_index(drop=True)
    sv["DOMAIN"] = "SV"
    ref = sv["USUBJID"].map(dm.set_index("USUBJID")["RFSTDTC"])
    sv["SVSTDY"] = dates.study_day(sv["SVSTDTC"], ref)
    sv["SVENDY"] = dates.study_day(sv["SVENDTC"], ref)
    unplanned = sv["VISIT"].str.startswith(unscheduled_prefix)
    # SDTMIG 3.4 SV: SVPRESP "Y" for planned visits (those in TV), null for unplanned ones;
    # SVOCCUR records whether a planned visit occurred, null for unplanned visits. SV holds
    # only visits that took place, so every planned visit here occurred.
    sv["SVPRESP"] = np.where(unplanned, "", "Y")
    sv["SVOCCUR"] = np.where(unplanned, "", "Y")
    sv["SVUPDES"] = np.where(unplanned, "Unscheduled visit", "")
    return sv
