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
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import Engine, text

from payments.bank.inbox import ingest_reports
from payments.sepa.layout import block_id
from payments.sepa.signing import Signer
from payments.ui.reconciliation import load, render
from tests.bank_simulator import sent_batch
from tests.conftest import SHARED
from tests.faults.runs import AT
from tests.iso_reports import Block, Return, Tx, block, camt053, camt054, pain002
from tests.vouchers import public_key_path, voucher_file

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


def _repoint(
    path: Path, msg: str, ids: list[tuple[str, int]], currency: str | None = "EUR"
) -> bytes:
    """The sample with our MsgId, block id, EndToEndIds and amounts (in euros, unless
    ``currency`` is None: the sample's own) in place of its own."""
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
                    if currency and amt.get("Ccy"):
                        amt.set("Ccy", currency)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _apply(ledger: Engine, name: str, data: bytes):  # type: ignore[no-untyped-def]
    return ingest_reports(ledger, [(name, data)], at=AT)


@pytest.mark.parametrize(
    ("sample", "state"),
    [
        ("pain002/postfinance-v2009_A-level_RJCT_AM10.xml", "rejected"),
        ("pain002/corporatejs_pain002_2_rejected-technical-check.xml", "rejected"),
        ("pain002/postfinance-v2009_A-level_ACTC.xml", "sent"),  # technical: no payment moves
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


def test_a_block_rejected_without_transaction_lines_rejects_its_payments(
    ledger: Engine, sent_file: tuple[str, list[tuple[str, int]]]
) -> None:
    """PmtInfSts RJCT, no GrpSts, no line: the payments stayed `sent`, exit 0."""
    msg, ids = sent_file
    report = pain002(msg, blocks=[block(msg, "RJCT", reason="AC04")])
    done = _apply(ledger, "block-rjct.xml", report)
    assert done.rejected == len(ids) and not done.flagged
    assert _states(ledger, msg) == {"rejected": len(ids)}


def test_a_partly_accepted_block_accepts_the_payments_no_line_rejects(
    ledger: Engine, sent_file: tuple[str, list[tuple[str, int]]]
) -> None:
    """PmtInfSts PART with two RJCT lines: only the lines applied, the rest stayed `sent`."""
    msg, ids = sent_file
    report = pain002(msg, blocks=[block(msg, "PART", *(Tx(e, "RJCT", "AC01") for e, _ in ids[:2]))])
    done = _apply(ledger, "block-part.xml", report)
    assert not done.flagged
    assert _states(ledger, msg) == {"rejected": 2, "accepted": len(ids) - 2}


def test_a_block_the_file_does_not_have_is_flagged(
    ledger: Engine, sent_file: tuple[str, list[tuple[str, int]]]
) -> None:
    msg, ids = sent_file
    report = pain002(msg, blocks=[Block("NOT-OURS", "RJCT")])
    done = _apply(ledger, "other-block.xml", report)
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


# Hand-written shapes (SOURCES.md lists them beyond the files), each against the same file.

Sent = tuple[str, list[tuple[str, int]]]


@pytest.mark.parametrize("version", ["pain.002.001.03", "pain.002.001.10"])
def test_a_line_overrides_its_block_and_a_block_its_group(
    ledger: Engine, sent_file: Sent, version: str
) -> None:
    """GrpSts RJCT, PmtInfSts PART, one line RJCT, one PDNG: the pending payment stays sent
    (it was accepted with the rest of the group), the block's others are accepted."""
    msg, ids = sent_file
    lines = (Tx(ids[0][0], "RJCT", "AC04", ids[0][1]), Tx(ids[1][0], "PDNG", None))
    report = pain002(msg, group="RJCT", blocks=[block(msg, "PART", *lines)], version=version)
    done = _apply(ledger, "levels.xml", report)
    assert not done.flagged and not done.quarantined, (done.flagged, done.quarantined)
    assert _states(ledger, msg) == {"rejected": 1, "sent": 1, "accepted": len(ids) - 2}


@pytest.mark.parametrize("version", ["pain.002.001.03", "pain.002.001.10"])
def test_a_technical_acceptance_moves_nothing(
    ledger: Engine, sent_file: Sent, version: str
) -> None:
    """ACTC and RCVD say the bank has the file, not that anyone will be paid."""
    msg, ids = sent_file
    for n, code in enumerate(("ACTC", "RCVD")):
        report = pain002(msg, group=code, blocks=[block(msg, code)], version=version)
        done = _apply(ledger, f"tech-{n}.xml", report)
        assert not done.flagged and not done.unmatched and done.accepted == 0
    assert _states(ledger, msg) == {"sent": len(ids)}


def test_a_group_rejection_after_acceptance_is_flagged_not_a_traceback(
    ledger: Engine, sent_file: Sent
) -> None:
    msg, ids = sent_file
    _apply(ledger, "ok.xml", pain002(msg, group="ACCP"))
    done = _apply(ledger, "late-rjct.xml", pain002(msg, group="RJCT", group_reason="AM05"))
    assert not done.quarantined
    assert len(done.flagged) == len(ids) and "cannot become rejected" in done.flagged[0]
    assert _states(ledger, msg) == {"accepted": len(ids)}


def test_a_status_for_a_person_moves_nothing_and_is_flagged(
    ledger: Engine, sent_file: Sent
) -> None:
    """BLCK (blocked, an external code of pain.002.001.10): neither accepted nor rejected."""
    msg, ids = sent_file
    lines = [block(msg, None, Tx(ids[0][0], "BLCK", None))]
    report = pain002(msg, blocks=lines, version="pain.002.001.10")
    done = _apply(ledger, "blck.xml", report)
    assert not done.quarantined and len(done.flagged) == 1 and "BLCK" in done.flagged[0]
    assert _states(ledger, msg) == {"sent": len(ids)}


def test_bom_whitespace_prefixes_and_processing_instructions_are_read(
    ledger: Engine, sent_file: Sent
) -> None:
    msg, ids = sent_file
    report = pain002(msg, group="RJCT", group_reason="FF01")
    report = report.replace(b"<Document xmlns=", b"<p:Document xmlns:p=")
    for name in ("CstmrPmtStsRpt", "GrpHdr", "MsgId", "CreDtTm", "OrgnlGrpInfAndSts"):
        report = report.replace(f"<{name}>".encode(), f"<p:{name}>".encode())
        report = report.replace(f"</{name}>".encode(), f"</p:{name}>".encode())
    for name in ("OrgnlMsgId", "OrgnlMsgNmId", "GrpSts", "StsRsnInf", "Rsn", "Cd", "Document"):
        report = report.replace(f"<{name}>".encode(), f"<p:{name}>".encode())
        report = report.replace(f"</{name}>".encode(), f"</p:{name}>".encode())
    report = b"\xef\xbb\xbf\r\n" + report.replace(
        b"?>\n", b'?>\n<?bank-software version="7"?>\n<!-- exported 2020-05-15 -->\n', 1
    )
    done = _apply(ledger, "bom.xml", report)
    assert not done.quarantined, done.quarantined
    assert _states(ledger, msg) == {"rejected": len(ids)}


def test_a_report_the_official_schema_refuses_is_quarantined_whole(
    ledger: Engine, sent_file: Sent
) -> None:
    """Valid-looking lines in a report without its group header: nothing half-applied."""
    msg, ids = sent_file
    report = pain002(msg, group="RJCT")
    broken = report.replace(report[report.index(b"<GrpHdr>") : report.index(b"</GrpHdr>") + 9], b"")
    done = _apply(ledger, "no-header.xml", broken)
    assert len(done.quarantined) == 1 and "not valid pain.002.001.03" in done.quarantined[0]
    assert "GrpHdr" in done.quarantined[0]
    assert _states(ledger, msg) == {"sent": len(ids)}


def test_a_bank_variant_namespace_is_read_without_the_official_schema(
    ledger: Engine, sent_file: Sent
) -> None:
    msg, ids = sent_file
    swiss = "http://www.six-interbank-clearing.com/de/pain.002.001.03.ch.02.xsd"
    done = _apply(ledger, "ch.xml", pain002(msg, group="ACCP", namespace=swiss))
    assert not done.quarantined and done.accepted == len(ids)


@pytest.mark.parametrize(
    ("builder", "version"),
    [
        (camt054, "camt.054.001.02"),
        (camt054, "camt.054.001.04"),
        (camt054, "camt.054.001.08"),
        (camt053, "camt.053.001.02"),
        (camt053, "camt.053.001.08"),
    ],
)
def test_returns_in_notifications_and_statements(
    ledger: Engine, sent_file: Sent, builder: Any, version: str
) -> None:
    """RtrInf with a reason; a return told only by its bank transaction code (RRTN) and
    without a reason is recorded too, and flagged to finance."""
    msg, ids = sent_file
    (e1, c1), (e2, c2) = ids[:2]
    report = builder(
        [Return(msg, e1, c1), Return(msg, e2, c2, None, rtrinf=False)], version=version
    )
    done = _apply(ledger, f"{version}.xml", report)
    assert not done.quarantined and done.returned == 2, (done.quarantined, done.flagged)
    assert done.flagged == [
        f"{version}.xml: {e2} returned without a reason: recorded as returned, reason unknown"
    ]
    assert _states(ledger, msg) == {"returned": 2, "sent": len(ids) - 2}
    with ledger.connect() as c:
        reasons = dict(c.execute(text("SELECT end_to_end_id, reason_code FROM bank_events")).all())
    assert reasons == {e1: "AC04", e2: None}


def test_a_return_in_another_currency_or_block_is_flagged_not_applied(
    ledger: Engine, sent_file: Sent
) -> None:
    msg, ids = sent_file
    e1, c1 = ids[0]
    sample = SAMPLES / "camt054/postfinance-v2009_return_batch_054.001.04.xml"
    chf = _repoint(sample, msg, ids, currency=None)  # our ids, the sample's CHF
    done = _apply(ledger, "chf.xml", chf)
    assert done.returned == 0 and any("not the payment's amount in EUR" in f for f in done.flagged)
    other_block = camt054([Return(msg, e1, c1)]).replace(
        f"<PmtInfId>{block_id(msg)}".encode(), b"<PmtInfId>SOMEONE-ELSES"
    )
    done = _apply(ledger, "block.xml", other_block)
    assert done.returned == 0 and "SOMEONE-ELSES is not a block" in done.flagged[0]
    assert _states(ledger, msg) == {"sent": len(ids)}


def test_a_report_about_nothing_of_ours_says_so_and_exits_non_zero(
    ledger: Engine, sent_file: Sent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from payments.cli import app

    msg, ids = sent_file
    monkeypatch.setenv("PAYMENTS_LEDGER_URL", ledger.url.render_as_string(hide_password=False))
    monkeypatch.setenv("PAYMENTS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PAYMENTS_IDENTITY_PUBLIC_KEY", str(public_key_path(tmp_path)))
    theirs = tmp_path / "theirs.xml"
    theirs.write_bytes(pain002("NOT-OUR-FILE", group="ACCP"))
    result = CliRunner().invoke(app, ["ingest", "--voucher", _finance(tmp_path), str(theirs)])
    assert result.exit_code == 1
    assert "theirs.xml: no line matched a payment file or payment of ours" in result.output
    broken = tmp_path / "broken.xml"
    broken.write_bytes(b"<Document>")
    assert (
        CliRunner().invoke(app, ["ingest", "--voucher", _finance(tmp_path), str(broken)]).exit_code
        == 1
    )
    listed = CliRunner().invoke(app, ["bank-reports", "--quarantined"])
    assert listed.exit_code == 1 and "broken.xml" in listed.output
    assert "theirs.xml" not in listed.output and "not well-formed" in listed.output
    page = render(load(ledger))  # the Reconciliation page lists it too
    assert "broken.xml" in page and "theirs.xml" not in page
    assert _states(ledger, msg) == {"sent": len(ids)}


def _finance(data_dir: Path) -> str:
    return str(voucher_file(data_dir, "finance"))
