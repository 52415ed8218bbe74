"""Setting up a deployment: the storage root and the ledger's schema."""

from __future__ import annotations

import typer

from payments.cli.options import (
    DataDir,
)
from payments.config import load_settings
from payments.console import stderr, stdout


def storage_check(data_dir: DataDir = None) -> None:
    """Create the storage root if needed (the bucket on an object store) and round-trip a probe."""
    from payments.storage import StorageError

    try:
        storage = load_settings(data_dir).storage()
        storage.check()
    except StorageError as exc:
        stderr.print(f"[red]✗[/red] {exc}")
        raise typer.Exit(1) from exc
    stdout.print(f"[green]✓[/green] storage root usable: {storage}")


def ledger_upgrade(data_dir: DataDir = None) -> None:
    """Create or migrate the ledger to the current schema (Alembic)."""
    from payments.ledger.migrate import upgrade

    settings = load_settings(data_dir)
    upgrade(settings.ledger_url)
    stdout.print(f"Ledger at the current schema: {mask_url(settings.ledger_url)}")


def mask_url(url: str) -> str:
    """A database URL without its password, for printing."""
    head, sep, tail = url.partition("@")
    if not sep or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, creds = head.partition("//")
    return f"{scheme}//{creds.split(':', 1)[0]}:***@{tail}"
