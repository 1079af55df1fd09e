"""The time-to-event engine (adam/tte.py) on literal frames: every censoring case of STUDIES.md §3
(FDA 2018), death as an event, OS at last known alive, EFS treatment failure on Day 0, DOR
from the first response, and the missed-assessment deadline."""
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from adam.merged import RuleError
from adam.tte import CensorSource, EventSource, Source, TteParam, deadline_after, derive_param_tte

START = pd.Timestamp("2024-01-01")
CUT = dt.date(2025, 6, 30)


def day(n):
    return START + pd.Timedelta(days=n)


def iso(n):
    return day(n).strftime("%Y-%m-%d")


class Frames:
    """The CutoffView interface the engine uses: get(name, required) and cutoff."""

    def __init__(self, cutoff=CUT, **datasets):
        self.cutoff, self.data = cutoff, datasets

    def has(self, name):
        return name in self.data

    def get(self, name, required=()):
        df = self.data.get(name, pd.DataFrame())
        assert all(v in df.columns for v in required) or df.empty
        return df


def _rs(rows):
    """rows: (subject, day, criterion, response)."""
    return pd.DataFrame({"USUBJID": [r[0] for r in rows], "RSSEQ": np.arange(1.0, len(rows) + 1),
                         "RSTESTCD": "OVRLRESP", "RSCAT": [r[2] for r in rows],
                         "RSSTRESC": [r[3] for r in rows], "RSDTC": [iso(r[1]) for r in rows],
                         "RSDY": [float(r[1] + 1) for r in rows]})


LUG, NCCN = "LUGANO CLASSIFICATION", "NCCN ALL V3.2025"
ADEQ = Source("RS", "RSDTC", "(RSTESTCD == 'OVRLRESP') & (RSSTRESC != 'NE')")
PD = EventSource("RS", "RSDTC", "RSSTRESC == 'PD'", evntdesc="PROGRESSIVE DISEASE")
DEATH = EventSource("ADSL", "DTHDT", evntdesc="DEATH")
NEW_TX = CensorSource(kind="new_therapy", cnsr=2, evntdesc="NEW ANTI-CANCER THERAPY",
                      cnsdtdsc="LAST ADEQUATE ASSESSMENT ON OR BEFORE NEW ANTI-CANCER THERAPY",
                      sources=(Source("CM", "CMSTDTC", "CMCAT == 'SUBSEQUENT ANTI-CANCER THERAPY'", "M"),))
MISSED = CensorSource(kind="missed", cnsr=3, evntdesc="EVENT AFTER TWO OR MORE MISSED ASSESSMENTS",
                      cnsdtdsc="LAST ADEQUATE ASSESSMENT BEFORE THE MISSED ASSESSMENTS")
LAST = CensorSource(kind="last_assessment", cnsr=4, evntdesc="NO EVENT", cnsdtdsc="LAST ADEQUATE ASSESSMENT")
NONE = CensorSource(kind="no_assessment", cnsr=1, evntdesc="NO ADEQUATE ASSESSMENT AFTER START", cnsdtdsc="START DATE")
ALIVE = CensorSource("ADSL", "LSTALVDT", kind="source", cnsr=5, evntdesc="ALIVE", cnsdtdsc="LAST DATE KNOWN ALIVE")
# scheduled assessments Day 28 (window -3/+3), 90, 180, 270, 365 (+-14), from the start date
VISITS = [(28, -3, 3), (90, -14, 14), (180, -14, 14), (270, -14, 14), (365, -14, 14)]


def _schedule(subjects):
    return pd.DataFrame([{"USUBJID": s, "LODT": day(d + lo), "HIDT": day(d + hi)}
                         for s in subjects for d, lo, hi in VISITS])


def _adsl(subjects, death=None, alive=None):
    death, alive = death or {}, alive or {}
    return pd.DataFrame({"USUBJID": subjects, "TRTSDT": START, "ENRLDT": START - pd.Timedelta(days=20),
                         "POP": "Y",
                         "DTHDT": [day(death[s]) if s in death else pd.NaT for s in subjects],
                         "LSTALVDT": [day(alive.get(s, death.get(s, 400))) for s in subjects]})


def _pfs(subjects, **kw):
    return TteParam("PFS", "Progression-Free Survival (Days)", "POP == 'Y'", "TRTSDT", (PD, DEATH),
                    (NEW_TX, MISSED, LAST, NONE), ADEQ, schedule=_schedule(subjects), **kw)


