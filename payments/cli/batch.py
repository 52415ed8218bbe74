"""The batch, stage by stage or in one go: sample, validate, compute, payment files, run."""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from payments.cli.identity import VoucherFile, os_account, vouched
from payments.cli.options import (
    CPUS,
    BankProfileName,
    DataDir,
    FactThreads,
    Funds,
    JsonOut,
    MaxTransactions,
    Months,
    ReferenceDate,
    RunDate,
    Scheme,
    Workers,
    codes,
    profile,
    refusals,
)
from payments.cli.tables import payment_tables, preview_tables, validation_tables
from payments.config import load_settings
from payments.console import progress, stdout
from payments.credentials import beneficiary_secret, payment_signer
from payments.registry import load_registry
from payments.schemes import load_scheme
from payments.sepa.signing import (
    generate_demo_pair,
    load_certificate,
    signer_paths,
)
from payments.validation.folder import validate_folder
from payments.validation.schema import Window


def sample(
    households: Annotated[
        int, typer.Option("--households", "-n", min=0, help="Total households, all funds.")
    ] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed: same seed, same bytes.")] = 2020,
    scheme: Scheme = "aes-2020-05",
    months: Annotated[
        str | None,
        typer.Option(help="Reference months written in the files (default: the scheme's)."),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Extraction date of the files (default: 5 days before the scheme's payment).",
        ),
    ] = None,
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
    from payments.sample.households import Window as SampleWindow
    from payments.sample.writer import SampleSpec, write_sample

    settings = load_settings(data_dir)
    if months is None or as_of is None:
        scheme_spec = load_scheme(scheme).spec
        months = months or ",".join(scheme_spec.reference_months)
        as_of = as_of or (scheme_spec.payment_date - timedelta(days=5)).isoformat()
    spec = SampleSpec(
        households=households,
        seed=seed,
        window=SampleWindow(
            scheme, tuple(m.strip() for m in months.split(",")), date.fromisoformat(as_of)
        ),
        defect_rate=defects,
        funds=tuple(codes(funds) or ()),
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


def _window(scheme_id: str, months: str | None, reference_date: str | None) -> Window:
    """The validation window: the scheme's, or the months and date given on the command line."""
    return Window.chosen(
        load_scheme(scheme_id),
        [m.strip() for m in months.split(",") if m.strip()] if months else None,
        date.fromisoformat(reference_date) if reference_date else None,
    )


def validate(
    input_dir: Annotated[
        Path, typer.Option("--input", help="Storage root holding funds/<code>/ inboxes.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for accepted/quarantine outputs.")],
    scheme: Scheme = "aes-2020-05",
    months: Months = None,
    reference_date: ReferenceDate = None,
    funds: Funds = None,
    workers: Workers = CPUS,
    as_json: JsonOut = False,
) -> None:
    """Validate every fund file: each row accepted or quarantined with reasons.

    Files that cannot be trusted (encoding, header, size/hash/row count against the
    companion, wrong fund, empty, same content twice) are rejected as files; the other
    funds go on. Writes <out>/<fund>/accepted.parquet, quarantine.parquet,
    quarantine.csv, report.json and <out>/validation.json.
    """
    window = _window(scheme, months, reference_date)
    selected = load_registry().select(codes(funds))
    with progress("validating", len(selected), enabled=not as_json) as bar:
        result = validate_folder(
            input_dir.resolve(),
            out.resolve(),
            scheme,
            window,
            funds=codes(funds),
            workers=workers,
            on_fund=lambda _f, _r: bar.advance(bar.task_ids[0]),
        )
    if as_json:
        typer.echo(json.dumps({**result.to_dict(), "out_dir": str(result.out_dir)}, indent=2))
        return
    validation_tables(result)
    stdout.print(f"Outputs: {result.out_dir}")


def compute(
    input_dir: Annotated[
        Path, typer.Option("--input", help="Validated folder (<fund>/accepted.parquet).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for decisions and the preview.")],
    scheme: Scheme = "aes-2020-05",
    run_date: RunDate = None,
    data_dir: DataDir = None,
    workers: FactThreads = CPUS,
    as_json: JsonOut = False,
) -> None:
    """Compute every household's decision and amount under a scheme, nationally.

    Deduplicates households across funds (keyed hash of NIRs), applies prior
    payments and fraud holds, and writes decisions.parquet, review.parquet (held
    payments), preview.json/.csv (the budget preview) and compute.json to --out.
    The keyed-hash secret comes from $PAYMENTS_KEY_SECRET or <data-dir>/secrets.
    """
    from payments.entitlement.folder import compute_folder

    settings = load_settings(data_dir)
    loaded = load_scheme(scheme)
    with refusals():
        secret = beneficiary_secret(settings)
    result = compute_folder(
        input_dir.resolve(),
        out.resolve(),
        loaded,
        secret=secret,
        run_date=date.fromisoformat(run_date) if run_date else loaded.spec.payment_date,
        workers=workers,
    )
    if as_json:
        typer.echo(json.dumps({**result.to_dict(), "out_dir": str(result.out_dir)}, indent=2))
        return
    preview_tables(result.preview)
    stdout.print(f"Outputs: {result.out_dir}")


def keygen(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for signing-key.pem and signing-cert.pem.")
    ],
    name: Annotated[
        str, typer.Option(help="Certificate common name.")
    ] = "solidarity-payments demo",
) -> None:
    """Make a throw-away RSA key and self-signed certificate (demo and tests only).

    Production keys come from the operator's PKI; point PAYMENTS_SIGNING_KEY and
    PAYMENTS_SIGNING_CERT at them. Never commit a key.
    """
    key, cert = out / "signing-key.pem", out / "signing-cert.pem"
    generate_demo_pair(key, cert, common_name=name)
    stdout.print(f"Key: {key} (mode 600)\nCertificate: {cert}")


def payment_files(
    decisions: Annotated[Path, typer.Option("--decisions", help="decisions.parquet from compute.")],
    out: Annotated[Path, typer.Option("--out", help="Batch folder to write.")],
    run_id: Annotated[str, typer.Option("--run-id", help="Run id (goes into MsgIds).")],
    scheme: Scheme = "aes-2020-05",
    created_at: Annotated[
        str | None,
        typer.Option(
            "--created-at", help="Creation time, ISO (default: 08:00 the day before payment)."
        ),
    ] = None,
    max_transactions: MaxTransactions = 100_000,
    bank_profile: BankProfileName = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Write signed SEPA pain.001 files and a signed manifest for the payable households.

    The version and options are each fund's bank profile's, or ``--bank-profile``'s.
    """
    import pyarrow.parquet as pq

    from payments.run_spec import default_creation_time
    from payments.sepa.batch import FileLayout, write_batch

    settings = load_settings(data_dir)
    loaded = load_scheme(scheme)
    with refusals():
        signer = payment_signer(settings, create=False)
    batch = write_batch(
        pq.read_table(decisions),
        loaded,
        run_id=run_id,
        created_at=datetime.fromisoformat(created_at)
        if created_at
        else default_creation_time(loaded),
        signer=signer,
        out_dir=out.resolve(),
        layout=FileLayout(max_transactions, profile(bank_profile)),
    )
    if as_json:
        typer.echo(json.dumps(batch.manifest, indent=2))
        return
    payment_tables(batch)


def verify(
    path: Annotated[Path, typer.Argument(help="Batch folder (holds manifest.json).")],
    cert: Annotated[
        Path | None,
        typer.Option(
            "--cert",
            help="Trusted signer certificate (default: $PAYMENTS_SIGNING_CERT or the demo one).",
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Check a payment batch: signatures, hashes, schema, control sums, nothing added or removed.

    Exit code 0 when everything holds, 1 with the list of problems otherwise.
    """
    from payments.sepa.verify import verify_batch

    trusted = cert or signer_paths(load_settings(data_dir).data_dir)[1]
    problems = verify_batch(path, load_certificate(trusted))
    if problems:
        for problem in problems:
            stdout.print(f"[red]✗[/red] {problem}")
        raise typer.Exit(1)
    stdout.print(f"[green]✓[/green] {path}: every file and signature verified")


def run(
    scheme: Scheme = "aes-2020-05",
    run_date: RunDate = None,
    max_transactions: MaxTransactions = 100_000,
    funds: Funds = None,
    workers: Workers = CPUS,
    bank_profile: BankProfileName = None,
    no_ledger: Annotated[
        bool, typer.Option("--no-ledger", help="Do not read or record the ledger.")
    ] = False,
    voucher: VoucherFile = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Run the batch on the funds' inboxes: receive, validate, compute, write payment files.

    A missing or rejected file is listed and the other funds go on. Outputs go to
    <data-dir>/runs/<run-id>/ (validation/, compute/, payments/). Payment files are
    signed but not sent: sending comes after finance's approval. The run's
    triggerer is the user the --voucher names; without one, the OS account, and
    such a run cannot be approved (no user the auth manager knows triggered it).
    """
    from payments.pipeline import run_batch
    from payments.run_spec import RunOptions

    settings = load_settings(data_dir)
    loaded = load_scheme(scheme)
    with refusals():
        secret, signer = beneficiary_secret(settings), payment_signer(settings)
        triggered_by = vouched(voucher, settings, finance=False).name if voucher else os_account()
    selected = load_registry().select(codes(funds))
    with progress("receiving and validating", len(selected), enabled=not as_json) as bar:
        result = run_batch(
            settings.data_dir,
            loaded,
            secret=secret,
            signer=signer,
            ledger_url=None if no_ledger else settings.ledger_url,
            triggered_by=triggered_by,
            funds=codes(funds),
            options=RunOptions(
                run_date=date.fromisoformat(run_date) if run_date else None,
                max_transactions=max_transactions,
                bank_profile=profile(bank_profile),
                workers=workers,
            ),
            on_fund=lambda _f, _r: bar.advance(bar.task_ids[0]),
        )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    stdout.print(f"Run {result.run_id}")
    validation_tables(result.validation)
    if result.compute:
        preview_tables(result.compute.preview)
    if result.payments:
        payment_tables(result.payments)
    stdout.print(f"Outputs: {result.out_dir}")
