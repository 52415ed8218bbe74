"""Reading a bank report into status lines: what the bank says of which payment.

- **pain.002** (.001.03 and .001.10, and banks' variants): a status per
  original message (group), per payment-information block and per
  transaction, each code's effect read from the reviewed table
  (:mod:`payments.bank.statuses`).
- **camt.054** (.02, .04, .08) and **camt.053** (.02, .08): returned credit
  transfers (``RtrInf``, or a credit booked with the ISO sub-family ``RRTN``),
  with their reason and amount.

Pure: bytes in, :class:`StatusLine` out. Applying them to the ledger is
:mod:`payments.bank.reports`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from lxml import etree

from payments.bank import statuses
from payments.bank.messages import Message, ReportError, local, read_message

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
