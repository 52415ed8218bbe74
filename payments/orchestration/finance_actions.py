"""Finance's decisions made on the payments pages, applied by a DAG run in finance's name.

The API server that shows the pages reads the ledger only (``ledger_reader``
in the deployment): what changes it, a hold released or a bank report
uploaded, is triggered as a run of ``solidarity_finance_action`` by the user
who clicked (Airflow records who triggered a run; a DAG's conf says what,
never who). The task applies it with the ledger owner's rights on a worker,
checking four eyes again with that name.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from payments.bank.inbox import digest, ingest_reports
from payments.clock import utc_now
from payments.config import load_settings
from payments.errors import Refused
from payments.ledger import events
from payments.ledger.holds import release_hold
from payments.ledger.migrate import engine_for
from payments.logs import install_masking

log = logging.getLogger(__name__)
ACTIONS = ("release_hold", "apply_report")
#: Where the pages put an uploaded report for the action to apply (storage root).
UPLOADED = "bank-reports/uploaded"


def act(params: dict[str, Any], *, by: str | None) -> dict[str, Any]:
    """Apply one action; a refusal (four eyes, a hold already released) fails the task."""
    install_masking()
    action = params.get("action")
    if not by:
        raise Refused("the run names no user: a finance action is triggered by its author")
    if action == "release_hold":
        return _release(int(params["payment_id"]), str(params.get("note") or ""), by)
    if action == "apply_report":
        return _apply(str(params["report"]), by)
    raise Refused(f"unknown action {action!r}: one of {', '.join(ACTIONS)}")


def _release(payment_id: int, note: str, by: str) -> dict[str, Any]:
    if not note.strip():
        raise Refused("a release needs a note saying why the hold is lifted")
    settings = load_settings()
    with Session(engine_for(settings.ledger_url)) as session, session.begin():
        release_hold(
            session,
            payment_id,
            by=by,
            note=note.strip(),
            at=utc_now(),
            approvers=settings.finance_approvers,
        )
    log.info("hold on payment %s released by %s", payment_id, by)
    return {"released": payment_id, "by": by}


def _apply(key: str, by: str) -> dict[str, Any]:
    if not key.startswith(f"{UPLOADED}/") or "/" in key[len(UPLOADED) + 1 :]:
        raise Refused(f"{key!r} is not an uploaded report")
    settings = load_settings()
    storage = settings.storage()
    data = storage.read_bytes(key)
    name = "uploaded " + key.rsplit("/", 1)[-1].split("-", 1)[-1]
    engine = engine_for(settings.ledger_url)
    at = utc_now()
    done = ingest_reports(engine, [(name, data)], at=at)
    with Session(engine) as session, session.begin():
        events.append(
            session,
            "bank_report_uploaded",
            {"by": by, "name": name, "sha256": digest(data)},
            at=at,
        )
    for problem in done.quarantined:
        log.error("quarantined: %s", problem)
    log.info("%s: %s applied, %s quarantined", name, done.applied, len(done.quarantined))
    return {"applied": done.applied, "quarantined": done.quarantined, "by": by}


__all__ = ["ACTIONS", "UPLOADED", "act"]
