"""Listings: the generic listing.records and the DLT listings (l-16-2-7-1 events,
l-16-2-7-2 investigator vs rules) against the ADAE records selected here directly."""
from __future__ import annotations

import pandas as pd
import pytest

from tlf.analyses import listing
from tlf.catalog import OutputSpec, load_catalog
from tlf.context import TlfContext, TlfInputError


def _keys(ard):
    return set(ard.VARLVL)


def _want(df):
    return {f"{u} AESEQ {int(q)}" for u, q in zip(df.USUBJID, df.AESEQ)}


def test_dlt_events_listing(sample_tlf):
    s = sample_tlf["RS001"]
    adsl, adae = s.adam("ADSL"), s.adam("ADAE")
    saf = set(adsl.loc[adsl.SAFFL == "Y", "USUBJID"])
    want = adae[(adae.DLTFL == "Y") & adae.USUBJID.isin(saf)]
    ard = s.ard("l-16-2-7-1")
    assert _keys(ard) == _want(want) and (ard.STATVAL == 1).all()
    lin = s.lineage()
    lin = lin[lin.OUTID == "l-16-2-7-1"]
    assert len(lin) == len(ard)        # each listed line traces to its one record


def test_dlt_disagreement_listing(sample_tlf):
    s = sample_tlf["RS001"]
    adsl, adae = s.adam("ADSL"), s.adam("ADAE")
    saf = set(adsl.loc[adsl.SAFFL == "Y", "USUBJID"])
    w = adae[(adae.DLTWINFL == "Y") & adae.DLTINVFL.isin(["Y", "N"]) &
             (adae.DLTINVFL != adae.DLTFL) & adae.USUBJID.isin(saf)]
    assert _keys(s.ard("l-16-2-7-2")) == _want(w)


def _ctx(sample_tlf):
    s = sample_tlf["RS001"]
    return TlfContext.open("RS001", s.base / "adam", load_catalog("RS001"))


def _spec(**params):
    return OutputSpec(id="l-16-9-9", type="listing", title="test", population="SAFFL",
                      datasets=["ADAE"], analysis="listing.records", by="TRT01A",
                      params=params)


def test_generic_records_filter_sort_and_adsl_columns(sample_tlf):
    ctx = _ctx(sample_tlf)
    spec = _spec(dataset="ADAE", filter={"AESER": "Y", "ATOXGR": {"not": ["1", "2"]}},
                 columns=[{"var": "TRT01A", "label": "Dose"}, {"var": "USUBJID", "label": "Subject"},
                          {"var": "ASTDY", "label": "Day"}, {"var": "AEDECOD", "label": "Term"}],
                 sort=["USUBJID", "ASTDY"])
    res = listing.records(ctx, spec)
    adae, adsl = ctx.dataset("ADAE"), ctx.adsl
    want = adae[(adae.AESER == "Y") & ~adae.ATOXGR.astype(str).isin(["1", "2"]) &
                adae.USUBJID.isin(adsl.loc[adsl.SAFFL == "Y", "USUBJID"])]
    want = want.sort_values(["USUBJID", "ASTDY", "AESEQ"], kind="stable")
    body = res.table.body
    assert body.USUBJID.tolist() == want.USUBJID.tolist()
    assert body.TRT01A.tolist() == want.USUBJID.map(adsl.set_index("USUBJID").TRT01A).tolist()
    assert res.table.headers == ["Dose", "Subject", "Day", "Term"]
    assert len(res.ard) == len(want) == len(res.members)
    assert (res.members.ROLE == "num").all()


@pytest.mark.parametrize("params, word", [
    ({"dataset": "ADAE", "columns": [{"var": "NOPE"}]}, "NOPE"),
    ({"dataset": "ADAE", "filter": {"NOPE": "Y"}, "columns": [{"var": "USUBJID"}]}, "NOPE"),
    ({"dataset": "ADAE"}, "columns"),
])
def test_bad_listing_spec_names_the_problem(sample_tlf, params, word):
    with pytest.raises(TlfInputError, match=word):
        listing.records(_ctx(sample_tlf), _spec(**params))


def test_literal_listing_text_and_empty():
    frame = pd.DataFrame({"A": [1.0, None], "B": [1.5, 2.0]})
    assert listing._text(frame.A).tolist() == ["1", ""]
    assert listing._text(frame.B).tolist() == ["1.5", "2"]


def test_a_listing_with_no_records_is_an_empty_listing(sample_tlf):
    """An early cut may have no DLT yet: an empty listing, not a crash (found building an
    RS001 cut with 5 subjects)."""
    ctx = _ctx(sample_tlf)
    spec = _spec(dataset="ADAE", filter={"AESER": "no such value"},
                 columns=[{"var": "USUBJID", "label": "Subject"}, {"var": "AEDECOD", "label": "Term"}])
    res = listing.records(ctx, spec)
    assert len(res.ard) == 0 and len(res.members) == 0
