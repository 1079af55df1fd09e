"""Change report between RS001's two sample transfers (2025-02-27 interim, 2025-05-27 newest):
the expected changes are computed here from the two builds' own datasets, not by the report's
code."""
from __future__ import annotations

import numpy as np
import openpyxl
import pandas as pd
import pytest

from changes import compare_builds, write_change_report
from clinpipe.paths import REPO_ROOT

CUT = "2025-02-27"


@pytest.fixture(scope="module")
def builds(sample_build, tmp_path_factory):
    from adam.run import run_adam
    from sdtm.run import run_sdtm
    from tlf.run import run_tlf

    root = tmp_path_factory.mktemp("interim_build")
    quiet = lambda m: None
    sdtm = run_sdtm("RS001", REPO_ROOT / "data" / "raw" / "RS001" / CUT / "csv", root, progress=quiet)
    adam = run_adam("RS001", sdtm.folder, root, progress=quiet)
    run_tlf("RS001", adam.folder, out_root=root, progress=quiet)
    return sdtm.folder.parent, sample_build["RS001"].base


@pytest.fixture(scope="module")
def report(builds):
    return compare_builds("RS001", *builds)


def _read(build, layer, name):
    return pd.read_parquet(build / layer / f"{name}.parquet")


def _rows(report, dataset, change):
    r = report.records
    return r[(r["DATASET"] == dataset) & (r["CHANGE"] == change)]


def test_transfers_named_from_the_builds(report):
    assert (report.old_transfer, report.new_transfer) == (CUT, "2025-05-27")


@pytest.mark.parametrize("domain", ["AE", "LB", "VS", "DS", "RS"])
def test_every_record_dated_after_the_cut_is_added_and_none_before_removed(report, builds, domain):
    new = _read(builds[1], "sdtm", domain.lower())
    dtc = new[f"{domain}STDTC" if f"{domain}STDTC" in new.columns else f"{domain}DTC"].astype(str)
    after = new[dtc.str[:10] > CUT]
    added = _rows(report, domain, "added")
    assert len(added) == len(after)
    col = dtc.name
    keys = set(zip(added["USUBJID"], added["KEY"]))
    for subj, when in zip(after["USUBJID"], dtc[after.index]):
        assert any(s == subj and f"{col}={when}" in k for s, k in keys), (subj, when)
    assert _rows(report, domain, "removed").empty


def test_subjects_consented_after_the_cut_are_added_subjects(report, builds):
    dm = _read(builds[1], "sdtm", "dm")
    later = set(dm.loc[dm["RFICDTC"].astype(str) > CUT, "USUBJID"])
    assert set(_rows(report, "DM", "added")["USUBJID"]) == later
    assert set(_rows(report, "ADSL", "added")["USUBJID"]) == later
    assert _rows(report, "DM", "removed").empty and _rows(report, "ADSL", "removed").empty
    # All 36 had consented by the interim cut: every ADSL record carries the new cut-off date.
    dcut = _rows(report, "ADSL", "changed").query("VARIABLE == 'DCUTDT'")
    assert len(dcut) == len(dm) and set(dcut["NEW"]) == {"2025-05-27"}


def test_an_ae_open_at_the_cut_and_ended_later_is_changed(report, builds):
    keys = ["USUBJID", "AESTDTC", "AETERM"]
    old, new = _read(builds[0], "sdtm", "ae"), _read(builds[1], "sdtm", "ae")
    m = old.merge(new, on=keys, suffixes=("_o", "_n"))
    ended = m[(m["AEENDTC_o"].fillna("") == "") & (m["AEENDTC_n"].fillna("") != "")]
    assert len(ended)
    changed = _rows(report, "AE", "changed").query("VARIABLE == 'AEENDTC'")
    got = {(r.USUBJID, r.NEW) for r in changed.itertuples()}
    assert got == set(zip(ended["USUBJID"], ended["AEENDTC_n"]))
    assert set(changed["OLD"]) == {""}


def _ard(build):
    return pd.concat([pd.read_parquet(p) for p in sorted((build / "tlf" / "ard").glob("*.parquet"))],
                     ignore_index=True)


def test_every_moved_number_is_listed_and_no_unchanged_one(report, builds):
    key = ["OUTID", "POP", "GRP1", "GRP1LVL", "GRP2", "GRP2LVL", "PARAMCD", "VARLVL", "STAT", "TIMEPT"]
    m = _ard(builds[0]).merge(_ard(builds[1]), on=key, suffixes=("_o", "_n"))
    a, b = m["STATVAL_o"].to_numpy(float), m["STATVAL_n"].to_numpy(float)
    same_val = (a == b) | (np.isnan(a) & np.isnan(b))
    moved = m[~same_val | (m["STATC_o"] != m["STATC_n"])]
    listed = report.ard[report.ard["CHANGE"] == "moved"]
    assert set(map(tuple, listed[key].to_numpy())) == set(map(tuple, moved[key].to_numpy()))
    unchanged_n = m[same_val & (m["STAT"] == "N")]
    assert len(unchanged_n)                  # no new subject: the population counts stay
    assert not set(map(tuple, unchanged_n[key].to_numpy())) & set(map(tuple, listed[key].to_numpy()))


def test_os_events_moved_by_the_new_deaths(report, builds):
    def events(build):
        tte = _read(build, "adam", "adtte")
        return int(((tte["PARAMCD"] == "OS") & (tte["CNSR"] == 0)).sum())

    old, new = events(builds[0]), events(builds[1])
    assert new > old
    rows = report.ard.query("PARAMCD == 'OS' and STAT == 'events' and GRP1LVL == 'All subjects'")
    assert len(rows)
    assert set(rows["OLD_STATVAL"]) == {old} and set(rows["NEW_STATVAL"]) == {new}


def test_metadata_is_small_and_counts_agree(report):
    meta = report.to_metadata()
    assert meta["records_added"] == sum(d.added for d in report.datasets)
    assert meta["ard_moved"] == int((report.ard["CHANGE"] == "moved").sum()) > 0
    assert meta["datasets"]["sdtm.AE"]["added"] == len(_rows(report, "AE", "added"))
    assert meta["top_moved_md"].startswith("| output | statistic |")
    assert meta["top_moved_md"].count("\n") == 11


def test_files_written_deterministically(report, tmp_path):
    paths = write_change_report(report, tmp_path / "a")
    again = write_change_report(report, tmp_path / "b")
    assert {k: p.read_bytes() for k, p in paths.items()} == {k: p.read_bytes() for k, p in again.items()}

    wb = openpyxl.load_workbook(paths["xlsx"])
    assert wb.sheetnames == ["summary", "datasets", "outputs", "record changes", "ARD changes"]
    for name in wb.sheetnames:
        ws = wb[name]
        assert ws.freeze_panes == "A2" and ws.auto_filter.ref.startswith("A1:")
        assert ws.column_dimensions["A"].width > 5
    assert wb["record changes"].max_row == len(report.records) + 1
    assert wb["ARD changes"].max_row == len(report.ard) + 1

    html = paths["html"].read_text(encoding="utf-8")
    total = report.totals()["records_added"]
    assert f"<td>records added</td><td>{total}</td>" in html
    assert html.index("records added") < html.index('id="datasets"') < html.index('id="records"') \
        < html.index('id="ard"')
    assert "table.sortable" in html and 'class="filter"' in html
    assert len(pd.read_parquet(paths["parquet"])) == len(report.records)
    assert len(pd.read_csv(paths["ard_csv"])) == len(report.ard)
