"""Sending one payment file to the bank exactly once, across workers, retries and crashes.

The ledger's ``payment_files`` row is the source of truth:

- ``written``: nobody has started; the first caller turns it ``uploading`` (the
  row is locked while it does, so two workers cannot both start);
- ``uploading``: someone started. Another worker leaves it alone
  (``in_progress``); a *retry of the same task* (``takeover=True``) carries on —
  the upload is idempotent, so a crash before the rename leaves only a
  ``.part`` that is overwritten, a crash after it finds the complete file
  already there, and nothing is sent twice;
- ``uploaded``: done; every later call returns ``already_sent``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from payments.ledger.models import PaymentFileRow
from payments.ledger.moves import mark_uploaded
from payments.transport.base import Transport, TransportError, upload_atomic


def deliver(
    engine: Engine,
    transport: Transport,
    msg_id: str,
    remote_path: str,
    data: bytes,
    *,
    at: datetime,
    takeover: bool = False,
) -> str:
    """Upload a recorded payment file unless it was already; returns what happened."""
    with Session(engine) as session, session.begin():
        row = session.execute(
            select(PaymentFileRow).where(PaymentFileRow.msg_id == msg_id).with_for_update()
        ).scalar_one()
        if row.upload_state == "uploaded":
            return "already_sent"
        if row.upload_state == "uploading" and not takeover:
            return "in_progress"
        if hashlib.sha256(data).hexdigest() != row.sha256:
            raise TransportError(f"{msg_id}: file to send differs from the one recorded")
        row.upload_state = "uploading"
    outcome = upload_atomic(transport, remote_path, data)
    with Session(engine) as session, session.begin():
        mark_uploaded(session, msg_id, at=at)
    return outcome
