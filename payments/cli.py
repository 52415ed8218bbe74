"""The ``payments`` command.

Every subcommand is a thin shell over a package function, prints a short
summary table at the end, and offers ``--json`` for scripts.
"""

from __future__ import annotations

import getpass
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from payments import __version__
from payments.benchmarks import targets as bench_targets
from payments.clock import utc_now
from payments.config import PRIVATE_UMASK, load_settings
from payments.console import progress, stderr, stdout
from payments.contract import load_contract
from payments.credentials import beneficiary_secret, payment_signer
from payments.errors import PaymentsError
from payments.logs import setup_logging
from payments.money import euros
from payments.registry import load_registry
from payments.schemes import load_scheme, scheme_ids
from payments.sepa.batch import BatchResult
from payments.sepa.profiles import BankProfile, UnknownProfile, load_profile
from payments.sepa.signing import (
    generate_demo_pair,
    load_certificate,
    signer_paths,
)
from payments.validation.folder import FolderValidation, validate_folder
from payments.validation.schema import Window

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
CPUS = os.cpu_count() or 1
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
    os.umask(PRIVATE_UMASK)  # what the commands write holds personal data: 0600, 0700
    setup_logging("DEBUG" if verbose else "WARNING")


@app.command()
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


def _window(scheme_id: str, months: str | None, reference_date: str | None) -> Window:
    """The validation window: from the scheme file, unless given on the command line."""
    if months is None:
        spec = load_scheme(scheme_id).spec
        month_list = tuple(spec.reference_months)
        ref = date.fromisoformat(reference_date) if reference_date else spec.age_date
        return Window(months=month_list, reference_date=ref)
    month_list = tuple(m.strip() for m in months.split(",") if m.strip())
    if reference_date:
        ref = date.fromisoformat(reference_date)
    else:
        year, month = (int(x) for x in max(month_list).split("-"))
        ref = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return Window(months=month_list, reference_date=ref)


def _validation_tables(result: FolderValidation) -> None:
    totals = result.totals()
    table = Table(title=f"Validation {result.scheme_id}")
    table.add_column("what")
    table.add_column("count", justify="right")
    funds = totals["funds"]
    for status in ("received", "missing", "rejected"):
        table.add_row(f"funds {status}", f"{funds[status]:,}")
    table.add_row("rows read", f"{totals['rows_read']:,}")
    table.add_row("  accepted", f"{totals['accepted']:,}")
    table.add_row("  quarantined", f"{totals['quarantined']:,}")
    tied = totals["rows_read"] == totals["accepted"] + totals["quarantined"]
    table.add_row("tie-out (read = accepted + quarantined)", "ok" if tied else "MISMATCH")
    stdout.print(table)
    if totals["rules"]:
        rules = Table(title="Quarantine reasons (rows per rule)")
        rules.add_column("rule")
        rules.add_column("rows", justify="right")
        for code, count in totals["rules"].items():
            rules.add_row(code, f"{count:,}")
        stdout.print(rules)
    problems = [f for f in result.funds if f.status != "received"]
    if problems:
        issues = Table(title="Funds to follow up (complementary run)")
        issues.add_column("fund")
        issues.add_column("reason")
        issues.add_column("detail", overflow="fold")
        for f in problems[:MAX_LISTED]:
            issues.add_row(f.fund_code, str(f.file_error), f.message or "")
        if len(problems) > MAX_LISTED:
            issues.add_row("…", f"{len(problems) - MAX_LISTED} more", "see validation.json")
        stdout.print(issues)


@app.command()
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
    selected = load_registry().select(_codes(funds))
    with progress("validating", len(selected), enabled=not as_json) as bar:
        result = validate_folder(
            input_dir.resolve(),
            out.resolve(),
            scheme,
            window,
            funds=_codes(funds),
            workers=workers,
            on_fund=lambda _f, _r: bar.advance(bar.task_ids[0]),
        )
    if as_json:
        typer.echo(json.dumps({**result.to_dict(), "out_dir": str(result.out_dir)}, indent=2))
        return
    _validation_tables(result)
    stdout.print(f"Outputs: {result.out_dir}")