@pytest.fixture
def pfs():
    rs = _rs([
        ("NOEV", 28, LUG, "CR"), ("NOEV", 90, LUG, "CR"), ("NOEV", 180, LUG, "NE"),     # NE is not adequate
        ("NEWTX", 28, LUG, "PR"), ("NEWTX", 90, LUG, "PR"), ("NEWTX", 180, LUG, "PD"),
        ("GAP", 28, LUG, "SD"), ("GAP", 300, LUG, "PD"),                                # Day 90 and 180 missed
        ("ONEGAP", 28, LUG, "SD"), ("ONEGAP", 185, LUG, "PD"),                          # only Day 90 missed
        ("DEATH", 28, LUG, "CR"),
        ("PROG", 28, LUG, "PR"), ("PROG", 92, LUG, "PD"),
    ])
    cm = pd.DataFrame({"USUBJID": ["NEWTX", "PROG"], "CMSEQ": [1.0, 1.0],
                       "CMCAT": "SUBSEQUENT ANTI-CANCER THERAPY", "CMSTDTC": [iso(120), iso(100)]})
    subjects = ["NOEV", "NEWTX", "GAP", "ONEGAP", "NOPOST", "DEATH", "EARLYDTH", "LATEDTH", "PROG"]
    adsl = _adsl(subjects, death={"DEATH": 60, "EARLYDTH": 50, "LATEDTH": 150})
    out = derive_param_tte(Frames(RS=rs, CM=cm), adsl, _pfs(subjects))
    return out.set_index("USUBJID")


def test_no_event_censored_at_last_adequate_assessment(pfs):
    r = pfs.loc["NOEV"]
    assert (r.CNSR, r.ADT, r.AVAL) == (4, day(90), 91) and r.CNSDTDSC == "LAST ADEQUATE ASSESSMENT"
    assert (r.SRCDOM, r.SRCVAR, r.SRCSEQ) == ("RS", "RSDTC", 2)


def test_new_therapy_before_event_censors_at_last_assessment_before_it(pfs):
    r = pfs.loc["NEWTX"]
    assert (r.CNSR, r.ADT) == (2, day(90)) and r.EVNTDESC == "NEW ANTI-CANCER THERAPY"
    # therapy after the progression: the progression stands
    assert (pfs.loc["PROG", "CNSR"], pfs.loc["PROG", "ADT"]) == (0, day(92))


def test_event_after_two_missed_assessments_censored_before_the_gap(pfs):
    r = pfs.loc["GAP"]
    assert (r.CNSR, r.ADT, r.AVAL) == (3, day(28), 29)
    # one missed assessment is not enough: Day 185 is inside the Day-180 window
    assert (pfs.loc["ONEGAP", "CNSR"], pfs.loc["ONEGAP", "ADT"]) == (0, day(185))


def test_no_post_baseline_assessment_censored_on_day_1(pfs):
    r = pfs.loc["NOPOST"]
    assert (r.CNSR, r.ADT, r.AVAL, r.SRCDOM, r.SRCVAR) == (1, START, 1, "ADSL", "TRTSDT")


def test_death_without_progression_is_an_event(pfs):
    r = pfs.loc["DEATH"]
    assert (r.CNSR, r.ADT, r.EVNTDESC, r.SRCDOM, r.SRCVAR) == (0, day(60), "DEATH", "ADSL", "DTHDT")
    assert np.isnan(r.SRCSEQ) and r.CNSDTDSC == ""
    # death before the second scheduled assessment is due (Day 90 + 14): still an event
    assert (pfs.loc["EARLYDTH", "CNSR"], pfs.loc["EARLYDTH", "ADT"]) == (0, day(50))
    # death at Day 150 with no assessment at all: Day 28 and 90 missed -> censored on Day 1
    assert (pfs.loc["LATEDTH", "CNSR"], pfs.loc["LATEDTH", "ADT"]) == (3, START)


def test_records_conform(pfs):
    assert pfs.index.is_unique and (pfs.ADT >= pfs.STARTDT).all()
    assert set(pfs.CNSR[pfs.EVNTDESC.isin(["PROGRESSIVE DISEASE", "DEATH"])]) == {0}
    assert (pfs.AVAL == (pfs.ADT - pfs.STARTDT).dt.days + 1).all()


def test_os_censored_at_last_known_alive():
    adsl = _adsl(["A", "B"], death={"B": 200}, alive={"A": 333})
    p = TteParam("OS", "Overall Survival (Days)", "POP == 'Y'", "ENRLDT", (DEATH,), (ALIVE,))
    out = derive_param_tte(Frames(), adsl, p).set_index("USUBJID")
    assert (out.loc["A", "CNSR"], out.loc["A", "ADT"], out.loc["A", "SRCVAR"]) == (5, day(333), "LSTALVDT")
    assert out.loc["A", "AVAL"] == 333 + 20 + 1          # from enrolment, 20 days before the infusion
    assert (out.loc["B", "CNSR"], out.loc["B", "ADT"]) == (0, day(200))


