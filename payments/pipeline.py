"""The command-line batch (``payments run``): today, receipt of every fund's file.

This is the imperative shell that later stages plug into (validation,
entitlement, payment files, ledger). It reads each fund's file from the storage
root, keeps going when one fund's file is missing or rejected, and writes what
it received as Parquet plus a JSON record of every receipt under
``runs/<run_id>/``. The run id is derived from the scheme and the hashes of the
files received, so the same inputs give the same run id.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from payments.contract import Contract, load_contract
from payments.intake import Receipt, receive_fund, reject_duplicate_contents
from payments.registry import Fund, Registry, load_registry

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    run_id: str
    scheme_id: str
    out_dir: Path
    receipts: list[Receipt]

    def count(self, status: str) -> int:
        return sum(1 for r in self.receipts if r.status == status)

    @property
    def rows(self) -> int:
        return sum(r.rows for r in self.receipts if r.ok)

    def to_dict(self) -> dict[str, object]:
        return {
            "run_id": self.run_id,
            "scheme_id": self.scheme_id,
            "out_dir": str(self.out_dir),
            "funds": {
                "expected": len(self.receipts),
                "received": self.count("received"),
                "missing": self.count("missing"),
                "rejected": self.count("rejected"),
            },
            "rows_received": self.rows,
            "receipts": [r.__dict__ for r in self.receipts],
        }


def derive_run_id(scheme_id: str, receipts: list[Receipt]) -> str:
    """Same scheme and same received bytes: same id (no clock, no randomness)."""
    h = hashlib.sha256(scheme_id.encode())
    for r in sorted(receipts, key=lambda r: r.fund_code):
        h.update(f"\n{r.fund_code}:{r.status}:{r.sha256 or '-'}".encode())
    return f"{scheme_id}-{h.hexdigest()[:12]}"


def run_intake(
    root: Path,
    scheme_id: str,
    *,
    funds: list[str] | None = None,
    registry: Registry | None = None,
    contract: Contract | None = None,
    on_fund: Callable[[Fund, Receipt], None] | None = None,
) -> RunResult:
    """Receive every selected fund's file; one bad fund never stops the others."""
    registry = registry or load_registry()
    contract = contract or load_contract()
    selected = registry.select(funds)
    runs = root / "runs"
    # Each fund's rows go to disk as soon as they are read (memory stays bounded
    # by the largest fund); the folder is renamed to the run id at the end,
    # since the id depends on every fund's hash.
    staging = runs / f".staging-{scheme_id}"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "received").mkdir(parents=True)
    receipts: list[Receipt] = []
    for fund in selected:
        receipt, table = receive_fund(root, fund, scheme_id, contract)
        receipts.append(receipt)
        if table is not None:
            pq.write_table(table, staging / "received" / f"{fund.code}.parquet")
        if receipt.ok:
            log.info("fund %s: received %s rows (%s bytes)", fund.code, receipt.rows, receipt.bytes)
        elif receipt.status == "missing":
            log.info("fund %s: %s", fund.code, receipt.message)
        else:
            log.warning("fund %s: %s: %s", fund.code, receipt.error, receipt.message)
        if on_fund:
            on_fund(fund, receipt)
    reject_duplicate_contents(receipts)
    for receipt in receipts:
        if not receipt.ok:
            (staging / "received" / f"{receipt.fund_code}.parquet").unlink(missing_ok=True)
    run_id = derive_run_id(scheme_id, receipts)
    out_dir = runs / run_id
    shutil.rmtree(out_dir, ignore_errors=True)  # same id: same inputs, same outputs
    os.replace(staging, out_dir)
    result = RunResult(run_id=run_id, scheme_id=scheme_id, out_dir=out_dir, receipts=receipts)
    (out_dir / "intake.json").write_text(
        json.dumps(result.to_dict(), indent=2, sort_keys=True, default=str) + "\n"
    )
    log.info(
        "run %s: %s funds received, %s missing, %s rejected, %s rows",
        run_id,
        result.count("received"),
        result.count("missing"),
        result.count("rejected"),
        result.rows,
    )
    return result
