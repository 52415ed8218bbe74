"""Held payments: the review list finance reads, and the release of a hold.

A hold is lifted by a finance approver who did not trigger the run (four
eyes, as for an approval); the payment goes back to ``computed`` and the
next run of its scheme that includes its fund pays it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from payments.errors import PaymentsError
from payments.four_eyes import check_decider
from payments.ledger import events, states
from payments.ledger.models import Hold, Payment, Run
from payments.ledger.moves import transition


class NoSuchPayment(PaymentsError, LookupError):
    """No payment of the scheme for that fund and household."""


@dataclass(frozen=True)
class Held:
    """One line of the review list."""

    fund_code: str
    household_id: str
    amount_cents: int
    rule_id: str | None
    reasons: str
    released_by: str | None


def held_payments(session: Session, scheme_id: str) -> list[Held]:
    """The scheme's held payments (released ones included, with who released them)."""
    rows = session.execute(
        select(
            Payment.fund_code,
            Payment.household_id,
            Payment.amount_cents,
            Payment.rule_id,
            Hold.reasons,
            Hold.released_by,
        )
        .join(Hold, Hold.payment_id == Payment.id)
        .where(Payment.scheme_id == scheme_id)
        .order_by(Payment.fund_code, Payment.household_id)
    ).all()
    return [Held(*row) for row in rows]


def release_hold(
    session: Session,
    payment_id: int,
    *,
    by: str,
    note: str,
    at: datetime,
    approvers: Collection[str],
) -> None:
    """Finance lifts a hold after review: four eyes, like an approval (not the run's triggerer)."""
    hold = session.execute(select(Hold).where(Hold.payment_id == payment_id)).scalar_one()
    triggered_by = session.execute(
        select(Run.triggered_by)
        .join(Payment, Payment.run_id == Run.run_id)
        .where(Payment.id == payment_id)
    ).scalar_one()
    who = check_decider(by, triggered_by=triggered_by, approvers=approvers)
    if hold.released_at is not None:
        raise states.IllegalTransition("hold already released")
    run_id = session.execute(select(Payment.run_id).where(Payment.id == payment_id)).scalar_one()
    transition(session, [payment_id], states.COMPUTED, at=at, actor=who, run_id=run_id)
    hold.released_by, hold.released_at, hold.release_note = who, at, note
    events.append(session, "hold_released", {"payment": payment_id, "by": who, "note": note}, at=at)


def release_household(
    session: Session,
    scheme_id: str,
    fund_code: str,
    household_id: str,
    *,
    by: str,
    note: str,
    at: datetime,
    approvers: Collection[str],
) -> None:
    """:func:`release_hold` for the payment a fund's household has under a scheme."""
    payment_id = session.execute(
        select(Payment.id).where(
            Payment.scheme_id == scheme_id,
            Payment.fund_code == fund_code,
            Payment.household_id == household_id,
        )
    ).scalar_one_or_none()
    if payment_id is None:
        raise NoSuchPayment(f"no payment for fund {fund_code}, household {household_id}")
    release_hold(session, payment_id, by=by, note=note, at=at, approvers=approvers)