def test_efs_treatment_failure_is_an_event_on_day_0():
    rs = _rs([("FAIL", 28, NCCN, "NR"), ("FAIL", 90, NCCN, "NR"), ("CR", 28, NCCN, "CR"),
              ("CR", 200, NCCN, "RELAPSED DISEASE"), ("EARLY", 25, NCCN, "NR")])
    adsl = _adsl(["FAIL", "CR", "EARLY"])
    adsl.loc[adsl.USUBJID == "EARLY", "TRTSDT"] = pd.Timestamp(CUT) - pd.Timedelta(days=30)
    adsl.loc[adsl.USUBJID == "EARLY", "LSTALVDT"] = pd.Timestamp(CUT)
    rem = "RSSTRESC.isin(['CR', 'CRi'])"
    p = TteParam("EFS", "Event-Free Survival (Days)", "POP == 'Y'", "TRTSDT",
                 (EventSource("RS", "RSDTC", rem, evntdesc="TREATMENT FAILURE", absent_by_day=104),
                  EventSource("RS", "RSDTC", "RSSTRESC == 'RELAPSED DISEASE'", evntdesc="RELAPSE"), DEATH),
                 (ALIVE,))
    rs.loc[rs.USUBJID == "EARLY", "RSDTC"] = (pd.Timestamp(CUT) - pd.Timedelta(days=5)).strftime("%Y-%m-%d")
    out = derive_param_tte(Frames(RS=rs), adsl, p).set_index("USUBJID")
    f = out.loc["FAIL"]
    assert (f.CNSR, f.ADT, f.AVAL, f.EVNTDESC, f.SRCVAR) == (0, START, 1, "TREATMENT FAILURE", "TRTSDT")
    assert (out.loc["CR", "CNSR"], out.loc["CR", "ADT"], out.loc["CR", "EVNTDESC"]) == (0, day(200), "RELAPSE")
    # still inside the Month-3 window at the cut-off: not (yet) a failure
    assert out.loc["EARLY", "CNSR"] == 5


def test_dor_starts_at_first_response():
    rs = _rs([("R", 28, LUG, "SD"), ("R", 90, LUG, "PR"), ("R", 180, LUG, "CR"), ("R", 270, LUG, "PD"),
              ("N", 28, LUG, "SD")])
    first = Source("RS", "RSDTC", "RSSTRESC.isin(['CR', 'PR'])")
    p = TteParam("DOR", "Duration of Response (Days)", "POP == 'Y'", first, (PD, DEATH),
                 (NEW_TX, MISSED, LAST, NONE), ADEQ, schedule=_schedule(["R", "N"]))
    out = derive_param_tte(Frames(RS=rs), _adsl(["R", "N"]), p).set_index("USUBJID")
    assert list(out.index) == ["R"]                       # non-responders have no DOR record
    r = out.loc["R"]
    assert (r.STARTDT, r.ADT, r.AVAL, r.CNSR, r.SRCSEQ) == (day(90), day(270), 181, 0, 4)


def test_dor_response_after_progression_starts_nothing():
    """STUDIES.md: BOR counts responses up to the first progression, so a PR after a PD makes
    no responder and no DOR record (start_before)."""
    rs = _rs([("LATE", 28, LUG, "PD"), ("LATE", 94, LUG, "PR"), ("LATE", 180, LUG, "PD"),
              ("R", 28, LUG, "PR"), ("R", 90, LUG, "PD"), ("R", 180, LUG, "CR")])
    first = Source("RS", "RSDTC", "RSSTRESC.isin(['CR', 'PR'])")
    p = TteParam("DOR", "Duration of Response (Days)", "POP == 'Y'", first, (PD, DEATH),
                 (NEW_TX, MISSED, LAST, NONE), ADEQ, schedule=_schedule(["LATE", "R"]),
                 start_before=Source("RS", "RSDTC", "RSSTRESC == 'PD'"))
    out = derive_param_tte(Frames(RS=rs), _adsl(["LATE", "R"]), p).set_index("USUBJID")
    assert list(out.index) == ["R"]
    assert (out.loc["R", "STARTDT"], out.loc["R", "ADT"], out.loc["R", "CNSR"]) == (day(28), day(90), 0)


def test_through_days_ignores_later_events():
    rs = _rs([("A", 28, LUG, "CR"), ("A", 365, LUG, "CR"), ("A", 800, LUG, "PD")])
    p = _pfs(["A"], through_days=744)
    out = derive_param_tte(Frames(RS=rs), _adsl(["A"]), p).set_index("USUBJID")
    assert (out.loc["A", "CNSR"], out.loc["A", "ADT"]) == (4, day(365))


def test_deadline_is_the_end_of_the_second_next_visit_window():
    sched = _schedule(["A", "B", "C", "D"])
    ref = pd.DataFrame({"USUBJID": ["A", "B", "C", "D"], "REFDT": [START, day(26), day(185), day(365)]})
    got = deadline_after(ref, sched)
    assert list(got[:3]) == [day(104), day(194), day(379)]  # Day 90, 180, 365 windows' ends
    assert pd.isna(got.iloc[3])                              # schedule over: nothing to miss


def test_unknown_censor_kind_is_an_error():
    p = TteParam("X", "X", "POP == 'Y'", "TRTSDT", (DEATH,), (CensorSource(kind="sometimes", cnsr=1),))
    with pytest.raises(RuleError, match="not one of"):
        derive_param_tte(Frames(), _adsl(["A"]), p)
