"""Change report on literal frames: keys without sequence numbers, duplicate keys, datasets in
one build only, ARD rows, bad build folders."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from changes import compare_builds
from changes.compare import compare_ard, compare_frames
from changes.keys import record_index, supp_with_parent_keys
from clinpipe.errors import ClinpipeError

KEYS = ["STUDYID", "USUBJID", "LBDTC", "LBTESTCD"]


def _lb(rows):
    f = pd.DataFrame(rows, columns=["USUBJID", "LBDTC", "LBTESTCD", "LBSTRESN"])
    f.insert(0, "STUDYID", "S1")
    f.insert(2, "LBSEQ", np.arange(1, len(f) + 1, dtype=float))
    return f


def test_renumbered_records_are_not_changed_and_a_value_change_is_listed():
    old = _lb([("A", "2025-01-01", "ALT", 10.0), ("A", "2025-01-03", "ALT", 12.0)])
    new = _lb([("A", "2025-01-01", "ALT", 10.0), ("A", "2025-01-02", "ALT", 11.0),
               ("A", "2025-01-03", "ALT", 13.5)])          # inserted: LBSEQ of the last is now 3
    ch, detail = compare_frames("sdtm", "LB", old, new, KEYS)
    assert (ch.added, ch.removed, ch.changed) == (1, 0, 1)
    added = detail[detail["CHANGE"] == "added"]
    assert added["KEY"].str.contains("LBDTC=2025-01-02").all()
    changed = detail[detail["CHANGE"] == "changed"]
    assert changed[["VARIABLE", "OLD", "NEW"]].values.tolist() == [["LBSTRESN", "12", "13.5"]]
    assert "LBSEQ" not in set(detail["VARIABLE"])


def test_missing_equals_missing_and_empty_text():
    old = pd.DataFrame({"USUBJID": ["A", "B"], "X": ["", None], "Y": [np.nan, 1.0]})
    new = pd.DataFrame({"USUBJID": ["A", "B"], "X": [None, ""], "Y": [np.nan, 1.0 + 1e-12]})
    ch, detail = compare_frames("sdtm", "DM", old, new, ["USUBJID"])
    assert ch.changed == 0 and detail.empty


def test_duplicate_keys_are_reported_and_matched_in_order():
    old = _lb([("A", "2025-01-01", "ALT", 10.0), ("A", "2025-01-01", "ALT", 20.0)])
    new = _lb([("A", "2025-01-01", "ALT", 10.0), ("A", "2025-01-01", "ALT", 25.0),
               ("A", "2025-01-01", "ALT", 30.0)])
    ch, detail = compare_frames("sdtm", "LB", old, new, KEYS)
    assert (ch.duplicate_keys_old, ch.duplicate_keys_new) == (1, 1)
    assert "keys not unique" in ch.note and "dataset order" in ch.note
    assert (ch.added, ch.removed, ch.changed) == (1, 0, 1)
    assert detail.loc[detail["CHANGE"] == "changed", ["OLD", "NEW"]].values.tolist() == [["20", "25"]]


def test_supplemental_qualifier_follows_its_parent_not_its_number():
    ae_old = pd.DataFrame({"STUDYID": "S1", "USUBJID": ["A", "A"], "AESEQ": [1.0, 2.0],
                           "AESTDTC": ["2025-01-05", "2025-01-09"], "AETERM": ["RASH", "FEVER"]})
    ae_new = pd.DataFrame({"STUDYID": "S1", "USUBJID": ["A", "A", "A"], "AESEQ": [1.0, 2.0, 3.0],
                           "AESTDTC": ["2025-01-02", "2025-01-05", "2025-01-09"],
                           "AETERM": ["COUGH", "RASH", "FEVER"]})
    keys = ["STUDYID", "USUBJID", "AESTDTC", "AETERM"]

    def supp(seqs, vals):
        return pd.DataFrame({"STUDYID": "S1", "RDOMAIN": "AE", "USUBJID": "A", "IDVAR": "AESEQ",
                             "IDVARVAL": [str(s) for s in seqs], "QNAM": "AESPID", "QVAL": vals})

    old = supp_with_parent_keys(supp([1, 2], ["x", "y"]), {"AE": record_index(ae_old, keys)})
    new = supp_with_parent_keys(supp([1, 2, 3], ["w", "x", "y"]), {"AE": record_index(ae_new, keys)})
    ch, detail = compare_frames("sdtm", "SUPPAE", old, new,
                                ["STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM"])
    assert (ch.added, ch.removed, ch.changed) == (1, 0, 0)
    assert detail["KEY"].str.contains("AETERM=COUGH").all()


def _ard(rows):
    f = pd.DataFrame(rows, columns=["OUTID", "GRP1LVL", "STAT", "STATVAL", "STATC"])
    for c in ("POP", "GRP1", "GRP2", "GRP2LVL", "PARAMCD", "VARLVL", "TIMEPT", "UNIT", "METHOD"):
        f[c] = ""
    return f


def test_ard_rows_moved_added_removed_and_unchanged_not_listed():
    old = _ard([("t1", "A", "N", 10.0, "10"), ("t1", "A", "n", 4.0, "4"), ("t1", "A", "median", np.nan, "NE"),
                ("t1", "B", "N", 3.0, "3")])
    new = _ard([("t1", "A", "N", 10.0, "10"), ("t1", "A", "n", 5.0, "5"), ("t1", "A", "median", 7.5, "7.5"),
                ("t2", "A", "N", 1.0, "1")])
    out = compare_ard(old, new)
    got = {(r.OUTID, r.GRP1LVL, r.STAT): r.CHANGE for r in out.itertuples()}
    assert got == {("t1", "A", "n"): "moved", ("t1", "A", "median"): "moved",
                   ("t1", "B", "N"): "removed", ("t2", "A", "N"): "added"}
    row = out[out["STAT"] == "n"].iloc[0]
    assert (row.OLD_STATVAL, row.NEW_STATVAL, row.DELTA, row.OLD_STATC, row.NEW_STATC) == (4, 5, 1, "4", "5")


def _build(root, study, datasets, transfer="2025-01-01"):
    (root / "sdtm").mkdir(parents=True)
    (root / "sdtm" / "manifest.json").write_text(json.dumps({"study": study, "transfer_date": transfer}))
    for name, frame in datasets.items():
        frame.to_parquet(root / "sdtm" / f"{name}.parquet")
    return root


def test_a_dataset_in_one_build_only_is_an_added_or_removed_dataset(tmp_path):
    dm = pd.DataFrame({"STUDYID": "RS001", "USUBJID": ["A", "B"], "AGE": [50.0, 60.0]})
    ae = pd.DataFrame({"STUDYID": "RS001", "USUBJID": ["A"], "AESEQ": [1.0], "AESTDTC": ["2025-01-01"],
                       "AEDECOD": ["Rash"], "AETERM": ["RASH"]})
    old = _build(tmp_path / "old", "RS001", {"dm": dm, "ae": ae})
    new = _build(tmp_path / "new", "RS001", {"dm": dm.assign(AGE=[50.0, 61.0])}, "2025-02-01")
    report = compare_builds("RS001", old, new)
    by = {d.dataset: d for d in report.datasets}
    assert by["AE"].status == "removed" and by["AE"].old_rows == 1
    assert by["DM"].status == "compared" and by["DM"].changed == 1
    assert report.to_metadata()["datasets"]["sdtm.AE"]["status"] == "removed"
    assert (report.old_transfer, report.new_transfer) == ("2025-01-01", "2025-02-01")


def test_bad_build_folders_are_named(tmp_path):
    dm = pd.DataFrame({"STUDYID": "RS001", "USUBJID": ["A"]})
    good = _build(tmp_path / "good", "RS001", {"dm": dm})
    (tmp_path / "nosdtm").mkdir()
    with pytest.raises(ClinpipeError, match="nosdtm.*no sdtm/"):
        compare_builds("RS001", tmp_path / "nosdtm", good)
    other = _build(tmp_path / "other", "GLOCART", {"dm": dm})
    with pytest.raises(ClinpipeError, match="other.*study 'GLOCART', not 'RS001'"):
        compare_builds("RS001", good, other)
    (good / "adam").mkdir()
    plain = _build(tmp_path / "plain", "RS001", {"dm": dm})
    with pytest.raises(ClinpipeError, match="plain.*no adam/"):
        compare_builds("RS001", good, plain)
