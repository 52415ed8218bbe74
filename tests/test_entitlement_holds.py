"""Fraud and risk holds: each reason on its own, thresholds from the policy."""

from __future__ import annotations

from datetime import date

import pytest

from payments.entitlement.holding import ascii_name
from payments.entitlement.holds import HoldPolicy, load_hold_policy
from payments.schemes import Scheme, load_scheme
from tests.households import household, iban, one, run


@pytest.fixture(scope="module")
def may() -> Scheme:
    return load_scheme("aes-2020-05")


def test_shared_iban_above_the_threshold(may: Scheme) -> None:
    shared = iban(424242)
    two = [household(rsa_cents=1, iban=shared) for _ in range(2)]
    assert [d["status"] for d in run(may, two)] == ["payable", "payable"]
    three = [household(rsa_cents=1, iban=shared) for _ in range(3)]
    decisions = run(may, three)
    assert all(d["status"] == "held" and d["hold_reasons"] == ["shared_iban"] for d in decisions)
    assert sum(d["payable_cents"] for d in decisions) == 0
    assert all(d["entitled_cents"] == 15000 for d in decisions)  # kept for the review list


def test_shared_iban_counts_only_payable_households(may: Scheme) -> None:
    shared = iban(434343)
    rows = [household(rsa_cents=1, iban=shared) for _ in range(2)]
    rows += [household(als_cents=1, iban=shared) for _ in range(3)]  # not eligible
    assert [d["status"] for d in run(may, rows)][:2] == ["payable", "payable"]


def test_recent_bank_change(may: Scheme) -> None:
    recent = household(rsa_cents=1, bank_details_changed_on=date(2020, 5, 1))
    d = one(may, recent, run_date=date(2020, 5, 15))
    assert d["status"] == "held" and d["hold_reasons"] == ["recent_bank_change"]
    assert one(may, recent, run_date=date(2020, 6, 15))["status"] == "payable"


@pytest.mark.parametrize(
    ("account", "reason"),
    [
        ("DE89370400440532013000", "foreign_iban"),
        ("MC5811222000010123456789030", "foreign_iban"),
        ("US12345678901234567890", "non_sepa_iban"),
    ],
)
def test_foreign_and_non_sepa_ibans(may: Scheme, account: str, reason: str) -> None:
    d = one(may, household(rsa_cents=1, iban=account))
    assert d["status"] == "held" and d["hold_reasons"] == [reason]


@pytest.mark.parametrize(
    ("last", "first", "holder", "held"),
    [
        ("N'Diaye", "Aïcha", "M OU MME N DIAYE", False),
        ("Lœuillet", "Maëlle", "MAELLE LOEUILLET", False),
        ("Martin", "Léa", "Mme Léa Dupont", False),  # first name matches
        ("Saint-Martin", "Jérôme", "JEROME ST MARTIN", False),  # first name matches
        ("Martin", "Léa", "JOHN SMITH", True),
        ("Muller", "Hervé", "SCI DES LILAS", True),
    ],
)
def test_holder_name_unrelated_to_the_claimant(
    may: Scheme, last: str, first: str, holder: str, held: bool
) -> None:
    d = one(
        may,
        household(
            rsa_cents=1, claimant_last_name=last, claimant_first_name=first, account_holder=holder
        ),
    )
    assert (d["status"] == "held") is held
    if held:
        assert d["hold_reasons"] == ["holder_mismatch"]


def test_several_reasons_and_policy_off(may: Scheme) -> None:
    row = household(
        rsa_cents=1,
        iban="DE89370400440532013000",
        account_holder="X Y",
        bank_details_changed_on=date(2020, 5, 10),
    )
    d = one(may, row)
    assert d["hold_reasons"] == ["recent_bank_change", "foreign_iban", "holder_mismatch"]
    assert d["reason"] == "recent_bank_change,foreign_iban,holder_mismatch"
    lenient = HoldPolicy(
        max_households_per_iban=9,
        recent_bank_change_days=0,
        home_countries=["FR", "DE"],
        sepa_countries=["FR", "DE"],
        check_holder_name=False,
    )
    assert one(may, row, holds=lenient)["status"] == "payable"


def test_only_eligible_winners_are_held(may: Scheme) -> None:
    d = one(may, household(als_cents=1, iban="US12345678901234567890"))
    assert d["status"] == "not_eligible" and d["hold_reasons"] == []


def test_policy_file_loads_and_names_match_scalar_twin() -> None:
    policy = load_hold_policy()
    assert policy.max_households_per_iban >= 1 and "FR" in policy.home_countries
    assert ascii_name("Lœuillet-Faÿ d'Été") == "LOEUILLET FAY D ETE"


@pytest.mark.parametrize(
    ("holder", "payee", "held"),
    [
        ("UDAF DES BOUCHES DU RHONE", "UDAF des Bouches-du-Rhône", False),
        ("M PIERRE DURAND", "Pierre Durand", False),  # a family member as tutor
        ("LEA MARTIN", "UDAF 13", True),  # the beneficiary's own account, a curator declared
        ("JOHN SMITH", "UDAF 13", True),
    ],
)
def test_a_declared_representative_is_compared_with_the_account_holder(
    may: Scheme, holder: str, payee: str, held: bool
) -> None:
    """Contract 1.1: a protected adult is paid on the representative's account; without
    payee_name every one of them was held as holder_mismatch."""
    d = one(
        may,
        household(rsa_cents=1, account_holder=holder, payee_kind="curatelle", payee_name=payee),
    )
    assert (d["status"] == "held") is held
    if held:
        assert d["hold_reasons"] == ["holder_mismatch"]
