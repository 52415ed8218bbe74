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
from sqlalchemy.sql.elements import ColumnElement

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
from payments.statuses import Decision


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
    ledger already placed in their file. Placing them afterwards would rewrite
    every row of the run (an update that touches every index); placed at
    insert, finance's approval only flips their state.
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
    df = frame.filter(pl.col("status").is_in([Decision.PAYABLE, Decision.HELD]))
    adopt_released(session, run_id, scheme.id, df, at)
    reissue, taken = _looked_up(session, scheme.id, df)
    rows = _payment_rows(_with_attempts(df, scheme.id, reissue), taken, scheme.id, run_id)
    result = Recorded(
        inserted=rows.height,
        already_claimed=df.height - rows.height,
        held=rows.filter(pl.col("state") == states.HELD).height,
        cents=int(rows.get_column("amount_cents").sum()),
    )
    live = rows.filter(pl.col("state") != states.HELD)
    attempts = {
        str(k): int(a)
        for k, a in live.filter(pl.col("attempt") > 1)
        .select("beneficiary_key", "attempt")
        .iter_rows()
    }
    live_keys = [live.get_column("beneficiary_key")]
    unfiled = _already_recorded(session, run_id, live_keys, attempts)
    recorded = pl.concat(live_keys).implode()
    elsewhere = (
        frame.filter(
            (pl.col("status") == Decision.PAYABLE) & ~pl.col("claimant_key").is_in(recorded)
        )
        .get_column("claimant_key")
        .unique()
        .sort()
        .to_list()
    )
    return Pending(run_id, scheme.id, rows, reissue, result, elsewhere, attempts, unfiled)


def _looked_up(
    session: Session, scheme_id: str, df: pl.DataFrame
) -> tuple[dict[str, tuple[int, int]], set[str]]:
    """The keys of ``df`` a re-issue may pay again, and those another payment holds."""
    first_claims = (
        session.execute(
            select(BeneficiaryClaim.beneficiary_key)
            .where(BeneficiaryClaim.scheme_id == scheme_id)
            .limit(1)
        ).first()
        is None
    )
    if first_claims:  # the scheme's first run has nobody to look up
        return {}, set()
    keys = (
        df.get_column("claimant_key").to_list() + df.get_column("spouse_key").drop_nulls().to_list()
    )
    reissue = reissuable(session, scheme_id, keys)
    return reissue, claimed(session, scheme_id, keys) - reissue.keys()


def _with_attempts(
    df: pl.DataFrame, scheme_id: str, reissue: dict[str, tuple[int, int]]
) -> pl.DataFrame:
    """Each decision's attempt (a re-issue is the next one) and its end-to-end id."""
    df = df.with_columns(
        pl.col("claimant_key")
        .replace_strict(
            {k: a + 1 for k, (_, a) in reissue.items()}, default=1, return_dtype=pl.Int64
        )
        .alias("attempt")
    )
    return df.with_columns(
        end_to_end_ids(
            scheme_id, pl.col("fund_code"), pl.col("household_id"), pl.col("attempt")
        ).alias("e2e")
    )


def _payment_rows(df: pl.DataFrame, taken: set[str], scheme_id: str, run_id: str) -> pl.DataFrame:
    """The payments to insert: decisions none of whose keys another payment holds."""
    others = pl.Series(sorted(taken), dtype=pl.String).implode()
    fresh = df.filter(
        ~pl.col("claimant_key").is_in(others) & ~pl.col("spouse_key").is_in(others).fill_null(False)
    )
    return fresh.select(
        pl.lit(scheme_id).alias("scheme_id"),
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
        pl.when(pl.col("status") == Decision.HELD)
        .then(pl.lit(states.HELD))
        .otherwise(pl.lit(states.COMPUTED))
        .alias("state"),
        "reason",
        "attempt",
    )


def _already_recorded(
    session: Session, run_id: str, live_keys: list[pl.Series], attempts: dict[str, int]
) -> list[str]:
    """This run's live payments the ledger already holds (a rerun, adopted holds).

    Their keys go to ``live_keys`` and their re-issue attempts to ``attempts``;
    returns the end-to-end ids of those in no file yet.
    """
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
    return unfiled


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
    rows = pending.rows
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
    # sort well on abbreviated keys; and the client sorts no column
    # (docs/decisions.md, "Ledger load").
    session.flush()
    before = session.execute(select(func.coalesce(func.max(Payment.id), 0))).scalar_one()
    new = (Payment.run_id == pending.run_id) & (Payment.id > before)
    moving = sorted(pending.reissue)
    with (
        staged_rows(
            session,
            ["beneficiary_key", "payment_id"],
            ((k, pending.reissue[k][0]) for k in moving),
            integer=["payment_id"],
            key=["beneficiary_key"],
        ) as moved,
        bulk_load(session, rows.height, [Payment, BeneficiaryClaim]) as bulk,
    ):
        if bulk:
            load_with_ids(session, pending.scheme_id, rows, moving)
        else:
            _insert_rows(session, rows, new, moved if moving else None)
        if moving:
            _move_claims(session, pending.scheme_id, new, moved)
    if placement is not None and pending.unfiled:
        wanted = pl.Series(pending.unfiled, dtype=pl.String).implode()
        file_payments(
            session, pending.run_id, placement.filter(pl.col("end_to_end_id").is_in(wanted))
        )
    events.append(
        session, "decisions_recorded", pending.result.__dict__, at=at, run_id=pending.run_id
    )
    session.flush()
    return pending.result


def _insert_rows(
    session: Session, rows: pl.DataFrame, new: ColumnElement[bool], moved: Table | None
) -> None:
    """Payments inserted, then their claims and holds derived in the database from them.

    No round trip of ids. The claims' primary key is still the guarantee: a
    key claimed since we looked fails the whole transaction. Keys a re-issue
    moves (``moved``) keep their claim, updated by :func:`_move_claims`.
    """
    insert_frame(session, Payment, rows)
    for column in (Payment.beneficiary_key, Payment.spouse_key):
        source = (
            select(Payment.scheme_id, column, Payment.id)
            .where(
                new,
                column.is_not(None),
                column.not_in(select(moved.c.beneficiary_key)) if moved is not None else true(),
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


def _move_claims(session: Session, scheme_id: str, new: ColumnElement[bool], moved: Table) -> None:
    """A re-issue moves the household's claims to the new payment: one live claim per
    (scheme, key) still, so nobody is paid twice."""
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
