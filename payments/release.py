"""After the run: finance approves, the files are filed in the ledger, then sent to the bank.

These are the steps the Airflow DAG's approval and upload tasks call; the CLI
(``payments approve``, ``payments send``) calls them too. Both are idempotent:
approving twice or sending again changes nothing and sends nothing twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq
from cryptography import x509
from sqlalchemy import Engine, select, true
from sqlalchemy.orm import Session

from payments.ledger import states
from payments.ledger.models import Payment, PaymentFileRow, Run
from payments.ledger.store import (
    approve_run,
    file_payments,
    move,
    placement,
    record_payment_files,
)
from payments.sepa.batch import MANIFEST, TRANSACTIONS
from payments.sepa.signing import SIGNATURE_SUFFIX
from payments.sepa.verify import verify_batch
from payments.transport.base import Transport, TransportError, upload_atomic
from payments.transport.deliver import deliver


@dataclass
class Sent:
    files: dict[str, str] = field(default_factory=dict)  # msg_id -> outcome
    payments_sent: int = 0


def approve(engine: Engine, run_dir: Path, run_id: str, *, by: str, at: datetime) -> int:
    """Finance approves the run: its payments, placed in their files when recorded, go ``in_file``.

    One update of the run's payments' state, whatever the run's size. A run
    concluded before payment files were recorded with it (an earlier version)
    has its files recorded and its payments placed here first, from the
    batch's ``transactions.parquet``, staged and joined.
    """
    with Session(engine) as session, session.begin():
        run = session.get(Run, run_id)
        if run is None:
            raise KeyError(f"run {run_id} is not in the ledger")
        if run.decision == "approved":
            return 0
        recorded = session.execute(
            select(PaymentFileRow.id).where(PaymentFileRow.run_id == run_id).limit(1)
        ).first()
        if recorded is None:
            batch = run_dir / "payments"
            manifest = json.loads((batch / MANIFEST).read_text())
            ids = record_payment_files(session, run_id, manifest, at)
            transactions = pq.read_table(batch / TRANSACTIONS, columns=["end_to_end_id", "msg_id"])
            file_payments(session, run_id, placement(transactions, ids))
        return approve_run(session, run_id, by=by, at=at)


def reject(engine: Engine, run_id: str, *, by: str, at: datetime) -> None:
    """Finance rejects the run: nothing is sent; its payments are cancelled."""
    with Session(engine) as session, session.begin():
        run = session.get(Run, run_id)
        if run is None:
            raise KeyError(run_id)
        if run.triggered_by and run.triggered_by == by:
            raise PermissionError("the user who triggered a run cannot decide on it (four eyes)")
        run.decision, run.approved_by, run.approved_at = "rejected", by, at
        session.flush()
        move(
            session,
            (Payment.run_id == run_id) & Payment.state.in_([states.COMPUTED, states.APPROVED]),
            states.CANCELLED,
            at=at,
            actor=by,
            run_id=run_id,
        )


def send(
    engine: Engine,
    run_dir: Path,
    run_id: str,
    transport: Transport,
    *,
    trusted: x509.Certificate,
    at: datetime,
    takeover: bool = False,
    fund: str | None = None,
) -> Sent:
    """Verify the batch, then deliver each approved file (with its signature) exactly once.

    ``fund`` restricts the delivery to one fund's files (the DAG's mapped task);
    the whole batch is verified all the same, so no file leaves from a batch
    that was altered anywhere.
    """
    batch = run_dir / "payments"
    only = None
    if fund:
        manifest = json.loads((batch / MANIFEST).read_text())
        only = {f["path"] for f in manifest["files"] if f["fund_code"] == fund}
    problems = verify_batch(batch, trusted, only=only)
    if problems:
        raise TransportError("batch does not verify, nothing sent: " + "; ".join(problems[:5]))
    with Session(engine) as session:
        run = session.get(Run, run_id)
        if run is None or run.decision != "approved":
            raise PermissionError(f"run {run_id} is not approved: nothing is sent")
        rows = list(
            session.execute(
                select(PaymentFileRow)
                .where(PaymentFileRow.run_id == run_id)
                .where(PaymentFileRow.fund_code == fund if fund else true())
                .order_by(PaymentFileRow.msg_id)
            ).scalars()
        )
    result = Sent()
    for row in rows:
        data = (batch / row.path).read_bytes()
        remote = f"bank/{row.fund_code}/{Path(row.path).name}"
        signature = (batch / (row.path + SIGNATURE_SUFFIX)).read_bytes()
        upload_atomic(transport, remote + SIGNATURE_SUFFIX, signature)  # before the file
        outcome = deliver(engine, transport, row.msg_id, remote, data, at=at, takeover=takeover)
        result.files[row.msg_id] = outcome
        if outcome in ("uploaded", "already_there"):
            with Session(engine) as session, session.begin():
                result.payments_sent += move(
                    session,
                    (Payment.payment_file_id == row.id) & (Payment.state == states.IN_FILE),
                    states.SENT,
                    at=at,
                    actor="transport",
                    run_id=run_id,
                )
    return result
