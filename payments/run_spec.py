"""What a run is made of, besides its inputs: its options, where it is recorded,
what validation hands the national step, what it read of the ledger, its result.

Frozen where they are parameters (recorded with the run, replayed as they
were); the pipeline (:mod:`payments.pipeline`) takes and returns them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from payments.entitlement.folder import ComputeResult
from payments.schemes import Scheme
from payments.sepa.batch import (
    DEFAULT_MAX_TRANSACTIONS,
    BatchResult,
)
from payments.sepa.profiles import BankProfile
from payments.validation.outputs import FolderValidation


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


@dataclass(frozen=True)
class RunOptions:
    """How a run is made, beyond its inputs: recorded with it, replayed as they were.

    ``run_date`` (for the recent-bank-change hold) defaults to the scheme's
    payment date, and is never later than it; ``created_at`` (the payment
    files' creation time) to 08:00 the day before it. ``bank_profile`` writes
    every fund's files for that profile instead of each fund's own. A
    ``dry_run`` records nothing and writes no payment file. ``workers``:
    processes validating, threads building facts.
    """

    created_at: datetime | None = None
    run_date: date | None = None
    max_transactions: int = DEFAULT_MAX_TRANSACTIONS
    bank_profile: BankProfile | None = None
    dry_run: bool = False
    workers: int = 1

    def creation_time(self, scheme: Scheme) -> datetime:
        return self.created_at or default_creation_time(scheme)

    def payment_run_date(self, scheme: Scheme) -> date:
        """The date recent bank changes are counted back from: never after the scheme's
        payment date. A later date would make every recent change look old and lift
        the main fraud hold; an earlier one holds more, never less."""
        return (
            min(self.run_date, scheme.spec.payment_date)
            if self.run_date
            else (scheme.spec.payment_date)
        )

    def recorded(self, scheme: Scheme) -> dict[str, Any]:
        """The options as the run record keeps them (for a replay)."""
        return {
            "created_at": self.creation_time(scheme).isoformat(),
            "run_date": self.payment_run_date(scheme).isoformat(),
            "max_transactions": self.max_transactions,
            "bank_profile": self.bank_profile.name if self.bank_profile else None,
        }


@dataclass(frozen=True)
class Recording:
    """Where a run is recorded (no ``ledger_url``: nowhere), by whom, when, and the
    request's parameters (the DAG's form; the CLI records the funds)."""

    ledger_url: str | None = None
    triggered_by: str | None = None
    started_at: datetime | None = None
    parameters: Mapping[str, Any] | None = None
    #: The beneficiary-key secret's fingerprint, recorded with the run
    #: (:func:`payments.entitlement.keys.fingerprint`).
    key_fingerprint: str | None = None


@dataclass
class Gathered:
    """Every fund validated under ``staging/validation``, ready for the national step.

    ``inputs_root``: where the validated files were read (the storage root for
    the CLI, the run's ``received/`` copy for the DAG), archived with the run.
    ``facts``: funds' facts built while validation ran (``FactsAhead``).
    """

    staging: Path
    validation: FolderValidation
    inputs_root: Path
    facts: dict[str, pl.DataFrame] | None = None


@dataclass(frozen=True)
class LedgerRead:
    """The ledger state a run read, as its run record archived it (for a replay)."""

    prior: pa.Table | None
    released: list[str]
    claimed_elsewhere: list[str]
    attempts: dict[str, int] = field(default_factory=dict)


def default_creation_time(scheme: Scheme) -> datetime:
    """08:00 on the day before the payment date: a parameter, never the clock."""
    return datetime.combine(scheme.spec.payment_date - timedelta(days=1), time(8, 0))


#: A run on the scheme's own dates and each fund's bank profile, one worker.
DEFAULTS = RunOptions()
#: A run the ledger does not hear of (a dry run on the command line, a replay).
UNRECORDED = Recording()
