"""Finance's decisions made on the payments pages, applied by a DAG run in finance's name.

The API server that shows the pages only reads the ledger (``ledger_reader``
in the deployment): what changes it, a hold released or a bank report
uploaded, is triggered as a run of ``solidarity_finance_action``. Who acts is
never taken from the run itself: its ``conf`` is whatever the trigger wrote,
and its triggering user name is ``$LOGNAME`` when triggered from the Airflow
CLI. The page puts a voucher in the conf (:mod:`payments.identity`), signed on
the API server for the authenticated user, this action and these parameters;
the task verifies it, checks the user's role and four eyes, and spends it in
the ledger in the same transaction as the act.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from payments.bank.inbox import digest, ingest_reports
from payments.clock import utc_now
from payments.config import load_settings
from payments.credentials import identity_public_key
from payments.errors import FourEyesError, Refused
from payments.four_eyes import is_approver, user_id
from payments.identity import Voucher, verify_for_run
from payments.ledger import events
from payments.ledger.holds import release_hold
from payments.ledger.migrate import engine_for
from payments.ledger.vouchers import spend
from payments.logs import install_masking

log = logging.getLogger(__name__)
ACTIONS = ("release_hold", "apply_report")
#: Where the pages put an uploaded report for the action to apply (storage root).
UPLOADED = "bank-reports/uploaded"


def subject(action: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters a voucher for ``action`` binds (what the page asked, exactly)."""
    if action == "release_hold":
        return {"payment_id": params.get("payment_id"), "note": params.get("note")}
    if action == "apply_report":
        return {"report": params.get("report")}
    raise Refused(f"unknown action {action!r}: one of {', '.join(ACTIONS)}")


def act(params: dict[str, Any], *, triggered_as: str | None) -> dict[str, Any]:
    """Apply one action vouched for by the pages; a refusal (no voucher, not finance, four
    eyes, a hold already released, a voucher used already) fails the task."""
    install_masking()
    action = str(params.get("action"))
    settings = load_settings()
    voucher = verify_for_run(
        identity_public_key(settings),
        params.get("voucher"),
        action=action,
        params=subject(action, params),
        at=utc_now(),
        triggered_as=triggered_as,
    )
    if not is_approver(voucher.user.id, settings.finance_approvers):
        raise FourEyesError(f"{action}: {voucher.user.name} is not a finance approver")
    if action == "release_hold":
        return _release(int(params["payment_id"]), str(params.get("note") or ""), voucher)
    return _apply(str(params["report"]), voucher)


def _release(payment_id: int, note: str, voucher: Voucher) -> dict[str, Any]:
    if not note.strip():
        raise Refused("a release needs a note saying why the hold is lifted")
    settings = load_settings()
    at = utc_now()
    with Session(engine_for(settings.ledger_url)) as session, session.begin():
        spend(session, voucher, at)
        release_hold(
            session,
            payment_id,
            by=voucher.user,
            note=note.strip(),
            at=at,
            approvers=settings.finance_approvers,
        )
    log.info("hold on payment %s released by %s", payment_id, voucher.user.name)
    return {"released": payment_id, "by": voucher.user.id}


def _apply(key: str, voucher: Voucher) -> dict[str, Any]:
    if not key.startswith(f"{UPLOADED}/") or "/" in key[len(UPLOADED) + 1 :]:
        raise Refused(f"{key!r} is not an uploaded report")
    settings = load_settings()
    storage = settings.storage()
    data = storage.read_bytes(key)
    name = "uploaded " + key.rsplit("/", 1)[-1].split("-", 1)[-1]
    engine = engine_for(settings.ledger_url)
    at = utc_now()
    by = user_id(voucher.user.id)
    # Who uploaded is recorded (and the voucher spent) before the report moves anything:
    # a re-issue it causes is then always traced to them (four eyes at the next approval).
    with Session(engine) as session, session.begin():
        spend(session, voucher, at)
        events.append(
            session,
            "bank_report_uploaded",
            {"by": by, "name": name, "sha256": digest(data)},
            at=at,
        )
    done = ingest_reports(engine, [(name, data)], at=at)
    for problem in done.quarantined:
        log.error("quarantined: %s", problem)
    log.info("%s: %s applied, %s quarantined", name, done.applied, len(done.quarantined))
    return {"applied": done.applied, "quarantined": done.quarantined, "by": by}


__all__ = ["ACTIONS", "UPLOADED", "act", "subject"]
