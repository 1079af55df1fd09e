"""The engine's columnar paths (issue 18) against the plain pandas formulation they replace:
SV spans, --SEQ run numbers, combine_parts renumbering, accepted records without copies."""
import numpy as np
import pandas as pd
import pytest

from sdtm.build import combine_parts
from sdtm.engine import DomainResult, run_numbers
from sdtm.spec import DomainSpec
from sdtm.subject_visits import build_sv


def _sv_reference(datasets, dm):
    """What build_sv computed before issue 18: a groupby min/max of the date texts."""
    parts = []
    for name, df in datasets.items():
        dtc = f"{name}DTC" if f"{name}DTC" in df.columns else f"{name}STDTC"
        has = df["VISITNUM"].notna()
        parts.append(df.loc[has, ["STUDYID", "USUBJID", "VISITNUM", "VISIT", dtc]]
                     .set_axis(["STUDYID", "USUBJID", "VISITNUM", "VISIT", "DTC"], axis=1))
    rec = pd.concat(parts, ignore_index=True)
    rec["DATE"] = rec["DTC"].str[:10].where(rec["DTC"].str.match(r"^\d{4}-\d{2}-\d{2}"), "")
    keys = ["STUDYID", "USUBJID", "VISITNUM", "VISIT"]
    dated = rec[rec["DATE"] != ""]
    sv = dated.groupby(keys, as_index=False).agg(SVSTDTC=("DATE", "min"), SVENDTC=("DATE", "max"))
    undated = rec.loc[~rec.set_index(keys).index.isin(sv.set_index(keys).index), keys].drop_duplicates()
    sv = pd.concat([sv, undated.assign(SVSTDTC="", SVENDTC="")], ignore_index=True)
    return sv.sort_values(["USUBJID", "VISITNUM"], kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("seed", range(5))
def test_sv_spans_equal_the_groupby_of_the_texts(seed):
    rng = np.random.default_rng(seed)
    n = 400
    dates = [f"2025-01-0{d}" for d in range(1, 10)] + ["2025-01", "2025", "", "2025-01-03T10:00"]
    def frame(prefix):
        return pd.DataFrame({
            "STUDYID": "S", "USUBJID": rng.choice(["S-3", "S-1", "S-2", "S-10"], n).astype(object),
            "VISITNUM": rng.choice([1.0, 2.0, 2.01, 3.0, np.nan], n),
            "VISIT": rng.choice(["DAY 1", "SCREENING", "UNSCHEDULED 2.01", "Z"], n).astype(object),
            f"{prefix}DTC": rng.choice(dates, n).astype(object)})
    datasets = {"LB": frame("LB"), "VS": frame("VS")}
    dm = pd.DataFrame({"USUBJID": ["S-1", "S-2", "S-3", "S-10"], "RFSTDTC": "2025-01-04"})
    got = build_sv(datasets, dm)
    want = _sv_reference(datasets, dm)
    pd.testing.assert_frame_equal(got[want.columns], want, check_exact=True)


def test_run_numbers_count_within_each_run():
    keys = pd.Series(["A", "A", "B", "C", "C", "C"], dtype=object)
    assert run_numbers(keys).tolist() == [1.0, 2.0, 1.0, 1.0, 2.0, 3.0]
    assert run_numbers(keys[:0]).tolist() == []


def _part(subjects, terms, source, supp_rows):
    data = pd.DataFrame({"STUDYID": "S", "DOMAIN": "XX", "USUBJID": subjects, "XXTERM": terms})
    data = data.sort_values(["USUBJID", "XXTERM"], kind="stable").reset_index(drop=True)
    data["XXSEQ"] = data.groupby("USUBJID").cumcount().astype("float64") + 1
    trace = pd.DataFrame({"USUBJID": data["USUBJID"], "SEQ": data["XXSEQ"], "FORM": source,
                          "RECORDID": [f"{source}{i}" for i in range(len(data))]})
    supp = pd.DataFrame({"STUDYID": "S", "RDOMAIN": "XX", "USUBJID": [data["USUBJID"][i] for i in supp_rows],
                         "IDVAR": "XXSEQ", "IDVARVAL": [str(int(data["XXSEQ"][i])) for i in supp_rows],
                         "QNAM": "Q", "QLABEL": "q", "QVAL": [f"{source}-{i}" for i in supp_rows],
                         "QORIG": "CRF", "QEVAL": ""})
    return data, DomainResult("XX", data, supp, trace)


def test_combine_parts_renumbers_seq_and_the_trace_and_supp_follow():
    spec = DomainSpec(path=None, domain="XX", source="A", keys=["STUDYID", "USUBJID", "XXTERM"], variables={})
    a_data, a = _part(["S-1", "S-1", "S-2"], ["b", "d", "a"], "A", [1, 2])
    _, b = _part(["S-1", "S-2", "S-2"], ["c", "a", "z"], "B", [0, 2])
    joined = pd.DataFrame({"USUBJID": ["S-2"], "SEQ": [np.nan], "FORM": ["ENR"], "RECORDID": ["E1"]})
    a = DomainResult("XX", a.data, a.supp, pd.concat([a.trace, joined], ignore_index=True))
    columns = list(a_data.columns)
    res = combine_parts("XX", [(spec, a), (spec, b)])
    assert res.data[["USUBJID", "XXTERM", "XXSEQ"]].values.tolist() == [
        ["S-1", "b", 1.0], ["S-1", "c", 2.0], ["S-1", "d", 3.0],
        ["S-2", "a", 1.0], ["S-2", "a", 2.0], ["S-2", "z", 3.0]]   # ties: part order
    seq_of = {(r.FORM, r.RECORDID): r.SEQ for r in res.trace.itertuples()}
    assert seq_of[("A", "A1")] == 3.0 and seq_of[("B", "B0")] == 2.0 and seq_of[("B", "B1")] == 2.0
    assert np.isnan(seq_of[("ENR", "E1")])           # a joined record keeps no --SEQ
    assert res.supp[["QVAL", "IDVARVAL"]].values.tolist() == [
        ["A-1", "3"], ["A-2", "1"], ["B-0", "2"], ["B-2", "3"]]
    assert list(res.data.columns) == columns and res.data.index.equals(pd.RangeIndex(6))