RunDate = Annotated[
    str | None,
    typer.Option(
        "--run-date",
        help="Date of the run (recent bank changes are held). Default: the scheme's payment date.",
    ),
]


@app.command()
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
    with _refusals():
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
    _preview_tables(result.preview)
    stdout.print(f"Outputs: {result.out_dir}")


def _preview_tables(preview: dict[str, Any]) -> None:
    national = preview["national"]
    table = Table(title=f"Budget preview {preview['scheme_id']}")
    table.add_column("households")
    table.add_column("count", justify="right")
    table.add_column("children", justify="right")
    table.add_column("amount", justify="right")
    for status in ("payable", "held", "not_eligible", "paid_by_other_fund", "already_paid"):
        part = national[status]
        table.add_row(
            status,
            f"{part['households']:,}",
            f"{part['children']:,}",
            euros(part["entitled_cents"]),
        )
    table.add_row("total", f"{national['households']:,}", "", "")
    stdout.print(table)
    rules = Table(title="Payable by rule")
    for heading in ("rule", "households", "base", "children part", "total"):
        rules.add_column(heading, justify="right" if heading != "rule" else "left")
    for rule, t in preview["by_rule"].items():
        rules.add_row(
            rule,
            f"{t['households']:,}",
            euros(t["base_cents"]),
            euros(t["child_cents"]),
            euros(t["payable_cents"]),
        )
    stdout.print(rules)
    if preview["by_hold_reason"]:
        holds = Table(title="Held for review (a household may have several reasons)")
        holds.add_column("reason")
        holds.add_column("households", justify="right")
        holds.add_column("amount", justify="right")
        for reason, t in preview["by_hold_reason"].items():
            holds.add_row(reason, f"{t['households']:,}", euros(t["cents"]))
        stdout.print(holds)


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


def _profile(name: str | None) -> BankProfile | None:
    """The profile ``--bank-profile`` names (None: each fund's own); an unknown one stops."""
    if name is None:
        return None
    try:
        return load_profile(name)
    except UnknownProfile as exc:
        stdout.print(f"[red]✗[/red] {exc.args[0]}")
        raise typer.Exit(2) from None


@contextmanager
def _refusals() -> Iterator[None]:
    """The project's refusals (a missing secret, a decision not allowed) as one red line."""
    try:
        yield
    except PaymentsError as exc:
        stdout.print(f"[red]✗[/red] {exc}")
        raise typer.Exit(1) from None


def _payment_tables(batch: BatchResult) -> None:
    totals = batch.manifest["totals"]
    table = Table(title="Payment files (signed, not sent)")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("files", f"{totals['files']:,}")
    table.add_row("transactions", f"{totals['nb_of_txs']:,}")
    table.add_row("control sum", euros(totals["ctrl_sum_cents"]))
    table.add_row("excluded (name not writable)", f"{len(batch.excluded):,}")
    stdout.print(table)
    stdout.print(f"Payment files: {batch.out_dir}  (check: payments verify {batch.out_dir})")


@app.command()
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


@app.command("payment-files")
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

    from payments.pipeline import default_creation_time
    from payments.sepa.batch import write_batch

    settings = load_settings(data_dir)
    loaded = load_scheme(scheme)
    with _refusals():
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
        max_transactions=max_transactions,
        profile=_profile(bank_profile),
    )
    if as_json:
        typer.echo(json.dumps(batch.manifest, indent=2))
        return
    _payment_tables(batch)


@app.command()
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


