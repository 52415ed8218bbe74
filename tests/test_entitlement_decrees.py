"""The three 2020 decrees, on hand-built households: each test names the article it checks.

Amounts are integer cents. Ages are on the scheme's age date; a birthday on that
date counts.
"""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest

from payments.entitlement.decide import PRIOR_SCHEMA
from payments.entitlement.keys import beneficiary_keys
from payments.schemes import Scheme, load_scheme
from tests.households import SECRET, household, nir, one, run


@pytest.fixture(scope="module")
def may() -> Scheme:
    return load_scheme("aes-2020-05")


@pytest.fixture(scope="module")
def june() -> Scheme:
    return load_scheme("youth-2020-06")


@pytest.fixture(scope="module")
def november() -> Scheme:
    return load_scheme("aes-2020-11")


def kids(*births: date) -> list[date]:
    return list(births)


# --- décret 2020-519 (AES May 2020), age date 2020-05-15 ---------------------------


def test_may_art1_1_rsa_with_two_children(may: Scheme) -> None:
    d = one(
        may,
        household(rsa_cents=50000, children_birth_dates=kids(date(2012, 3, 4), date(2016, 11, 30))),
    )
    assert (d["status"], d["rule_id"], d["base_cents"], d["child_cents"]) == (
        "payable",
        "rsa",
        15000,
        20000,
    )
    assert d["payable_cents"] == 35000


def test_may_art1_1_rsa_zero_in_april_but_not_in_may(may: Scheme) -> None:
    april = household(reference_month="2020-04", rsa_cents=0, apl_cents=20000)
    may_row = {**april, "reference_month": "2020-05", "rsa_cents": 12000}
    (d,) = run(may, [april, may_row])
    assert d["rule_id"] == "rsa" and d["payable_cents"] == 15000 and d["months"] == 2


def test_may_art1_1_rsa_zero_in_both_months_is_not_the_rsa_rule(may: Scheme) -> None:
    april = household(
        reference_month="2020-04",
        rsa_cents=0,
        apl_cents=20000,
        children_birth_dates=kids(date(2010, 1, 1)),
    )
    (d,) = run(may, [april, {**april, "reference_month": "2020-05"}])
    assert d["rule_id"] == "housing_children" and d["payable_cents"] == 10000


def test_may_art1_2_ass_and_rsa_in_one_household_pays_one_150(may: Scheme) -> None:
    d = one(
        may,
        household(rsa_cents=10000, ass_cents=40000, children_birth_dates=kids(date(2015, 1, 1))),
    )
    assert d["rule_id"] == "rsa" and d["payable_cents"] == 25000


@pytest.mark.parametrize(
    "benefit", ["rso_cents", "ass_cents", "prime_forfaitaire_cents", "aer_cents"]
)
def test_may_art1_2_other_minima(may: Scheme, benefit: str) -> None:
    d = one(may, household(**{benefit: 30000}))
    assert d["rule_id"] == "minima" and d["payable_cents"] == 15000


def test_may_art2_housing_aid_without_children_gets_nothing(may: Scheme) -> None:
    d = one(may, household(als_cents=25000))
    assert d["status"] == "not_eligible" and d["reason"] == "no_rule" and d["payable_cents"] == 0


def test_may_art2_housing_aid_with_twins(may: Scheme) -> None:
    d = one(
        may,
        household(apl_cents=25000, children_birth_dates=kids(date(2018, 6, 1), date(2018, 6, 1))),
    )
    assert d["rule_id"] == "housing_children" and d["children"] == 2
    assert d["payable_cents"] == 20000


def test_may_art1_child_turning_20_on_the_age_date_is_no_longer_dependent(may: Scheme) -> None:
    on_date = household(rsa_cents=1, children_birth_dates=kids(date(2000, 5, 15)))
    day_after = household(rsa_cents=1, children_birth_dates=kids(date(2000, 5, 16)))
    assert one(may, on_date)["children"] == 0
    assert one(may, day_after)["children"] == 1
    assert one(may, day_after)["payable_cents"] == 25000


def test_may_art1_child_born_after_the_age_date_is_not_counted(may: Scheme) -> None:
    d = one(may, household(rsa_cents=1, children_birth_dates=kids(date(2020, 5, 16))))
    assert d["children"] == 0


def test_may_one_aid_per_household_across_funds(may: Scheme) -> None:
    first = household(fund_code="13", rsa_cents=1, reference_month="2020-04")
    moved = {**first, "fund_code": "84", "household_id": "7777777", "reference_month": "2020-05"}
    decisions = run(may, [first, moved])
    by_fund = {d["fund_code"]: d for d in decisions}
    # the latest reference month wins: the household now lives in 84
    assert by_fund["84"]["status"] == "payable"
    assert by_fund["13"]["status"] == "paid_by_other_fund"
    assert by_fund["13"]["reason"] == "paid_by_other_fund:84"
    assert sum(d["payable_cents"] for d in decisions) == 15000


