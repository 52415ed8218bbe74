"""The fund registry: one fund per département, Corsica and overseas included."""

from __future__ import annotations

from payments.registry import Registry
from tests.reference import iban_is_valid

EXPECTED = (
    {f"{d:02d}" for d in range(1, 96) if d != 20}
    | {"2A", "2B"}
    | {"971", "972", "973", "974", "976"}
)


def test_registry_has_every_departement(registry: Registry) -> None:
    assert len(registry.funds) == 101
    assert set(registry.codes) == EXPECTED
    assert registry.version


def test_paying_accounts_are_valid_and_distinct(registry: Registry) -> None:
    ibans = [f.debtor_iban for f in registry.funds]
    assert len(set(ibans)) == len(ibans)
    assert all(iban_is_valid(i) for i in ibans)
    assert all(len(f.debtor_bic) in (8, 11) for f in registry.funds)


def test_folders_and_flags(registry: Registry) -> None:
    for f in registry.funds:
        assert f.inbox == f"funds/{f.code}"
        assert f.bank_outbox == f"bank/{f.code}"
        assert f.overseas == (len(f.code) == 3)
        assert f.population_k > 0
    assert [f.code for f in registry.select(["976", "01"])] == ["01", "976"]
