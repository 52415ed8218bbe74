"""Reading bank reports and applying them to the ledger.

- **pain.002.001.03** (customer payment status report): per original MsgId a
  group status — ``ACCP``/``ACSC``/``ACSP``/``ACTC`` accepted, ``RJCT`` the whole
  file rejected, ``PART`` partly — and per transaction ``TxSts`` with an ISO
  reason code (AC01 wrong account, AC04 closed, AC06 blocked, AM05 duplicate,
  MD07 deceased…).
- **camt.054** (debit/credit notification): later returns, by EndToEndId, with
  their reason code.

Every report line is matched by MsgId / EndToEndId to the ledger; a line that
matches no payment, or a payment in a state the report cannot apply to (a
duplicate report), is *flagged*, never silently ignored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from lxml import etree
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from payments.ledger import events, states
from payments.ledger.models import BankEvent, Payment, PaymentFileRow
from payments.ledger.store import transition

ACCEPTED_GROUP = {"ACCP", "ACSC", "ACSP", "ACTC", "ACWC"}


@dataclass(frozen=True)
class StatusLine:
    msg_id: str
    end_to_end_id: str | None  # None: the whole file
    status: str  # accepted | rejected | returned
    reason: str | None


@dataclass
class Applied:
    lines: int = 0
    accepted: int = 0
    rejected: int = 0
    returned: int = 0
    flagged: list[str] = field(default_factory=list)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


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


def parse_pain002(data: bytes) -> list[StatusLine]:
    """Status lines of a pain.002: one per rejected/accepted transaction, or per file."""
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    report = _find(root, "CstmrPmtStsRpt")
    if report is None:
        raise ValueError("not a pain.002 customer payment status report")
    group = next(c for c in report if _local(c.tag) == "OrgnlGrpInfAndSts")
    msg_id = _text(group, "OrgnlMsgId") or ""
    group_status = _text(group, "GrpSts")
    lines: list[StatusLine] = []
    for pmt in (c for c in report if _local(c.tag) == "OrgnlPmtInfAndSts"):
        for tx in (c for c in pmt if _local(c.tag) == "TxInfAndSts"):
            status = _text(tx, "TxSts")
            reason = _text(tx, "StsRsnInf", "Rsn", "Cd")
            lines.append(
                StatusLine(
                    msg_id,
                    _text(tx, "OrgnlEndToEndId"),
                    "rejected" if status == "RJCT" else "accepted",
                    reason,
                )
            )
    if group_status in ACCEPTED_GROUP or group_status == "PART":
        lines.append(StatusLine(msg_id, None, "accepted", None))  # the rest of the file
    elif group_status == "RJCT":
        reason = _text(group, "StsRsnInf", "Rsn", "Cd")
        lines.append(StatusLine(msg_id, None, "rejected", reason))
    return lines


def parse_camt054(data: bytes) -> list[StatusLine]:
    """Returns notified in a camt.054: one line per returned transaction."""
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    lines = []
    for details in root.iter():
        if _local(details.tag) != "TxDtls":
            continue
        e2e = _text(details, "Refs", "EndToEndId")
        msg = _text(details, "Refs", "MsgId") or ""
        reason = _text(details, "RtrInf", "Rsn", "Cd")
        if reason is not None:
            lines.append(StatusLine(msg, e2e, "returned", reason))
    return lines


def apply_report(
    session: Session, lines: list[StatusLine], *, source: str, data: bytes, at: datetime
) -> Applied:
    """Record report lines as bank events and move payments; flag what does not match."""
    digest = hashlib.sha256(data).hexdigest()
    result = Applied(lines=len(lines))
    explicit = {line.end_to_end_id for line in lines if line.end_to_end_id}
    moves: dict[str, list[int]] = {}
    for line in lines:
        if line.end_to_end_id is None:
            payments = list(
                session.execute(
                    select(Payment)
                    .join(PaymentFileRow, Payment.payment_file_id == PaymentFileRow.id)
                    .where(
                        PaymentFileRow.msg_id == line.msg_id,
                        Payment.state == states.SENT,
                        Payment.end_to_end_id.not_in(explicit),
                    )
                ).scalars()
            )
            if (
                not payments
                and not session.execute(
                    select(PaymentFileRow.id).where(PaymentFileRow.msg_id == line.msg_id)
                ).first()
            ):
                result.flagged.append(f"{source}: MsgId {line.msg_id} matches no payment file")
                continue
        else:
            payment = session.execute(
                select(Payment).where(Payment.end_to_end_id == line.end_to_end_id)
            ).scalar_one_or_none()
            if payment is None:
                result.flagged.append(
                    f"{source}: EndToEndId {line.end_to_end_id} matches no payment"
                )
                continue
            payments = [payment]
        target = {
            "accepted": states.ACCEPTED,
            "rejected": states.REJECTED,
            "returned": states.RETURNED,
        }[line.status]
        for payment in payments:
            if target not in states.TRANSITIONS.get(payment.state, frozenset()):
                result.flagged.append(
                    f"{source}: {payment.end_to_end_id} is {payment.state}, cannot become "
                    f"{target} (duplicate or out-of-order report)"
                )
                continue
            try:
                with session.begin_nested():
                    session.add(
                        BankEvent(
                            source_file=source,
                            source_sha256=digest,
                            msg_id=line.msg_id or None,
                            end_to_end_id=payment.end_to_end_id,
                            status=line.status,
                            reason_code=line.reason,
                            received_at=at,
                        )
                    )
            except IntegrityError:
                result.flagged.append(
                    f"{source}: {payment.end_to_end_id} {line.status}: "
                    "report already applied (duplicate)"
                )
                continue
            moves.setdefault(target, []).append(payment.id)
            setattr(result, line.status, getattr(result, line.status) + 1)
    for target, ids in moves.items():
        transition(session, ids, target, at=at, actor="bank")
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
