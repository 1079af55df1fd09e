"""ASTCT 2019 CRS and ICANS grading, one case per row of Lee et al. 2019 Tables 3 and 5
(Biol Blood Marrow Transplant 2019;25:625-38)."""
import pandas as pd
import pytest

from adam.astct import compute_crs_grade, compute_icans_grade, ice_level


def S(*v):
    return pd.Series(list(v), dtype=object)


@pytest.mark.parametrize("fever, hypotension, hypoxia, grade", [
    ("ABSENT", "NONE", "NONE", 0),
    ("PRESENT", "NONE", "NONE", 1),                          # fever alone: grade 1
    ("PRESENT", "NO_VASOPRESSOR", "NONE", 2),
    ("PRESENT", "NONE", "LOW_FLOW", 2),
    ("PRESENT", "ONE_VASOPRESSOR", "LOW_FLOW", 3),           # the more severe of the two
    ("PRESENT", "NO_VASOPRESSOR", "HIGH_FLOW", 3),
    ("PRESENT", "MULTIPLE_VASOPRESSORS", "NONE", 4),
    ("PRESENT", "NONE", "POSITIVE_PRESSURE", 4),
    ("ABSENT", "ONE_VASOPRESSOR", "HIGH_FLOW", 0),           # no fever: not CRS by the definition
])
def test_crs_table_3(fever, hypotension, hypoxia, grade):
    assert compute_crs_grade(S(fever), S(hypotension), S(hypoxia)).tolist() == [grade]


def test_crs_after_anticytokine_therapy_needs_no_fever_and_death_is_grade_5():
    g = compute_crs_grade(S("ABSENT", "PRESENT"), S("ONE_VASOPRESSOR", "MULTIPLE_VASOPRESSORS"), S("NONE", "NONE"),
                          anticytokine=pd.Series([True, False]), fatal=pd.Series([False, True]))
    assert g.tolist() == [3, 5]


@pytest.mark.parametrize("ice, consciousness, seizure, motor, edema, grade", [
    (10, "NORMAL", "NONE", "NONE", "NONE", 0),
    (8, "AWAKENS_SPONTANEOUSLY", "NONE", "NONE", "NONE", 1),
    (7, "NORMAL", "NONE", "NONE", "NONE", 1),
    (6, "NORMAL", "NONE", "NONE", "NONE", 2),
    (3, "AWAKENS_TO_VOICE", "NONE", "NONE", "NONE", 2),
    (2, "NORMAL", "NONE", "NONE", "NONE", 3),
    (9, "AWAKENS_TO_TOUCH", "NONE", "NONE", "NONE", 3),
    (9, "NORMAL", "RESOLVES_RAPIDLY", "NONE", "NONE", 3),
    (9, "NORMAL", "NONE", "NONE", "FOCAL", 3),
    (9, "UNAROUSABLE", "NONE", "NONE", "NONE", 4),
    (9, "NORMAL", "LIFE_THREATENING", "NONE", "NONE", 4),
    (9, "NORMAL", "NONE", "DEEP_FOCAL_WEAKNESS", "NONE", 4),
    (9, "NORMAL", "NONE", "NONE", "DIFFUSE", 4),
])
def test_icans_table_5(ice, consciousness, seizure, motor, edema, grade):
    g = compute_icans_grade(ice_level(pd.Series([ice])), S(consciousness), S(seizure), S(motor), S(edema))
    assert g.tolist() == [grade]


def test_ice_unable_is_grade_4_and_unknown_levels_are_refused():
    level = ice_level(pd.Series([0.0, 5.0]), unable=pd.Series([True, False]))
    assert level.tolist() == ["UNABLE", "3-6"]
    with pytest.raises(ValueError, match="unknown level"):
        compute_crs_grade(S("PRESENT"), S("SOME"), S("NONE"))
