"""Hand-built households for entitlement tests, in the accepted-row types of the contract."""

from __future__ import annotations

from datetime import date
from itertools import count
from typing import Any

import pyarrow as pa

from payments.contract import load_contract
from payments.entitlement.decide import decide
from payments.entitlement.facts import household_facts
from payments.entitlement.holds import HoldPolicy, load_hold_policy
from payments.identifiers.iban import french_iban
from payments.identifiers.nir import nir_key
from payments.registry import load_registry
from payments.schemes import Scheme

SECRET = b"test-secret-0123456789abcdef"
_serial = count(1)


def nir(sex: int = 2, birth: date = date(1985, 7, 14), serial: int | None = None) -> str:
    """A valid NIR, distinct for each call unless ``serial`` is given."""
    n = next(_serial) if serial is None else serial
    body = f"{sex}{birth.year % 100:02d}{birth.month:02d}75{n // 1000 % 1000:03d}{n % 1000:03d}"
    return body + f"{nir_key(body):02d}"


def iban(n: int) -> str:
    return french_iban("30004", "00003", f"{n:011d}")


#: The household every test builds on: on nothing, born 1985, no spouse, no child
#: (identifiers apart: ``household`` numbers them).
DEFAULTS: dict[str, Any] = {
    "fund_code": "13",
    "reference_month": "2020-05",
    "claimant_last_name": "Martin",
    "claimant_first_name": "Léa",
    "claimant_birth_date": date(1985, 7, 14),
    "claimant_student_status": "none",
    "spouse_nir": None,
    "spouse_birth_date": None,
    "rsa_cents": 0,
    "rso_cents": 0,
    "ass_cents": 0,
    "aer_cents": 0,
    "prime_forfaitaire_cents": 0,
    "apl_cents": 0,
    "alf_cents": 0,
    "als_cents": 0,
    "children_birth_dates": None,
    "bic": None,
    "account_holder": "LEA MARTIN",
    "bank_details_changed_on": date(2015, 1, 1),
    "spouse_student_status": None,
    "payee_kind": None,
    "payee_name": None,
}


def household(**overrides: Any) -> dict[str, Any]:
    """A household on nothing, born 1985, no spouse, no child; override what matters."""
    n = next(_serial)
    ids = {"household_id": f"{1000000 + n}", "claimant_nir": nir(serial=n), "iban": iban(n)}
    return {**DEFAULTS, **ids, **overrides}


def table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=load_contract().accepted_schema())


def run(
    scheme: Scheme,
    rows: list[dict[str, Any]],
    *,
    prior: pa.Table | None = None,
    holds: HoldPolicy | None = None,
    run_date: date | None = None,
    reverse_files: bool = False,
) -> list[dict[str, Any]]:
    """Facts per fund, then national decisions: one dict per household, registry order.

    ``reverse_files`` hands the funds' facts to the national step in reverse order.
    """
    registry = load_registry()
    funds = sorted({r["fund_code"] for r in rows}, key=registry.codes.index, reverse=reverse_files)
    facts = pa.concat_tables(
        household_facts(
            table([r for r in rows if r["fund_code"] == f]),
            scheme,
            secret=SECRET,
            overseas=registry.get(f).overseas,
        )
        for f in funds
    )
    decisions = decide(
        facts,
        scheme,
        holds=holds or load_hold_policy(),
        fund_order=registry.codes,
        run_date=run_date or scheme.spec.payment_date,
        prior=prior,
    )
    return decisions.to_pylist()


def one(scheme: Scheme, row: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    (decision,) = run(scheme, [row], **kwargs)
    return decision


#: The finance approvers the tests' deployments name (PAYMENTS_FINANCE_APPROVERS).
APPROVERS = ("finance", "bob", "operator")
