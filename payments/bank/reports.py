"""Reading bank reports and applying them to the ledger.

- **pain.002.001.03** (customer payment status report): per original MsgId a
  group status — ``ACCP``/``ACSC``/``ACSP``/``ACTC`` accepted, ``RJCT`` the whole
  file rejected, ``PART`` partly — and per transaction ``TxSts`` with an ISO
  reason code (AC01 wrong account, AC04 closed, AC06 blocked, AM05 duplicate,
  MD07 deceased…).
- **camt.054** (debit/credit notification): later returns, by EndToEndId, with
  their reason code.

Every report line is matched by EndToEndId *within the file its MsgId names*
(a line about another file, or another run, moves nothing), and its amount,
when the report gives one (a return always does), must be the payment's. A
line that matches no payment, names a payment of another file, disagrees on
the amount, or finds the payment in a state it cannot apply to (a duplicate
report), is *flagged*, never silently ignored. Transaction statuses are
mapped exhaustively: pending (``PDNG``) moves nothing, an unknown one is
flagged.
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

from payments.ledger import events, states
from payments.ledger.models import BankEvent, Payment, PaymentFileRow
from payments.ledger.moves import move
from payments.ledger.staging import staged_rows
from payments.sepa.layout import block_id

ACCEPTED_GROUP = {"ACCC", "ACCP", "ACFC", "ACIS", "ACSC", "ACSP", "ACTC", "ACWC", "ACWP"}
#: ISO 20022 ExternalPaymentTransactionStatus1Code values a line may carry, and what they
#: do: accepted (at some stage), rejected, or nothing yet (pending, received, partly
#: accepted technically, presented). Any other code (blocked, cancelled…) makes the
#: report unreadable as a whole: quarantined for a person, never guessed.
TX_STATUS: dict[str, str | None] = {
    **{code: "accepted" for code in ACCEPTED_GROUP},
    "RJCT": "rejected",
    **{code: None for code in ("PDNG", "RCVD", "PATC", "PRES")},
}


class ReportError(ValueError):
    """A report that cannot be read as a pain.002 or camt.054; the message says why."""


@dataclass(frozen=True)
class StatusLine:
    msg_id: str
    end_to_end_id: str | None  # None: the whole file
    status: str  # accepted | rejected | returned
    reason: str | None
    amount_cents: int | None = None  # as the report states it, when it does
    block: str | None = None  # a payment-information block's line: its OrgnlPmtInfId


@dataclass
class Applied:
    lines: int = 0
    accepted: int = 0
    rejected: int = 0
    returned: int = 0
    flagged: list[str] = field(default_factory=list)


def _local(tag: object) -> str:
    """An element's name without namespace; "" for comments and processing instructions."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


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


def _find(el: etree._Element, name: str) -> etree._Element | None:
    for child in el.iter():
        if _local(child.tag) == name:
            return child
    return None


def _text(el: etree._Element | None, *path: str) -> str | None:
    for name in path:
        if el is None:
            return None
        el = next((c for c in el if _local(c.tag) == name), None)
    return None if el is None or el.text is None else el.text.strip()


def _parse(data: bytes) -> etree._Element:
    try:
        return etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        raise ReportError(f"not well-formed XML: {exc}") from None


