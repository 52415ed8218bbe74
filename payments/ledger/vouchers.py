"""Vouchers spent once: the ledger's half of :mod:`payments.identity`.

A voucher travels in a DAG run's ``conf``, which every user who may read the
DAG can read: recording its nonce in the same transaction as the act it
vouches for makes a second use fail, whoever copies it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from payments.identity import Voucher, VoucherRefused
from payments.ledger.models import SpentVoucher


def spend(session: Session, voucher: Voucher, at: datetime) -> None:
    """Record the voucher as used; refused if it was (inside the caller's transaction)."""
    if session.get(SpentVoucher, voucher.nonce) is not None:
        raise VoucherRefused(
            f"{voucher.action}: the voucher of {voucher.user.name} was used already: "
            "each act on the pages is applied once"
        )
    session.add(
        SpentVoucher(
            nonce=voucher.nonce,
            user_id=voucher.user.id,
            user_name=voucher.user.name,
            action=voucher.action,
            spent_at=at,
        )
    )
    session.flush()
