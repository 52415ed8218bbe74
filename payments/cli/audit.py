"""``payments audit`` and ``payments replay``: what an auditor runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from payments.cli.options import (
    DataDir,
    JsonOut,
    refusals,
)
from payments.config import load_settings
from payments.console import stdout
from payments.credentials import beneficiary_secret, payment_signer
from payments.sepa.signing import (
    load_certificate,
    signer_paths,
)


def audit_verify(data_dir: DataDir = None) -> None:
    """Check the ledger's hash-chained event log, its rows, and every payment file.

    Reported: any edited or deleted event; payments whose states the event log
    does not account for, or whose amounts differ from the signed manifests; a
    run's decision or a file's upload state that differs from the events; a
    chain cut or rewritten below a signed head (``runs/<run>/chain-head.json``);
    any payment file whose bytes no longer have the SHA-256 the ledger recorded.
    Exit code 0 when all is intact, 1 otherwise.
    """
    from sqlalchemy.orm import Session

    from payments.ledger.integrity import audit
    from payments.ledger.migrate import engine_for

    settings = load_settings(data_dir)
    cert_path = signer_paths(settings.data_dir)[1]
    trusted = load_certificate(cert_path) if cert_path.exists() else None
    with Session(engine_for(settings.ledger_url)) as session:
        problems, files = audit(session, settings.data_dir, trusted)
    if problems:
        for problem in problems:
            stdout.print(f"[red]✗[/red] {problem}")
        raise typer.Exit(1)
    stdout.print(f"[green]✓[/green] event log intact; {files} payment files match the ledger")


def audit_bundle(
    run_id: Annotated[str, typer.Argument(help="Run id (runs/<run-id>/run.json).")],
    out: Annotated[Path | None, typer.Option("--out", help="Zip to write.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Export a run's audit bundle: one zip an auditor checks offline (audit check-bundle)."""
    from payments.bundle import export_bundle

    settings = load_settings(data_dir)
    target = out or settings.data_dir / "audit" / f"{run_id}.zip"
    export_bundle(
        settings.data_dir,
        settings.ledger_url,
        run_id,
        target,
        signer_paths(settings.data_dir)[1],
    )
    stdout.print(f"Audit bundle: {target}")


def audit_check_bundle(
    bundle: Annotated[Path, typer.Argument(help="An audit bundle (.zip).")],
    cert: Annotated[
        Path | None,
        typer.Option(
            "--cert",
            help="The signer certificate you trust (default: this deployment's, if any).",
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Check an audit bundle offline: member hashes, signatures, run record, events, cents.

    Never trusts the certificate inside the bundle. Exit code 0 when everything
    holds, 1 with each problem named otherwise.
    """
    from payments.bundle import check_bundle

    trusted = cert or signer_paths(load_settings(data_dir).data_dir)[1]
    problems = check_bundle(bundle, load_certificate(trusted) if trusted.exists() else None)
    for problem in problems:
        stdout.print(f"[red]✗[/red] {problem}")
    if problems:
        raise typer.Exit(1)
    stdout.print(f"[green]✓[/green] {bundle}: every hash, the signature and the cents hold")


def replay(
    run_id: Annotated[str, typer.Argument(help="Run id (runs/<run-id>/run.json).")],
    scratch: Annotated[
        Path | None,
        typer.Option("--scratch", help="Scratch folder (default: <data>/replay/<run-id>)."),
    ] = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Recompute a finished run from its archive and compare every output, hash by hash.

    Uses only the archived inputs, scheme and ledger state of the run record;
    needs the beneficiary-key secret and the signing key the run used. Exit 0
    when every file is byte-identical, 1 with each difference named otherwise.
    """
    from payments.replay import replay_run

    settings = load_settings(data_dir)
    with refusals():
        secret = beneficiary_secret(settings, create=False)
        signer = payment_signer(settings, create=False)
    report = replay_run(
        settings.data_dir,
        run_id,
        scratch or settings.data_dir / "replay" / run_id,
        secret=secret,
        signer=signer,
    )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for problem in report.problems:
            stdout.print(f"[red]✗[/red] {problem}")
        mark = "[green]✓[/green]" if report.ok else "[red]✗[/red]"
        stdout.print(
            f"{mark} run {run_id}: {len(report.identical)} output files byte-identical, "
            f"{len(report.problems)} differences"
        )
    if not report.ok:
        raise typer.Exit(1)
