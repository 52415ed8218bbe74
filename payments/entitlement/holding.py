"""Holding payable households for review: each risk rule of the hold policy, its reason.

The policy is data (:mod:`payments.entitlement.holds`, ``reference/holds.toml``);
this module applies it to a run's decisions, vectorised: the flags are
computed in a frame of their own and only the held rows are put back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np
import polars as pl
import pyarrow as pa

from payments.entitlement.holds import (
    FOREIGN_IBAN,
    HOLDER_MISMATCH,
    NAME_UNWRITABLE,
    NON_SEPA_IBAN,
    RECENT_BANK_CHANGE,
    SHARED_IBAN,
    HoldPolicy,
)
from payments.sepa.charset import creditor_names, transliterate_expr
from payments.statuses import Decision


def hashes_seen_more_than(hashed: pl.Series, times: int) -> pl.Series:
    """The hash values that occur more than ``times`` times.

    Sorted, equal hashes sit side by side: a value equal to the one ``times``
    places before it occurs more than ``times`` times. Cheaper than a hash
    table over millions of values.
    """
    ordered = hashed.sort()
    return ordered.filter(ordered == ordered.shift(times)).unique()


def _normalise_name(expr: pl.Expr) -> pl.Expr:
    """Upper-case ASCII letters and single spaces: 'Lœuillet' → 'LOEUILLET'.

    Built on the payment files' transliteration, so a name compares the way it
    will be written for the bank.
    """
    return (
        transliterate_expr(expr, 1000)
        .str.to_uppercase()
        .str.replace_all(r"[^A-Z]+", " ")
        .str.strip_chars()
    )


def ascii_name(text: str) -> str:
    """Scalar twin of the name normalisation (for messages and tests)."""
    return str(pl.select(_normalise_name(pl.lit(text))).item())


def _crowded(ibans: pl.Series, most: int) -> pl.Series:
    """IBANs shared by more than ``most`` households.

    Counted exactly, but only for the IBANs whose 64-bit hash is seen more than
    ``most`` times (found by sorting the hashes: more than ``most`` equal in a
    row); a group-by over millions of IBAN strings took most of this step.
    """
    hashed = ibans.hash(seed=0)
    candidates = ibans.filter(hashed.is_in(hashes_seen_more_than(hashed, most).implode()))
    counted = candidates.to_frame("iban").group_by("iban").len()
    return counted.filter(pl.col("len") > most).get_column("iban")


def apply_holds(
    df: pl.DataFrame, policy: HoldPolicy, run_date: date, released: Sequence[str] = ()
) -> pl.DataFrame:
    """Hold payable households that match a risk rule; each rule has its own reason code."""
    # Only the columns the rules read: filtering every column of millions of rows
    # copied them all for nothing.
    payable = df.select(
        "status",
        "iban",
        "account_holder",
        "payee_name",
        "claimant_last_name",
        "claimant_first_name",
        "_row",
    ).filter(pl.col("status") == Decision.PAYABLE)
    crowded = _crowded(payable.get_column("iban"), policy.max_households_per_iban)
    mismatched = (
        _holder_mismatches(payable) if policy.check_holder_name else pl.Series("_row", [], pl.Int64)
    )
    _, unwritable = creditor_names(payable)
    unwritable_rows = payable.get_column("_row").gather(unwritable)
    country = pl.col("iban").str.slice(0, 2)
    checks = {
        SHARED_IBAN: pl.col("iban").is_in(crowded.implode()),
        RECENT_BANK_CHANGE: (pl.lit(run_date) - pl.col("bank_details_changed_on")).dt.total_days()
        < policy.recent_bank_change_days,
        FOREIGN_IBAN: ~country.is_in(policy.home_countries) & country.is_in(policy.sepa_countries),
        NON_SEPA_IBAN: ~country.is_in(policy.sepa_countries),
        HOLDER_MISMATCH: pl.col("_row").is_in(mismatched.implode()),
        NAME_UNWRITABLE: pl.col("_row").is_in(unwritable_rows.implode()),
    }
    payable_now = pl.col("status") == Decision.PAYABLE
    # A release waives the risk holds finance reviewed, not a name no file can carry.
    is_payable = payable_now & ~pl.col("claimant_key").is_in(
        pl.Series(list(released), dtype=pl.String).implode()
    )
    flags = [f"_hold_{code}" for code in checks]
    # The flags in a frame of their own, and the few held rows put back by row
    # number: joining them onto every household copied all forty columns.
    flagged = df.select(
        "_row",
        *(
            (
                (payable_now if code == NAME_UNWRITABLE else is_payable) & cond.fill_null(False)
            ).alias(flag)
            for flag, (code, cond) in zip(flags, checks.items(), strict=True)
        ),
    )
    held_rows = flagged.filter(pl.any_horizontal(flags)).select(
        "_row",
        pl.concat_list(
            [pl.when(pl.col(f)).then(pl.lit(code)) for f, code in zip(flags, checks, strict=True)]
        )
        .list.drop_nulls()
        .alias("hold_reasons"),
    )
    return _hold(df, held_rows)


def _holder_mismatches(payable: pl.DataFrame) -> pl.Series:
    """Rows of payable households whose account holder is not the beneficiary (by last
    or first name) nor, when one is declared (contract 1.1), their representative.

    Cheap test first (the holder literally carries the name), then the accent-
    and punctuation-blind comparison only for the rest.
    """
    represented = pl.col("payee_name").is_not_null()
    holder_upper = pl.col("account_holder").str.to_uppercase()
    unsure = payable.filter(
        represented
        | ~holder_upper.str.contains(pl.col("claimant_last_name").str.to_uppercase(), literal=True)
    )
    holder = _normalise_name(pl.col("account_holder"))
    related = (
        pl.when(represented)
        .then(holder.str.contains(_normalise_name(pl.col("payee_name")), literal=True))
        .otherwise(
            holder.str.contains(_normalise_name(pl.col("claimant_last_name")), literal=True)
            | holder.str.contains(_normalise_name(pl.col("claimant_first_name")), literal=True)
        )
    )
    return unsure.filter(~related).get_column("_row")


def _hold(df: pl.DataFrame, held_rows: pl.DataFrame) -> pl.DataFrame:
    """The held rows (``_row``, ``hold_reasons``) put back by row number: status
    ``held``, the reasons joined as the reason, and every row's list of reasons."""
    rows = held_rows.get_column("_row")
    reasons = held_rows.get_column("hold_reasons")
    lengths = np.zeros(df.height, np.int64)
    lengths[rows.to_numpy()] = reasons.list.len().to_numpy()
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    values = reasons.explode().to_arrow().cast(pa.string())
    hold_reasons = pl.Series(
        "hold_reasons", pa.ListArray.from_arrays(pa.array(offsets), values), pl.List(pl.String)
    )
    return df.with_columns(
        hold_reasons,
        df.get_column("status").scatter(rows, Decision.HELD.value),
        df.get_column("reason").scatter(rows, reasons.list.join(",")),
    )
