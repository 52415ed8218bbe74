"""Scheme files: validated at load with clear errors; a new decree needs no Python change."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from payments.schemes import SchemeError, load_scheme, parse_scheme, scheme_ids
from tests.households import household, nir, one, run

# A fourth decree, written only here: a flat 300 EUR for AER households with a
# child under 3 on the age date, and 50 EUR per child for housing-aid couples.
WINTER_2021 = """
id = "winter-2021-01"
version = 1
title = "Aide exceptionnelle d'hiver (test only)"
legal_reference = "Décret imaginaire du 4 janvier 2021"
reference_months = ["2020-12"]
age_date = "2021-01-15"
payment_date = "2021-01-20"
remittance = "AIDE EXCEPTIONNELLE HIVER 2021"

[children]
max_age = 3

[[rules]]
id = "aer_toddler"
article = "art. 1"
when = "aer_cents > 0 and children >= 1"
base_cents = 30000
per_child_cents = 0

[[rules]]
id = "housing_couple"
article = "art. 2"
when = "housing_cents > 0 and couple and not overseas"
base_cents = 0
per_child_cents = 5000
"""


def test_the_2020_schemes_load() -> None:
    assert scheme_ids() == ["aes-2020-05", "aes-2020-11", "noel-2020-12", "youth-2020-06"]
    for scheme_id in scheme_ids():
        scheme = load_scheme(scheme_id)
        assert scheme.id == scheme_id and scheme.rules
        assert scheme.spec.legal_reference.startswith("Décret")


def test_a_fourth_scheme_written_only_in_the_test(tmp_path: Path) -> None:
    (tmp_path / "winter-2021-01.toml").write_text(WINTER_2021)
    scheme = load_scheme("winter-2021-01", folder=tmp_path)
    toddler = household(
        reference_month="2020-12",
        aer_cents=1,
        children_birth_dates=[date(2019, 1, 1), date(2017, 1, 1)],
    )
    couple = household(
        reference_month="2020-12",
        apl_cents=1,
        spouse_nir="183049935004295",
        spouse_birth_date=date(1983, 4, 2),
        children_birth_dates=[date(2020, 1, 1), date(2019, 6, 1)],
    )
    decisions = run(scheme, [toddler, couple])
    assert [(d["rule_id"], d["payable_cents"]) for d in decisions] == [
        ("aer_toddler", 30000),
        ("housing_couple", 10000),
    ]
    overseas = {
        **couple,
        "fund_code": "974",
        "household_id": "5555555",
        "claimant_nir": "164029710503365",
        "spouse_nir": None,
    }
    assert one(scheme, overseas)["status"] == "not_eligible"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("rsa_cents > 0", "rsa_cent > 0"),
            "rules[0].when: 'rsa_cent > 0': unknown fact 'rsa_cent'; did you mean 'rsa_cents'?",
        ),
        (("base_cents = 15000", "base_cents = 150.0"), "rules[0].base_cents"),
        (("base_cents = 15000", "base_cents = -1"), "rules[0].base_cents"),
        (("per_child_cents = 10000", "per_child_cent = 10000"), "per_child_cent: Extra inputs"),
        (('age_date = "2020-05-15"', 'age_date = "2020-05-32"'), "age_date"),
        (('"2020-04", "2020-05"', '"2020-4", "2020-05"'), "reference_months[0]"),
        (("rsa_cents > 0", "rsa_cents > 'zero'"), "is text, number expected"),
        (("rsa_cents > 0", "__import__('os')"), "is not allowed in a condition"),
        (('remittance = "AIDE', 'remittance = "AIDE €'), "remittance"),
        (('id = "rsa"\n', 'id = "minima"\n'), "rule ids must be unique"),
        (("per_child_cents = 10000", 'amount = "15000"'), "base_cents or per_child_cents"),
        (
            ("base_cents = 15000\nper_child_cents = 10000", 'amount = "15245 * 1.5"'),
            "expected a number or a quoted text",
        ),
        (
            ("base_cents = 15000\nper_child_cents = 10000", 'amount = "15245 // 0"'),
            "divides by a positive whole number only",
        ),
        (
            ("base_cents = 15000\nper_child_cents = 10000", 'amount = "rsa_cents > 0"'),
            "number expected",
        ),
        (("base_cents = 15000\nper_child_cents = 10000", ""), "base_cents and per_child_cents"),
    ],
)
def test_mistakes_are_named_with_file_and_key(change: tuple[str, str], message: str) -> None:
    text = load_scheme("aes-2020-05").text.replace(*change, 1)
    with pytest.raises(SchemeError) as err:
        parse_scheme(text, "payments/schemes/aes-2020-05.toml")
    assert str(err.value).startswith("payments/schemes/aes-2020-05.toml: ")
    assert message in str(err.value)


def test_id_must_match_file_name(tmp_path: Path) -> None:
    (tmp_path / "other.toml").write_text(WINTER_2021)
    with pytest.raises(SchemeError, match="must match the file name"):
        load_scheme("other", folder=tmp_path)


def test_unknown_scheme() -> None:
    with pytest.raises(SchemeError, match="unknown scheme 'nope'"):
        load_scheme("nope")


def test_docs_list_every_fact() -> None:
    from payments.entitlement.conditions import FACTS
    from tests.conftest import ROOT

    doc = (ROOT / "docs" / "schemes.md").read_text()
    for fact in FACTS:
        assert f"| `{fact}` |" in doc, fact


def test_an_amount_rule_counts_the_household_in_integer_cents() -> None:
    """The end-of-year aid's increases, rounded down as the published amounts are."""
    scheme = load_scheme("noel-2020-12")
    couple = {"spouse_nir": nir(1, date(1984, 1, 1)), "spouse_birth_date": date(1984, 1, 1)}
    kids = [date(2012, 1, 1), date(2014, 1, 1), date(2016, 1, 1)]
    base = {"reference_month": "2020-12", "rsa_cents": 1}
    assert one(scheme, household(**base))["payable_cents"] == 15245
    assert one(scheme, household(**base, **couple))["payable_cents"] == 22867
    family = household(**base, **couple, children_birth_dates=kids)
    assert one(scheme, family)["payable_cents"] == 38112
    assert one(scheme, {**family, "fund_code": "976"})["payable_cents"] == 19055
