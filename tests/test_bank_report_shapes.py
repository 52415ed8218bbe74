"""Bank reports as other projects and banks write them, re-pointed at a file we sent.

The samples in ../shared/reference/iso20022/samples/ are byte-identical to their
public sources (SOURCES.md); a clone elsewhere uses the copies in
tests/iso20022/ (same licences, hashes checked against the published
SHA256SUMS). Each test substitutes our ids for theirs (MsgId, PmtInfId,
EndToEndIds, in document order) and checks what the ledger does.
The hand-written shapes are those SOURCES.md lists beyond the files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import Engine, text

from payments.bank.inbox import ingest_reports
from payments.sepa.layout import block_id
from payments.sepa.signing import Signer
from tests.bank_simulator import sent_batch
from tests.conftest import SHARED
from tests.faults.runs import AT

SHARED_ISO = SHARED / "reference" / "iso20022"
VENDORED = Path(__file__).parent / "iso20022"
#: The published hashes of the samples (SOURCES.md's SHA256SUMS).
SUMS = {
    name: digest
    for digest, name in (
        line.split() for line in (VENDORED / "SHA256SUMS").read_text().splitlines()
    )
}


class _Samples:
    """``SAMPLES / "pain002/x.xml"``: the shared file, else the vendored copy, hash checked."""

    def __truediv__(self, rel: str) -> Path:
        base = SHARED_ISO if (SHARED_ISO / "samples").exists() else VENDORED
        path = base / "samples" / rel
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert digest == SUMS[f"samples/{rel}"], f"{path}: not the published sample"
        return path


SAMPLES = _Samples()
P002 = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"


@pytest.fixture
def sent_file(ledger: Engine, tmp_path: Path, signer: Signer) -> tuple[str, list[tuple[str, int]]]:
    """One fund's batch at the bank: (its first file's MsgId, [(EndToEndId, cents)])."""
    sent_batch(ledger, tmp_path, signer, ("13",), seed=3, at=AT)
    with ledger.connect() as c:
        msg = c.execute(text("SELECT MIN(msg_id) FROM payment_files")).scalar_one()
        rows = c.execute(
            text(
                "SELECT p.end_to_end_id, p.amount_cents FROM payments p JOIN payment_files f "
                "ON f.id = p.payment_file_id WHERE f.msg_id = :m ORDER BY p.id"
            ),
            {"m": msg},
        ).all()
    return str(msg), [(str(e), int(a)) for e, a in rows]


def _states(ledger: Engine, msg: str) -> dict[str, int]:
    with ledger.connect() as c:
        return dict(
            c.execute(
                text(
                    "SELECT p.state, COUNT(*) FROM payments p JOIN payment_files f "
                    "ON f.id = p.payment_file_id WHERE f.msg_id = :m GROUP BY p.state"
                ),
                {"m": msg},
            ).all()
        )


def _repoint(path: Path, msg: str, ids: list[tuple[str, int]]) -> bytes:
    """The sample with our MsgId, block id, EndToEndIds and amounts in place of its own."""
    root = etree.fromstring(path.read_bytes())
    local = etree.QName
    e2e = iter(ids)
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        name = local(el).localname
        if name in ("OrgnlMsgId",) or (
            name == "MsgId" and local(el.getparent()).localname == "Refs"
        ):
            el.text = msg
        elif name == "OrgnlPmtInfId":
            el.text = block_id(msg)
        elif name in ("OrgnlEndToEndId", "EndToEndId"):
            ours, cents = next(e2e)
            el.text = ours
            details = el.getparent().getparent()
            for amt in details.iter():
                if isinstance(amt.tag, str) and local(amt).localname == "Amt":
                    amt.text = f"{cents // 100}.{cents % 100:02d}"
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _apply(ledger: Engine, name: str, data: bytes):  # type: ignore[no-untyped-def]
    return ingest_reports(ledger, [(name, data)], at=AT)


@pytest.mark.parametrize(
    ("sample", "state"),
    [
        ("pain002/postfinance-v2009_A-level_RJCT_AM10.xml", "rejected"),
        ("pain002/corporatejs_pain002_2_rejected-technical-check.xml", "rejected"),
        ("pain002/postfinance-v2009_A-level_ACTC.xml", "accepted"),
        ("pain002/postfinance-v2009_CHDD_B-level_ACCP.xml", "accepted"),
    ],
)
def test_a_status_for_the_whole_file_or_block_moves_every_payment(
    ledger: Engine, sent_file: tuple[str, list[tuple[str, int]]], sample: str, state: str
) -> None:
    msg, ids = sent_file
    done = _apply(ledger, Path(sample).name, _repoint(SAMPLES / sample, msg, ids))
    assert not done.quarantined and not done.flagged, (done.quarantined, done.flagged)
    assert _states(ledger, msg) == {state: len(ids)}


def _report(msg: str, body: str, group: str = "") -> bytes:
    status = f"<GrpSts>{group}</GrpSts>" if group else ""
    return (
        f'<?xml version="1.0"?><!-- bank comment --><Document xmlns="{P002}"><CstmrPmtStsRpt>'
        f"<OrgnlGrpInfAndSts><OrgnlMsgId>{msg}</OrgnlMsgId>{status}</OrgnlGrpInfAndSts>"
        f"{body}</CstmrPmtStsRpt></Document>"
    ).encode()


def test_a_block_rejected_without_transaction_lines_rejects_its_payments(
    ledger: Engine, sent_file: tuple[str, list[tuple[str, int]]]
) -> None:
    """PmtInfSts RJCT, no GrpSts, no line: the payments stayed `sent`, exit 0."""
    msg, ids = sent_file
    body = (
        f"<OrgnlPmtInfAndSts><OrgnlPmtInfId>{block_id(msg)}</OrgnlPmtInfId>"
        "<PmtInfSts>RJCT</PmtInfSts><StsRsnInf><Rsn><Cd>AC04</Cd></Rsn></StsRsnInf>"
        "</OrgnlPmtInfAndSts>"
    )
    done = _apply(ledger, "block-rjct.xml", _report(msg, body))
    assert done.rejected == len(ids) and not done.flagged
    assert _states(ledger, msg) == {"rejected": len(ids)}


def test_a_partly_accepted_block_accepts_the_payments_no_line_rejects(
    ledger: Engine, sent_file: tuple[str, list[tuple[str, int]]]
) -> None:
    """PmtInfSts PART with two RJCT lines: only the lines applied, the rest stayed `sent`."""
    msg, ids = sent_file
    lines = "".join(
        f"<TxInfAndSts><OrgnlEndToEndId>{e}</OrgnlEndToEndId><TxSts>RJCT</TxSts>"
        "<StsRsnInf><Rsn><Cd>AC01</Cd></Rsn></StsRsnInf></TxInfAndSts>"
        for e, _ in ids[:2]
    )
    body = (
        f"<OrgnlPmtInfAndSts><OrgnlPmtInfId>{block_id(msg)}</OrgnlPmtInfId>"
        f"<PmtInfSts>PART</PmtInfSts>{lines}</OrgnlPmtInfAndSts>"
    )
    done = _apply(ledger, "block-part.xml", _report(msg, body))
    assert not done.flagged
    assert _states(ledger, msg) == {"rejected": 2, "accepted": len(ids) - 2}


def test_a_block_the_file_does_not_have_is_flagged(
    ledger: Engine, sent_file: tuple[str, list[tuple[str, int]]]
) -> None:
    msg, ids = sent_file
    body = (
        "<OrgnlPmtInfAndSts><OrgnlPmtInfId>NOT-OURS</OrgnlPmtInfId>"
        "<PmtInfSts>RJCT</PmtInfSts></OrgnlPmtInfAndSts>"
    )
    done = _apply(ledger, "other-block.xml", _report(msg, body))
    assert any("NOT-OURS" in f for f in done.flagged)
    assert _states(ledger, msg) == {"sent": len(ids)}


def test_a_return_of_a_payment_never_explicitly_accepted_is_recorded(
    ledger: Engine, sent_file: tuple[str, list[tuple[str, int]]]
) -> None:
    """camt.054 RtrInf for a `sent` payment (EPC banks send pain.002 only for rejections):
    refused as "is sent, cannot become returned", so the money never reached the re-issue
    list."""
    msg, ids = sent_file
    sample = SAMPLES / "camt054/postfinance-v2009_return_batch_054.001.04.xml"
    done = _apply(ledger, sample.name, _repoint(sample, msg, ids))
    assert not done.quarantined and not done.flagged, (done.quarantined, done.flagged)
    returned = done.returned
    assert returned >= 1
    assert _states(ledger, msg) == {"returned": returned, "sent": len(ids) - returned}


@pytest.mark.parametrize("version", ["v2", "v4", "v8"])
def test_a_notification_without_returns_changes_nothing(
    ledger: Engine, sent_file: tuple[str, list[tuple[str, int]]], version: str
) -> None:
    msg, ids = sent_file
    sample = SAMPLES / f"camt054/genkgo_camt054.{version}.xml"
    done = _apply(ledger, sample.name, _repoint(sample, msg, ids))
    assert not done.quarantined and done.returned == 0
    assert _states(ledger, msg) == {"sent": len(ids)}