@app.command()
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
    triggered_by: Annotated[
        str, typer.Option("--triggered-by", help="Who starts the run (cannot approve it).")
    ] = getpass.getuser(),
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Run the batch on the funds' inboxes: receive, validate, compute, write payment files.

    A missing or rejected file is listed and the other funds go on. Outputs go to
    <data-dir>/runs/<run-id>/ (validation/, compute/, payments/). Payment files are
    signed but not sent: sending comes after finance's approval.
    """
    from payments.pipeline import run_batch

    settings = load_settings(data_dir)
    loaded = load_scheme(scheme)
    with _refusals():
        secret, signer = beneficiary_secret(settings), payment_signer(settings)
    selected = load_registry().select(_codes(funds))
    with progress("receiving and validating", len(selected), enabled=not as_json) as bar:
        result = run_batch(
            settings.data_dir,
            loaded,
            secret=secret,
            signer=signer,
            max_transactions=max_transactions,
            ledger_url=None if no_ledger else settings.ledger_url,
            triggered_by=triggered_by,
            run_date=date.fromisoformat(run_date) if run_date else None,
            funds=_codes(funds),
            workers=workers,
            on_fund=lambda _f, _r: bar.advance(bar.task_ids[0]),
            bank_profile=_profile(bank_profile),
        )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    stdout.print(f"Run {result.run_id}")
    _validation_tables(result.validation)
    if result.compute:
        _preview_tables(result.compute.preview)
    if result.payments:
        _payment_tables(result.payments)
    stdout.print(f"Outputs: {result.out_dir}")


ledger_app = typer.Typer(
    help="The payment ledger (SQLite by default, PostgreSQL in production).", no_args_is_help=True
)
audit_app = typer.Typer(help="Audit checks.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")
app.add_typer(audit_app, name="audit")


storage_app = typer.Typer(help="The storage root tasks exchange data through.")
app.add_typer(storage_app, name="storage")


@storage_app.command("check")
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


@ledger_app.command("upgrade")
def ledger_upgrade(data_dir: DataDir = None) -> None:
    """Create or migrate the ledger to the current schema (Alembic)."""
    from payments.ledger.migrate import upgrade

    settings = load_settings(data_dir)
    upgrade(settings.ledger_url)
    stdout.print(f"Ledger at the current schema: {mask_url(settings.ledger_url)}")


@audit_app.command("verify")
def audit_verify(data_dir: DataDir = None) -> None:
    """Check the ledger's hash-chained event log, its rows, and every payment file.

    Reported: any edited or deleted event; payments whose states the event log
    does not account for, or whose amounts differ from the signed manifests; a
    run's decision or a file's upload state that differs from the events; a
    chain cut or rewritten below a signed head (``runs/<run>/chain-head.json``);
    any payment file whose bytes no longer have the SHA-256 the ledger recorded.
    Exit code 0 when all is intact, 1 otherwise.
    """
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from payments.archive import sha256_bytes
    from payments.ledger.events import verify_chain
    from payments.ledger.integrity import verify_ledger
    from payments.ledger.migrate import engine_for
    from payments.ledger.models import PaymentFileRow

    settings = load_settings(data_dir)
    cert_path = signer_paths(settings.data_dir)[1]
    with Session(engine_for(settings.ledger_url)) as session:
        problems = verify_chain(session)
        trusted = load_certificate(cert_path) if cert_path.exists() else None
        problems += verify_ledger(session, settings.data_dir, trusted)
        files = list(session.execute(select(PaymentFileRow)).scalars())
    for row in files:
        path = settings.data_dir / "runs" / row.run_id / "payments" / row.path
        if not path.exists():
            problems.append(f"{path}: payment file missing (the ledger has {row.msg_id})")
        elif sha256_bytes(path.read_bytes()) != row.sha256:
            problems.append(f"{path}: SHA-256 differs from the ledger's (file altered)")
    if problems:
        for problem in problems:
            stdout.print(f"[red]✗[/red] {problem}")
        raise typer.Exit(1)
    stdout.print(f"[green]✓[/green] event log intact; {len(files)} payment files match the ledger")


@audit_app.command("bundle")
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


@audit_app.command("check-bundle")
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


@app.command()
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
    with _refusals():
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


def mask_url(url: str) -> str:
    """A database URL without its password, for printing."""
    head, sep, tail = url.partition("@")
    if not sep or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, creds = head.partition("//")
    return f"{scheme}//{creds.split(':', 1)[0]}:***@{tail}"


RunId = Annotated[str, typer.Argument(help="Run id (runs/<run-id>/ under the data dir).")]
By = Annotated[str, typer.Option("--by", help="Who decides (not who triggered the run).")]


@app.command()
def approve(
    run_id: RunId,
    by: By,
    data_dir: DataDir = None,
    refuse: Annotated[bool, typer.Option("--reject", help="Reject: nothing will be sent.")] = False,
) -> None:
    """Finance's decision on a run: approve (payments filed) or --reject (payments cancelled)."""
    from payments.ledger.migrate import engine_for
    from payments.release import approve as approve_run
    from payments.release import reject

    settings = load_settings(data_dir)
    engine = engine_for(settings.ledger_url)
    now = utc_now()
    try:
        if refuse:
            if reject(engine, run_id, by=by, at=now, approvers=settings.finance_approvers):
                stdout.print(f"Run {run_id} rejected by {by}: nothing will be sent.")
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
    except PermissionError as exc:
        stdout.print(f"[red]✗[/red] {exc}")
        raise typer.Exit(1) from None
    stdout.print(f"Run {run_id} approved by {by}: {filed:,} payments filed.")


