"""The append-only event log, hash-chained so that an edit or a deletion shows.

Row n stores ``prev_hash`` (row n-1's hash) and ``hash`` = SHA-256 over its own
sequence number, time, kind, run id, canonical JSON payload and ``prev_hash``.
Changing any field of any row, deleting a row or inserting one breaks the chain
from that row on; ``verify_chain`` finds the first broken row.

Appends are serialised: a PostgreSQL advisory lock held for the transaction
(SQLite serialises writers itself), and the sequence number is a primary key,
so two concurrent appends can never both extend the same row.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from payments.ledger.models import Event

GENESIS = "0" * 64
_LOCK_ID = 7_020_519  # advisory lock key for the event log (décret 2020-519)


def canonical(payload: dict[str, Any]) -> str:
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )


def event_hash(
    seq: int, at: datetime, kind: str, run_id: str | None, payload: str, prev_hash: str
) -> str:
    material = "\n".join([str(seq), at.isoformat(), kind, run_id or "", payload, prev_hash])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def append(
    session: Session, kind: str, payload: dict[str, Any], *, at: datetime, run_id: str | None = None
) -> Event:
    """Append one event in the session's transaction (the caller commits)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_ID})
    last = session.execute(select(Event).order_by(Event.seq.desc()).limit(1)).scalar_one_or_none()
    seq = (last.seq + 1) if last else 1
    prev = last.hash if last else GENESIS
    body = canonical(payload)
    event = Event(
        seq=seq,
        at=at,
        kind=kind,
        run_id=run_id,
        payload=body,
        prev_hash=prev,
        hash=event_hash(seq, at, kind, run_id, body, prev),
    )
    session.add(event)
    session.flush()
    return event


def verify_chain(session: Session) -> list[str]:
    """Every break in the chain, as sentences; empty when the log is intact."""
    problems: list[str] = []
    prev_hash, expected_seq = GENESIS, 1
    for event in session.execute(select(Event).order_by(Event.seq)).scalars():
        if event.seq != expected_seq:
            problems.append(f"event {expected_seq}: missing (next row is {event.seq}): deleted")
        if event.prev_hash != prev_hash:
            problems.append(f"event {event.seq}: previous-hash link broken")
        recomputed = event_hash(
            event.seq, event.at, event.kind, event.run_id, event.payload, event.prev_hash
        )
        if recomputed != event.hash:
            problems.append(f"event {event.seq}: content does not match its hash (edited)")
        prev_hash, expected_seq = event.hash, event.seq + 1
    return problems
