"""The fraud and risk hold policy (``payments/reference/holds.toml``)."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

#: Hold reason codes, stable: the review list and the ledger keep them.
SHARED_IBAN = "shared_iban"
RECENT_BANK_CHANGE = "recent_bank_change"
FOREIGN_IBAN = "foreign_iban"
NON_SEPA_IBAN = "non_sepa_iban"
HOLDER_MISMATCH = "holder_mismatch"
#: The name the payment would go to cannot be written in the SEPA character set
#: (another script, ``<``, ``=``, a control character): held until the fund corrects
#: it, never left out of the files while keeping its claim. No release waives it.
NAME_UNWRITABLE = "name_unwritable"
HOLD_REASONS = (
    SHARED_IBAN,
    RECENT_BANK_CHANGE,
    FOREIGN_IBAN,
    NON_SEPA_IBAN,
    HOLDER_MISMATCH,
    NAME_UNWRITABLE,
)


class HoldPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = "custom"
    max_households_per_iban: Annotated[int, Field(ge=1, strict=True)] = 2
    recent_bank_change_days: Annotated[int, Field(ge=0, strict=True)] = 30
    home_countries: list[str] = ["FR"]
    sepa_countries: list[str] = ["FR"]
    check_holder_name: bool = True


def load_hold_policy() -> HoldPolicy:
    text = resources.files("payments.reference").joinpath("holds.toml").read_text("utf-8")
    return HoldPolicy.model_validate(tomllib.loads(text))
