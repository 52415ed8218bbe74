"""After the run: finance approves (or rejects) it; :mod:`payments.send` then sends it.

These are the steps the Airflow DAG's approval tasks call; the CLI
(``payments approve``) calls them too. Approving twice changes nothing.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import polars as pl
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from payments.ledger import states
from payments.ledger.models import Payment, PaymentFileRow, Run
from payments.ledger.moves import move
from payments.ledger.store import approve_run, file_payments, placement, record_payment_files
from payments.sepa.layout import MANIFEST, TRANSACTIONS


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
            transactions = pl.read_parquet(
                batch / TRANSACTIONS, columns=["end_to_end_id", "msg_id"]
            )
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
