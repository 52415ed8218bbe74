"""Hand-written bank reports in every shape the readers accept, valid against the official XSDs.

Fixtures, not product: what a bank writes, built from (EndToEndId, status,
reason, cents) tuples so a test says only what it is about. Each builder
returns bytes that the vendored official schema of its version accepts
(checked here, so a test cannot pass on a report no bank could send).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from payments.sepa.layout import block_id
from payments.sepa.schemas import ISO_NAMESPACE, schema


@dataclass(frozen=True)
class Tx:
    end_to_end_id: str
    status: str | None = "RJCT"
    reason: str | None = "AC01"
    cents: int | None = None


@dataclass(frozen=True)
class Block:
    pmt_inf_id: str
    status: str | None = None
    reason: str | None = None
    txs: list[Tx] = field(default_factory=list)


def _amount(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _reason(code: str | None) -> str:
    return f"<StsRsnInf><Rsn><Cd>{code}</Cd></Rsn></StsRsnInf>" if code else ""


def _checked(data: bytes, name: str) -> bytes:
    doc = etree.fromstring(data)
    xsd = schema(name)
    assert xsd.validate(doc.getroottree()), (name, str(xsd.error_log))
    return data


def pain002(
    msg_id: str,
    *,
    group: str | None = None,
    group_reason: str | None = None,
    blocks: list[Block] | None = None,
    version: str = "pain.002.001.03",
    namespace: str | None = None,
) -> bytes:
    """A status report on ``msg_id``; the blocks default to none.

    ``namespace``: a bank's variant namespace (then not checked against the XSD).
    """
    body = "".join(
        f"<OrgnlPmtInfAndSts><OrgnlPmtInfId>{b.pmt_inf_id}</OrgnlPmtInfId>"
        + (f"<PmtInfSts>{b.status}</PmtInfSts>" if b.status else "")
        + _reason(b.reason)
        + "".join(
            f"<TxInfAndSts><OrgnlEndToEndId>{t.end_to_end_id}</OrgnlEndToEndId>"
            + (f"<TxSts>{t.status}</TxSts>" if t.status else "")
            + _reason(t.reason if t.status == "RJCT" else None)
            + (
                f'<OrgnlTxRef><Amt><InstdAmt Ccy="EUR">{_amount(t.cents)}</InstdAmt></Amt>'
                "</OrgnlTxRef>"
                if t.cents is not None
                else ""
            )
            + "</TxInfAndSts>"
            for t in b.txs
        )
        + "</OrgnlPmtInfAndSts>"
        for b in blocks or []
    )
    xml = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Document xmlns="{namespace or ISO_NAMESPACE + version}"><CstmrPmtStsRpt>'
        f"<GrpHdr><MsgId>STS-{msg_id}</MsgId><CreDtTm>2020-05-15T07:00:00</CreDtTm></GrpHdr>"
        f"<OrgnlGrpInfAndSts><OrgnlMsgId>{msg_id}</OrgnlMsgId>"
        f"<OrgnlMsgNmId>pain.001.001.03</OrgnlMsgNmId>"
        + (f"<GrpSts>{group}</GrpSts>" if group else "")
        + _reason(group_reason)
        + f"</OrgnlGrpInfAndSts>{body}</CstmrPmtStsRpt></Document>\n"
    ).encode()
    return xml if namespace else _checked(xml, version)


def block(msg_id: str, status: str | None = None, *txs: Tx, reason: str | None = None) -> Block:
    """The one payment-information block of our file ``msg_id``."""
    return Block(block_id(msg_id), status, reason, list(txs))


@dataclass(frozen=True)
class Return:
    msg_id: str  # "": the bank does not say which file (no Refs/MsgId)
    end_to_end_id: str
    cents: int
    reason: str | None = "AC04"
    currency: str = "EUR"
    rtrinf: bool = True  # False: the return is told by its bank transaction code only


def _entry(r: Return, version: str) -> str:
    status = "<Sts><Cd>BOOK</Cd></Sts>" if version.endswith("08") else "<Sts>BOOK</Sts>"
    code = (
        "<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>ICDT</Cd><SubFmlyCd>RRTN</SubFmlyCd></Fmly>"
        "</Domn></BkTxCd>"
    )
    info = ""
    if r.rtrinf:
        info = "<RtrInf>" + (f"<Rsn><Cd>{r.reason}</Cd></Rsn>" if r.reason else "") + "</RtrInf>"
    amount = f'<Amt Ccy="{r.currency}">{_amount(r.cents)}</Amt>'
    return (
        f"<Ntry>{amount}<CdtDbtInd>CRDT</CdtDbtInd>{status}"
        f"<BookgDt><Dt>2020-05-20</Dt></BookgDt>{code}<NtryDtls><TxDtls>"
        "<Refs>"
        + (
            f"<MsgId>{r.msg_id}</MsgId><PmtInfId>{block_id(r.msg_id)}</PmtInfId>"
            if r.msg_id
            else ""
        )
        + f"<EndToEndId>{r.end_to_end_id}</EndToEndId></Refs>"
        + ("" if version.endswith("02") else f"{amount}<CdtDbtInd>CRDT</CdtDbtInd>")
        + f"<AmtDtls><TxAmt>{amount}</TxAmt></AmtDtls>{info}"
        "</TxDtls></NtryDtls></Ntry>"
    )


_ACCOUNT = "<Acct><Id><IBAN>FR7640031000010000000100043</IBAN></Id></Acct>"


def camt054(returns: list[Return], *, version: str = "camt.054.001.02") -> bytes:
    """A debit/credit notification of ``returns``."""
    entries = "".join(_entry(r, version) for r in returns)
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Document xmlns="{ISO_NAMESPACE}{version}"><BkToCstmrDbtCdtNtfctn>'
        "<GrpHdr><MsgId>RTN-1</MsgId><CreDtTm>2020-05-20T07:00:00</CreDtTm></GrpHdr>"
        f"<Ntfctn><Id>N1</Id><CreDtTm>2020-05-20T07:00:00</CreDtTm>{_ACCOUNT}{entries}"
        "</Ntfctn></BkToCstmrDbtCdtNtfctn></Document>\n"
    ).encode()
    return _checked(xml, version)


def camt053(returns: list[Return], *, version: str = "camt.053.001.02") -> bytes:
    """A statement whose entries include ``returns``."""
    entries = "".join(_entry(r, version) for r in returns)
    balance = (
        "<Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp>"
        '<Amt Ccy="EUR">0.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2020-05-20</Dt></Dt></Bal>'
    )
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Document xmlns="{ISO_NAMESPACE}{version}"><BkToCstmrStmt>'
        "<GrpHdr><MsgId>STM-1</MsgId><CreDtTm>2020-05-20T07:00:00</CreDtTm></GrpHdr>"
        f"<Stmt><Id>S1</Id><CreDtTm>2020-05-20T07:00:00</CreDtTm>{_ACCOUNT}{balance}{entries}"
        "</Stmt></BkToCstmrStmt></Document>\n"
    ).encode()
    return _checked(xml, version)
