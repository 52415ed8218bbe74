"""Held payments: the review list finance reads, and the release of a hold.

A hold is lifted by a finance approver who did not trigger the run (four
eyes, as for an approval); the payment goes back to ``computed`` and the
next run of its scheme that includes its fund pays it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from payments.errors import PaymentsError
from payments.four_eyes import check_decider
from payments.identity import Identity
from payments.ledger import events, states
from payments.ledger.models import Hold, Payment, Run
from payments.ledger.moves import transition


class NoSuchPayment(PaymentsError, LookupError):
    """No payment of the scheme for that fund and household."""


@dataclass(frozen=True)
class Held:
    """One line of the review list."""

    payment_id: int
    scheme_id: str
    run_id: str
    fund_code: str
    household_id: str
    amount_cents: int
    rule_id: str | None
    reasons: str
    released_by: str | None
    released_at: datetime | None
    release_note: str | None


@dataclass(frozen=True)
class HoldFilter:
    """Which holds to list: every field narrows (``None``: any)."""

    scheme_id: str | None = None
    fund_code: str | None = None
    #: One hold reason (``shared_iban``…): a payment held for several matches each.
    reason: str | None = None
    min_cents: int | None = None
    max_cents: int | None = None
    #: False: only those still held.
    released: bool | None = None

    def where(self) -> list[Any]:
        terms: list[Any] = []
        if self.scheme_id:
            terms.append(Payment.scheme_id == self.scheme_id)
        if self.fund_code:
            terms.append(Payment.fund_code == self.fund_code)
        if self.reason:
            terms.append(("," + Hold.reasons + ",").contains(f",{self.reason},", autoescape=True))
        if self.min_cents is not None:
            terms.append(Payment.amount_cents >= self.min_cents)
        if self.max_cents is not None:
            terms.append(Payment.amount_cents <= self.max_cents)
        if self.released is not None:
            terms.append(
                Hold.released_at.is_not(None) if self.released else Hold.released_at.is_(None)
            )
        return terms


def held_payments(session: Session, chosen: HoldFilter, *, limit: int | None = None) -> list[Held]:
    """The holds ``chosen`` selects (released ones included, with who released them), by
    fund and household; at most ``limit``."""
    query = (
        select(
            Payment.id,
            Payment.scheme_id,
            Payment.run_id,
            Payment.fund_code,
            Payment.household_id,
            Payment.amount_cents,
            Payment.rule_id,
            Hold.reasons,
            Hold.released_by,
            Hold.released_at,
            Hold.release_note,
        )
        .join(Hold, Hold.payment_id == Payment.id)
        .where(*chosen.where())
        .order_by(Payment.scheme_id, Payment.fund_code, Payment.household_id)
        .limit(limit)
    )
    return [Held(*row) for row in session.execute(query).all()]


def holds_total(session: Session, chosen: HoldFilter) -> tuple[int, int]:
    """How many holds ``chosen`` selects, and their cents."""
    count, cents = session.execute(
        select(func.count(), func.coalesce(func.sum(Payment.amount_cents), 0))
        .select_from(Payment)
        .join(Hold, Hold.payment_id == Payment.id)
        .where(*chosen.where())
    ).one()
    return int(count), int(cents)


def hold_reasons(session: Session) -> list[str]:
    """Every hold reason the ledger holds (for a filter's choices)."""
    seen: set[str] = set()
    for reasons in session.execute(select(Hold.reasons).distinct()).scalars():
        seen.update(r for r in reasons.split(",") if r)
    return sorted(seen)


def release_hold(
    session: Session,
    payment_id: int,
    *,
    by: str | Identity,
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
    by: str | Identity,
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
