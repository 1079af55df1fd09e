"""Golden tests of the named algorithms on small literal inputs."""
import numpy as np
import pandas as pd
import pytest

from clinpipe.config import load_study
from sdtm import dates
from sdtm.algorithms import ALGORITHMS, Context
from sdtm.epochs import epoch_of
from sdtm.spec import VarSpec
from sdtm.visits import planned_study_day, visit_columns


def _run(alg, arg, src, out=None, **options):
    out = out if out is not None else pd.DataFrame(index=src.index)
    ctx = Context(study=load_study("RS001"), src=src, out=out)
    return ALGORITHMS[alg].run(ctx, VarSpec("X", alg, arg, options, None)), ctx


def test_iso8601_full_partial_and_time():
    src = pd.DataFrame({"D": ["2025-03-07", "2025-03", "2025", "", "2025-03-07"],
                        "D_RAW": ["07 MAR 2025", "UN MAR 2025", "UN UNK 2025", "", "07 MAR 2025"],
                        "T": ["14:30", "09:00", "", "10:00", ""]})
    got, ctx = _run("iso8601", {"date": "D", "time": "T"}, src)
    # a time needs a full date; a partial date stays partial (ISO 8601 right truncation)
    assert got.tolist() == ["2025-03-07T14:30", "2025-03", "2025", "", "2025-03-07"]
    assert ctx.issues == []


def test_iso8601_reports_impossible_date():
    src = pd.DataFrame({"D": [""], "D_RAW": ["30 FEB 2025"]})
    got, ctx = _run("iso8601", "D", src)
    assert got.tolist() == [""]
    assert ctx.issues[0][2] == "30 FEB 2025"


def test_study_day_has_no_day_zero():
    dtc = pd.Series(["2025-03-10", "2025-03-09", "2025-03-11", "2025-02-28", "2025-03", "", "2025-03-10T08:00"])
    ref = pd.Series(["2025-03-10"] * 7)
    got = dates.study_day(dtc, ref)
    assert got[:4].tolist() == [1, -1, 2, -10]
    assert np.isnan(got[4]) and np.isnan(got[5])
    assert got[6] == 1


def test_planned_study_day_from_schedule_day():
    assert [planned_study_day(d) for d in (-5, -1, 0, 1, 28)] == [-5, -1, 1, 2, 29]


def test_visit_numbers_scheduled_and_unscheduled():
    """Unscheduled visits are numbered once per study, from every form's records: after the
    latest scheduled visit on or before them, 0.01 apart in date order."""
    from edc.forms import load_forms
    from sdtm.visits import unscheduled_visits

    study, forms = load_study("RS001"), load_forms("RS001")
    lb = pd.DataFrame({"SUBJECT": ["1"] * 6, "FOLDER": ["D7", "UNS", "UNS", "D10", "LOGS", "UNS"],
                       "FOLDERSEQ": ["1", "1", "2", "1", "1", "3"],
                       "LBDAT": ["2025-01-08", "2025-01-09", "2025-01-09", "2025-01-11", "2025-01-01",
                                 "2025-01-12"]})
    # a vital-signs record dates UNS 2 earlier than its lab: the instance's earliest record counts
    vs = pd.DataFrame({"SUBJECT": ["1"], "FOLDER": ["UNS"], "FOLDERSEQ": ["2"], "VSDAT": ["2025-01-08"]})
    uns = unscheduled_visits(study, forms, {"LB": lb, "VS": vs})
    cols = visit_columns(study, lb, uns)
    num = cols["VISITNUM"].tolist()
    assert num[0] == 10 and num[3] == 11 and np.isnan(num[4])
    # after Day 7 (10): UNS 2 (Jan 8) then UNS 1 (Jan 9); after Day 10 (11): UNS 3
    assert num[2] == pytest.approx(10.01) and num[1] == pytest.approx(10.02) and num[5] == pytest.approx(11.01)
    assert cols["VISIT"].tolist() == ["DAY 7", "UNSCHEDULED 10.02", "UNSCHEDULED 10.01", "DAY 10", "",
                                      "UNSCHEDULED 11.01"]
    assert cols["VISITDY"].tolist()[:1] == [8.0]      # Day 7 after infusion = study day 8


def test_assign_ct_map_synonym_and_unmapped():
    src = pd.DataFrame({"R": ["3", "1", "X9", ""], "R_DEC": ["Asian", "White", "", ""]})
    got, ctx = _run("assign_ct", "R", src, codelist="RACE")
    assert got.tolist() == ["ASIAN", "WHITE", "X9", ""]
    assert [(i[1], i[2]) for i in ctx.issues] == [(2, "X9")]
    got, _ = _run("assign_ct", "R", src, map={"3": "OTHER"}, codelist="RACE")
    assert got.tolist()[0] == "OTHER"


def test_condition_nested():
    src = pd.DataFrame({"A": ["Y", "N", "N"], "B": ["", "", "x"]})
    got, _ = _run("if", "A == 'Y'", src, then={"hardcode": "first"},
                  **{"else": {"if": "B != ''", "then": {"hardcode": "second"}}})
    assert got.tolist() == ["first", "", "second"]


def test_epoch_from_elements():
    se = pd.DataFrame({"USUBJID": ["S1", "S1", "S1"], "SESTDTC": ["2025-01-01", "2025-01-20", "2025-01-25"],
                       "SEENDTC": ["2025-01-20", "2025-01-25", ""], "EPOCH": ["SCREENING", "TREATMENT", "FOLLOW-UP"]})
    got = epoch_of(pd.Series(["S1"] * 5), pd.Series(["2025-01-05", "2025-01-20", "2025-02-10", "2025-01", "2024-12-01"]), se)
    # the boundary day belongs to the element that starts on it
    assert got.tolist() == ["SCREENING", "TREATMENT", "FOLLOW-UP", "", ""]
