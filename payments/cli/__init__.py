"""The ``payments`` command: one module per command group.

Every command is a thin translation of its options into one package
function (the one the DAG's tasks call too), then a short summary table, or
``--json`` for scripts. No query, loop or rule lives here.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from payments import __version__
from payments.cli import admin, audit, bank, batch, holds, reference, release
from payments.config import PRIVATE_UMASK
from payments.logs import setup_logging

app = typer.Typer(
    name="payments",
    help=(
        "Batch payment of an emergency social aid: fund files in, signed SEPA payment "
        "files out, exactly once.\n\n"
        "Data lives under the storage root (--data-dir, or PAYMENTS_DATA_DIR, default "
        "./data). Personal data (NIR, IBAN) is masked in every log line."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """Batch payment of an emergency social aid."""
    os.umask(PRIVATE_UMASK)  # what the commands write holds personal data: 0600, 0700
    setup_logging("DEBUG" if verbose else "WARNING")


def _group(name: str, help_text: str) -> typer.Typer:
    group = typer.Typer(help=help_text, no_args_is_help=True)
    app.add_typer(group, name=name)
    return group


for command in (batch.sample, batch.validate, batch.compute, batch.keygen):
    app.command()(command)
app.command("payment-files")(batch.payment_files)
app.command()(batch.verify)
app.command()(batch.run)
app.command()(release.approve)
app.command()(release.send)
app.command()(bank.ingest)
app.command("bank-reports")(bank.bank_reports)
app.command()(bank.reconciliation)
app.command()(bank.reissues)
app.command()(audit.replay)
app.command("schemes")(reference.list_schemes)
app.command("funds")(reference.list_funds)
app.command()(reference.contract)

storage = _group("storage", "The storage root tasks exchange data through.")
storage.command("check")(admin.storage_check)
ledger = _group("ledger", "The payment ledger (SQLite by default, PostgreSQL in production).")
ledger.command("upgrade")(admin.ledger_upgrade)
audits = _group("audit", "Audit checks.")
audits.command("verify")(audit.audit_verify)
audits.command("bundle")(audit.audit_bundle)
audits.command("check-bundle")(audit.audit_check_bundle)
held = _group("holds", "Held payments: the review list and releases.")
held.command("list")(holds.holds_list)
held.command("release")(holds.holds_release)

__all__ = ["app"]