def test_may_same_household_via_the_spouse(may: Scheme) -> None:
    a, b = nir(1), nir(2)
    x = household(fund_code="13", claimant_nir=a, spouse_nir=b, rsa_cents=1)
    y = household(fund_code="59", claimant_nir=b, spouse_nir=a, rsa_cents=1)
    decisions = run(may, [x, y])
    assert sorted(d["status"] for d in decisions) == ["paid_by_other_fund", "payable"]
    # same month: the registry order decides (13 before 59)
    assert next(d for d in decisions if d["status"] == "payable")["fund_code"] == "13"


# --- décret 2020-769 (youth June 2020), age date 2020-06-25 ------------------------


def test_june_art1_under_25_on_housing_aid(june: Scheme) -> None:
    d = one(
        june,
        household(apl_cents=20000, claimant_birth_date=date(1996, 1, 1), reference_month="2020-04"),
    )
    assert d["rule_id"] == "young_housing" and d["payable_cents"] == 20000


def test_june_art1_25th_birthday_on_the_age_date(june: Scheme) -> None:
    turning = household(apl_cents=1, claimant_birth_date=date(1995, 6, 25))
    not_yet = household(apl_cents=1, claimant_birth_date=date(1995, 6, 26))
    assert one(june, turning)["status"] == "not_eligible"
    assert one(june, not_yet)["payable_cents"] == 20000


def test_june_art1_partner_under_25(june: Scheme) -> None:
    d = one(
        june,
        household(
            apl_cents=1,
            claimant_birth_date=date(1990, 1, 1),
            spouse_nir=nir(1, date(1999, 1, 1)),
            spouse_birth_date=date(1999, 1, 1),
        ),
    )
    assert d["youngest_adult_age"] == 21 and d["payable_cents"] == 20000


@pytest.mark.parametrize(
    ("status", "paid"),
    [("student", 0), ("apprentice", 20000), ("salaried_student", 20000), ("none", 20000)],
)
def test_june_art1_students_only_if_apprentice_or_salaried(
    june: Scheme, status: str, paid: int
) -> None:
    d = one(
        june,
        household(
            apl_cents=1, claimant_birth_date=date(2000, 1, 1), claimant_student_status=status
        ),
    )
    assert d["payable_cents"] == paid


def test_june_art1_25_year_old_student(june: Scheme) -> None:
    d = one(
        june,
        household(
            apl_cents=1, claimant_birth_date=date(1995, 1, 1), claimant_student_status="student"
        ),
    )
    assert d["status"] == "not_eligible"


def test_june_not_cumulable_with_the_may_150(june: Scheme) -> None:
    paid_may = household(apl_cents=1, claimant_birth_date=date(2000, 1, 1))
    only_children_part = household(apl_cents=1, claimant_birth_date=date(2000, 2, 2))
    key = lambda r: beneficiary_keys(pa.array([r["claimant_nir"]]), SECRET)[0].as_py()  # noqa: E731
    prior = pa.table(
        {
            "beneficiary_key": [key(paid_may), key(only_children_part)],
            "scheme_id": ["aes-2020-05", "aes-2020-05"],
            "base_cents": [15000, 0],
        },
        schema=PRIOR_SCHEMA,
    )
    decisions = run(june, [paid_may, only_children_part], prior=prior)
    assert decisions[0]["status"] == "not_eligible"
    assert decisions[0]["reason"] == "not_cumulable:aes-2020-05"
    assert decisions[1]["payable_cents"] == 20000


# --- décret 2020-1453 (AES November 2020), age date 2020-11-27 ---------------------


def test_november_art1_I_1_rsa_with_a_child(november: Scheme) -> None:
    d = one(
        november,
        household(
            reference_month="2020-10", rsa_cents=1, children_birth_dates=kids(date(2010, 1, 1))
        ),
    )
    assert d["rule_id"] == "minima" and d["payable_cents"] == 25000


def test_november_art1_I_2_young_not_student_on_housing_aid(november: Scheme) -> None:
    d = one(
        november,
        household(
            reference_month="2020-10",
            apl_cents=1,
            claimant_birth_date=date(1998, 1, 1),
            children_birth_dates=kids(date(2019, 1, 1)),
        ),
    )
    assert d["rule_id"] == "young_housing" and d["payable_cents"] == 25000


def test_november_art1_II_young_student_gets_the_child_part_only(november: Scheme) -> None:
    d = one(
        november,
        household(
            reference_month="2020-10",
            apl_cents=1,
            claimant_birth_date=date(1998, 1, 1),
            claimant_student_status="student",
            children_birth_dates=kids(date(2019, 1, 1)),
        ),
    )
    assert d["rule_id"] == "housing_children" and d["payable_cents"] == 10000


def test_november_art1_I_under_25_150_not_cumulable_with_rsa_150(november: Scheme) -> None:
    d = one(
        november,
        household(
            reference_month="2020-09",
            rsa_cents=1,
            apl_cents=1,
            claimant_birth_date=date(1999, 1, 1),
        ),
    )
    assert d["rule_id"] == "minima" and d["payable_cents"] == 15000


def test_november_housing_aid_30_without_children(november: Scheme) -> None:
    d = one(
        november,
        household(reference_month="2020-09", als_cents=1, claimant_birth_date=date(1990, 1, 1)),
    )
    assert d["status"] == "not_eligible"


def test_rows_outside_the_window_do_not_count(november: Scheme) -> None:
    assert run(november, [household(reference_month="2020-05", rsa_cents=1)]) == []
