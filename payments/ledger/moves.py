"""Payments and payment files change state: by predicate, checked, logged.

SQLAlchemy only: the tasks that send files and apply bank reports import this
without the data stack the recording of a run needs (polars, Arrow).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from payments.ledger import events, states
from payments.ledger.models import Payment

__all__ = ["move", "transition"]


def move(
    session: Session,
    where: ColumnElement[bool],
    new_state: str,
    *,
    at: datetime,
    actor: str,
    run_id: str | None = None,
    values: dict[str, Any] | None = None,
    via: Sequence[str] = (),
) -> int:
    """Move every payment matching ``where`` to ``new_state``: one statement, any number.

    The payments' current states are counted first; one illegal move refuses
    them all. ``where`` is a predicate (a run, a file, a state, a join on a
    staged table), never a list of ids, so the statement's size does not grow
    with the run. ``values``: other columns set in the same statement.
    ``via``: states passed through on the way (each step checked and logged as
    its own event), written as one update: rewriting millions of rows once
    instead of once per step.
    """
    found = session.execute(
        select(Payment.run_id, Payment.state, func.count())
        .where(where)
        .group_by(Payment.run_id, Payment.state)
    ).all()
    path = [*via, new_state]
    for _, state, _ in found:
        for before, after in zip([str(state), *path[:-1]], path, strict=True):
            states.check(before, after)
    count = sum(int(n) for _, _, n in found)
    if not count:
        return 0
    # Which runs' payments, from which states: `payments audit verify` replays these
    # to recount every run's payments by state and compares with the table.
    origin: dict[str, dict[str, int]] = {}
    for run, state, n in found:
        origin.setdefault(str(run), {})[str(state)] = int(n)
    session.execute(
        update(Payment)
        .where(where)
        .values(state=new_state, **(values or {}))
        .execution_options(synchronize_session=False)
    )
    for i, step in enumerate(path):
        runs = origin if i == 0 else {r: {path[i - 1]: sum(c.values())} for r, c in origin.items()}
        events.append(
            session,
            "payments_state",
            {"to": step, "count": count, "by": actor, "runs": runs},
            at=at,
            run_id=run_id,
        )
    return count


def transition(
    session: Session,
    payment_ids: Sequence[int],
    new_state: str,
    *,
    at: datetime,
    actor: str,
    run_id: str | None = None,
) -> int:
    """Move a handful of payments, named by id (a hold release); one illegal move refuses them all.

    Operations over a run's payments use :func:`move` with a predicate.
    """
    wanted = Payment.id.in_(list(payment_ids))
    known = session.execute(select(func.count()).select_from(Payment).where(wanted)).scalar_one()
    if known != len(set(payment_ids)):
        raise states.IllegalTransition("unknown payment id")
    return move(session, wanted, new_state, at=at, actor=actor, run_id=run_id)
