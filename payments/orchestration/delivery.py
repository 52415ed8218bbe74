"""The DAG's last tasks: ``deliver`` (one per fund) sends that fund's files exactly
once; ``report`` ties the ledger to the files.

Imports only what sending needs (the ledger's models, verification,
transports): each of the national run's hundred ``deliver`` task processes
pays for its imports.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from payments.clock import utc_now
from payments.config import Settings
from payments.credentials import payment_signer
from payments.ledger.approval import facts, funds_with_files
from payments.ledger.finance import run_at_bank
from payments.ledger.integrity import CHAIN_HEAD, write_chain_head
from payments.ledger.migrate import engine_for
from payments.money import euros
from payments.orchestration.bound import bound_required, bound_run, fail_for_good, final
from payments.orchestration.endpoints import bank_target, describe
from payments.orchestration.settings import task_settings
from payments.send import send
from payments.sepa.signing import SIGNATURE_SUFFIX, load_certificate, signer_paths
from payments.statuses import RunDecision
from payments.storage import staged
from payments.transport.base import Inconsistent, TransportError

log = logging.getLogger(__name__)


def task_owner(ti: Any) -> str:
    """The upload leases' owner for a task instance: the same on each of its tries."""
    return f"airflow:{ti.dag_id}:{ti.run_id}:{ti.task_id}:{ti.map_index}"


def deliver(airflow_run: tuple[str, str], fund_code: str, *, owner: str) -> dict[str, Any]:
    """Mapped per fund: verify the batch, upload this fund's files exactly once.

    The run is the one the ledger says this Airflow run concluded; a fund it has
    no file for is refused (the fund list comes through an XCom). Fails while
    any of the fund's files is not at the bank (another sender's upload in
    progress): Airflow's retry then carries on, and the run never ends green
    with a file missing.
    """
    settings = task_settings()
    run = final(lambda: bound_required(airflow_run))
    with Session(engine_for(settings.ledger_url)) as session:
        funds = funds_with_files(session, run.run_id)
    if fund_code not in funds:
        fail_for_good(
            f"run {run.run_id} has no payment file for fund {fund_code}: nothing to deliver"
        )
    trusted = load_certificate(signer_paths(settings.data_dir)[1])
    with (
        staged(settings.storage(), pull=[f"{run.run_dir}/payments"]) as area,
        bank_target() as transport,
    ):
        log.info("fund %s: delivering to %s", fund_code, describe(None))
        try:
            sent = send(
                engine_for(settings.ledger_url),
                area.root / run.run_dir,
                run.run_id,
                transport,
                trusted=trusted,
                at=utc_now(),
                owner=owner,
                fund=fund_code,
            )
        except Inconsistent as exc:
            fail_for_good(
                f"run {run.run_id}, fund {fund_code}: the payment files and the ledger disagree "
                f"({exc}); nothing more of this fund is sent: run `payments audit verify`, and "
                "pay what is missing by a new run that finance approves"
            )
    log.info(
        "fund %s: files %s; payments marked sent now: %s",
        fund_code,
        sent.files,
        sent.payments_sent,
    )
    if not sent.all_at_the_bank:
        raise TransportError(
            f"fund {fund_code}: {', '.join(sent.waiting)} not at the bank yet "
            "(another sender's upload; its lease expires, then a retry carries on)"
        )
    return {"fund": fund_code, "files": sent.files, "payments_sent": sent.payments_sent}


def report(airflow_run: tuple[str, str], *, dry_run: bool = False) -> dict[str, Any]:
    """The run as the ledger now has it: payments and cents by state (ties out to the files).

    Fails when the run was approved and one of its files is not at the bank,
    or when what was sent does not tie out to the files the ledger recorded.
    A run the ledger holds nothing of (a dry run) reports itself as such.
    """
    run_ref = bound_run(airflow_run)
    if run_ref is None:
        log.info("nothing recorded by this run (%s): nothing to tie out", "dry run" if dry_run
                 else "nobody to pay")  # fmt: skip
        return {"recorded": False, "dry_run": dry_run}
    settings = task_settings()
    run_id = run_ref.run_id
    with Session(engine_for(settings.ledger_url)) as session:
        run = run_at_bank(session, run_id)
        files = facts(session, run_id)["files"]
    for state, t in run.states.items():
        log.info("run %s: %s %s payments, %s", run_id, state, t["payments"], euros(t["cents"]))
    out = {
        "run_id": run_id,
        "states": run.states,
        "files": files,
        # Sent, or since answered by the bank (a re-triggered run reports later).
        "sent_ties_out": run.sent() == {"payments": files["payments"], "cents": files["cents"]},
        "run_dir": run_ref.run_dir,
    }
    log.info("run %s: sent ties out to the files: %s", run_id, out["sent_ties_out"])
    decision, missing = run.decision, run.not_uploaded
    if decision in (RunDecision.APPROVED, RunDecision.REJECTED):
        # A decided run's events are anchored: its audit bundle checks, rejected or not.
        _sign_chain_head(settings, run_dir=run_ref.run_dir)
    if decision == RunDecision.APPROVED and (missing or not out["sent_ties_out"]):
        raise TransportError(
            f"run {run_id}: approved, but "
            + (
                f"{len(missing)} files not at the bank ({', '.join(missing[:3])})"
                if missing
                else "what was sent does not tie out to the files"
            )
        )
    return out


def _sign_chain_head(settings: Settings, *, run_dir: str) -> None:
    """The event chain's head, signed and kept with the run (payments audit verify checks it)."""
    head = f"{run_dir}/{CHAIN_HEAD}"
    with (
        staged(settings.storage(), publish=[head, head + SIGNATURE_SUFFIX]) as area,
        Session(engine_for(settings.ledger_url)) as session,
    ):
        signed = write_chain_head(session, area.root / run_dir, payment_signer(settings))
    log.info("event chain head %s signed into %s", signed["seq"], head)
