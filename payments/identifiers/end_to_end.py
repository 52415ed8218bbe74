"""The identifiers our payments carry at the bank: built from the decision, never stored apart.

A payment's EndToEndId is what the bank returns in every status report and
return, so it is derived, deterministically, from what the ledger and the
payment files both know: the scheme, the fund, the household and the attempt.
Kept here, not in the SEPA writer, because the ledger builds the same ids
when it records a run.
"""

from __future__ import annotations

import polars as pl


def scheme_code(scheme_id: str) -> str:
    """The scheme's id as ids carry it: letters and digits, upper case, at most 15."""
    return "".join(c for c in scheme_id.upper() if c.isalnum())[:15]


def end_to_end_ids(
    scheme_id: str, fund: pl.Expr, household: pl.Expr, attempt: pl.Expr | None = None
) -> pl.Expr:
    """Deterministic EndToEndId the bank returns in its reports: SCHEME-FUND-HOUSEHOLD.

    A re-issued payment (attempt 2, 3…, after a rejection or a return) ends in
    ``-R<attempt>``, so the bank's reports tell the attempts apart.
    """
    base = pl.concat_str(pl.lit(scheme_code(scheme_id)), fund, household, separator="-")
    if attempt is None:
        return base
    return (
        pl.when(attempt.fill_null(1) > 1)
        .then(pl.concat_str(base, pl.lit("-R"), attempt.cast(pl.String)))
        .otherwise(base)
    )
