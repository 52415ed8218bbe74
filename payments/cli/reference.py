"""The reference data: schemes, the fund registry, the input contract."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from payments.cli.options import (
    JsonOut,
)
from payments.console import stdout
from payments.contract import load_contract
from payments.registry import load_registry
from payments.schemes import load_scheme, scheme_ids


def list_schemes(as_json: JsonOut = False) -> None:
    """List the schemes (one reviewed file per decree under payments/schemes/)."""
    loaded = [load_scheme(i) for i in scheme_ids()]
    if as_json:
        typer.echo(
            json.dumps(
                [s.spec.model_dump(mode="json") for s in loaded], indent=2, ensure_ascii=False
            )
        )
        return
    table = Table(title="Schemes")
    for heading in ("id", "legal reference", "months", "age date", "payment", "rules"):
        table.add_column(heading)
    for s in loaded:
        table.add_row(
            s.id,
            s.spec.legal_reference,
            ", ".join(s.spec.reference_months),
            s.spec.age_date.isoformat(),
            s.spec.payment_date.isoformat(),
            ", ".join(r.spec.id for r in s.rules),
        )
    stdout.print(table)


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