def parse_pain002(data: bytes) -> list[StatusLine]:
    """Status lines of a pain.002: one per rejected/accepted transaction, or per file."""
    root = _parse(data)
    report = _find(root, "CstmrPmtStsRpt")
    if report is None:
        raise ReportError("not a pain.002 customer payment status report")
    group = next((c for c in report if _local(c.tag) == "OrgnlGrpInfAndSts"), None)
    msg_id = _text(group, "OrgnlMsgId")
    if group is None or not msg_id:
        raise ReportError("pain.002 without OrgnlGrpInfAndSts/OrgnlMsgId: which file is it about?")
    group_status = _text(group, "GrpSts")
    lines: list[StatusLine] = []
    blocks: list[StatusLine] = []
    for pmt in (c for c in report if _local(c.tag) == "OrgnlPmtInfAndSts"):
        for tx in (c for c in pmt if _local(c.tag) == "TxInfAndSts"):
            code = _text(tx, "TxSts")
            e2e = _text(tx, "OrgnlEndToEndId")
            if code not in TX_STATUS:
                raise ReportError(f"{e2e}: transaction status {code!r} is not an ISO 20022 code")
            status = TX_STATUS[code]
            if status is None:
                continue  # pending: nothing to record yet
            lines.append(
                StatusLine(
                    msg_id,
                    e2e,
                    status,
                    _text(tx, "StsRsnInf", "Rsn", "Cd"),
                    _cents(_text(tx, "OrgnlTxRef", "Amt", "InstdAmt")),
                )
            )
        block = _block_line(msg_id, pmt)
        if block is not None:
            blocks.append(block)
    # Precedence: a transaction line over its block's status, a block's over the group's
    # (apply_report expands each block or file line, in this order, to what no line named).
    lines += blocks
    group_line = _status_line(msg_id, group_status, _text(group, "StsRsnInf", "Rsn", "Cd"))
    if group_line is not None:
        lines.append(group_line)
    return lines


def _status_line(
    msg_id: str, code: str | None, reason: str | None, block: str | None = None
) -> StatusLine | None:
    """What a group or payment-information status says of the payments no line names."""
    if code is None or code == "PART":  # PART: the rest of the block was accepted
        return None if code is None else StatusLine(msg_id, None, "accepted", None, block=block)
    if code not in TX_STATUS:
        raise ReportError(f"{msg_id}: status {code!r} is not an ISO 20022 code")
    status = TX_STATUS[code]
    if status is None:
        return None
    return StatusLine(msg_id, None, status, reason if status == "rejected" else None, block=block)


def _block_line(msg_id: str, pmt: etree._Element) -> StatusLine | None:
    """A payment-information block's own status (``PmtInfSts``), for the payments of the block."""
    code = _text(pmt, "PmtInfSts")
    if code is None:
        return None
    block = _text(pmt, "OrgnlPmtInfId")
    if not block:
        raise ReportError(f"{msg_id}: PmtInfSts {code} without OrgnlPmtInfId: which block?")
    return _status_line(msg_id, code, _text(pmt, "StsRsnInf", "Rsn", "Cd"), block=block)


def parse_camt054(data: bytes) -> list[StatusLine]:
    """Returns notified in a camt.054: one line per returned transaction, with its amount.

    The amount is the transaction's (``AmtDtls``, or ``Amt`` on the
    transaction details in later versions), else the entry's when the entry
    holds this transaction alone.
    """
    root = _parse(data)
    lines = []
    for entry in root.iter():
        if _local(entry.tag) != "Ntry":
            continue
        details = [d for d in entry.iter() if _local(d.tag) == "TxDtls"]
        for tx in details:
            reason = _text(tx, "RtrInf", "Rsn", "Cd")
            if reason is None:
                continue
            amount = (
                _text(tx, "AmtDtls", "TxAmt", "Amt")
                or _text(tx, "AmtDtls", "InstdAmt", "Amt")
                or _text(tx, "Amt")
                or (_text(entry, "Amt") if len(details) == 1 else None)
            )
            lines.append(
                StatusLine(
                    _text(tx, "Refs", "MsgId") or "",
                    _text(tx, "Refs", "EndToEndId"),
                    "returned",
                    reason,
                    _cents(amount),
                )
            )
    return lines


