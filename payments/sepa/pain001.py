"""pain.001 (SEPA credit transfer initiation) writer, vectorised, one block per file.

Each transaction's XML is built for all rows at once with Arrow string kernels;
the resulting Arrow string array's data buffer *is* the concatenation of the
transactions, so it is written to disk as one block, with no Python object per
transaction and no DOM. Headers need NbOfTxs and CtrlSum first: both come from
the Arrow columns before anything is written.

Amounts are integer cents throughout; the XML decimal ``150.00`` is built from
``cents // 100`` and ``cents % 100``, never through a float.

The format version is a ``Pain001Format`` (namespace and templates): 001.001.09
(ISO 2019, the EPC rulebook's since March 2024) differs from 001.001.03 only in
the namespace, ``ReqdExctnDt/Dt`` and ``BICFI`` for the elements we write. We
send no postal address, so no unstructured address can leave either.
The bank profile (:mod:`payments.sepa.profiles`) picks the version and the
header's options (batch booking, service level, local instrument).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import pyarrow as pa
import pyarrow.compute as pc

from payments.sample.arrowtext import concat
from payments.sepa.layout import block_id


@dataclass(frozen=True)
class Pain001Format:
    name: str
    namespace: str
    execution_date: str  # template for the requested execution date element
    bic_element: str


PAIN_001_001_03 = Pain001Format(
    name="pain.001.001.03",
    namespace="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03",
    execution_date="<ReqdExctnDt>{date}</ReqdExctnDt>",
    bic_element="BIC",
)
PAIN_001_001_09 = Pain001Format(
    name="pain.001.001.09",
    namespace="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09",
    execution_date="<ReqdExctnDt><Dt>{date}</Dt></ReqdExctnDt>",
    bic_element="BICFI",
)
FORMATS = {f.name: f for f in (PAIN_001_001_03, PAIN_001_001_09)}


def amount_text(cents: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Integer cents as XML decimals: 15000 -> '150.00' (no float involved)."""
    euros = pc.divide(cents, 100)  # integer division on int64
    rest = pc.subtract(cents, pc.multiply(euros, 100))
    return concat(
        pc.cast(euros, pa.string()), ".", pc.utf8_lpad(pc.cast(rest, pa.string()), 2, padding="0")
    )


def cents_text(cents: int) -> str:
    """Scalar twin of ``amount_text``."""
    if cents < 0:
        raise ValueError("amounts are never negative")
    return f"{cents // 100}.{cents % 100:02d}"


TX_SCHEMA = pa.schema(
    [
        ("end_to_end_id", pa.string()),
        ("amount_cents", pa.int64()),
        ("creditor_name", pa.string()),
        ("iban", pa.string()),
        ("bic", pa.string()),
    ]
)


def transactions_xml(
    txs: pa.Table, *, remittance: str, fmt: Pain001Format = PAIN_001_001_03
) -> pa.Array:
    """One ``<CdtTrfTxInf>`` line per row of ``txs``.

    ``txs`` columns: end_to_end_id, amount_cents, creditor_name (SEPA set,
    already cut), iban, bic (nullable).
    """
    txs = txs.select(list(TX_SCHEMA.names)).cast(TX_SCHEMA)
    bic = txs.column("bic")
    agent = pc.if_else(
        pc.is_null(bic),
        "",
        concat(
            f"<CdtrAgt><FinInstnId><{fmt.bic_element}>",
            pc.fill_null(bic, ""),
            f"</{fmt.bic_element}></FinInstnId></CdtrAgt>",
        ),
    )
    return concat(
        "<CdtTrfTxInf><PmtId><EndToEndId>",
        txs.column("end_to_end_id"),
        '</EndToEndId></PmtId><Amt><InstdAmt Ccy="EUR">',
        amount_text(txs.column("amount_cents")),
        "</InstdAmt></Amt>",
        agent,
        "<Cdtr><Nm>",
        txs.column("creditor_name"),
        "</Nm></Cdtr><CdtrAcct><Id><IBAN>",
        txs.column("iban"),
        "</IBAN></Id></CdtrAcct><RmtInf><Ustrd>",
        remittance,
        "</Ustrd></RmtInf></CdtTrfTxInf>\n",
    )


