"""What the bank answered: reports in, where every euro is, what is paid again."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from payments.cli.identity import VoucherFile, vouched
from payments.cli.options import (
    DataDir,
    refusals,
)
from payments.clock import utc_now
from payments.config import load_settings
from payments.console import stdout
from payments.money import euros


def ingest(
    reports: Annotated[
        list[Path], typer.Argument(help="pain.002 status reports or camt.054 returns.")
    ],
    voucher: VoucherFile = None,
    data_dir: DataDir = None,
) -> None:
    """Apply bank reports to the ledger (accepted, rejected with reason, returned).

    A report moves money (a rejection or a return is paid again by the next
    run): the finance user the --voucher names applies it, and cannot approve
    the run that pays its re-issues.

    Every line is matched by MsgId / EndToEndId; unmatched or duplicated lines are
    listed, reports that cannot be read are quarantined (the others applied), and
    the exit code is 1. A report already applied is not applied again.
    """
    from payments.bank.inbox import ingest_reports, record_uploads
    from payments.ledger.migrate import engine_for

    settings = load_settings(data_dir)
    with refusals():
        by = vouched(voucher, settings, finance=True)
    engine = engine_for(settings.ledger_url)
    at = utc_now()
    read = [(path.name, path.read_bytes()) for path in reports]
    record_uploads(engine, read, by=by.id, at=at)
    done = ingest_reports(engine, read, at=at)
    stdout.print(
        f"{done.applied:,} reports applied ({done.already_seen:,} seen before): accepted "
        f"{done.accepted:,}, rejected {done.rejected:,}, returned {done.returned:,}"
    )
    for line in done.flagged:
        stdout.print(f"[yellow]![/yellow] {line}")
    for line in done.quarantined:
        stdout.print(f"[red]✗[/red] quarantined: {line}")
    for line in done.unmatched:
        stdout.print(f"[red]✗[/red] {line}")
    if done.flagged or done.quarantined or done.unmatched:
        raise typer.Exit(1)


def bank_reports(
    quarantined: Annotated[
        bool, typer.Option("--quarantined", help="Only the reports set aside, with why.")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """The bank reports the ledger holds: applied, or quarantined with the reason.

    Exits 1 when any report is quarantined: each needs a person (ask the bank
    for a readable copy, then ``payments ingest`` it).
    """
    from payments.bank.inbox import received
    from payments.ledger.migrate import engine_for

    settings = load_settings(data_dir)
    rows = received(engine_for(settings.ledger_url), quarantined_only=quarantined)
    table = Table(title="Bank reports")
    for column in ("received", "report", "bytes", "outcome", "reason"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            f"{r['received_at']:%Y-%m-%d %H:%M}",
            str(r["name"]),
            f"{r['bytes']:,}",
            str(r["outcome"]),
            str(r["reason"]),
        )
    stdout.print(table)
    if any(r["outcome"] == "quarantined" for r in rows):
        raise typer.Exit(1)


def reconciliation(
    out: Annotated[Path | None, typer.Option("--out", help="Also write the table as CSV.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Where every euro is, per scheme and fund: held, sent, accepted, rejected, returned."""
    from payments.ledger.finance import finance_by_fund
    from payments.ledger.migrate import engine_for
    from payments.spreadsheet import write_csv

    settings = load_settings(data_dir)
    rows = finance_by_fund(engine_for(settings.ledger_url))
    table = Table(title="Reconciliation (amounts in euros)")
    columns = (
        "scheme_id",
        "fund_code",
        "households",
        "held",
        "sent",
        "accepted",
        "rejected",
        "returned",
    )
    for heading in columns:
        table.add_column(heading, justify="left" if heading in columns[:2] else "right")
    for r in rows:
        table.add_row(
            r["scheme_id"],
            r["fund_code"],
            f"{r['households']:,}",
            *(euros(int(r[f"{k}_cents"])) for k in columns[3:]),
        )
    stdout.print(table)
    if out is not None:
        write_csv(rows, out)
        stdout.print(f"CSV: {out}")


def reissues(
    scheme: Annotated[str | None, typer.Option("--scheme", help="Only this scheme.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the list as CSV.")] = None,
    data_dir: DataDir = None,
) -> None:
    """The re-issue list: rejected and returned payments a complementary run will pay again.

    A household on the list is paid by the next run of its scheme that includes
    its fund (with the fund's current bank details), as a new attempt; once
    re-issued it leaves the list. Nobody is paid twice: one live claim each.
    """
    from sqlalchemy.orm import Session

    from payments.ledger.finance import reissue_list
    from payments.ledger.migrate import engine_for
    from payments.spreadsheet import write_csv

    settings = load_settings(data_dir)
    with Session(engine_for(settings.ledger_url)) as session:
        rows = reissue_list(session, scheme)
    table = Table(title=f"Re-issue list ({len(rows):,} payments)")
    for heading in ("scheme", "fund", "household", "end-to-end id", "state", "amount", "attempt"):
        table.add_column(heading, justify="right" if heading in ("amount", "attempt") else "left")
    for r in rows:
        table.add_row(
            r["scheme_id"],
            r["fund_code"],
            r["household_id"],
            r["end_to_end_id"],
            r["state"],
            euros(int(r["amount_cents"])),
            str(r["attempt"]),
        )
    stdout.print(table)
    if out is not None and rows:
        write_csv(rows, out)
        stdout.print(f"CSV: {out}")
