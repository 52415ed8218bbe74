"""The command-line batch (``payments run``): receive, validate, compute.

The imperative shell that later stages plug into (payment files, ledger). It
keeps going when one fund's file is missing or rejected, and writes under
``runs/<run_id>/``. The run id is derived from the scheme and the hashes of the
files received, so the same inputs give the same run id.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
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
from payments.schemes import Scheme
from payments.sepa.batch import (
    DEFAULT_MAX_TRANSACTIONS,
    PAYMENT_COLUMNS,
    BatchResult,
    write_batch,
)
from payments.sepa.profiles import BankProfile
from payments.sepa.signing import Signer
from payments.validation.folder import FolderValidation, FundReport, validate_folder
from payments.validation.schema import Window

log = logging.getLogger(__name__)
#: File under runs/ naming the latest run (for scripts: make demo approves and sends it).
LATEST = "LATEST"


@dataclass
class RunResult:
    run_id: str
    scheme_id: str
    out_dir: Path
    validation: FolderValidation
    compute: ComputeResult | None = None
    payments: BatchResult | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            **self.validation.to_dict(),
            "preview": self.compute.preview if self.compute else None,
            "payments": self.payments.manifest["totals"] if self.payments else None,
            "out_dir": str(self.out_dir),
        }


def derive_run_id(scheme_id: str, receipts: list[Receipt], scheme_text: str = "") -> str:
    """Same scheme (id and text) and same received bytes: same id (no clock, no randomness)."""
    h = hashlib.sha256(scheme_id.encode())
    h.update(hashlib.sha256(scheme_text.encode()).digest())
    for r in sorted(receipts, key=lambda r: r.fund_code):
        h.update(f"\n{r.fund_code}:{r.status}:{r.sha256 or '-'}".encode())
    return f"{scheme_id}-{h.hexdigest()[:12]}"


def run_batch(
    root: Path,
    scheme: Scheme,
    *,
    secret: bytes,
    signer: Signer | None = None,
    created_at: datetime | None = None,
    max_transactions: int = DEFAULT_MAX_TRANSACTIONS,
    run_date: date | None = None,
    ledger_url: str | None = None,
    started_at: datetime | None = None,
    triggered_by: str | None = None,
    window: Window | None = None,
    funds: list[str] | None = None,
    workers: int = 1,
    on_fund: Callable[[Fund, FundReport], None] | None = None,
    bank_profile: BankProfile | None = None,
) -> RunResult:
    """Receive, validate and compute every selected fund's file under the storage root.

    ``window`` defaults to the scheme's reference months and age date;
    ``run_date`` (for the recent-bank-change hold) to the scheme's payment date;
    ``created_at`` (the payment files' creation time) to 08:00 the day before the
    payment date. With a ``signer``, signed payment files and their manifest are
    written too (``payments/``); nothing is sent anywhere.

    With a ``ledger_url``, households already claimed for this scheme (or a
    scheme it is not cumulable with) are ``already_paid``/``not_cumulable``, and
    the run, its input files and its decisions are recorded; payment files then
    hold only the households the ledger accepted for this run.

    ``bank_profile`` writes every fund's files for that bank profile instead
    of each fund's own (the registry's).
    """
    window = window or Window.of(scheme)
    # The run id depends on every fund's hash: work in a staging folder, then
    # rename it to the id.
    staging = root / "runs" / f".staging-{scheme.id}"
    shutil.rmtree(staging, ignore_errors=True)
    # With worker processes validating, this process is idle: it builds each
    # fund's facts as soon as the fund is validated (the same facts, sooner).
    with FactsAhead(staging / "validation", scheme, secret, threads=workers) as ahead:
        validation = validate_folder(
            root,
            staging / "validation",
            scheme.id,
            window,
            funds=funds,
            workers=workers,
            on_fund=on_fund,
            on_done=ahead.validated if workers > 1 else None,
        )
        facts = ahead.take()
    return conclude_run(
        root,
        staging,
        scheme,
        validation,
        secret=secret,
        signer=signer,
        created_at=created_at,
        max_transactions=max_transactions,
        run_date=run_date,
        ledger_url=ledger_url,
        started_at=started_at,
        triggered_by=triggered_by,
        workers=workers,
        facts=facts,
        bank_profile=bank_profile,
    )


def conclude_run(
    root: Path,
    staging: Path,
    scheme: Scheme,
    validation: FolderValidation,
    *,
    secret: bytes,
    signer: Signer | None = None,
    created_at: datetime | None = None,
    max_transactions: int = DEFAULT_MAX_TRANSACTIONS,
    run_date: date | None = None,
    ledger_url: str | None = None,
    started_at: datetime | None = None,
    triggered_by: str | None = None,
    workers: int = 1,
    parameters: dict[str, Any] | None = None,
    dry_run: bool = False,
    inputs_root: Path | None = None,
    replay: LedgerRead | None = None,
    facts: dict[str, pl.DataFrame] | None = None,
    bank_profile: BankProfile | None = None,
) -> RunResult:
    """The national part of a run, once every fund is validated under ``staging/validation``.

    Derives the run id, reads the ledger (prior payments, released holds),
    computes, records and writes the payment files, then renames ``staging`` to
    ``runs/<run_id>`` (``runs/dry-<run_id>`` for a dry run, which records
    nothing and writes no payment file). The CLI's ``run_batch`` and the DAG's
    national task both end here, so they produce the same bytes.

    ``inputs_root`` is where the validated files were read (the storage root
    for the CLI, the run's ``received/`` copy for the DAG): they are archived
    with the run record (``run.json``). ``replay`` gives the ledger state an
    archived run read, instead of reading the ledger (``payments replay``).
    ``facts``: funds' facts built while validation ran (``FactsAhead``).
    """
    runs = root / "runs"
    run_id = derive_run_id(scheme.id, validation.receipts, scheme.text)
    computed = batch = None
    engine = None
    prior = None
    released: list[str] = []
    claimed_elsewhere: list[str] = []
    reissued: dict[str, int] = {}
    if replay is not None:
        prior, released = replay.prior, replay.released
    elif ledger_url:
        upgrade(ledger_url)
        engine = engine_for(ledger_url)
        with Session(engine) as session:
            check_key_fingerprint(
                session, [scheme.id, *scheme.spec.not_cumulable_with], fingerprint(secret)
            )
            prior = prior_payments(
                session, [scheme.id, *scheme.spec.not_cumulable_with], exclude_run=run_id
            )
            released = released_keys(session, scheme.id)
    if any(f.accepted for f in validation.funds):
        computed = compute_folder(
            staging / "validation",
            staging / "compute",
            scheme,
            secret=secret,
            run_date=run_date or scheme.spec.payment_date,
            workers=workers,
            prior=prior,
            released=released,
            facts=facts,
        )
        decisions = (
            computed.frame
            if computed.frame is not None
            else pl.read_parquet(staging / "compute" / "decisions.parquet")
        ).select(FORWARD)
        computed.release()  # the full decisions are in decisions.parquet
        if replay is not None:
            decisions = with_attempts(
                _demote(decisions, set(replay.claimed_elsewhere)), dict(replay.attempts)
            )
        write: Callable[[pl.DataFrame], BatchResult] | None = None
        if signer is not None and not dry_run:
            write = partial(
                write_batch,
                scheme=scheme,
                run_id=run_id,
                created_at=created_at or default_creation_time(scheme),
                signer=signer,
                out_dir=staging / "payments",
                max_transactions=max_transactions,
                profile=bank_profile,
            )
        if replay is None and engine is not None and not dry_run:
            decisions, claimed_elsewhere, reissued, batch = _record(
                engine,
                run_id,
                scheme,
                validation,
                decisions,
                at=started_at or utc_now(),
                triggered_by=triggered_by,
                parameters=parameters,
                write=write,
                key_fingerprint=fingerprint(secret),
            )
        elif write is not None:
            batch = write(decisions)
    if not dry_run:
        write_run_record(
            root,
            staging,
            run_id=run_id,
            scheme_id=scheme.id,
            scheme_text=scheme.text,
            inputs_root=inputs_root or root,
            receipts=validation.receipts,
            parameters={
                **(parameters or {}),
                "funds": [f.fund_code for f in validation.funds],
                "created_at": (created_at or default_creation_time(scheme)).isoformat(),
                "run_date": (run_date or scheme.spec.payment_date).isoformat(),
                "max_transactions": max_transactions,
                "bank_profile": bank_profile.name if bank_profile else None,
            },
            prior=prior,
            released=released,
            claimed_elsewhere=claimed_elsewhere,
            attempts=reissued if replay is None else dict(replay.attempts),
        )
    out_dir = runs / (f"dry-{run_id}" if dry_run else run_id)
    shutil.rmtree(out_dir, ignore_errors=True)  # same id: same inputs, same outputs
    os.replace(staging, out_dir)
    if not dry_run:
        (runs / LATEST).write_text(run_id + "\n")
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
    return RunResult(
        run_id=run_id,
        scheme_id=scheme.id,
        out_dir=out_dir,
        validation=validation,
        compute=computed,
        payments=batch,
    )


@dataclass(frozen=True)
class LedgerRead:
    """The ledger state a run read, as its run record archived it (for a replay)."""

    prior: pa.Table | None
    released: list[str]
    claimed_elsewhere: list[str]
    attempts: dict[str, int] = field(default_factory=dict)


def _demote(decisions: pl.DataFrame, keys: set[str]) -> pl.DataFrame:
    """Payable households whose key another run claimed first become ``already_paid``."""
    if not keys:
        return decisions
    hit = (pl.col("status") == "payable") & pl.col("claimant_key").is_in(
        pl.Series(sorted(keys), dtype=pl.String).implode()
    )
    return decisions.with_columns(
        pl.when(hit).then(pl.lit("already_paid")).otherwise(pl.col("status")).alias("status")
    )


def _record(
    engine: Engine,
    run_id: str,
    scheme: Scheme,
    validation: FolderValidation,
    decisions: pl.DataFrame,
    *,
    at: datetime,
    triggered_by: str | None = None,
    parameters: dict[str, Any] | None = None,
    write: Callable[[pl.DataFrame], BatchResult] | None = None,
    key_fingerprint: str | None = None,
) -> tuple[pa.Table, list[str], dict[str, int], BatchResult | None]:
    """Record the run in the ledger; return the decisions with only this run's payments payable.

    "This run's payments" whatever became of them since (approved, sent…): a
    rerun of a run reproduces its files, it does not find them already paid.
    Also returns what the run record keeps for a replay (the payable keys
    another run claimed first, the attempts of this run's re-issues) and the
    batch ``write`` made. The files are written inside the transaction, after
    the ledger decided who this run pays and before the payments are
    inserted, so that each payment goes in already placed in its file (see
    :class:`payments.ledger.decisions.Pending`).
    """
    with Session(engine) as session, session.begin():
        record_run(
            session,
            run_id=run_id,
            scheme=scheme,
            parameters=parameters or {"funds": [f.fund_code for f in validation.funds]},
            code_version=__version__,
            at=at,
            triggered_by=triggered_by,
            key_fingerprint=key_fingerprint,
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
    return final, pending.elsewhere, pending.attempts, batch


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


def default_creation_time(scheme: Scheme) -> datetime:
    """08:00 on the day before the payment date: a parameter, never the clock."""
    return datetime.combine(scheme.spec.payment_date - timedelta(days=1), time(8, 0))
