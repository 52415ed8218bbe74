"""Finance's decision on a run, and sending an approved run to the bank."""

from __future__ import annotations

from typing import Annotated

import typer

from payments.cli.identity import VoucherFile, vouched
from payments.cli.options import (
    DataDir,
    RunId,
    refusals,
)
from payments.clock import utc_now
from payments.config import Settings, load_settings
from payments.console import stdout
from payments.credentials import payment_signer
from payments.sepa.signing import (
    load_certificate,
    signer_paths,
)


def approve(
    run_id: RunId,
    voucher: VoucherFile = None,
    data_dir: DataDir = None,
    refuse: Annotated[bool, typer.Option("--reject", help="Reject: nothing will be sent.")] = False,
) -> None:
    """Finance's decision on a run: approve (payments filed) or --reject (payments cancelled).

    Who decides is the finance user the --voucher names (from the payments pages).
    """
    from payments.ledger.migrate import engine_for
    from payments.release import approve as approve_run
    from payments.release import reject

    settings = load_settings(data_dir)
    engine = engine_for(settings.ledger_url)
    now = utc_now()
    with refusals():
        by = vouched(voucher, settings, finance=True)
        if refuse:
            if reject(engine, run_id, by=by, at=now, approvers=settings.finance_approvers):
                stdout.print(f"Run {run_id} rejected by {by.name}: nothing will be sent.")
                _anchor(settings, run_id)
            else:
                stdout.print(f"Run {run_id} was already rejected: nothing changes.")
            return
        filed = approve_run(
            engine,
            settings.data_dir / "runs" / run_id,
            run_id,
            by=by,
            at=now,
            approvers=settings.finance_approvers,
        )
    stdout.print(f"Run {run_id} approved by {by.name}: {filed:,} payments filed.")


def send(
    run_id: RunId,
    data_dir: DataDir = None,
    retry: Annotated[
        bool, typer.Option("--retry", help="Take over an upload a crashed attempt left.")
    ] = False,
) -> None:
    """Send an approved run's payment files to the bank (local folder <data>/bank by default).

    Verifies the batch first; each file goes exactly once (ledger + atomic upload).
    """
    from payments.ledger.migrate import engine_for
    from payments.send import send as send_run
    from payments.transport.local import LocalTransport

    settings = load_settings(data_dir)
    engine = engine_for(settings.ledger_url)
    trusted = load_certificate(signer_paths(settings.data_dir)[1])
    with refusals():
        result = send_run(
            engine,
            settings.data_dir / "runs" / run_id,
            run_id,
            LocalTransport(settings.data_dir),
            trusted=trusted,
            at=utc_now(),
            takeover=retry,
        )
    outcomes: dict[str, int] = {}
    for outcome in result.files.values():
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    stdout.print(f"Files: {outcomes}; payments sent: {result.payments_sent:,}")
    stdout.print(f"Bank folder: {settings.data_dir / 'bank'}")
    from sqlalchemy.orm import Session

    from payments.ledger.integrity import write_chain_head

    with refusals(), Session(engine) as session:
        write_chain_head(
            session, settings.data_dir / "runs" / run_id, payment_signer(settings, create=False)
        )
    if not result.all_at_the_bank:
        stdout.print(
            f"[red]✗[/red] not at the bank yet: {', '.join(result.waiting)} (another sender's "
            "upload; once it has stopped, `payments send --retry` carries it on)"
        )
        raise typer.Exit(1)


def _anchor(settings: Settings, run_id: str) -> None:
    """Sign the event chain's head into the rejected run's folder, as ``send`` does for a
    sent one: the run's audit bundle then checks."""
    from sqlalchemy.orm import Session

    from payments.ledger.integrity import write_chain_head
    from payments.ledger.migrate import engine_for

    with Session(engine_for(settings.ledger_url)) as session:
        write_chain_head(
            session, settings.data_dir / "runs" / run_id, payment_signer(settings, create=False)
        )
