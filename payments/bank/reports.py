"""Applying a bank report's status lines (:mod:`payments.bank.lines`) to the ledger.

A transaction line overrides its block's status, a block's overrides the
group's: a group or block status applies to the payments of its file that no
line below it names.

Every line is matched by EndToEndId *within the file its MsgId names* (a line
about another file, or another run, moves nothing), and its amount and
currency, when the report gives them (a return always does), must be the
payment's. A line that matches no payment, names a payment of another file,
disagrees on the amount, or finds the payment in a state it cannot move from
(a duplicate or contradictory report), is *flagged*, never silently ignored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, String, Table, func, insert, literal, select, update
from sqlalchemy.orm import Session, aliased

from payments.bank import statuses
from payments.bank.lines import FLAG, StatusLine
from payments.ledger import events, states
from payments.ledger.models import BankEvent, Payment, PaymentFileRow
from payments.ledger.moves import move
from payments.ledger.staging import staged_rows
from payments.sepa.layout import block_id

__all__ = ["Applied", "apply_report"]


@dataclass
class Applied:
    lines: int = 0
    accepted: int = 0
    rejected: int = 0
    returned: int = 0
    #: Lines (or file-level statuses) that found their payment or file.
    matched: int = 0
    flagged: list[str] = field(default_factory=list)


#: The one currency our payments are in; a line in another is flagged, not applied.
CURRENCY = "EUR"
#: What a report line says, as the payment state it moves to.
TARGETS = {"accepted": states.ACCEPTED, "rejected": states.REJECTED, "returned": states.RETURNED}
#: Why a staged line is not applied (``verdict`` of the staged line; ``ok`` applies it).
_UNKNOWN, _TWICE, _ILLEGAL, _DUPLICATE, _OK = "unknown", "twice", "illegal", "duplicate", "ok"
_OTHER_FILE, _AMOUNT = "other_file", "amount"


def _sources(target: str) -> list[str]:
    """The states a payment may be in to move to ``target``."""
    return sorted(s for s, allowed in states.TRANSITIONS.items() if target in allowed)


def apply_report(
    session: Session, lines: list[StatusLine], *, source: str, data: bytes, at: datetime
) -> Applied:
    """Record report lines as bank events and move payments; flag what does not match.

    Set-based, whatever the report's size: the lines are staged in a
    temporary table (a file- or block-level line expands there to the file's
    payments that no line names), each staged line gets a verdict in a few
    statements over the whole table, then the events are inserted and the
    payments moved by state, each in one statement. A line is applied only if
    its payment exists in the file it names, at its amount, is named once in
    the report, is in a state the line can move it from, and was not applied
    from the same report before.
    """
    digest = hashlib.sha256(data).hexdigest()
    result = Applied(lines=len(lines))
    named = [(n, ln) for n, ln in enumerate(lines) if ln.end_to_end_id is not None]
    staged = (_staged(n, ln) for n, ln in named if _in_block(ln))
    with staged_rows(
        session, _COLUMNS, staged, integer=["line_no", "amount"], key=["end_to_end_id"]
    ) as stage:
        for n, line in enumerate(lines):
            result.flagged += _level(session, stage, n, line, source, result)
        _judge(session, stage, digest)
        result.flagged += _flags(session, stage, source)
        result.matched += session.execute(
            select(func.count()).where(stage.c.verdict.not_in([_UNKNOWN, _OTHER_FILE]))
        ).scalar_one()
        ok = (stage.c.verdict == _OK) & stage.c.status.in_(list(TARGETS))
        _record_events(session, stage, ok, source=source, digest=digest, at=at)
        for status, target in TARGETS.items():
            applied = select(stage.c.end_to_end_id).where(ok, stage.c.status == status)
            moved = move(session, Payment.end_to_end_id.in_(applied), target, at=at, actor="bank")
            setattr(result, status, moved)
    events.append(
        session,
        "bank_report",
        {
            "source": source,
            "sha256": digest,
            "accepted": result.accepted,
            "rejected": result.rejected,
            "returned": result.returned,
            "flagged": len(result.flagged),
        },
        at=at,
    )
    return result


_COLUMNS = (
    "line_no",
    "msg_id",
    "end_to_end_id",
    "status",
    "reason",
    "amount",
    "currency",
    "code",
    "verdict",
)


def _staged(line_no: int, line: StatusLine) -> tuple[Any, ...]:
    """A line as a row of the staging table (``_COLUMNS``; no verdict yet)."""
    return (
        line_no,
        line.msg_id,
        line.end_to_end_id,
        line.status,
        line.reason,
        line.amount_cents,
        line.currency,
        line.code,
        None,
    )


def _record_events(
    session: Session, stage: Table, ok: Any, *, source: str, digest: str, at: datetime
) -> None:
    """One bank event per line applied, in the report's order."""
    columns = ["source_file", "source_sha256", "msg_id", "end_to_end_id", "status"]
    columns += ["reason_code", "received_at"]
    session.execute(
        insert(BankEvent).from_select(
            columns,
            select(
                literal(source),
                literal(digest),
                func.nullif(stage.c.msg_id, ""),
                stage.c.end_to_end_id,
                stage.c.status,
                stage.c.reason,
                literal(at, DateTime),
            )
            .where(ok)
            .order_by(stage.c.line_no, stage.c.end_to_end_id),
        )
    )


def _in_block(line: StatusLine) -> bool:
    """The block a line names, when it names one, is its file's (one block per file)."""
    return line.block is None or not line.msg_id or line.block == block_id(line.msg_id)


