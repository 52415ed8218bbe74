"""Sending one payment file to the bank exactly once, across workers, retries and crashes.

The ledger's ``payment_files`` row is the source of truth, and an upload is a
*lease*: an owner (a DAG task, the same on each of its tries, or one
``payments send`` process) and an expiry.

- ``written``: nobody has started. A sender claims the row: one conditional
  update, so of two senders only one gets it, on SQLite as on PostgreSQL.
- ``uploading``: the owner is putting the signature and the file's ``.part``
  at the bank. Its own retry carries on at once; another sender only once the
  lease has expired (or with ``takeover``: an operator who knows the other
  sender is dead). The ``.part`` is simply written again.
- ``committing``: the complete ``.part`` was checked at the bank; the rename
  is next. Whoever carries on looks before acting: the file under its name
  means the rename happened; the ``.part`` means it did not (rename it); neither
  means the bank has already collected the renamed file, which is therefore
  not sent again.
- ``uploaded``: done, and in the same transaction the file's payments became
  ``sent``; every later call returns ``already_sent``.

A file whose bytes differ from those recorded at conclusion is refused before
anything (its signature included) goes to the bank.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from payments.faults import checkpoint
from payments.ledger import events, states
from payments.ledger.models import Payment, PaymentFileRow
from payments.ledger.moves import move
from payments.sepa.signing import SIGNATURE_SUFFIX
from payments.statuses import Upload
from payments.transport.base import (
    PART_SUFFIX,
    Inconsistent,
    Transport,
    TransportError,
    already_there,
    check_part,
    upload_atomic,
)

#: How long a sender owns an upload without renewing it; a payment file takes
#: seconds to upload, so a lease this old belongs to a sender that is gone.
LEASE = timedelta(minutes=10)
#: Outcomes that mean the file is at the bank (or was, and the bank took it).
AT_THE_BANK = frozenset({"uploaded", "already_there", "already_sent", "collected"})


@dataclass(frozen=True)
class Outgoing:
    """One payment file to send: its ledger row and its bytes."""

    file_id: int
    msg_id: str
    remote_path: str
    data: bytes
    signature: bytes
    run_id: str


@dataclass(frozen=True)
class Delivery:
    outcome: str  # uploaded | already_there | already_sent | collected | in_progress
    payments_sent: int = 0  # payments this call marked sent


@dataclass(frozen=True)
class _Seen:
    state: str
    owner: str | None
    until: datetime | None
    sha256: str


def deliver(
    engine: Engine,
    transport: Transport,
    file: Outgoing,
    *,
    owner: str,
    at: datetime,
    takeover: bool = False,
) -> Delivery:
    """Upload a recorded payment file unless it is, or was, at the bank; says what happened.

    ``in_progress``: another sender holds a live lease; the file is not at the
    bank yet (the caller must not report success).
    """
    seen = _look(engine, file.msg_id)
    if seen.state == Upload.UPLOADED:  # payments a crash left in_file follow their file
        with Session(engine) as session, session.begin():
            return Delivery("already_sent", mark_sent(session, file.file_id, file.run_id, at=at))
    if hashlib.sha256(file.data).hexdigest() != seen.sha256:
        raise Inconsistent(f"{file.msg_id}: file to send differs from the one recorded")
    mine = seen.owner == owner or seen.state == Upload.WRITTEN
    expired = seen.until is not None and seen.until < at
    if not (mine or expired or takeover) or not _claim(engine, file.msg_id, seen, owner, at):
        return Delivery("in_progress")
    checkpoint("send.claimed")
    if seen.state == "committing":
        outcome = _after_commit(transport, file)
    else:
        outcome = _upload(engine, transport, file, owner, at)
    sent = _record(engine, file, owner, at)
    checkpoint("send.recorded")
    return Delivery(outcome, sent)


def _look(engine: Engine, msg_id: str) -> _Seen:
    with Session(engine) as session:
        row = session.execute(
            select(PaymentFileRow).where(PaymentFileRow.msg_id == msg_id)
        ).scalar_one()
        return _Seen(row.upload_state, row.lease_owner, row.lease_until, row.sha256)


def _claim(engine: Engine, msg_id: str, seen: _Seen, owner: str, at: datetime) -> bool:
    """Compare and set: the row is ours only if nobody changed it since we looked."""
    row = PaymentFileRow
    unchanged = [
        row.msg_id == msg_id,
        row.upload_state == seen.state,
        row.lease_owner == seen.owner if seen.owner is not None else row.lease_owner.is_(None),
        row.lease_until == seen.until if seen.until is not None else row.lease_until.is_(None),
    ]
    state = Upload.UPLOADING if seen.state == Upload.WRITTEN else seen.state
    with Session(engine) as session, session.begin():
        claimed = session.execute(
            update(row)
            .where(*unchanged)
            .values(upload_state=state, lease_owner=owner, lease_until=at + LEASE)
            .execution_options(synchronize_session=False)
        )
        return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


def _set_state(engine: Engine, msg_id: str, owner: str, state: str, at: datetime) -> None:
    """Move our upload on (and renew the lease); refused if the lease was taken from us."""
    with Session(engine) as session, session.begin():
        done = session.execute(
            update(PaymentFileRow)
            .where(PaymentFileRow.msg_id == msg_id, PaymentFileRow.lease_owner == owner)
            .values(upload_state=state, lease_until=at + LEASE)
            .execution_options(synchronize_session=False)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise TransportError(f"{msg_id}: the upload's lease was taken over; stopping")


def _upload(engine: Engine, transport: Transport, file: Outgoing, owner: str, at: datetime) -> str:
    """Signature, then the ``.part``, checked, then (recorded as next) the rename."""
    upload_atomic(transport, file.remote_path + SIGNATURE_SUFFIX, file.signature)
    checkpoint("send.signature_up")
    if transport.size(file.remote_path) is not None:
        return already_there(transport, file.remote_path, file.data)
    part = file.remote_path + PART_SUFFIX
    transport.write(part, file.data)
    check_part(transport, file.remote_path, file.data)
    checkpoint("send.part_written")
    _set_state(engine, file.msg_id, owner, "committing", at)
    checkpoint("send.committing")
    transport.rename(part, file.remote_path)
    checkpoint("send.renamed")
    return "uploaded"


def _after_commit(transport: Transport, file: Outgoing) -> str:
    """Carry on after a sender stopped between recording "committing" and recording the end."""
    if transport.size(file.remote_path) is not None:
        return already_there(transport, file.remote_path, file.data)
    part = file.remote_path + PART_SUFFIX
    if transport.size(part) is not None:
        check_part(transport, file.remote_path, file.data)
        transport.rename(part, file.remote_path)
        return "uploaded"
    return "collected"  # renamed, then taken by the bank: sending it again would pay twice


def _record(engine: Engine, file: Outgoing, owner: str, at: datetime) -> int:
    """The file is at the bank and its payments are sent: one transaction, never one without
    the other."""
    with Session(engine) as session, session.begin():
        done = session.execute(
            update(PaymentFileRow)
            .where(PaymentFileRow.msg_id == file.msg_id, PaymentFileRow.lease_owner == owner)
            .values(upload_state="uploaded", uploaded_at=at, lease_until=None)
            .execution_options(synchronize_session=False)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise TransportError(f"{file.msg_id}: the upload's lease was taken over; stopping")
        events.append(session, "file_uploaded", {"msg_id": file.msg_id}, at=at)
        return mark_sent(session, file.file_id, file.run_id, at=at)


def mark_sent(session: Session, file_id: int, run_id: str, *, at: datetime) -> int:
    """The file's payments still ``in_file`` become ``sent`` (none left after the first call)."""
    return move(
        session,
        (Payment.payment_file_id == file_id) & (Payment.state == states.IN_FILE),
        states.SENT,
        at=at,
        actor="transport",
        run_id=run_id,
    )
