"""The bank's answers move only what they name, as they name it, and none is lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from payments.bank.inbox import MAX_REPORT_BYTES, ReportsQuarantined, ingest_reports
from payments.orchestration import reconcile
from payments.sepa.signing import Signer
from tests.bank_simulator import returns_notification, sent_batch
from tests.faults.runs import AT
from tests.iso_reports import Tx, block, pain002


def _sent(ledger: Engine, fund: str, n: int = 2) -> list[tuple[str, str, int]]:
    """(file msg id, end-to-end id, cents) of ``n`` sent payments of a fund."""
    with ledger.connect() as c:
        return [
            (str(m), str(e), int(a))
            for m, e, a in c.execute(
                text(
                    "SELECT f.msg_id, p.end_to_end_id, p.amount_cents FROM payments p "
                    "JOIN payment_files f ON f.id = p.payment_file_id "
                    "WHERE p.fund_code = :f AND p.state = 'sent' ORDER BY p.id LIMIT :n"
                ),
                {"f": fund, "n": n},
            )
        ]


def _state(ledger: Engine, e2e: str) -> str:
    with ledger.connect() as c:
        return str(
            c.execute(
                text("SELECT state FROM payments WHERE end_to_end_id = :e"), {"e": e2e}
            ).scalar_one()
        )


def _pain002(msg_id: str, group: str, lines: list[tuple[str, str]]) -> bytes:
    """A valid pain.002 on ``msg_id`` with (EndToEndId, TxSts) lines, and a comment in it."""
    report = pain002(
        msg_id, group=group, blocks=[block(msg_id, None, *(Tx(e, s, "AC04") for e, s in lines))]
    )
    return report.replace(b"<CstmrPmtStsRpt>", b"<CstmrPmtStsRpt><!-- the bank's comment -->")


def test_a_report_moves_only_the_payments_of_its_file_at_their_amount(
    ledger: Engine, tmp_path: Path, signer: Signer
) -> None:
    """H2: a line hit any payment by EndToEndId, PDNG read as accepted, a return's amount and
    MsgId were never read: a forged report got paid households paid again."""
    sent_batch(ledger, tmp_path, signer, ("13", "75"), seed=3, at=AT)
    (m13, _, _), _ = _sent(ledger, "13")
    (m75, e1, _), (_, e2, c2) = _sent(ledger, "75")
    forged = _pain002(m13, "PART", [(e1, "RJCT"), (e2, "PDNG")])
    pennies = returns_notification([(m75, e2, 1)])  # 0.01 € "returned"
    elsewhere = returns_notification([("NOT-A-FILE", e1, c2)])
    done = ingest_reports(
        ledger,
        [("forged-pain002.xml", forged), ("pennies.xml", pennies), ("elsewhere.xml", elsewhere)],
        at=AT,
    )
    assert done.rejected == done.returned == 0
    assert any(e1 in f and "not a payment of the file" in f for f in done.flagged)
    assert any(e2 in f and "amount" in f for f in done.flagged)
    assert _state(ledger, e1) == _state(ledger, e2) == "sent", "PDNG is not accepted"
    with ledger.connect() as c:
        accepted_75 = c.execute(
            text("SELECT COUNT(*) FROM payments WHERE fund_code = '75' AND state = 'accepted'")
        ).scalar_one()
    assert accepted_75 == 0, "fund 13's group status touches fund 13's file only"


def test_a_return_at_the_payments_amount_applies(
    ledger: Engine, tmp_path: Path, signer: Signer
) -> None:
    """The control of the test above: the real return of a sent payment is applied."""
    sent_batch(ledger, tmp_path, signer, ("13",), seed=3, at=AT)
    ((msg, e2e, cents),) = _sent(ledger, "13", 1)
    # a return needs the payment accepted first; a pain.002 accepting the file does it
    done = ingest_reports(
        ledger,
        [
            ("sts.xml", _pain002(msg, "ACCP", [])),
            ("rtn.xml", returns_notification([(msg, e2e, cents)])),
        ],
        at=AT,
    )
    assert not done.flagged and done.returned == 1
    assert _state(ledger, e2e) == "returned"


def test_an_unreadable_report_loses_none_of_the_others(
    ledger: Engine, tmp_path: Path, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """H6, L4: the reports fetched with an unreadable one were marked seen, never applied."""
    data = tmp_path / "data"
    sent_batch(ledger, data, signer, ("13",), seed=3, at=AT)
    monkeypatch.setenv("PAYMENTS_DATA_DIR", str(data))
    monkeypatch.setenv("PAYMENTS_LEDGER_URL", ledger.url.render_as_string(hide_password=False))
    monkeypatch.setenv("PAYMENTS_DEMO", "1")
    ((msg, e2e, _),) = _sent(ledger, "13", 1)
    inbox = data / "bank" / "reports"
    inbox.mkdir(parents=True)
    (inbox / "a-truncated.xml").write_text(
        "<Document><CstmrPmtStsRpt><OrgnlGrpInfAndSts><OrgnlMsgId>X</OrgnlMsgId>"
    )
    (inbox / "b-laughs.xml").write_text(
        '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8))
        + "]><Document><CstmrPmtStsRpt>&i;</CstmrPmtStsRpt></Document>"
    )
    (inbox / "c-huge.xml").write_bytes(b"<Document>" + b" " * MAX_REPORT_BYTES + b"</Document>")
    (inbox / "d-good.xml").write_bytes(_pain002(msg, "PART", [(e2e, "RJCT")]))
    paths = reconcile.new_reports()
    assert len(paths) == 4
    for _attempt in range(3):  # the task's retries fail loudly each time
        with pytest.raises(ReportsQuarantined, match="3 bank reports quarantined"):
            reconcile.ingest(paths)
    assert _state(ledger, e2e) == "rejected", "the good report was applied"
    assert reconcile.new_reports() == [] and reconcile.pending_reports() == 0
    with ledger.connect() as c:
        kept = dict(c.execute(text("SELECT name, outcome FROM bank_reports")).all())
    assert kept == {
        "a-truncated.xml": "quarantined",
        "b-laughs.xml": "quarantined",
        "c-huge.xml": "quarantined",
        "d-good.xml": "applied",
    }
