"""The simulator at scale: subjects handed over a group at a time, exported without holding the
study. The contract is that nothing changes: the same seed gives the same records whatever the
group size, and the streamed export is byte for byte what the whole-study export writes.

Groups, spilled batches and read-back windows are made tiny here so every boundary (a group
ending mid-day, a window ending mid-batch, a form with records in only some groups) is crossed.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import itertools

import pytest

import simulate.run as run_mod
from clinpipe.config import load_study
from edc.export import ChunkedFrames, build_frames
from edc.forms import load_forms
from edc.transfer import write_chunked_transfer, write_transfer
from simulate import glocart, rs001
from simulate.run import Simulation, deliver, simulate_study

SIMULATORS = {"RS001": rs001, "GLOCART": glocart}
N = {"RS001": 30, "GLOCART": 34}
CUT = {"RS001": dt.date(2024, 3, 1), "GLOCART": dt.date(2025, 6, 20)}
# Text that needs CSV quoting, each way csv.writer quotes it, and text that needs none.
AWKWARD = ['comma, inside', 'a "quoted" word', "line\nbreak", "carriage\rreturn", "crlf\r\n",
           '"', ",", "", "plain", "non-ASCII: fièvre à 39°C", " leading and trailing "]


@pytest.fixture(scope="module", params=sorted(SIMULATORS))
def study(request):
    return request.param


@pytest.fixture(scope="module")
def whole(study):
    return SIMULATORS[study].run(load_study(study), load_forms(study), N[study], 3)


@pytest.fixture
def tiny(monkeypatch):
    """Groups of 4 subjects (spilled), batches of 7 rows, windows of 50 rows."""
    monkeypatch.setattr(run_mod, "CHUNK_SUBJECTS", 4)
    monkeypatch.setattr(ChunkedFrames, "batch_rows", 7)
    monkeypatch.setattr(ChunkedFrames, "window_rows", 50)


def _folder(path):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir())}


@pytest.mark.parametrize("group", [1, 7])
def test_group_size_changes_no_record(study, whole, group):
    sim = SIMULATORS[study].stream(load_study(study), load_forms(study), N[study], 3).collect(group)
    assert sim.records == whole.records
    assert sim.truth == whole.truth
    assert sim.history == whole.history
    assert sim.transfer_date == whole.transfer_date


def test_a_stream_runs_once(study):
    stream = SIMULATORS[study].stream(load_study(study), load_forms(study), 5, 3)
    stream.collect()
    with pytest.raises(RuntimeError, match="already run"):
        stream.collect()


@pytest.mark.parametrize("seed", [1, 2])
def test_first_consent_is_known_before_the_subjects_run(study, seed):
    stream = SIMULATORS[study].stream(load_study(study), load_forms(study), 12, seed)
    first = stream.first_consent
    assert first == min(stream.collect().history.dates["IC"])


def test_spilled_groups_give_the_whole_study_frames(study, whole, tiny, tmp_path):
    forms, cfg = load_forms(study), load_study(study)
    expected = build_frames(whole, forms, cfg, whole.seed)
    chunked = ChunkedFrames(forms, cfg, whole.transfer_date, whole.seed, spill=tmp_path)
    for records, _ in SIMULATORS[study].stream(cfg, forms, N[study], 3).chunks(4):
        chunked.add(records)
    assert len(list(tmp_path.iterdir())) > len(forms.forms)
    frames = chunked.frames()
    assert list(frames) == list(expected)
    for oid, frame in expected.items():
        assert frames[oid].equals(frame), oid
        assert (frames[oid].dtypes == object).all()


def test_streamed_csv_is_byte_identical_awkward_text_included(study, whole, tiny, tmp_path):
    """`write_chunked_transfer` against `write_transfer` (csv.writer) of the same frames, with
    free text that needs every kind of quoting put into a text field of some records."""
    forms, cfg = load_forms(study), load_study(study)
    records = {oid: [dict(r) for r in recs] for oid, recs in whole.records.items()}
    for i, r in enumerate(records["AE"]):
        r["AETERM"] = AWKWARD[i % len(AWKWARD)] + str(i)
    for i, r in enumerate(records["CM"]):
        r["CMTRT"] = AWKWARD[i % len(AWKWARD)]
    chunked = ChunkedFrames(forms, cfg, whole.transfer_date, whole.seed, spill=tmp_path / "spill")
    (tmp_path / "spill").mkdir()
    subjects = list(dict.fromkeys(r["SUBJECT"] for r in records["IC"]))      # simulator order
    for k in range(0, len(subjects), 4):
        group = set(subjects[k:k + 4])
        chunked.add({oid: [r for r in recs if r["SUBJECT"] in group]
                     for oid, recs in records.items()})
    streamed = write_chunked_transfer(chunked, forms, cfg, tmp_path / "streamed",
                                      transfer_date=whole.transfer_date)
    frames = build_frames(type(whole)(study, whole.seed, whole.transfer_date, records), forms,
                          cfg, whole.seed)
    written = write_transfer(frames, forms, cfg, tmp_path / "whole", format="csv",
                             transfer_date=whole.transfer_date)
    assert [p.name for p in streamed] == [p.name for p in written]
    assert _folder(tmp_path / "streamed") == _folder(tmp_path / "whole")


def test_subjects_in_simulator_order_regroup_freely(study, whole, tiny, tmp_path):
    """Groups of records cut by subject in the order the simulator wrote them (what the stream
    gives) export the same as the whole: the RECORDID merge does not depend on the cuts."""
    forms, cfg = load_forms(study), load_study(study)
    expected = build_frames(whole, forms, cfg, whole.seed)
    order = list(dict.fromkeys(r["SUBJECT"] for r in whole.records["IC"]))
    for cuts in ([1, 2, 3], [len(order) - 1]):
        chunked = ChunkedFrames(forms, cfg, whole.transfer_date, whole.seed)
        bounds = [0, *cuts, len(order)]
        for a, b in itertools.pairwise(bounds):
            group = set(order[a:b])
            chunked.add({oid: [r for r in recs if r["SUBJECT"] in group]
                         for oid, recs in whole.records.items()})
        for oid, frame in chunked.frames().items():
            assert frame.equals(expected[oid]), (cuts, oid)


@pytest.mark.parametrize("cut", [False, True])
def test_deliver_streams_what_the_whole_study_delivers(study, tiny, tmp_path, cut):
    """simulate_study + deliver (groups of 4, spilled) against the whole SimulatedStudy in
    memory, with and without an earlier cut, CSV (streamed) and ODM (frames)."""
    when = CUT[study] if cut else None
    streamed = simulate_study(study, N[study], 3, transfer_date=when)
    assert isinstance(streamed, Simulation)
    whole = simulate_study(study, N[study], 3, transfer_date=when).simulated()
    for fmt in ("csv", "odm"):
        a = deliver(streamed, fmt, tmp_path / f"streamed-{fmt}")
        b = deliver(whole, fmt, tmp_path / f"whole-{fmt}")
        assert _folder(a.outdir) == _folder(b.outdir), fmt
    assert streamed._sim is None          # the streamed export never held the study
    assert streamed.truth == whole.truth
    assert streamed.n_records() == whole.n_records()


def test_the_cli_summary_runs_no_subject_twice(study, tiny, tmp_path):
    """What `clinpipe simulate` asks before delivering (record and form counts) runs the
    subjects once, into the export, never into memory."""
    sim = simulate_study(study, 10, 3)
    assert len(sim.records) == len(load_forms(study).forms)
    assert sim.n_records() > 0
    deliver(sim, "csv", tmp_path / "t")
    assert sim._sim is None
    assert sim.records["IC"]                  # asking for the records runs them into memory
    assert sim._sim is not None
