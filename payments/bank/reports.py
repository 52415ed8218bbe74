"""Reading bank reports and applying them to the ledger.

- **pain.002** (.001.03 and .001.10, and banks' variants): a status per
  original message (group), per payment-information block and per
  transaction, each code's effect read from the reviewed table
  (:mod:`payments.bank.statuses`). A transaction line overrides its block's
  status, a block's overrides the group's: a group or block status applies to
  the payments of its file that no line below it names.
- **camt.054** (.02, .04, .08) and **camt.053** (.02, .08): returned credit
  transfers (``RtrInf``, or a credit booked with the ISO sub-family ``RRTN``),
  with their reason and amount.

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
from decimal import Decimal, InvalidOperation
from typing import Any

from lxml import etree
from sqlalchemy import DateTime, String, Table, func, insert, literal, select, update
from sqlalchemy.orm import Session, aliased

from payments.bank import statuses
from payments.bank.messages import Message, ReportError, local, read_message
from payments.ledger import events, states
from payments.ledger.models import BankEvent, Payment, PaymentFileRow
from payments.ledger.moves import move
from payments.ledger.staging import staged_rows
from payments.sepa.layout import block_id

__all__ = ["Applied", "ReportError", "StatusLine", "apply_report", "read_report"]

#: A line's ``status`` besides the moves (accepted, rejected, returned): the payment is
#: named, so its block's and group's status do not reach it, but it does not move.
STAY = "stay"
FLAG = statuses.FLAG
#: The ISO sub-family of a returned credit transfer (bank transaction code PMNT/ICDT/RRTN).
RETURN_SUBFAMILY = "RRTN"


@dataclass(frozen=True)
class StatusLine:
    msg_id: str
    end_to_end_id: str | None  # None: the whole file (or block)
    status: str  # accepted | rejected | returned | stay | flag
    reason: str | None
    amount_cents: int | None = None  # as the report states it, when it does
    block: str | None = None  # the OrgnlPmtInfId (PmtInfId) it names, when it names one
    currency: str | None = None
    code: str | None = None  # the ISO status code, for flags


@dataclass
class Applied:
    lines: int = 0
    accepted: int = 0
    rejected: int = 0
    returned: int = 0
    #: Lines (or file-level statuses) that found their payment or file.
    matched: int = 0
    flagged: list[str] = field(default_factory=list)


def _cents(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = Decimal(text) * 100
    except InvalidOperation:
        raise ReportError(f"amount {text!r} is not a decimal") from None
    if value != value.to_integral_value():
        raise ReportError(f"amount {text!r} has more than two decimals")
    return int(value)


def _child(el: etree._Element | None, *path: str) -> etree._Element | None:
    for name in path:
        if el is None:
            return None
        el = next((c for c in el if local(c) == name), None)
    return el


def _text(el: etree._Element | None, *path: str) -> str | None:
    found = _child(el, *path)
    return None if found is None or found.text is None else found.text.strip()


def _children(el: etree._Element | None, name: str) -> list[etree._Element]:
    return [] if el is None else [c for c in el if local(c) == name]


def _status(code: str, where: str) -> statuses.Status:
    known = statuses.statuses()
    if code not in known:
        raise ReportError(f"{where}: status {code!r} is not an ISO 20022 status code")
    return known[code]


def _reason(el: etree._Element | None) -> str | None:
    """The first ISO reason code of a ``StsRsnInf`` or ``RtrInf`` (Cd; Prtry is the bank's own)."""
    return _text(el, "Rsn", "Cd")


def status_lines(body: etree._Element) -> list[StatusLine]:
    """A pain.002's lines: transactions first, then blocks, then the group (precedence order).

    ``apply_report`` expands a block or group line to the payments no
    earlier line names, so the order is what makes a line override its block
    and a block its group.
    """
    group = _child(body, "OrgnlGrpInfAndSts")
    msg_id = _text(group, "OrgnlMsgId")
    if group is None or not msg_id:
        raise ReportError("pain.002 without OrgnlGrpInfAndSts/OrgnlMsgId: which file is it about?")
    lines: list[StatusLine] = []
    blocks: list[StatusLine] = []
    for pmt in _children(body, "OrgnlPmtInfAndSts"):
        block = _text(pmt, "OrgnlPmtInfId")
        for tx in _children(pmt, "TxInfAndSts"):
            e2e = _text(tx, "OrgnlEndToEndId")
            code = _text(tx, "TxSts")
            if not e2e or code is None:
                continue  # no payment named, or no status of its own: its block's applies
            status = _status(code, e2e)
            amount = _child(tx, "OrgnlTxRef", "Amt", "InstdAmt")
            lines.append(
                StatusLine(
                    msg_id,
                    e2e,
                    _line_status(status.effect),
                    _reason(_child(tx, "StsRsnInf"))
                    if status.effect == statuses.REJECTED
                    else None,
                    _cents(None if amount is None else amount.text),
                    block,
                    None if amount is None else amount.get("Ccy"),
                    code,
                )
            )
        code = _text(pmt, "PmtInfSts")
        if code is not None:
            if not block:
                raise ReportError(f"{msg_id}: PmtInfSts {code} without OrgnlPmtInfId: which block?")
            blocks.append(_level_line(msg_id, code, _child(pmt, "StsRsnInf"), block))
    lines += blocks
    code = _text(group, "GrpSts")
    lines.append(
        _level_line(msg_id, code, _child(group, "StsRsnInf"), None)
        if code is not None
        else StatusLine(msg_id, None, STAY, None)
    )
    return lines


def _line_status(effect: str) -> str:
    """A line's status for an effect: the move, a flag, or stay (PART on a line is a flag)."""
    if effect in statuses.MOVES:
        return effect
    return FLAG if effect in (statuses.FLAG, statuses.PARTIAL) else STAY


def _level_line(
    msg_id: str, code: str, reasons: etree._Element | None, block: str | None
) -> StatusLine:
    """What a group or block status says of the payments no line names."""
    status = _status(code, msg_id)
    effect = statuses.ACCEPTED if status.effect == statuses.PARTIAL else status.effect
    reason = _reason(reasons) if effect == statuses.REJECTED else None
    return StatusLine(msg_id, None, _line_status(effect), reason, block=block, code=code)


def return_lines(body: etree._Element) -> list[StatusLine]:
    """Returned credit transfers in a camt.054 or camt.053: one line per returned transaction.

    A transaction is a return when it carries ``RtrInf`` or its bank
    transaction code (its own, else its entry's) is the ISO sub-family RRTN.
    The amount is the transaction's (``AmtDtls``, or ``Amt`` in later
    versions), else the entry's when the entry holds this transaction alone.
    """
    lines = []
    for entry in body.iter("{*}Ntry"):
        details = list(entry.iter("{*}TxDtls"))
        for tx in details:
            returned = _child(tx, "RtrInf")
            code = _text(tx, "BkTxCd", "Domn", "Fmly", "SubFmlyCd") or _text(
                entry, "BkTxCd", "Domn", "Fmly", "SubFmlyCd"
            )
            if returned is None and code != RETURN_SUBFAMILY:
                continue
            amount = next(
                (
                    a
                    for a in (
                        _child(tx, "AmtDtls", "TxAmt", "Amt"),
                        _child(tx, "AmtDtls", "InstdAmt", "Amt"),
                        _child(tx, "Amt"),
                        _child(entry, "Amt") if len(details) == 1 else None,
                    )
                    if a is not None
                ),
                None,
            )
            lines.append(
                StatusLine(
                    _text(tx, "Refs", "MsgId") or "",
                    _text(tx, "Refs", "EndToEndId"),
                    "returned",
                    _reason(returned),
                    _cents(None if amount is None else amount.text),
                    _text(tx, "Refs", "PmtInfId"),
                    None if amount is None else amount.get("Ccy"),
                )
            )
    return lines


def read_report(data: bytes) -> list[StatusLine]:
    """A pain.002, camt.054 or camt.053 (told apart by their message element), as lines."""
    message: Message = read_message(data)
    return status_lines(message.body) if message.kind == "pain.002" else return_lines(message.body)


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
