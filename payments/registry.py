"""The fund registry: which local funds exist, their paying account and folders.

Loaded from ``payments/reference/funds.toml`` (reviewed data, versioned with the
code). Order is the file's order and is used wherever a fixed order of funds is
needed (deterministic file naming, tie-breaks).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from payments.sepa.profiles import DEFAULT_PROFILE, load_profile


@dataclass(frozen=True)
class Fund:
    """A local fund (Caf) that sends a beneficiary file and pays from its own account."""

    code: str
    name: str
    departement: str
    population_k: int
    debtor_name: str
    debtor_iban: str
    debtor_bic: str
    inbox: str
    bank_outbox: str
    overseas: bool
    #: What its bank accepts (payments/reference/banks/<name>.toml).
    bank_profile: str = DEFAULT_PROFILE


@dataclass(frozen=True)
class Registry:
    version: str
    funds: tuple[Fund, ...]

    @property
    def codes(self) -> list[str]:
        return [f.code for f in self.funds]

    @property
    def report_max_bytes(self) -> int:
        """The largest bank report any fund's bank profile lets in."""
        return max(load_profile(f.bank_profile).report_max_bytes for f in self.funds)

    def get(self, code: str) -> Fund:
        for f in self.funds:
            if f.code == code:
                return f
        raise KeyError(f"unknown fund code {code!r}")

    def select(self, codes: list[str] | None) -> tuple[Fund, ...]:
        """The funds named in ``codes`` (all when None), in registry order."""
        if not codes:
            return self.funds
        unknown = sorted(set(codes) - set(self.codes))
        if unknown:
            raise KeyError(f"unknown fund codes {unknown}")
        wanted = set(codes)
        return tuple(f for f in self.funds if f.code in wanted)


@cache
def load_registry() -> Registry:
    """Load the registry shipped with the package and check its invariants."""
    text = resources.files("payments.reference").joinpath("funds.toml").read_text("utf-8")
    doc = tomllib.loads(text)
    funds = tuple(Fund(**f) for f in doc["funds"])
    codes = [f.code for f in funds]
    if len(set(codes)) != len(codes):
        raise ValueError("fund registry: duplicate fund codes")
    for profile in sorted({f.bank_profile for f in funds}):
        load_profile(profile)  # a fund naming a profile that does not ship stops here
    return Registry(version=doc["version"], funds=funds)