@app.command()
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
    try:
        result = send_run(
            engine,
            settings.data_dir / "runs" / run_id,
            run_id,
            LocalTransport(settings.data_dir),
            trusted=trusted,
            at=utc_now(),
            takeover=retry,
        )
    except PermissionError as exc:
        stdout.print(f"[red]✗[/red] {exc}")
        raise typer.Exit(1) from None
    outcomes: dict[str, int] = {}
    for outcome in result.files.values():
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    stdout.print(f"Files: {outcomes}; payments sent: {result.payments_sent:,}")
    stdout.print(f"Bank folder: {settings.data_dir / 'bank'}")
    from sqlalchemy.orm import Session

    from payments.ledger.integrity import write_chain_head

    with _refusals(), Session(engine) as session:
        write_chain_head(
            session, settings.data_dir / "runs" / run_id, payment_signer(settings, create=False)
        )
    if not result.all_at_the_bank:
        stdout.print(
            f"[red]✗[/red] not at the bank yet: {', '.join(result.waiting)} (another sender's "
            "upload; once it has stopped, `payments send --retry` carries it on)"
        )
        raise typer.Exit(1)


holds_app = typer.Typer(help="Held payments: the review list and releases.", no_args_is_help=True)
app.add_typer(holds_app, name="holds")


@holds_app.command("list")
def holds_list(scheme: Scheme = "aes-2020-05", data_dir: DataDir = None) -> None:
    """Payments held for review (fraud/risk reasons), with their amounts."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from payments.ledger.migrate import engine_for
    from payments.ledger.models import Hold, Payment

    settings = load_settings(data_dir)
    with Session(engine_for(settings.ledger_url)) as session:
        rows = session.execute(
            select(
                Payment.fund_code,
                Payment.household_id,
                Payment.amount_cents,
                Payment.rule_id,
                Hold.reasons,
                Hold.released_by,
            )
            .join(Hold, Hold.payment_id == Payment.id)
            .where(Payment.scheme_id == scheme)
            .order_by(Payment.fund_code, Payment.household_id)
        ).all()
    articles = load_scheme(scheme).articles()
    table = Table(title=f"Held payments, {scheme}")
    for heading in ("fund", "household", "amount", "rule (article)", "reasons", "released by"):
        table.add_column(heading)
    for fund, household, cents, rule, reasons, released in rows:
        why = f"{rule} ({articles.get(rule, '?')})"
        table.add_row(fund, household, euros(cents), why, reasons, released or "")
    stdout.print(table)


@holds_app.command("release")
def holds_release(
    fund: Annotated[str, typer.Option(help="Fund code.")],
    household: Annotated[str, typer.Option(help="Fund-local household number.")],
    by: By,
    note: Annotated[str, typer.Option(help="Why the hold is lifted (kept in the ledger).")],
    scheme: Scheme = "aes-2020-05",
    data_dir: DataDir = None,
) -> None:
    """Release a held payment after review: it is paid by the next (complementary) run."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from payments.ledger.migrate import engine_for
    from payments.ledger.models import Payment
    from payments.ledger.store import release_hold

    settings = load_settings(data_dir)
    with Session(engine_for(settings.ledger_url)) as session, session.begin():
        payment_id = session.execute(
            select(Payment.id).where(
                Payment.scheme_id == scheme,
                Payment.fund_code == fund,
                Payment.household_id == household,
            )
        ).scalar_one_or_none()
        if payment_id is None:
            stdout.print(f"[red]✗[/red] no payment for fund {fund}, household {household}")
            raise typer.Exit(1)
        try:
            release_hold(
                session,
                payment_id,
                by=by,
                note=note,
                at=utc_now(),
                approvers=settings.finance_approvers,
            )
        except PermissionError as exc:
            stdout.print(f"[red]✗[/red] {exc}")
            raise typer.Exit(1) from None
    stdout.print(f"Hold released on fund {fund} household {household} by {by}.")


