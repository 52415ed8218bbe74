"""A run, end to end: receive and validate every fund, then the national step.

``run_batch`` (``payments run``) validates the funds in worker processes and
hands them to ``conclude_run``, which the DAG's ``conclude`` task and
``payments replay`` call too: derive the run id, read the ledger (prior
payments, released holds), compute, record the decisions and write the signed
payment files in one transaction, archive the inputs and the run record, and
publish ``runs/<run_id>/``. It keeps going when one fund's file is missing or
rejected. The run id is derived from the scheme and the hashes of the files
received, so the same inputs give the same run id; nothing is sent (sending
comes after finance's approval, :mod:`payments.send`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from payments import __version__
from payments.archive import write_run_record
from payments.clock import utc_now
from payments.entitlement.folder import ComputeResult, FactsAhead, compute_folder
from payments.entitlement.keys import fingerprint
from payments.intake import Receipt
from payments.ledger.claims import prior_payments, released_keys
from payments.ledger.decisions import RECORDED_COLUMNS, insert_pending, prepare_decisions
from payments.ledger.files import placement, record_payment_files
from payments.ledger.migrate import engine_for, upgrade
from payments.ledger.runs import check_key_fingerprint, record_input_files, record_run
from payments.registry import Fund
from payments.run_spec import (
    DEFAULTS,
    UNRECORDED,
    Gathered,
    LedgerRead,
    Recording,
    RunOptions,
    RunResult,
)
from payments.schemes import Scheme
from payments.sepa.batch import (
    PAYMENT_COLUMNS,
    BatchResult,
    FileLayout,
    write_batch,
)
from payments.sepa.signing import Signer
from payments.statuses import Decision
from payments.validation.folder import validate_folder
from payments.validation.outputs import FolderValidation, FundReport
from payments.validation.schema import Window

log = logging.getLogger(__name__)
#: File under runs/ naming the latest run (for scripts: make demo approves and sends it).
LATEST = "LATEST"


def derive_run_id(
    scheme_id: str,
    receipts: list[Receipt],
    scheme_text: str = "",
    *,
    released: Sequence[str] = (),
    bank_profile: str | None = None,
) -> str:
    """Same scheme (id and text), same received bytes, same released holds read from the
    ledger and same bank profile: same id (no clock, no randomness).

    Everything that changes a run's outputs changes its id, so that a concluded
    run's signed files are never rewritten: a hold released after a run
    concluded is paid by a new run (the same inputs then give another id),
    which finance approves. Neither part counts when absent, so a run without
    them keeps the id it always had.
    """
    h = hashlib.sha256(scheme_id.encode())
    h.update(hashlib.sha256(scheme_text.encode()).digest())
    for r in sorted(receipts, key=lambda r: r.fund_code):
        h.update(f"\n{r.fund_code}:{r.status}:{r.sha256 or '-'}".encode())
    if released:
        h.update(("\nreleased:" + ",".join(sorted(released))).encode())
    if bank_profile:
        h.update(f"\nbank_profile:{bank_profile}".encode())
    return f"{scheme_id}-{h.hexdigest()[:12]}"


def run_batch(
    root: Path,
    scheme: Scheme,
    *,
    secret: bytes,
    signer: Signer | None = None,
    ledger_url: str | None = None,
    triggered_by: str | None = None,
    funds: list[str] | None = None,
    options: RunOptions = DEFAULTS,
    on_fund: Callable[[Fund, FundReport], None] | None = None,
) -> RunResult:
    """Receive, validate and compute every selected fund's file under the storage root.

    With a ``signer``, signed payment files and their manifest are written too
    (``payments/``); nothing is sent anywhere. With a ``ledger_url``, households
    already claimed for this scheme (or a scheme it is not cumulable with) are
    ``already_paid``/``not_cumulable``, and the run, its input files and its
    decisions are recorded; payment files then hold only the households the
    ledger accepted for this run.
    """
    # The run id depends on every fund's hash: work in a staging folder, then
    # rename it to the id.
    staging = root / "runs" / f".staging-{scheme.id}"
    shutil.rmtree(staging, ignore_errors=True)
    workers = options.workers
    # With worker processes validating, this process is idle: it builds each
    # fund's facts as soon as the fund is validated (the same facts, sooner).
    with FactsAhead(staging / "validation", scheme, secret, threads=workers) as ahead:
        validation = validate_folder(
            root,
            staging / "validation",
            scheme.id,
            Window.of(scheme),
            funds=funds,
            workers=workers,
            on_fund=on_fund,
            on_done=ahead.validated if workers > 1 else None,
        )
        gathered = Gathered(staging, validation, root, ahead.take())
    recording = Recording(ledger_url, triggered_by)
    return conclude_run(
        root, scheme, gathered, secret=secret, signer=signer, recording=recording, options=options
    )


def conclude_run(
    root: Path,
    scheme: Scheme,
    gathered: Gathered,
    *,
    secret: bytes,
    signer: Signer | None = None,
    recording: Recording = UNRECORDED,
    options: RunOptions = DEFAULTS,
    replay: LedgerRead | None = None,
) -> RunResult:
    """The national part of a run, once every fund is validated.

    Derives the run id, reads the ledger (prior payments, released holds),
    computes, records and writes the payment files, then renames the staging
    folder to ``runs/<run_id>`` (``runs/dry-<run_id>`` for a dry run). The
    CLI's ``run_batch``, the DAG's ``conclude`` task and ``payments replay``
    all end here, so they produce the same bytes. ``replay`` gives the ledger
    state an archived run read, instead of reading the ledger.
    """
    validation = gathered.validation
    profile = options.bank_profile.name if options.bank_profile else None

    def identify(released: Sequence[str]) -> str:
        return derive_run_id(
            scheme.id, validation.receipts, scheme.text, released=released, bank_profile=profile
        )

    engine = None
    if replay is None and recording.ledger_url:
        engine, read, run_id = _read_ledger(recording.ledger_url, scheme, identify, secret)
        recording = replace(recording, key_fingerprint=fingerprint(secret))
    else:
        read = replay or LedgerRead(None, [], [])
        run_id = identify(read.released)
    computed = batch = None
    claimed_elsewhere: list[str] = []
    attempts = dict(read.attempts)
    if any(f.accepted for f in validation.funds):
        computed, decisions = _compute(gathered, scheme, secret, options, read)
        if replay is not None:
            decisions = with_attempts(_demote(decisions, set(replay.claimed_elsewhere)), attempts)
        write = None
        if signer is not None and not options.dry_run:
            write = _writer(scheme, run_id, signer, gathered.staging / "payments", options)
        if engine is not None and not options.dry_run:
            hold_date = options.payment_run_date(scheme)
            recorded = _record(
                engine, run_id, scheme, validation, decisions, recording, write, hold_date
            )
            claimed_elsewhere, attempts, batch = recorded
        elif write is not None:
            batch = write(decisions)
    if not options.dry_run:
        seen = LedgerRead(read.prior, read.released, claimed_elsewhere, attempts)
        _archive(root, gathered, scheme, run_id, recording.parameters, options, seen)
    return _publish(root, gathered, scheme, run_id, options.dry_run, computed, batch)


def _read_ledger(
    ledger_url: str, scheme: Scheme, identify: Callable[[Sequence[str]], str], secret: bytes
) -> tuple[Engine, LedgerRead, str]:
    """The ledger, at the current schema, what this run reads of it (the released holds,
    then the keys already paid under this scheme or one not cumulable with it, but for
    this run's own), and the run's id, which the released holds are part of. Refuses a
    secret other than the one the scheme's runs were keyed with."""
    upgrade(ledger_url)
    engine = engine_for(ledger_url)
    schemes = [scheme.id, *scheme.spec.not_cumulable_with]
    with Session(engine) as session:
        check_key_fingerprint(session, schemes, fingerprint(secret))
        released = released_keys(session, scheme.id)
        run_id = identify(released)
        prior = prior_payments(session, schemes, exclude_run=run_id)
    return engine, LedgerRead(prior, released, []), run_id


def _compute(
    gathered: Gathered, scheme: Scheme, secret: bytes, options: RunOptions, read: LedgerRead
) -> tuple[ComputeResult, pl.DataFrame]:
    """Decisions for every accepted household; returns them with only :data:`FORWARD`."""
    staging = gathered.staging
    computed = compute_folder(
        staging / "validation",
        staging / "compute",
        scheme,
        secret=secret,
        run_date=options.payment_run_date(scheme),
        workers=options.workers,
        prior=read.prior,
        released=read.released,
        facts=gathered.facts,
    )
    decisions = (
        computed.frame
        if computed.frame is not None
        else pl.read_parquet(staging / "compute" / "decisions.parquet")
    ).select(FORWARD)
    computed.release()  # the full decisions are in decisions.parquet
    return computed, decisions


def _writer(
    scheme: Scheme, run_id: str, signer: Signer, out_dir: Path, options: RunOptions
) -> Callable[[pl.DataFrame], BatchResult]:
    """How this run's payment files are written, once the ledger says who is paid."""
    return partial(
        write_batch,
        scheme=scheme,
        run_id=run_id,
        created_at=options.creation_time(scheme),
        signer=signer,
        out_dir=out_dir,
        layout=FileLayout(options.max_transactions, options.bank_profile),
    )


def _archive(
    root: Path,
    gathered: Gathered,
    scheme: Scheme,
    run_id: str,
    parameters: Mapping[str, Any] | None,
    options: RunOptions,
    seen: LedgerRead,
) -> None:
    """The run record (``run.json``) and the archived inputs a replay starts from:
    ``seen`` is what the run read of the ledger and what the ledger decided."""
    write_run_record(
        root,
        gathered.staging,
        run_id=run_id,
        scheme=scheme,
        inputs_root=gathered.inputs_root,
        receipts=gathered.validation.receipts,
        parameters={
            **(parameters or {}),
            "funds": [f.fund_code for f in gathered.validation.funds],
            **options.recorded(scheme),
        },
        seen=seen,
    )


def _publish(
    root: Path,
    gathered: Gathered,
    scheme: Scheme,
    run_id: str,
    dry_run: bool,
    computed: ComputeResult | None,
    batch: BatchResult | None,
) -> RunResult:
    """The staging folder renamed to the run's (same id: same inputs, same outputs)."""
    runs = root / "runs"
    out_dir = runs / (f"dry-{run_id}" if dry_run else run_id)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(gathered.staging, out_dir)
    if not dry_run:
        (runs / LATEST).write_text(run_id + "\n")
    validation = gathered.validation
    validation.out_dir = out_dir / "validation"
    if computed:
        computed.out_dir = out_dir / "compute"
    if batch:
        batch.out_dir = out_dir / "payments"
    totals = validation.totals()
    log.info(
        "run %s: %s rows read, %s accepted, %s quarantined",
        run_id,
        totals["rows_read"],
        totals["accepted"],
        totals["quarantined"],
    )
    return RunResult(run_id, scheme.id, out_dir, validation, computed, batch)


def _demote(decisions: pl.DataFrame, keys: set[str]) -> pl.DataFrame:
    """Payable households whose key another run claimed first become ``already_paid``."""
    if not keys:
        return decisions
    hit = (pl.col("status") == Decision.PAYABLE) & pl.col("claimant_key").is_in(
        pl.Series(sorted(keys), dtype=pl.String).implode()
    )
    return decisions.with_columns(
        pl.when(hit).then(pl.lit(Decision.ALREADY_PAID)).otherwise(pl.col("status")).alias("status")
    )


def _record(
    engine: Engine,
    run_id: str,
    scheme: Scheme,
    validation: FolderValidation,
    decisions: pl.DataFrame,
    recording: Recording,
    write: Callable[[pl.DataFrame], BatchResult] | None,
    hold_date: date,
) -> tuple[list[str], dict[str, int], BatchResult | None]:
    """Record the run in the ledger, and write its files with only this run's payments payable.

    "This run's payments" whatever became of them since (approved, sent…): a
    rerun of a run reproduces its files, it does not find them already paid.
    Returns what the run record keeps for a replay (the payable keys another
    run claimed first, the attempts of this run's re-issues) and the batch
    ``write`` made. The files are written inside the transaction, after the
    ledger decided who this run pays and before the payments are inserted, so
    that each payment goes in already placed in its file (see
    :class:`payments.ledger.decisions.Pending`).
    """
    at = recording.started_at or utc_now()
    parameters = dict(recording.parameters or {"funds": [f.fund_code for f in validation.funds]})
    # What finance is shown: the date recent bank changes were counted back from.
    parameters["hold_date"] = hold_date.isoformat()
    with Session(engine) as session, session.begin():
        record_run(
            session,
            run_id=run_id,
            scheme=scheme,
            parameters=dict(parameters),
            code_version=__version__,
            at=at,
            triggered_by=recording.triggered_by,
            key_fingerprint=recording.key_fingerprint,
        )
        record_input_files(session, run_id, validation.funds, at)
        pending = prepare_decisions(
            session, run_id=run_id, scheme=scheme, decisions=decisions, at=at
        )
        final = with_attempts(_demote(decisions, set(pending.elsewhere)), pending.attempts)
        batch = write(final) if write is not None else None
        placed = None
        if batch is not None:
            ids = record_payment_files(session, run_id, batch.manifest, at)
            placed = placement(batch.transactions, ids)
        insert_pending(session, pending, placement=placed, at=at)
    return pending.elsewhere, pending.attempts, batch


def with_attempts(decisions: pl.DataFrame, attempts: dict[str, int]) -> pl.DataFrame:
    """Decisions with the ``attempt`` of each household's payment (1 unless a re-issue)."""
    return decisions.with_columns(
        pl.col("claimant_key")
        .replace_strict(attempts, default=1, return_dtype=pl.Int64)
        .alias("attempt")
    )


#: The decisions' columns the national step uses once amounts are decided:
#: recording them and writing the payment files (demotions and re-issues
#: read the status and the claimant key). The rest (each household's facts,
#: most of the table) stays in ``decisions.parquet`` and is let go before
#: the ledger and the files.
FORWARD = tuple(dict.fromkeys((*RECORDED_COLUMNS, *PAYMENT_COLUMNS)))
