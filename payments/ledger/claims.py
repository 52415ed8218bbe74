"""Who the ledger already paid: claims by beneficiary key, re-issues, released holds.

A claim is one (scheme, beneficiary key) and its payment: the claims' primary
key is what pays each person at most once per scheme.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import polars as pl
import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session

from payments.entitlement.decide import PRIOR_SCHEMA
from payments.ledger import events, states
from payments.ledger.models import (
    BeneficiaryClaim,
    Hold,
    Payment,
)
from payments.statuses import Decision

CHUNK = 20_000

#: Rows fetched at a time when a query's answer is read in slices.
FETCH_ROWS = 200_000


def claimed(session: Session, scheme_id: str, keys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(keys), CHUNK):
        part = list(keys[i : i + CHUNK])
        found.update(
            session.execute(
                select(BeneficiaryClaim.beneficiary_key).where(
                    BeneficiaryClaim.scheme_id == scheme_id,
                    BeneficiaryClaim.beneficiary_key.in_(part),
                )
            ).scalars()
        )
    return found


def reissuable(session: Session, scheme_id: str, keys: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Keys whose claim is held by a payment that paid nothing: {key: (payment id, attempt)}.

    The money never left (finance rejected the run: cancelled), never reached
    the household (rejected) or came back (returned): a later run may pay it
    again, as the next attempt.
    """
    found: dict[str, tuple[int, int]] = {}
    for i in range(0, len(keys), CHUNK):
        part = list(keys[i : i + CHUNK])
        for key, pid, attempt in session.execute(
            select(BeneficiaryClaim.beneficiary_key, Payment.id, Payment.attempt)
            .join(Payment, Payment.id == BeneficiaryClaim.payment_id)
            .where(
                BeneficiaryClaim.scheme_id == scheme_id,
                BeneficiaryClaim.beneficiary_key.in_(part),
                Payment.state.in_([states.CANCELLED, states.REJECTED, states.RETURNED]),
            )
        ):
            found[str(key)] = (int(pid), int(attempt))
    return found


def released_ids(scheme_id: str) -> Any:
    """Payments finance released from a hold and that no file carries yet (a subquery of ids)."""
    return (
        select(Payment.id)
        .join(Hold, Hold.payment_id == Payment.id)
        .where(
            Payment.scheme_id == scheme_id,
            Payment.state == states.COMPUTED,
            Payment.payment_file_id.is_(None),
            Hold.released_at.is_not(None),
        )
    )


def released_keys(session: Session, scheme_id: str) -> list[str]:
    """Claimant keys of released holds: the next run pays them, without holding them again.

    As many as finance released by hand, one review at a time.
    """
    return list(
        session.execute(
            select(Payment.beneficiary_key).where(Payment.id.in_(released_ids(scheme_id)))
        ).scalars()
    )


def adopt_released(
    session: Session, run_id: str, scheme_id: str, payable: pl.DataFrame, at: datetime
) -> int:
    """Released payments this run finds payable move into this run, at today's amounts."""
    released = list(
        session.execute(select(Payment).where(Payment.id.in_(released_ids(scheme_id)))).scalars()
    )
    if not released:
        return 0
    keys = pl.Series([p.beneficiary_key for p in released], dtype=pl.String).implode()
    now_payable = {
        r["claimant_key"]: r
        for r in payable.filter(
            (pl.col("status") == Decision.PAYABLE) & pl.col("claimant_key").is_in(keys)
        ).iter_rows(named=True)
    }
    moved: dict[str, int] = {}
    for payment in released:
        decision = now_payable.get(payment.beneficiary_key)
        if decision is None:
            continue
        moved[payment.run_id] = moved.get(payment.run_id, 0) + 1
        payment.run_id = run_id
        payment.base_cents = decision["base_cents"]
        payment.child_cents = decision["child_cents"]
        payment.amount_cents = decision["entitled_cents"]
    if moved:
        events.append(
            session,
            "released_payments_adopted",
            {"payments": sum(moved.values()), "from_runs": moved},
            at=at,
            run_id=run_id,
        )
    session.flush()
    return sum(moved.values())


def prior_payments(
    session: Session, scheme_ids: Sequence[str], *, exclude_run: str | None = None
) -> pa.Table:
    """Keys already claimed under these schemes (for ``decide``'s ``prior``).

    ``exclude_run``: claims made by that run are not "prior" to it, so rerunning
    a run reproduces its own decisions and files instead of finding itself paid.
    Read in slices straight into Arrow columns (millions of claims nationally).
    """
    query = (
        select(BeneficiaryClaim.beneficiary_key, BeneficiaryClaim.scheme_id, Payment.base_cents)
        .join(Payment, Payment.id == BeneficiaryClaim.payment_id)
        .where(
            BeneficiaryClaim.scheme_id.in_(list(scheme_ids)),
            Payment.state.not_in([states.CANCELLED, states.REJECTED, states.RETURNED]),
            Payment.run_id != (exclude_run or ""),
        )
    )
    if scheme_ids:
        query = query.where(Payment.id.not_in(released_ids(scheme_ids[0])))
    result = session.execute(query.execution_options(yield_per=FETCH_ROWS))
    batches = [
        pa.RecordBatch.from_arrays(
            [
                pa.array(column, type=field.type)
                for column, field in zip(zip(*rows, strict=True), PRIOR_SCHEMA, strict=True)
            ],
            schema=PRIOR_SCHEMA,
        )
        for rows in result.partitions()
    ]
    return pa.Table.from_batches(batches, schema=PRIOR_SCHEMA)
