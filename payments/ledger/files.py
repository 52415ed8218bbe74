"""The run's payment files in the ledger, and each payment placed in its file."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from payments.ledger import events
from payments.ledger.models import (
    Payment,
    PaymentFileRow,
)
from payments.ledger.staging import staged_rows


def file_payments(session: Session, run_id: str, placement: pl.DataFrame) -> int:
    """Place payments of ``run_id`` not yet in a file into theirs: ``end_to_end_id`` → file id.

    Staged and joined (never a list of bound values). Used for the few
    payments that entered the ledger before their file was written (released
    holds a run adopts), and for runs whose files were recorded only at
    approval (concluded by an earlier version).
    """
    if placement.is_empty():
        return 0
    with staged_rows(
        session,
        ["end_to_end_id", "payment_file_id"],
        placement.select("end_to_end_id", "payment_file_id").iter_rows(),
        integer=["payment_file_id"],
        key=["end_to_end_id"],
    ) as placed:
        target = (
            (Payment.run_id == run_id)
            & Payment.payment_file_id.is_(None)
            & (Payment.end_to_end_id == placed.c.end_to_end_id)
        )
        count = session.execute(
            select(func.count()).select_from(Payment).where(target)
        ).scalar_one()
        session.execute(
            update(Payment)
            .where(target)
            .values(payment_file_id=placed.c.payment_file_id)
            .execution_options(synchronize_session=False)
        )
    return int(count)


def record_payment_files(
    session: Session, run_id: str, manifest: dict[str, Any], at: datetime
) -> dict[str, int]:
    """The run's payment files as written (not yet approved, not sent): msg id → file row id.

    Idempotent: a rerun writing the same files finds their rows.
    """
    ids: dict[str, int] = {}
    added = 0
    for f in manifest["files"]:
        found = session.execute(
            select(PaymentFileRow.id).where(PaymentFileRow.msg_id == f["msg_id"])
        ).scalar()
        if found is not None:
            ids[f["msg_id"]] = int(found)
            continue
        row = PaymentFileRow(
            run_id=run_id,
            fund_code=f["fund_code"],
            msg_id=f["msg_id"],
            path=f["path"],
            sha256=f["sha256"],
            bytes=f["bytes"],
            nb_of_txs=f["nb_of_txs"],
            ctrl_sum_cents=f["ctrl_sum_cents"],
            execution_date=datetime.fromisoformat(manifest["execution_date"]).date(),
        )
        session.add(row)
        session.flush()
        ids[f["msg_id"]] = row.id
        added += 1
    if added:
        events.append(
            session,
            "payment_files",
            {
                "files": added,
                "manifest_sha256": hashlib.sha256(
                    json.dumps(manifest, sort_keys=True).encode()
                ).hexdigest(),
            },
            at=at,
            run_id=run_id,
        )
    return ids


def placement(transactions: pl.DataFrame, file_ids: dict[str, int]) -> pl.DataFrame:
    """Each transaction's file row: ``end_to_end_id`` → ``payment_file_id``.

    ``transactions``: the batch's end-to-end id → msg id list (``transactions.parquet``).
    """
    ids = pl.DataFrame(
        {"msg_id": list(file_ids), "payment_file_id": list(file_ids.values())},
        schema={"msg_id": pl.String, "payment_file_id": pl.Int64},
    )
    frame = transactions.select("end_to_end_id", "msg_id")
    return frame.join(ids, on="msg_id", how="inner", maintain_order="left").select(
        "end_to_end_id", "payment_file_id"
    )