@app.command()
def ingest(
    reports: Annotated[
        list[Path], typer.Argument(help="pain.002 status reports or camt.054 returns.")
    ],
    data_dir: DataDir = None,
) -> None:
    """Apply bank reports to the ledger (accepted, rejected with reason, returned).

    Every line is matched by MsgId / EndToEndId; unmatched or duplicated lines are
    listed, reports that cannot be read are quarantined (the others applied), and
    the exit code is 1. A report already applied is not applied again.
    """
    from payments.bank.inbox import ingest_reports
    from payments.ledger.migrate import engine_for

    settings = load_settings(data_dir)
    done = ingest_reports(
        engine_for(settings.ledger_url),
        ((path.name, path.read_bytes()) for path in reports),
        at=utc_now(),
    )
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


@app.command("bank-reports")
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


@app.command()
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


@app.command()
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


@app.command("schemes")
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


@app.command("bench")
def bench(
    households: Annotated[
        int, typer.Option(help="Households in the national run (101 fund files).")
    ] = bench_targets.NATIONAL,
    baseline: Annotated[
        int,
        typer.Option(help="Households of the side-by-side with the default approach (0: skip)."),
    ] = bench_targets.BASELINE_MIN,
    scaling: Annotated[
        bool, typer.Option(help="Also run 0.5 M, 1 M and 2 M households (time and memory growth).")
    ] = True,
    ledger: Annotated[bool, typer.Option(help="Time the ledger load (PostgreSQL, SQLite).")] = True,
    postgres: Annotated[
        str, typer.Option(help="Server for the ledger-load row; its database is recreated.")
    ] = "postgresql+psycopg://postgres@127.0.0.1:5432/payments_bench",
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Where to write the figures (default: bench dir).")
    ] = None,
    dag: Annotated[
        bool,
        typer.Option(
            "--dag",
            help="Instead: the national run through the DAG under the real scheduler "
            "(LocalExecutor, parallelism 2), PostgreSQL ledger, approval through the API.",
        ),
    ] = False,
) -> None:
    """National-scale figures, stage by stage, beside the default approach (never asserted).

    Samples are generated once and cached outside the repository
    ($PAYMENTS_BENCH_DIR, default ~/.cache/solidarity-payments/bench).
    """
    if dag:
        from payments.benchmarks import dag_runtime

        dag_runtime.main(households, postgres.rsplit("/", 1)[0] + "/payments_bench_dag", json_out)
        return
    from payments.benchmarks.national import SCALING, main

    main(
        households,
        baseline_households=baseline,
        scaling=SCALING if scaling else (),
        ledger=ledger,
        postgres_url=postgres,
        json_path=json_out,
    )
