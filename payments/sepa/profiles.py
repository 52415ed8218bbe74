"""Bank profiles: what each bank accepts, as reviewed data (``payments/reference/banks/``).

A fund's bank is named in the registry (``bank_profile``, ``epc-2019`` when
the fund says nothing); ``payments run --bank-profile NAME`` overrides it for
every fund of a run. The writer reads the pain.001 version, file limits,
batch booking, service level and local instrument from here; the inbox reads
the report size cap. docs/payments.md lists the shipped profiles.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from payments.errors import PaymentsError

DEFAULT_PROFILE = "epc-2019"
#: The pain.001 versions the writer has (``pain001.FORMATS``; a test keeps them equal).
WRITABLE = ("pain.001.001.03", "pain.001.001.09")
#: Character sets a profile may name (the writer's transliteration implements these).
CHARSETS = ("epc-basic-latin",)
#: Most bytes one credit transfer line can take in our files: the fixed tags plus the
#: longest EndToEndId (35), amount (18), BIC (11), name (70), IBAN (34) and remittance
#: (140) the schema allows. A file of ``n`` lines is at most ``HEAD_BYTES + n`` times this.
LINE_BYTES = 600
HEAD_BYTES = 4_096


class UnknownProfile(PaymentsError, KeyError):
    """No bank profile of that name ships with the package."""


@dataclass(frozen=True)
class BankProfile:
    name: str
    title: str
    pain001: str
    max_transactions: int
    max_bytes: int
    batch_booking: bool
    msg_id_unique_days: int
    service_level: str
    local_instrument: str
    charset: str
    positive_pain002: bool
    report_max_bytes: int

    def transactions_per_file(self, asked: int) -> int:
        """Most transactions per file: ``asked``, within the bank's count and byte limits."""
        by_bytes = (self.max_bytes - HEAD_BYTES) // LINE_BYTES
        return max(1, min(asked, self.max_transactions, by_bytes))


def names() -> list[str]:
    """The shipped profiles' names."""
    folder = resources.files("payments.reference").joinpath("banks")
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


@cache
def load_profile(name: str) -> BankProfile:
    """The profile ``name``; refused when it does not exist or asks what we cannot write."""
    if name not in names():
        raise UnknownProfile(f"no bank profile {name!r} (shipped: {', '.join(names())})")
    text = resources.files("payments.reference").joinpath(f"banks/{name}.toml").read_text()
    profile = BankProfile(name=name, **tomllib.loads(text))
    if profile.pain001 not in WRITABLE:
        raise ValueError(f"bank profile {name}: cannot write {profile.pain001}")
    if profile.charset not in CHARSETS:
        raise ValueError(f"bank profile {name}: unknown character set {profile.charset!r}")
    if profile.local_instrument not in ("", "INST"):
        raise ValueError(f"bank profile {name}: local instrument must be '' or 'INST'")
    return profile
