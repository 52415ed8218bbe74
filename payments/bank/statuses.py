"""What an ISO 20022 status code does to a payment: the reviewed table, loaded once.

The table is ``payments/reference/iso20022/statuses.toml`` (each code, its
meaning, its effect); docs/payments.md shows it. Code reads effects, never
codes: a bank that uses a code differently is handled by changing the data.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

ACCEPTED, REJECTED, RECEIVED, PENDING, PARTIAL, FLAG = (
    "accepted",
    "rejected",
    "received",
    "pending",
    "partial",
    "flag",
)
EFFECTS = (ACCEPTED, REJECTED, RECEIVED, PENDING, PARTIAL, FLAG)
#: Effects that move a payment (the others leave it where it is).
MOVES = (ACCEPTED, REJECTED)


@dataclass(frozen=True)
class Status:
    code: str
    effect: str
    meaning: str


@cache
def statuses() -> dict[str, Status]:
    """Every status code the table knows; refused whole if an effect is not one of ``EFFECTS``."""
    text = resources.files("payments.reference").joinpath("iso20022/statuses.toml").read_text()
    table = {
        code: Status(code, entry["effect"], entry["meaning"])
        for code, entry in tomllib.loads(text)["codes"].items()
    }
    wrong = sorted(c for c, s in table.items() if s.effect not in EFFECTS)
    if wrong:
        raise ValueError(f"statuses.toml: unknown effect for {wrong}")
    return table
