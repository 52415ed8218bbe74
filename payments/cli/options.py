"""The options the commands share, and how a refusal is printed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from payments.console import stdout
from payments.errors import PaymentsError
from payments.sepa.profiles import BankProfile, UnknownProfile, load_profile

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Storage root (default: $PAYMENTS_DATA_DIR or ./data)."),
]

JsonOut = Annotated[bool, typer.Option("--json", help="Print a JSON document instead of tables.")]

Funds = Annotated[
    str | None,
    typer.Option("--funds", help="Comma-separated fund codes (default: every fund)."),
]

MAX_LISTED = 20

CPUS = os.cpu_count() or 1

Scheme = Annotated[str, typer.Option("--scheme", help="Scheme id the files are for.")]


def codes(funds: str | None) -> list[str] | None:
    return [c.strip() for c in funds.split(",") if c.strip()] if funds else None


Months = Annotated[
    str | None,
    typer.Option(help="Reference months accepted, comma-separated (default: the scheme's)."),
]

Workers = Annotated[
    int, typer.Option(min=1, help="Processes validating funds in parallel (default: CPUs).")
]

FactThreads = Annotated[
    int, typer.Option("--workers", min=1, help="Threads computing funds' facts (default: CPUs).")
]

ReferenceDate = Annotated[
    str | None,
    typer.Option(
        "--reference-date",
        help="Reference date (children born after it are errors). Default: the scheme's age date.",
    ),
]

RunDate = Annotated[
    str | None,
    typer.Option(
        "--run-date",
        help="Date of the run (recent bank changes are held). Default: the scheme's payment date.",
    ),
]

MaxTransactions = Annotated[
    int, typer.Option("--max-transactions", min=1, help="Most transactions in one payment file.")
]

BankProfileName = Annotated[
    str | None,
    typer.Option(
        "--bank-profile",
        help="Write every fund's files for this bank profile (epc-2019: pain.001.001.09; "
        "sepa-2009: pain.001.001.03) instead of each fund's own.",
    ),
]


def profile(name: str | None) -> BankProfile | None:
    """The profile ``--bank-profile`` names (None: each fund's own); an unknown one stops."""
    if name is None:
        return None
    try:
        return load_profile(name)
    except UnknownProfile as exc:
        stdout.print(f"[red]✗[/red] {exc.args[0]}")
        raise typer.Exit(2) from None


@contextmanager
def refusals() -> Iterator[None]:
    """The project's refusals (a missing secret, a decision not allowed) as one red line."""
    try:
        yield
    except PaymentsError as exc:
        stdout.print(f"[red]✗[/red] {exc}")
        raise typer.Exit(1) from None


RunId = Annotated[str, typer.Argument(help="Run id (runs/<run-id>/ under the data dir).")]