@dataclass(frozen=True)
class FileHeader:
    msg_id: str
    created_at: datetime
    initiating_party: str
    debtor_name: str
    debtor_iban: str
    debtor_bic: str
    execution_date: date
    nb_of_txs: int
    ctrl_sum_cents: int
    batch_booking: bool = False
    service_level: str = "SEPA"
    local_instrument: str = ""  # INST for SCT Inst


def _head(h: FileHeader, fmt: Pain001Format) -> bytes:
    total = cents_text(h.ctrl_sum_cents)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Document xmlns="{fmt.namespace}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
        "<CstmrCdtTrfInitn>\n"
        f"<GrpHdr><MsgId>{h.msg_id}</MsgId>"
        f"<CreDtTm>{h.created_at.strftime('%Y-%m-%dT%H:%M:%S')}</CreDtTm>"
        f"<NbOfTxs>{h.nb_of_txs}</NbOfTxs><CtrlSum>{total}</CtrlSum>"
        f"<InitgPty><Nm>{h.initiating_party}</Nm></InitgPty></GrpHdr>\n"
        f"<PmtInf><PmtInfId>{block_id(h.msg_id)}</PmtInfId><PmtMtd>TRF</PmtMtd>"
        f"<BtchBookg>{str(h.batch_booking).lower()}</BtchBookg><NbOfTxs>{h.nb_of_txs}</NbOfTxs>"
        f"<CtrlSum>{total}</CtrlSum><PmtTpInf><SvcLvl><Cd>{h.service_level}</Cd></SvcLvl>"
        + (f"<LclInstrm><Cd>{h.local_instrument}</Cd></LclInstrm>" if h.local_instrument else "")
        + "</PmtTpInf>"
        + fmt.execution_date.format(date=h.execution_date.isoformat())
        + f"<Dbtr><Nm>{h.debtor_name}</Nm></Dbtr>"
        f"<DbtrAcct><Id><IBAN>{h.debtor_iban}</IBAN></Id></DbtrAcct>"
        f"<DbtrAgt><FinInstnId><{fmt.bic_element}>{h.debtor_bic}</{fmt.bic_element}>"
        f"</FinInstnId></DbtrAgt><ChrgBr>SLEV</ChrgBr>\n"
    ).encode("ascii")


_TAIL = b"</PmtInf>\n</CstmrCdtTrfInitn>\n</Document>\n"


def _buffer_bytes(values: pa.Array) -> memoryview:
    """The concatenated bytes of an Arrow string array, straight from its data buffer."""
    values = values.cast(pa.string())
    if len(values) == 0:
        return memoryview(b"")
    offsets = values.buffers()[1]
    start = int.from_bytes(offsets[values.offset * 4 : values.offset * 4 + 4], "little")
    end = int.from_bytes(
        offsets[(values.offset + len(values)) * 4 : (values.offset + len(values)) * 4 + 4],
        "little",
    )
    data = values.buffers()[2]
    return memoryview(data)[start:end]


def file_parts(
    header: FileHeader, transactions: pa.Array, *, fmt: Pain001Format = PAIN_001_001_03
) -> list[bytes | memoryview]:
    """One payment file in pieces: header, the transactions block (views of Arrow's
    data buffer, no copy), closing tags.

    Written, hashed and signed from the same bytes in memory, never read back
    from disk. Kept in pieces: joining them would copy each file once more,
    into fresh memory.
    """
    chunks = transactions.chunks if isinstance(transactions, pa.ChunkedArray) else [transactions]
    return [_head(header, fmt), *(_buffer_bytes(c) for c in chunks), _TAIL]