def read_report(data: bytes) -> list[StatusLine]:
    """A pain.002 or a camt.054 (told apart by their root message), as status lines."""
    if b"CstmrPmtStsRpt" in data:
        return parse_pain002(data)
    if b"BkToCstmrDbtCdtNtfctn" in data:
        return parse_camt054(data)
    raise ReportError("neither a pain.002 status report nor a camt.054 notification")


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
    temporary table (a file-level line expands there to the file's sent
    payments that no line names), each staged line gets a verdict in a few
    statements over the whole table, then the events are inserted and the
    payments moved by state, each in one statement. A line is applied only if
    its payment exists, is named once in the report, is in a state the line
    can move it from, and was not applied from the same report before.
    """
    digest = hashlib.sha256(data).hexdigest()
    result = Applied(lines=len(lines))
    columns = ["line_no", "msg_id", "end_to_end_id", "status", "reason", "amount", "verdict"]
    staged = (
        (n, line.msg_id, line.end_to_end_id, line.status, line.reason, line.amount_cents, None)
        for n, line in enumerate(lines)
        if line.end_to_end_id is not None
    )
    with staged_rows(
        session, columns, staged, integer=["line_no", "amount"], key=["end_to_end_id"]
    ) as stage:
        for n, line in enumerate(lines):
            if line.end_to_end_id is not None:
                continue
            if line.block is not None and line.block != block_id(line.msg_id):
                result.flagged.append(
                    f"{source}: OrgnlPmtInfId {line.block} is not a block of {line.msg_id}"
                )
            elif not _expand_file_line(session, stage, n, line):
                result.flagged.append(f"{source}: MsgId {line.msg_id} matches no payment file")
        _judge(session, stage, digest)
        result.flagged += _flags(session, stage, source)
        ok = stage.c.verdict == _OK
        session.execute(
            insert(BankEvent).from_select(
                [
                    "source_file",
                    "source_sha256",
                    "msg_id",
                    "end_to_end_id",
                    "status",
                    "reason_code",
                    "received_at",
                ],
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
        for status, target in TARGETS.items():
            moved = move(
                session,
                Payment.end_to_end_id.in_(
                    select(stage.c.end_to_end_id).where(ok, stage.c.status == status)
                ),
                target,
                at=at,
                actor="bank",
            )
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


def _expand_file_line(session: Session, stage: Table, line_no: int, line: StatusLine) -> bool:
    """A file-level line becomes one staged line per sent payment of the file no line names.

    False when no payment file has that MsgId.
    """
    file_ids = select(PaymentFileRow.id).where(PaymentFileRow.msg_id == line.msg_id)
    if session.execute(file_ids.limit(1)).first() is None:
        return False
    named = select(stage.c.end_to_end_id).where(stage.c.end_to_end_id.is_not(None))
    session.execute(
        insert(stage).from_select(
            ["line_no", "msg_id", "end_to_end_id", "status", "reason"],
            select(
                literal(line_no),
                literal(line.msg_id),
                Payment.end_to_end_id,
                literal(line.status),
                literal(line.reason, String),
            ).where(
                Payment.payment_file_id.in_(file_ids),
                Payment.state == states.SENT,
                Payment.end_to_end_id.not_in(named),
            ),
        )
    )
    return True


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
    """One sentence per line not applied, in the report's order."""
    rows = session.execute(
        select(stage.c.end_to_end_id, stage.c.status, stage.c.verdict, Payment.state)
        .join_from(stage, Payment, Payment.end_to_end_id == stage.c.end_to_end_id, isouter=True)
        .where(stage.c.verdict != _OK)
        .order_by(stage.c.line_no, stage.c.end_to_end_id)
    )
    flags = []
    for e2e, status, verdict, state in rows:
        if verdict == _UNKNOWN:
            flags.append(f"{source}: EndToEndId {e2e} matches no payment")
        elif verdict == _OTHER_FILE:
            flags.append(f"{source}: {e2e} is not a payment of the file the report names")
        elif verdict == _AMOUNT:
            flags.append(f"{source}: {e2e} {status}: no amount, or not the payment's amount")
        elif verdict == _TWICE:
            flags.append(f"{source}: {e2e} is named twice in the report; the first line applies")
        elif verdict == _ILLEGAL:
            flags.append(
                f"{source}: {e2e} is {state}, cannot become {TARGETS[status]} "
                "(duplicate or out-of-order report)"
            )
        else:
            flags.append(f"{source}: {e2e} {status}: report already applied (duplicate)")
    return flags
