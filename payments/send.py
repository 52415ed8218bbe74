"""Send an approved run: verify the batch, deliver each file exactly once, mark its payments sent.

The Airflow DAG's ``deliver`` task (one per fund) and ``payments send`` call
this. Sending again sends nothing twice (the ledger's guarantee, in
:mod:`payments.transport.deliver`). SQLAlchemy, lxml and cryptography only:
each of the national run's hundred delivery tasks imports this, not the
data stack that computes and records a run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography import x509
from sqlalchemy import Engine, select, true
from sqlalchemy.orm import Session

from payments.ledger import states
from payments.ledger.models import Payment, PaymentFileRow, Run
from payments.ledger.moves import move
from payments.sepa.layout import MANIFEST
from payments.sepa.signing import SIGNATURE_SUFFIX
from payments.sepa.verify import verify_batch
from payments.transport.base import Transport, TransportError, upload_atomic
from payments.transport.deliver import deliver


@dataclass
class Sent:
    files: dict[str, str] = field(default_factory=dict)  # msg_id -> outcome
    payments_sent: int = 0


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
