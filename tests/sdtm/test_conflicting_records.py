"""A second record of a non-repeating form for one subject and visit (two DM records, one M
and one F) is an EDC conflict: the build goes on, the first record is kept and the second is
rejected naming the kept record and the differing field (issue 13, item 3)."""
import shutil

import pandas as pd
from click.testing import CliRunner

from clinpipe.cli import main
from clinpipe.paths import latest_transfer, study_out


def _transfer_with_second_dm(tmp_path):
    folder = tmp_path / "transfer"
    shutil.copytree(latest_transfer("RS001") / "csv", folder)
    (folder / "transfer.json").unlink(missing_ok=True)    # the file hashes no longer hold
    dm = pd.read_csv(folder / "dm.csv", dtype=str, keep_default_na=False)
    second = dm.iloc[[0]].copy()
    second["RECORDID"], second["RECORDPOSITION"] = "999999", "2"
    flip = {"M": ("F", "Female"), "F": ("M", "Male")}[second["SEX"].iloc[0]]
    second["SEX"], second["SEX_DEC"] = flip
    pd.concat([dm, second]).to_csv(folder / "dm.csv", index=False)
    return folder, dm.iloc[0], flip[0]


def test_second_dm_record_with_other_sex_is_rejected_not_a_traceback(tmp_path):
    folder, first, other_sex = _transfer_with_second_dm(tmp_path)
    res = CliRunner().invoke(main, ["sdtm", "--study", "RS001", "--transfer", str(folder),
                                    "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    reports = study_out("RS001", "reports", tmp_path / "out")
    rej = pd.read_excel(reports / "sdtm_reconciliation.xlsx", sheet_name="rejections", dtype=str)
    (row,) = rej[rej.RECORDID == "999999"].itertuples(index=False)
    assert (row.FORM, row.SUBJECT, row.FIELD, row.VALUE) == ("DM", first["SUBJECT"], "SEX",
                                                             other_sex)
    assert f"RECORDID {first['RECORDID']} is kept" in row.REASON and "SEX" in row.REASON
    rec = pd.read_csv(reports / "sdtm_reconciliation.csv").set_index("FORM")
    assert rec.loc["DM", "REJECTED"] == 1 and rec["UNACCOUNTED"].sum() == 0
    dm = pd.read_parquet(study_out("RS001", "sdtm", tmp_path / "out") / "dm.parquet")
    assert dm["USUBJID"].is_unique
    assert dm.loc[dm.USUBJID.str.endswith(first["SUBJECT"]), "SEX"].iloc[0] == first["SEX"]
