"""After the run: finance approves (or rejects) it; :mod:`payments.send` then sends it.

These are the steps the Airflow DAG's approval tasks call; the CLI
(``payments approve``) calls them too. Approving twice changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from datetime import datetime
from pathlib import Path

import polars as pl
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from payments.errors import FourEyesError, Refused, UnknownRun
from payments.four_eyes import check_decider
from payments.identity import Identity
from payments.ledger import events, states
from payments.ledger.approval import causes
from payments.ledger.files import file_payments, placement, record_payment_files
from payments.ledger.models import Payment, PaymentFileRow, Run
from payments.ledger.moves import move
from payments.ledger.runs import approve_run
from payments.sepa.layout import MANIFEST, TRANSACTIONS
from payments.statuses import RunDecision

#: How a run recorded from a shell without a voucher names its triggerer (an OS account).
SHELL = "os:"


def approve(
    engine: Engine,
    run_dir: Path,
    run_id: str,
    *,
    by: str | Identity,
    at: datetime,
    approvers: Collection[str],
    shown_manifest_sha256: str | None = None,
) -> int:
    """Finance approves the run: its payments, placed in their files when recorded, go ``in_file``.

    Only a finance approver other than the triggerer may (:mod:`payments.four_eyes`);
    a decision is final (a rejected run is never approved); and the approval
    is of the files concluded: a manifest that differs from the files the
    ledger recorded at conclusion is refused (a file changed and re-signed
    after finance was shown the totals). Approving twice changes nothing.

    One update of the run's payments' state, whatever the run's size. A run
    concluded before payment files were recorded with it (an earlier version)
    has its files recorded and its payments placed here first, from the
    batch's ``transactions.parquet``, staged and joined.
    """
    batch = run_dir / "payments"
    with Session(engine) as session, session.begin():
        run = _run(session, run_id)
        who = check_decider(
            by,
            triggered_by=run.triggered_by,
            approvers=approvers,
            caused=causes(session, run_id).people(),
        )
        if run.decision == RunDecision.REJECTED:
            raise _final(run)
        if run.decision == RunDecision.APPROVED:
            return 0
        if (run.triggered_by or "").startswith(SHELL):
            raise FourEyesError(
                f"run {run_id} was recorded from a shell ({run.triggered_by}), by no user the "
                "auth manager knows: four eyes cannot be checked; rerun it from the DAG, or "
                "with a voucher (payments run --voucher)"
            )
        manifest_bytes = (batch / MANIFEST).read_bytes()
        manifest_sha256 = hashlib.sha256(manifest_bytes).hexdigest()
        if shown_manifest_sha256 is not None and manifest_sha256 != shown_manifest_sha256:
            raise Refused(
                f"run {run_id}: finance was shown manifest {shown_manifest_sha256[:12]}…, "
                f"the run's is {manifest_sha256[:12]}…: nothing approved; rerun the batch"
            )
        manifest = json.loads(manifest_bytes)
        recorded = session.execute(
            select(PaymentFileRow.id).where(PaymentFileRow.run_id == run_id).limit(1)
        ).first()
        if recorded is None:
            ids = record_payment_files(session, run_id, manifest, at)
            transactions = pl.read_parquet(
                batch / TRANSACTIONS, columns=["end_to_end_id", "msg_id"]
            )
            file_payments(session, run_id, placement(transactions, ids))
        check_concluded(session, run_id, manifest)
        return approve_run(
            session,
            run_id,
            by=who,
            at=at,
            manifest_sha256=manifest_sha256,
        )


def reject(
    engine: Engine, run_id: str, *, by: str | Identity, at: datetime, approvers: Collection[str]
) -> bool:
    """Finance rejects the run: nothing is sent; its payments are cancelled.

    Their households' claims are freed for a later run (re-issued there as
    the next attempt). Final, like an approval: a run already approved (its
    money may be at the bank) cannot be rejected. Returns False when the run
    was already rejected (nothing changes).
    """
    with Session(engine) as session, session.begin():
        run = _run(session, run_id)
        who = check_decider(by, triggered_by=run.triggered_by, approvers=approvers)
        if run.decision == RunDecision.APPROVED:
            raise _final(run)
        if run.decision == RunDecision.REJECTED:
            return False
        run.decision, run.approved_by, run.approved_at = RunDecision.REJECTED, who, at
        events.append(session, "run_rejected", {"by": who}, at=at, run_id=run_id)
        session.flush()
        move(
            session,
            (Payment.run_id == run_id) & Payment.state.in_([states.COMPUTED, states.APPROVED]),
            states.CANCELLED,
            at=at,
            actor=who,
            run_id=run_id,
        )
        return True


def _run(session: Session, run_id: str) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise UnknownRun(f"run {run_id} is not in the ledger")
    return run


def _final(run: Run) -> Refused:
    return Refused(
        f"run {run.run_id} was already {run.decision} by {run.approved_by} at "
        f"{run.approved_at:%Y-%m-%d %H:%M}: a decision is final"
    )


def check_concluded(session: Session, run_id: str, manifest: dict[str, object]) -> None:
    """The manifest to approve lists exactly the files the ledger recorded at conclusion."""
    recorded = {
        (r.msg_id, r.sha256, r.nb_of_txs, r.ctrl_sum_cents)
        for r in session.execute(
            select(PaymentFileRow).where(PaymentFileRow.run_id == run_id)
        ).scalars()
    }
    files = manifest.get("files")
    shown = {
        (f["msg_id"], f["sha256"], f["nb_of_txs"], f["ctrl_sum_cents"])
        for f in (files if isinstance(files, list) else [])
    }
    if shown != recorded:
        changed = sorted(m for m, *_ in shown ^ recorded)
        raise Refused(
            f"run {run_id}: the payment files differ from those concluded "
            f"({', '.join(changed[:3])}): nothing approved; rerun the batch"
        )