def _level(
    session: Session, stage: Table, line_no: int, line: StatusLine, source: str, result: Applied
) -> list[str]:
    """A file- or block-level line: checked, expanded when it moves payments; its flags."""
    where = f"{source}: {line.msg_id}" + (f" block {line.block}" if line.block else "")
    if not _in_block(line):
        return [f"{where}: OrgnlPmtInfId {line.block} is not a block of {line.msg_id}"]
    if line.end_to_end_id is not None:
        return []
    if line.status == "returned":
        return [f"{source}: a return without an EndToEndId: which payment? (nothing moved)"]
    file_ids = select(PaymentFileRow.id).where(PaymentFileRow.msg_id == line.msg_id)
    if session.execute(file_ids.limit(1)).first() is None:
        return [f"{source}: MsgId {line.msg_id} matches no payment file"]
    result.matched += 1
    if line.status == FLAG:
        meaning = statuses.statuses()[str(line.code)].meaning
        return [f"{where}: status {line.code} ({meaning}): nothing moved, for finance to decide"]
    if line.status in TARGETS:
        _expand(session, stage, line_no, line, file_ids)
    return []


def _expand(session: Session, stage: Table, line_no: int, line: StatusLine, file_ids: Any) -> None:
    """One staged line per payment of the file that no earlier line names.

    Payments already in the line's target state are left out (the report
    agrees with the ledger); any other state is staged, so a contradiction
    (a file rejected whose payments were accepted) is judged and flagged.
    """
    named = select(stage.c.end_to_end_id).where(stage.c.end_to_end_id.is_not(None))
    session.execute(
        insert(stage).from_select(
            ["line_no", "msg_id", "end_to_end_id", "status", "reason", "code"],
            select(
                literal(line_no),
                literal(line.msg_id),
                Payment.end_to_end_id,
                literal(line.status),
                literal(line.reason, String),
                literal(line.code, String),
            ).where(
                Payment.payment_file_id.in_(file_ids),
                Payment.state != TARGETS[line.status],
                Payment.end_to_end_id.not_in(named),
            ),
        )
    )


def _judge(session: Session, stage: Table, digest: str) -> None:
    """Each staged line's verdict: the first reason it cannot be applied, else ``ok``."""
    payment = select(Payment.id).where(Payment.end_to_end_id == stage.c.end_to_end_id)
    earlier = aliased(stage)
    pending = stage.c.verdict.is_(None)
    named_file = select(PaymentFileRow.id).where(PaymentFileRow.msg_id == stage.c.msg_id)
    verdicts: list[tuple[str, Any]] = [
        (_UNKNOWN, ~payment.exists()),
        (
            _OTHER_FILE,
            (func.coalesce(stage.c.msg_id, "") != "")
            & ~payment.where(Payment.payment_file_id.in_(named_file)).exists(),
        ),
        (
            _AMOUNT,
            ((stage.c.status == "returned") & stage.c.amount.is_(None))
            | (func.coalesce(stage.c.currency, CURRENCY) != CURRENCY)
            | payment.where(Payment.amount_cents != stage.c.amount).exists(),
        ),
        (
            _TWICE,
            select(earlier.c.line_no)
            .where(
                earlier.c.end_to_end_id == stage.c.end_to_end_id,
                earlier.c.line_no < stage.c.line_no,
            )
            .exists(),
        ),
    ]
    for status, target in TARGETS.items():
        verdicts.append(
            (
                _ILLEGAL,
                (stage.c.status == status)
                & payment.where(Payment.state.not_in(_sources(target))).exists(),
            )
        )
    verdicts.append(
        (
            _DUPLICATE,
            select(BankEvent.id)
            .where(
                BankEvent.source_sha256 == digest,
                BankEvent.end_to_end_id == stage.c.end_to_end_id,
                BankEvent.status == stage.c.status,
            )
            .exists(),
        )
    )
    for verdict, condition in verdicts:
        session.execute(update(stage).where(pending, condition).values(verdict=verdict))
    session.execute(update(stage).where(pending).values(verdict=_OK))


def _flags(session: Session, stage: Table, source: str) -> list[str]:
    """One sentence per line not applied, or applied with a question, in the report's order."""
    rows = session.execute(
        select(
            stage.c.end_to_end_id,
            stage.c.status,
            stage.c.verdict,
            stage.c.reason,
            stage.c.code,
            Payment.state,
        )
        .join_from(stage, Payment, Payment.end_to_end_id == stage.c.end_to_end_id, isouter=True)
        .where(
            (stage.c.verdict != _OK)
            | (stage.c.status == FLAG)
            | ((stage.c.status == "returned") & stage.c.reason.is_(None))
        )
        .order_by(stage.c.line_no, stage.c.end_to_end_id)
    )
    return [_sentence(source, *row) for row in rows]


def _sentence(
    source: str,
    e2e: str,
    status: str,
    verdict: str,
    reason: str | None,
    code: str | None,
    state: str | None,
) -> str:
    if verdict == _UNKNOWN:
        return f"{source}: EndToEndId {e2e} matches no payment"
    if verdict == _OTHER_FILE:
        return f"{source}: {e2e} is not a payment of the file the report names"
    if verdict == _AMOUNT:
        return f"{source}: {e2e} {status}: no amount, or not the payment's amount in {CURRENCY}"
    if verdict == _TWICE:
        return f"{source}: {e2e} is named twice in the report; the first line applies"
    if verdict == _ILLEGAL:
        return (
            f"{source}: {e2e} is {state}, cannot become {TARGETS[status]} "
            "(duplicate or contradictory report)"
        )
    if verdict == _DUPLICATE:
        return f"{source}: {e2e} {status}: report already applied (duplicate)"
    if status == FLAG:
        meaning = statuses.statuses()[str(code)].meaning
        return f"{source}: {e2e} status {code} ({meaning}): nothing moved, for finance to decide"
    return f"{source}: {e2e} returned without a reason: recorded as returned, reason unknown"
