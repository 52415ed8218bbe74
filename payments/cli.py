"""The ``payments`` command.

Every subcommand is a thin shell over a package function, prints a short
summary table at the end, and offers ``--json`` for scripts.
"""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from payments import __version__
from payments.config import load_settings
from payments.console import progress, stdout
from payments.contract import load_contract
from payments.logs import setup_logging
from payments.registry import load_registry

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
Scheme = Annotated[str, typer.Option("--scheme", help="Scheme id the files are for.")]


def _codes(funds: str | None) -> list[str] | None:
    return [c.strip() for c in funds.split(",") if c.strip()] if funds else None


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
    setup_logging("DEBUG" if verbose else "WARNING")


@app.command()
def sample(
    households: Annotated[
        int, typer.Option("--households", "-n", min=0, help="Total households, all funds.")
    ] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed: same seed, same bytes.")] = 2020,
    scheme: Scheme = "aes-2020-05",
    months: Annotated[
        str, typer.Option(help="Reference months of the scheme window, comma-separated.")
    ] = "2020-04,2020-05",
    as_of: Annotated[
        str, typer.Option("--as-of", help="Extraction date of the files (YYYY-MM-DD).")
    ] = "2020-05-10",
    defects: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.5,
            help="Share of rows carrying an injected defect (bad NIR key, bad IBAN, missing "
            "field, duplicate row, household in two funds, shared IBAN), plus non-UTF-8 "
            "and truncated files. Ground truth goes to _sample/truth_<scheme>.parquet.",
        ),
    ] = 0.0,
    funds: Funds = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Generate realistic, deterministic fund files into each fund's inbox.

    Households are spread over the funds in proportion to population; NIRs and
    IBANs are valid unless a defect was injected on purpose.
    """
    from payments.sample.households import Window
    from payments.sample.writer import SampleSpec, write_sample

    settings = load_settings(data_dir)
    spec = SampleSpec(
        households=households,
        seed=seed,
        window=Window(
            scheme, tuple(m.strip() for m in months.split(",")), date.fromisoformat(as_of)
        ),
        defect_rate=defects,
        funds=tuple(_codes(funds) or ()),
    )
    started = time.perf_counter()
    with progress("generating", households, enabled=not as_json) as bar:
        result = write_sample(
            spec, settings.data_dir, on_fund=lambda _f, n: bar.advance(bar.task_ids[0], n)
        )
    elapsed = time.perf_counter() - started
    if as_json:
        typer.echo(json.dumps({**result.to_dict(), "seconds": round(elapsed, 3)}, indent=2))
        return
    table = Table(title=f"Sample {scheme} → {settings.data_dir}")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("files", f"{len(result.files):,}")
    table.add_row("households (rows)", f"{result.rows:,}")
    table.add_row("bytes", f"{sum(f.bytes for f in result.files):,}")
    for kind, count in result.defects.items():
        if count:
            table.add_row(f"defect: {kind}", f"{count:,}")
    table.add_row("seconds", f"{elapsed:.1f}")
    stdout.print(table)


@app.command()
def run(
    scheme: Scheme = "aes-2020-05",
    funds: Funds = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Run the batch on the files in the funds' inboxes (today: receipt stage).

    Each fund's file is checked as a file (companion, size, SHA-256, encoding,
    header, row count) and read; a missing or rejected file is listed and the
    other funds go on. Outputs go to <data-dir>/runs/<run-id>/.
    """
    from payments.pipeline import run_intake

    settings = load_settings(data_dir)
    selected = load_registry().select(_codes(funds))
    with progress("receiving", len(selected), enabled=not as_json) as bar:
        result = run_intake(
            settings.data_dir,
            scheme,
            funds=_codes(funds),
            on_fund=lambda _f, _r: bar.advance(bar.task_ids[0]),
        )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    table = Table(title=f"Run {result.run_id}")
    table.add_column("funds")
    table.add_column("count", justify="right")
    table.add_column("rows", justify="right")
    for status in ("received", "missing", "rejected"):
        rows = sum(r.rows for r in result.receipts if r.status == status)
        table.add_row(status, str(result.count(status)), f"{rows:,}")
    table.add_row("total", str(len(result.receipts)), f"{result.rows:,}")
    stdout.print(table)
    problems = [r for r in result.receipts if not r.ok]
    if problems:
        issues = Table(title="Funds to follow up (complementary run)")
        issues.add_column("fund")
        issues.add_column("reason")
        issues.add_column("detail", overflow="fold")
        for r in problems[:MAX_LISTED]:
            issues.add_row(r.fund_code, str(r.error), r.message or "")
        if len(problems) > MAX_LISTED:
            issues.add_row("…", f"{len(problems) - MAX_LISTED} more", "see intake.json")
        stdout.print(issues)
    stdout.print(f"Outputs: {result.out_dir}")


@app.command("funds")
def list_funds(as_json: JsonOut = False) -> None:
    """List the fund registry (codes, names, folders; paying accounts masked)."""
    from payments.logs import mask

    registry = load_registry()
    if as_json:
        typer.echo(
            json.dumps(
                {"version": registry.version, "funds": [f.__dict__ for f in registry.funds]},
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    table = Table(title=f"Fund registry {registry.version} ({len(registry.funds)} funds)")
    for heading in ("code", "name", "debtor account", "inbox", "bank outbox"):
        table.add_column(heading)
    for f in registry.funds:
        table.add_row(f.code, f.name, mask(f.debtor_iban), f.inbox, f.bank_outbox)
    stdout.print(table)


@app.command()
def contract(
    version: Annotated[str, typer.Option(help="Contract version.")] = "1.0",
    as_json: JsonOut = False,
) -> None:
    """Show the input contract: the columns a fund file must carry, in order."""
    c = load_contract(version)
    if as_json:
        typer.echo(
            json.dumps(
                {"version": c.version, "columns": [col.__dict__ for col in c.columns]},
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    table = Table(title=f"Input contract {c.version} (CSV, {c.encoding}, '{c.delimiter}')")
    for heading in ("#", "column", "kind", "required", "description"):
        table.add_column(heading, overflow="fold")
    for i, col in enumerate(c.columns, 1):
        table.add_row(str(i), col.name, col.kind, "yes" if col.required else "no", col.description)
    stdout.print(table)


if __name__ == "__main__":  # pragma: no cover
    app()
