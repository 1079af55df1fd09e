"""What the SDTM build does to hold less at 10,000 subjects (issue 18) gives what the plain
pandas formulation gave: columns taken one at a time, parts emptied into their union, raw
frames let go once no domain left reads them, conformed columns let go as converted."""
import numpy as np
import pandas as pd
import pytest

from clinpipe.paths import faulty_data_dir, latest_transfer
from edc.read import read_transfer
from sdtm.build import _named, _union
from sdtm.conform import conform_text
from sdtm.engine import AcceptedRecords, DomainResult, forms_read, sort_order, take_columns
from sdtm.spec import DomainSpec, VarSpec
from tests.sdtm.test_conform import ae, words


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(index=pd.Index(rng.permutation(n) * 3 + 7))    # labels, not positions
    df["A"] = rng.choice(["x", "y", None], n).astype(object)
    df["N"] = rng.normal(size=n)
    df["I"] = rng.integers(0, 5, n)
    return df


@pytest.mark.parametrize("seed", range(3))
def test_take_columns_is_take_and_empties_its_input(seed):
    df = _frame(50, seed)
    order = np.random.default_rng(seed).permutation(50)
    expected = df.take(order)
    got = take_columns(df, order)
    pd.testing.assert_frame_equal(got, expected)       # values, dtypes, index labels
    assert list(df.columns) == [] and len(df) == 50


@pytest.mark.parametrize("seed", range(3))
def test_sort_order_is_the_stable_sort_values_order_for_one_key_or_several(seed):
    df = _frame(200, seed)
    df["B"] = np.random.default_rng(seed).choice(["b", "a", None], 200).astype(object)
    for keys in (["A"], ["A", "B"], ["B", "N"]):
        expected = df.sort_values(keys, kind="stable").index
        assert df.index.take(sort_order([df[k].to_numpy() for k in keys])).equals(expected), keys


def test_the_union_of_parts_is_what_concat_gives():
    a, b = _frame(6, 1), _frame(4, 2).drop(columns=["A", "I"]).assign(B=["p", "q", "r", "s"])
    parts = [DomainResult("XX", a, None, None), DomainResult("XX", b, None, None)]
    expected = pd.concat([a, b], ignore_index=True)
    for column in expected.columns:     # a column missing in a part: NaN there, concat's dtype
        pd.testing.assert_series_equal(_union(parts, column), expected[column])


def _spec(**variables) -> DomainSpec:
    return DomainSpec(path=None, domain="XX", source="SRC", keys=[],
                      variables={n: VarSpec(n, alg, arg, opts, None) for n, (alg, arg, opts) in variables.items()})


def test_forms_read_names_joined_looked_up_and_branch_forms():
    spec = _spec(A=("assign", "FLD", {}), B=("assign", "ENR.ELIG", {}),
                 C=("if", "`ENR.ELIG` == 'N'", {"then": {"hardcode": "X"},
                                                "else": {"visit_value": "RSP.RSMETH"}}),
                 D=("subject_date", "INF.INFDAT", {}))
    assert forms_read(spec) == {"SRC", "ENR", "RSP", "INF"}
    assert forms_read(_spec(E=("last_participation", "all", {}))) is None    # every form


def test_accepted_records_let_go_keep_their_rejections_and_refuse_a_late_reader():
    raw = read_transfer(latest_transfer("RS001", faulty_data_dir()) / "csv", study="RS001")
    accepted = AcceptedRecords(raw)
    form = next(f for f in raw.frames if len(accepted[f][1]))     # a form with rejected records
    rejected = accepted[form][1]
    accepted.let_go(form)
    assert accepted.rejected(form) is rejected and form in accepted.gone
    with pytest.raises(RuntimeError, match=f"form {form} were let go"):
        accepted[form]


def test_conform_consuming_gives_the_same_and_lets_each_column_go():
    df = ae("headache", "nausea", "rash", seq=[1.0, 2.0, 3.0])
    kept = df.copy()
    plain, plain_texts = conform_text(kept, "AE", arrow=True)
    got, texts = conform_text(df, "AE", arrow=True, consume=True)
    pd.testing.assert_frame_equal(got, plain)
    assert list(texts) == list(plain_texts)
    assert all(texts[n].values.equals(plain_texts[n].values) and np.array_equal(texts[n].codes, plain_texts[n].codes)
               for n in texts)
    assert list(df.columns) == [] and len(df) == 3
    assert list(kept.columns) == list(ae("x").columns)     # not consuming: left as it was


def test_conform_consuming_leaves_long_text_whole_for_the_split():
    df = ae(words(250), "short", seq=[1.0, 2.0])
    columns = list(df.columns)
    conform_text(df, "AE", arrow=True, consume=True)
    assert list(df.columns) == columns     # split_long_text still needs every column


def test_accepted_records_can_leave_out_a_column_and_reject_the_same_records():
    raw = read_transfer(latest_transfer("RS001", faulty_data_dir()) / "csv", study="RS001")
    whole, lean = AcceptedRecords(raw), AcceptedRecords(raw, ("LASTMODIFIED",))
    for form in raw.frames:
        records, rejected = lean[form]
        assert "LASTMODIFIED" not in records.columns
        pd.testing.assert_frame_equal(records, whole[form][0].drop(columns="LASTMODIFIED"))
        pd.testing.assert_frame_equal(rejected, whole[form][1])


def test_a_column_named_by_a_spec_is_kept():
    specs = {"XX": [_spec(A=("assign", "FLD", {}))]}
    assert not _named("LASTMODIFIED", specs)
    specs["YY"] = [_spec(B=("if", "LASTMODIFIED > '2025'", {"then": {"hardcode": "Y"}}))]
    assert _named("LASTMODIFIED", specs)
