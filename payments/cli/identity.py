"""Who runs a money-moving ``payments`` command: a voucher from the pages, never a typed name.

Whoever can run the command can type any name, and ``$LOGNAME`` is theirs to
set. A finance user (or an operator, to record a run) downloads a voucher from
the payments pages (*Runs* → "A voucher for the payments command"): the API
server signs it after Airflow authenticated them, for 15 minutes and one
command. The command verifies it with the API server's public key, spends it
in the ledger, and acts as that user. Without one, ``payments run`` records the
OS account (``os:<account>``, from the process's user id, not the environment),
and a run so recorded can never be approved: its triggerer is no one the auth
manager knows, so four eyes cannot be checked.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from payments.clock import utc_now
from payments.config import Settings
from payments.credentials import identity_public_key
from payments.errors import FourEyesError
from payments.four_eyes import is_approver
from payments.identity import CLI, Identity, VoucherRefused, verify
from payments.ledger.migrate import engine_for, upgrade
from payments.ledger.vouchers import spend

VoucherFile = Annotated[
    Path | None,
    typer.Option(
        "--voucher",
        envvar="PAYMENTS_VOUCHER",
        help="A voucher file from the payments pages (Runs → a voucher for the payments "
        "command): who you are, signed by the API server; good 15 minutes, once.",
    ),
]

#: How a run recorded from a shell names its triggerer: never a user of the auth manager.
OS_PREFIX = "os:"


def os_account() -> str:
    """The OS account running this process, from its user id (``$LOGNAME`` can be set)."""
    return OS_PREFIX + pwd.getpwuid(os.getuid()).pw_name


def vouched(path: Path | None, settings: Settings, *, finance: bool) -> Identity:
    """The user a voucher file names, verified and spent; ``finance``: must be an approver."""
    if path is None:
        raise VoucherRefused(
            "this command moves money: pass --voucher with a voucher from the payments pages "
            "(a typed name is not an identity)"
        )
    voucher = verify(
        identity_public_key(settings), path.read_text().strip(), action=CLI, params={},
        at=utc_now(),
    )  # fmt: skip
    if finance and not is_approver(voucher.user.id, settings.finance_approvers):
        raise FourEyesError(f"{voucher.user.name} is not a finance approver")
    upgrade(settings.ledger_url)  # the first command on a new ledger creates it
    with Session(engine_for(settings.ledger_url)) as session, session.begin():
        spend(session, voucher, utc_now())
    return voucher.user
