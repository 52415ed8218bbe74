"""Recording a run's decisions: payable and held households become payments.

In two halves, :func:`prepare_decisions` (looked up against the ledger) and
:func:`insert_pending` (inserted, each payment placed in its file): the run's
payment files are written between them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

import polars as pl
import pyarrow as pa
from sqlalchemy import Table, func, insert, select, true, update
from sqlalchemy.orm import Session

from payments.identifiers.end_to_end import end_to_end_ids
from payments.ledger import events, states
from payments.ledger.bulk import bulk_load, insert_frame, load_with_ids
from payments.ledger.claims import (
    FETCH_ROWS,
    adopt_released,
    claimed,
    reissuable,
)
from payments.ledger.files import file_payments
from payments.ledger.models import (
    BeneficiaryClaim,
    Hold,
    Payment,
)
from payments.ledger.staging import staged_rows
from payments.schemes import Scheme


@dataclass
class Recorded:
    inserted: int
    already_claimed: int
    held: int
    cents: int


#: The decisions' columns a run's payments are recorded from.
RECORDED_COLUMNS = (
    "status",
    "claimant_key",
    "spouse_key",
    "fund_code",
    "household_id",
    "rule_id",
    "base_cents",
    "child_cents",
    "entitled_cents",
    "reason",
)


@dataclass
class Pending:
    """Decisions resolved against the ledger, not yet inserted.

    The run's payment files are written between the two halves of recording
    (:func:`prepare_decisions`, :func:`insert_pending`): the files need each
    payment's attempt, which the ledger decides, and the payments go into the
    ledger already placed in their file. Placing them afterwards rewrote every
    row of the national run (a non-HOT update of 2.8 M rows, two minutes on
    PostgreSQL); placed at insert, finance's approval only flips their state.
    """

    run_id: str
    scheme_id: str
    rows: pl.DataFrame
    reissue: dict[str, tuple[int, int]]
    result: Recorded
    #: Payable claimant keys another run claimed first (kept for a replay).
    elsewhere: list[str]
    #: This run's re-issues: claimant key → attempt.
    attempts: dict[str, int]
    #: End-to-end ids of this run's payments already in the ledger with no file
    #: yet (released holds this run adopted): placed by a staged update.
    unfiled: list[str]


def prepare_decisions(
    session: Session,
    *,
    run_id: str,
    scheme: Scheme,
    decisions: pa.Table | pl.DataFrame,
    at: datetime,
) -> Pending:
    """Look the decisions up in the ledger: who is already claimed, who is re-issued.

    Released holds this run finds payable are adopted (moved into this run)
    here. Nothing is inserted until :func:`insert_pending`.
    """
    wanted = list(RECORDED_COLUMNS)
    # Only the columns recorded are converted from Arrow (the decisions carry forty).
    frame = (
        decisions.select(wanted)
        if isinstance(decisions, pl.DataFrame)
        else pl.DataFrame(decisions.select(wanted))
    )
    df = frame.filter(pl.col("status").is_in(["payable", "held"]))
    adopt_released(session, run_id, scheme.id, df, at)
    reissue: dict[str, tuple[int, int]] = {}
    taken: set[str] = set()
    first_claims = (
        session.execute(
            select(BeneficiaryClaim.beneficiary_key)
            .where(BeneficiaryClaim.scheme_id == scheme.id)
            .limit(1)
        ).first()
        is None
    )
    if not first_claims:  # the scheme's first run has nobody to look up
        keys = (
            df.get_column("claimant_key").to_list()
            + df.get_column("spouse_key").drop_nulls().to_list()
        )
        reissue = reissuable(session, scheme.id, keys)
        taken = claimed(session, scheme.id, keys) - reissue.keys()
    df = df.with_columns(
        pl.col("claimant_key")
        .replace_strict(
            {k: a + 1 for k, (_, a) in reissue.items()}, default=1, return_dtype=pl.Int64
        )
        .alias("attempt")
    )
    df = df.with_columns(
        end_to_end_ids(
            scheme.id, pl.col("fund_code"), pl.col("household_id"), pl.col("attempt")
        ).alias("e2e")
    )
    fresh = df.filter(
        ~pl.col("claimant_key").is_in(pl.Series(sorted(taken)).implode())
        & ~pl.col("spouse_key").is_in(pl.Series(sorted(taken)).implode()).fill_null(False)
    )
    rows = fresh.select(
        pl.lit(scheme.id).alias("scheme_id"),
        pl.col("claimant_key").alias("beneficiary_key"),
        "spouse_key",
        pl.lit(run_id).alias("run_id"),
        "fund_code",
        "household_id",
        "rule_id",
        "base_cents",
        "child_cents",
        pl.col("entitled_cents").alias("amount_cents"),
        pl.col("e2e").alias("end_to_end_id"),
        pl.when(pl.col("status") == "held")
        .then(pl.lit(states.HELD))
        .otherwise(pl.lit(states.COMPUTED))
        .alias("state"),
        "reason",
        "attempt",
    )
    held = rows.filter(pl.col("state") == states.HELD).height
    cents = int(rows.get_column("amount_cents").sum())
    result = Recorded(
        inserted=rows.height, already_claimed=df.height - rows.height, held=held, cents=cents
    )
    # This run's live payments once the rows are in: those the ledger already
    # holds for it (a rerun, adopted holds) and the new ones not held.
    live_keys: list[pl.Series] = [
        rows.filter(pl.col("state") != states.HELD).get_column("beneficiary_key")
    ]
    attempts = {
        str(k): int(a)
        for k, a in rows.filter((pl.col("state") != states.HELD) & (pl.col("attempt") > 1))
        .select("beneficiary_key", "attempt")
        .iter_rows()
    }
    unfiled: list[str] = []
    existing = session.execute(
        select(
            Payment.beneficiary_key,
            Payment.attempt,
            Payment.end_to_end_id,
            Payment.payment_file_id,
        )
        .where(Payment.run_id == run_id, Payment.state.not_in([states.HELD, states.CANCELLED]))
        .execution_options(yield_per=FETCH_ROWS)
    )
    for part in existing.partitions():
        live_keys.append(pl.Series([k for k, _, _, _ in part], dtype=pl.String))
        for key, attempt, e2e, file_id in part:
            if attempt > 1:
                attempts[str(key)] = int(attempt)
            if file_id is None:
                unfiled.append(str(e2e))
    recorded = pl.concat(live_keys).implode()
    elsewhere = (
        frame.filter((pl.col("status") == "payable") & ~pl.col("claimant_key").is_in(recorded))
        .get_column("claimant_key")
        .unique()
        .sort()
        .to_list()
    )
    return Pending(
        run_id=run_id,
        scheme_id=scheme.id,
        rows=rows,
        reissue=reissue,
        result=result,
        elsewhere=elsewhere,
        attempts=attempts,
        unfiled=unfiled,
    )


def insert_pending(
    session: Session, pending: Pending, *, placement: pl.DataFrame | None = None, at: datetime
) -> Recorded:
    """Insert what :func:`prepare_decisions` resolved, each payment placed in its file.

    ``placement``: ``end_to_end_id`` → ``payment_file_id`` of the run's
    payment files (recorded by :func:`record_payment_files`); None when the
    run writes no file. The claims table's primary key is the guarantee: if
    another writer claimed a key since the lookup, the insert fails and the
    transaction rolls back whole.
    """
    run_id, scheme_id, rows, reissue = (
        pending.run_id,
        pending.scheme_id,
        pending.rows,
        pending.reissue,
    )
    if placement is not None:
        rows = rows.join(
            placement.select("end_to_end_id", "payment_file_id"),
            on="end_to_end_id",
            how="left",
            maintain_order="left",
        )
    # Payments go in the decisions' order (fund, then household), not sorted by
    # key: their end-to-end ids, whose unique key is the costliest to build
    # (all start with the scheme's code, so PostgreSQL cannot sort them on
    # abbreviated keys), then come nearly sorted, while random beneficiary keys
    # sort well on abbreviated keys; and the client sorts no column (the figures
    # are in docs/history/2026-11-optimisation-rounds.md).
    session.flush()
    before = session.execute(select(func.coalesce(func.max(Payment.id), 0))).scalar_one()
    new = (Payment.run_id == run_id) & (Payment.id > before)
    moving = sorted(reissue)
    with (
        staged_rows(
            session,
            ["beneficiary_key", "payment_id"],
            ((k, reissue[k][0]) for k in moving),
            integer=["payment_id"],
            key=["beneficiary_key"],
        ) as moved,
        bulk_load(session, rows.height, [Payment, BeneficiaryClaim]) as bulk,
    ):
        if bulk:
            load_with_ids(session, scheme_id, rows, moving)
        else:
            insert_frame(session, Payment, rows)
            # Claims are derived in the database from the rows just inserted (no
            # round trip of ids). The claims' primary key is still the guarantee:
            # a key claimed since we looked fails the whole transaction.
            for column in (Payment.beneficiary_key, Payment.spouse_key):
                source = (
                    select(Payment.scheme_id, column, Payment.id)
                    .where(
                        new,
                        column.is_not(None),
                        column.not_in(select(moved.c.beneficiary_key)) if moving else true(),
                    )
                    .order_by(column)  # a maintained index fills page after page in key order
                )
                session.execute(
                    insert(BeneficiaryClaim).from_select(
                        ["scheme_id", "beneficiary_key", "payment_id"], source
                    )
                )
            session.execute(
                insert(Hold).from_select(
                    ["payment_id", "reasons"],
                    select(Payment.id, func.coalesce(Payment.reason, "")).where(
                        new, Payment.state == states.HELD
                    ),
                )
            )
        # A re-issue moves the household's claims to the new payment: one live
        # claim per (scheme, key) still, so nobody is paid twice.
        if moving:
            claim = cast(Table, BeneficiaryClaim.__table__)
            for key_column in (Payment.beneficiary_key, Payment.spouse_key):
                new_payment = select(Payment.id).where(new, key_column == claim.c.beneficiary_key)
                session.execute(
                    update(claim)
                    .where(
                        claim.c.scheme_id == scheme_id,
                        select(moved.c.beneficiary_key)
                        .where(
                            moved.c.beneficiary_key == claim.c.beneficiary_key,
                            moved.c.payment_id == claim.c.payment_id,
                        )
                        .exists(),
                        new_payment.exists(),
                    )
                    .values(payment_id=new_payment.scalar_subquery())
                )
    if placement is not None and pending.unfiled:
        wanted = pl.Series(pending.unfiled, dtype=pl.String).implode()
        file_payments(
            session,
            run_id,
            placement.filter(pl.col("end_to_end_id").is_in(wanted)),
        )
    events.append(session, "decisions_recorded", pending.result.__dict__, at=at, run_id=run_id)
    session.flush()
    return pending.result


def record_decisions(
    session: Session,
    *,
    run_id: str,
    scheme: Scheme,
    decisions: pa.Table | pl.DataFrame,
    end_to_end: pa.Array | None = None,
    at: datetime,
) -> Recorded:
    """Record payable and held households, in no file; those already claimed are skipped.

    :func:`prepare_decisions` then :func:`insert_pending` with no placement
    (the pipeline writes the files between the two).
    """
    pending = prepare_decisions(session, run_id=run_id, scheme=scheme, decisions=decisions, at=at)
    return insert_pending(session, pending, at=at)
