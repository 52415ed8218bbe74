"""Send an approved run: verify the batch, deliver each file exactly once, mark its payments sent.

The Airflow DAG's ``deliver`` task (one per fund) and ``payments send`` call
this. Sending again sends nothing twice (the ledger's guarantee, in
:mod:`payments.transport.deliver`). SQLAlchemy, lxml and cryptography only:
each of the national run's hundred delivery tasks imports this, not the
data stack that computes and records a run.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography import x509
from sqlalchemy import Engine, func, select, true
from sqlalchemy.orm import Session

from payments.errors import Refused
from payments.ledger import states
from payments.ledger.models import Payment, PaymentFileRow, Run
from payments.sepa.layout import MANIFEST
from payments.sepa.signing import SIGNATURE_SUFFIX
from payments.sepa.verify import verify_batch
from payments.statuses import RunDecision
from payments.transport.base import Inconsistent, Transport
from payments.transport.deliver import AT_THE_BANK, Outgoing, deliver

#: States of a payment that is in a file finance approved.
FILED = frozenset({states.IN_FILE, states.SENT, states.ACCEPTED, states.REJECTED, states.RETURNED})


@dataclass
class Sent:
    files: dict[str, str] = field(default_factory=dict)  # msg_id -> outcome
    payments_sent: int = 0

    @property
    def all_at_the_bank(self) -> bool:
        """Every file is at the bank (or was, and the bank collected it)."""
        return all(outcome in AT_THE_BANK for outcome in self.files.values())

    @property
    def waiting(self) -> list[str]:
        """Files another sender is still uploading."""
        return sorted(m for m, outcome in self.files.items() if outcome not in AT_THE_BANK)


def send(
    engine: Engine,
    run_dir: Path,
    run_id: str,
    transport: Transport,
    *,
    trusted: x509.Certificate,
    at: datetime,
    owner: str | None = None,
    takeover: bool = False,
    fund: str | None = None,
) -> Sent:
    """Verify the batch, then deliver each approved file (with its signature) exactly once.

    ``owner`` names this sender for the upload leases (the same on each try
    of a DAG task, so that a retry carries on; by default this process; see
    :mod:`payments.transport.deliver`); ``takeover``: carry on uploads other
    senders left, whatever their lease says. ``fund`` restricts the delivery to
    one fund's files (the DAG's mapped task); the whole batch is verified all
    the same, so no file leaves from a batch that was altered anywhere.
    """
    batch = run_dir / "payments"
    only = None
    if fund:
        manifest = json.loads((batch / MANIFEST).read_text())
        only = {f["path"] for f in manifest["files"] if f["fund_code"] == fund}
    problems = verify_batch(batch, trusted, only=only)
    if problems:
        raise Inconsistent("batch does not verify, nothing sent: " + "; ".join(problems[:5]))
    with Session(engine) as session:
        run = session.get(Run, run_id)
        if run is None or run.decision != RunDecision.APPROVED:
            raise Refused(f"run {run_id} is not approved: nothing is sent")
        rows = list(
            session.execute(
                select(PaymentFileRow)
                .where(PaymentFileRow.run_id == run_id)
                .where(PaymentFileRow.fund_code == fund if fund else true())
                .order_by(PaymentFileRow.msg_id)
            ).scalars()
        )
        for row in rows:
            _check_figures(session, row)
    owner = owner or f"process:{socket.gethostname()}:{os.getpid()}"
    result = Sent()
    for row in rows:
        outgoing = Outgoing(
            file_id=row.id,
            msg_id=row.msg_id,
            remote_path=f"bank/{row.fund_code}/{Path(row.path).name}",
            data=(batch / row.path).read_bytes(),
            signature=(batch / (row.path + SIGNATURE_SUFFIX)).read_bytes(),
            run_id=run_id,
        )
        done = deliver(engine, transport, outgoing, owner=owner, at=at, takeover=takeover)
        result.files[row.msg_id] = done.outcome
        result.payments_sent += done.payments_sent
    return result


def _check_figures(session: Session, row: PaymentFileRow) -> None:
    """The ledger's payments in this file are the file's transactions, in number and cents.

    Before the file leaves: a file whose payments were cancelled, or that
    the ledger does not hold as filed, is never sent.
    """
    found = session.execute(
        select(Payment.state, func.count(), func.coalesce(func.sum(Payment.amount_cents), 0))
        .where(Payment.payment_file_id == row.id)
        .group_by(Payment.state)
    ).all()
    unsent = {str(s) for s, _, _ in found} - FILED
    count = sum(int(n) for _, n, _ in found)
    cents = sum(int(c) for _, _, c in found)
    if unsent or (count, cents) != (row.nb_of_txs, row.ctrl_sum_cents):
        raise Inconsistent(
            f"{row.msg_id}: the ledger holds {count} payments, {cents} cents "
            f"({', '.join(sorted(unsent)) or 'all filed'}) for a file of {row.nb_of_txs} "
            f"transactions, {row.ctrl_sum_cents} cents: not sent"
        )
