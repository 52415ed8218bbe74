"""Nothing lost, nothing twice: every file reaches the bank exactly once, whatever is killed."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text, update
from sqlalchemy.orm import Session

from payments.ledger.models import PaymentFileRow
from payments.orchestration import delivery, endpoints
from payments.release import approve
from payments.sepa.signing import Signer
from payments.transport.base import TransportError
from payments.transport.local import LocalTransport
from tests.faults import scenarios
from tests.faults.runs import AT, run, sample, send_local, states
from tests.households import APPROVERS


def test_a_sender_killed_at_any_step_loses_and_repeats_nothing(tmp_path: Path) -> None:
    """H5, M8: killed mid-upload, the DAG's retries ended green with the file never sent; a
    crash after the upload stranded payments in_file; two senders on SQLite uploaded one file
    twice; a takeover re-uploaded a file the bank had collected."""
    outcomes = scenarios.scenarios(tmp_path, trials=2)
    failed = [o for o in outcomes if not o.survived]
    assert not failed, failed
    totals = scenarios.summary(outcomes)
    assert totals["files_lost"] == totals["files_paid_twice"] == totals["payments_unsent"] == 0
    assert totals["scenarios"] == 4 * len(scenarios.SEND_POINTS) + 2


def _approved(ledger: Engine, root: Path, signer: Signer):  # type: ignore[no-untyped-def]
    sample(root, ("13",))
    result = run(ledger, root, signer, ("13",))
    approve(ledger, result.out_dir, result.run_id, by="finance", at=AT, approvers=APPROVERS)
    return result


def test_a_file_that_differs_from_the_recorded_one_sends_nothing_not_even_its_signature(
    ledger: Engine, tmp_path: Path, signer: Signer
) -> None:
    """L2: the .p7s went up before the hash check, then blocked the real delivery."""
    result = _approved(ledger, tmp_path, signer)
    with Session(ledger) as session, session.begin():
        session.execute(update(PaymentFileRow).values(sha256="0" * 64))
    with pytest.raises(TransportError, match="differs from the one recorded"):
        send_local(ledger, result, tmp_path, signer)
    assert not list((tmp_path / "bank").rglob("*")) if (tmp_path / "bank").exists() else True


def test_a_file_whose_payments_are_not_all_filed_is_not_sent(
    ledger: Engine, tmp_path: Path, signer: Signer
) -> None:
    """H3's second half: send never compared a file's figures with the ledger's payments."""
    result = _approved(ledger, tmp_path, signer)
    with ledger.begin() as c:
        c.execute(
            text(
                "UPDATE payments SET state = 'cancelled' WHERE id = "
                "(SELECT MIN(id) FROM payments WHERE state = 'in_file')"
            )
        )
    with pytest.raises(TransportError, match="cancelled"):
        send_local(ledger, result, tmp_path, signer)
    assert not (tmp_path / "bank").exists()


def test_without_a_bank_connection_nothing_is_sent_outside_the_demo(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """M3: a missing payments_bank connection "delivered" to the worker's local folder."""
    monkeypatch.setenv("PAYMENTS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PAYMENTS_DEMO", raising=False)
    with (
        pytest.raises(endpoints.MissingConnection, match="payments_bank"),
        endpoints.bank_target(lambda _id: None),
    ):
        pass
    monkeypatch.setenv("PAYMENTS_DEMO", "1")
    with endpoints.bank_target(lambda _id: None) as transport:
        assert isinstance(transport, LocalTransport)


def test_the_report_fails_while_a_file_of_an_approved_run_is_not_at_the_bank(
    ledger: Engine, tmp_path: Path, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """H5: report logged "ties out: False" and ended green; tie-out ignored in_file payments."""
    from sqlalchemy.orm import Session

    from payments.ledger.approval import bind
    from payments.ledger.finance import tie_out

    result = _approved(ledger, tmp_path, signer)
    monkeypatch.setenv("PAYMENTS_DEMO", "1")  # report signs the chain's head
    monkeypatch.setenv("PAYMENTS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PAYMENTS_LEDGER_URL", ledger.url.render_as_string(hide_password=False))
    assert result.payments is not None
    airflow_run = ("solidarity_payment_batch", "manual__1")
    with Session(ledger) as session, session.begin():
        bind(session, *airflow_run, result.run_id, datetime(2020, 5, 14))
    with pytest.raises(TransportError, match="not at the bank"):
        delivery.report(airflow_run)
    assert not any(line["ties_out"] for line in tie_out(ledger))
    send_local(ledger, result, tmp_path, signer)
    assert delivery.report(airflow_run)["sent_ties_out"] is True
    assert all(line["ties_out"] for line in tie_out(ledger))
    assert "in_file" not in states(ledger)


def test_deliver_fails_for_good_when_a_file_disagrees_with_the_ledger(
    ledger: Engine, tmp_path: Path, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 37: a file rewritten after approval failed ``deliver`` four times with a
    ledger-jargon error raised as retryable; a retry cannot mend it."""
    from airflow.sdk.exceptions import AirflowFailException
    from sqlalchemy.orm import Session

    from payments.ledger.approval import bind

    result = _approved(ledger, tmp_path, signer)
    for name, value in {
        "PAYMENTS_DATA_DIR": str(tmp_path),
        "PAYMENTS_LEDGER_URL": ledger.url.render_as_string(hide_password=False),
        "PAYMENTS_DEMO": "1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PAYMENTS_STORAGE_ROOT", raising=False)
    from cryptography.hazmat.primitives.serialization import Encoding

    from payments.sepa.signing import signer_paths

    cert = signer_paths(tmp_path)[1]  # the certificate deliver trusts
    cert.parent.mkdir(exist_ok=True)
    cert.write_bytes(signer.certificate.public_bytes(Encoding.PEM))
    airflow_run = ("solidarity_payment_batch", "manual__2")
    with Session(ledger) as session, session.begin():
        bind(session, *airflow_run, result.run_id, datetime(2020, 5, 14))
    with Session(ledger) as session, session.begin():
        session.execute(update(PaymentFileRow).values(sha256="0" * 64))
    with pytest.raises(AirflowFailException, match="the payment files and the ledger disagree"):
        delivery.deliver(airflow_run, "13", owner="a-task")
