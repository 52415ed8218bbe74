"""The catalogue of row error codes: stable codes for machines, sentences for people.

A code never changes meaning once released (reports and the ledger keep them);
a new rule gets a new code. ``sentence`` is what a fund's staff read in the
quarantine CSV, next to the file, line and column.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    code: str
    sentence: str


RULES: dict[str, Rule] = {
    r.code: r
    for r in (
        Rule("required", "is required and is empty"),
        Rule("field_count", "row does not have the contract's number of fields"),
        Rule("fund_code_mismatch", "fund code differs from the fund that sent the file"),
        Rule("household_id_format", "household number must be 7 to 10 digits"),
        Rule("month_format", "reference month must be YYYY-MM"),
        Rule("month_outside_window", "reference month is outside the scheme's window"),
        Rule("nir_format", "NIR must be 15 characters: 13 digits (2A/2B for Corsica) and a key"),
        Rule("nir_key", "NIR key (last 2 digits) does not match the first 13 characters"),
        Rule("spouse_nir_same", "spouse NIR is the claimant's own NIR"),
        Rule("date_format", "date must be a real date written YYYY-MM-DD"),
        Rule("date_implausible", "date is before 1900 or after the file was produced"),
        Rule("enum_value", "value is not one of the values the contract allows"),
        Rule("amount_format", "amount must be whole cents: digits only, no decimal point"),
        Rule("amount_negative", "amount must not be negative"),
        Rule("children_format", "children's birth dates must be YYYY-MM-DD separated by |"),
        Rule("child_after_reference", "a child's birth date is after the scheme's reference date"),
        Rule("iban_format", "IBAN must be 2 letters, 2 digits and 11 to 30 letters or digits"),
        Rule("iban_checksum", "IBAN check digits do not match (mod 97): a character is wrong"),
        Rule("iban_rib_key", "French IBAN: RIB key does not match bank, branch and account"),
        Rule("bic_format", "BIC must be 8 or 11 characters (bank, country, location, branch)"),
        Rule("duplicate_row", "exact copy of an earlier row of the file (earlier one kept)"),
        Rule(
            "duplicate_household", "household sent more than once for the month with different data"
        ),
        Rule("payee_incomplete", "payee_kind and payee_name go together: both given, or neither"),
    )
}


def sentence(code: str) -> str:
    return RULES[code].sentence
