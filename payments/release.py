"""After the run: finance approves, the files are filed in the ledger, then sent to the bank.

These are the steps the Airflow DAG's approval and upload tasks call; the CLI
(``payments approve``, ``payments send``) calls them too. Both are idempotent:
approving twice or sending again changes nothing and sends nothing twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from cryptography import x509
from sqlalchemy import Engine, select, true
from sqlalchemy.orm import Session

from payments.ledger import states
from payments.ledger.models import Payment, PaymentFileRow, Run
from payments.ledger.staging import staged_rows
from payments.ledger.store import approve_run, move, record_payment_files
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
    """Finance approves the run: payments approved, then filed (``in_file``) by payment file.

    The files' transactions (``transactions.parquet``: end-to-end id → file)
    are staged in the database and joined on: a fixed number of statements of
    a fixed size, whatever the run's size.
    """
    batch = run_dir / "payments"
    manifest = json.loads((batch / MANIFEST).read_text())
    placement = pq.read_table(batch / TRANSACTIONS, columns=["end_to_end_id", "msg_id"])
    with Session(engine) as session, session.begin():
        run = session.get(Run, run_id)
        if run is None:
            raise KeyError(f"run {run_id} is not in the ledger")
        if run.decision == "approved":
            return 0
        with staged_rows(
            session,
            ["end_to_end_id", "msg_id"],
            _rows(placement),
            key=["end_to_end_id", "msg_id"],
        ) as placed:
            approve_run(session, run_id, by=by, at=at, in_files=placed)
            record_payment_files(session, run_id, manifest, at)
            # Every file's payments in one statement (UPDATE … FROM the staged
            # placement joined to the files): per file, PostgreSQL scanned the
            # run's payments again for each of the national run's 100 files.
            filed = move(
                session,
                (Payment.run_id == run_id)
                & (Payment.state == states.APPROVED)
                & (Payment.end_to_end_id == placed.c.end_to_end_id)
                & (PaymentFileRow.msg_id == placed.c.msg_id)
                & (PaymentFileRow.run_id == run_id),
                states.IN_FILE,
                at=at,
                actor=by,
                run_id=run_id,
                values={"payment_file_id": PaymentFileRow.id},
            )
        return filed


def _rows(table: pa.Table) -> Iterator[tuple[Any, ...]]:
    """A table's rows as tuples, a slice at a time (bounded memory)."""
    for part in table.to_batches(max_chunksize=100_000):
        yield from zip(*(column.to_pylist() for column in part.columns), strict=True)


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
