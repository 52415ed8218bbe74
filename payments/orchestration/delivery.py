"""The DAG's last tasks: ``deliver`` (one per fund) sends that fund's files exactly
once; ``report`` ties the ledger to the files.

Imports only what sending needs (the ledger's models, verification,
transports): each of the national run's hundred ``deliver`` task processes
pays for its imports.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from payments.ledger.migrate import engine_for
from payments.ledger.models import Payment
from payments.money import euros
from payments.orchestration.endpoints import bank_target, describe
from payments.orchestration.settings import task_settings
from payments.send import send
from payments.sepa.signing import load_certificate, signer_paths
from payments.storage import staged

log = logging.getLogger(__name__)


def deliver(summary: Mapping[str, Any], fund_code: str) -> dict[str, Any]:
    """Mapped per fund: verify the batch, upload this fund's files exactly once."""
    settings = task_settings()
    trusted = load_certificate(signer_paths(settings.data_dir)[1])
    run_dir = str(summary["run_dir"])
    with (
        staged(settings.storage(), pull=[f"{run_dir}/payments"]) as area,
        bank_target() as transport,
    ):
        log.info("fund %s: delivering to %s", fund_code, describe(None))
        sent = send(
            engine_for(settings.ledger_url),
            area.root / run_dir,
            summary["run_id"],
            transport,
            trusted=trusted,
            at=datetime.now(UTC).replace(tzinfo=None),
            fund=fund_code,
        )
    log.info(
        "fund %s: files %s; payments marked sent now: %s",
        fund_code,
        sent.files,
        sent.payments_sent,
    )
    return {"fund": fund_code, "files": sent.files, "payments_sent": sent.payments_sent}


def report(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The run as the ledger now has it: payments and cents by state (ties out to the files)."""
    settings = task_settings()
    with Session(engine_for(settings.ledger_url)) as session:
        rows = session.execute(
            select(Payment.state, func.count(), func.coalesce(func.sum(Payment.amount_cents), 0))
            .where(Payment.run_id == summary["run_id"])
            .group_by(Payment.state)
            .order_by(Payment.state)
        ).all()
    states = {str(s): {"payments": int(n), "cents": int(c)} for s, n, c in rows}
    for state, t in states.items():
        log.info(
            "run %s: %s %s payments, %s", summary["run_id"], state, t["payments"], euros(t["cents"])
        )
    files = summary.get("payment_files") or {"payments": 0, "cents": 0}
    sent = states.get("sent", {"payments": 0, "cents": 0})
    out = {
        "run_id": summary["run_id"],
        "states": states,
        "files": files,
        "sent_ties_out": sent == {"payments": files["payments"], "cents": files["cents"]},
        "run_dir": summary["run_dir"],
    }
    log.info("run %s: sent ties out to the files: %s", summary["run_id"], out["sent_ties_out"])
    return out
