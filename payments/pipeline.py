"""The command-line batch (``payments run``): receipt and validation of every fund's file.

The imperative shell that later stages plug into (entitlement, payment files,
ledger). It keeps going when one fund's file is missing or rejected, and writes
everything under ``runs/<run_id>/``. The run id is derived from the scheme and
the hashes of the files received, so the same inputs give the same run id.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from payments.intake import Receipt
from payments.registry import Fund
from payments.validation.folder import FolderValidation, FundReport, validate_folder
from payments.validation.schema import Window

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    run_id: str
    scheme_id: str
    out_dir: Path
    validation: FolderValidation

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, **self.validation.to_dict(), "out_dir": str(self.out_dir)}


def derive_run_id(scheme_id: str, receipts: list[Receipt]) -> str:
    """Same scheme and same received bytes: same id (no clock, no randomness)."""
    h = hashlib.sha256(scheme_id.encode())
    for r in sorted(receipts, key=lambda r: r.fund_code):
        h.update(f"\n{r.fund_code}:{r.status}:{r.sha256 or '-'}".encode())
    return f"{scheme_id}-{h.hexdigest()[:12]}"


def run_batch(
    root: Path,
    scheme_id: str,
    window: Window,
    *,
    funds: list[str] | None = None,
    workers: int = 1,
    on_fund: Callable[[Fund, FundReport], None] | None = None,
) -> RunResult:
    """Receive and validate every selected fund's file under the storage root."""
    runs = root / "runs"
    # The run id depends on every fund's hash: work in a staging folder, then
    # rename it to the id.
    staging = runs / f".staging-{scheme_id}"
    shutil.rmtree(staging, ignore_errors=True)
    validation = validate_folder(
        root, staging / "validation", scheme_id, window, funds=funds, on_fund=on_fund
    )
    run_id = derive_run_id(scheme_id, validation.receipts)
    out_dir = runs / run_id
    shutil.rmtree(out_dir, ignore_errors=True)  # same id: same inputs, same outputs
    os.replace(staging, out_dir)
    validation.out_dir = out_dir / "validation"
    totals = validation.totals()
    log.info(
        "run %s: %s rows read, %s accepted, %s quarantined",
        run_id,
        totals["rows_read"],
        totals["accepted"],
        totals["quarantined"],
    )
    return RunResult(run_id=run_id, scheme_id=scheme_id, out_dir=out_dir, validation=validation)
