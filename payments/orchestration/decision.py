"""Finance's decision in the DAG: is it needed, who may give it, and recording it.

Four eyes are checked again here, whatever the auth manager allowed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from payments.errors import Refused
from payments.four_eyes import check_decider
from payments.ledger.migrate import engine_for
from payments.orchestration.settings import task_settings
from payments.release import approve, reject
from payments.storage import staged

log = logging.getLogger(__name__)


def needs_approval(summary: Mapping[str, Any]) -> bool:
    """Finance is asked only when something would leave (not on a dry run, not on nothing)."""
    if summary["dry_run"]:
        log.info("dry run: nothing recorded, nothing to approve or send")
        return False
    if not summary.get("payment_files") or not summary["payment_files"]["payments"]:
        log.info("no payment in this run: nothing to approve or send")
        return False
    return True


def _response_user(response: Mapping[str, Any]) -> str:
    user = response.get("responded_by_user") or {}
    return str(user.get("id") or user.get("name") or "")


def _response_time(response: Mapping[str, Any]) -> datetime:
    at = response.get("responded_at")
    if isinstance(at, datetime):
        stamp = at
    elif at:
        stamp = datetime.fromisoformat(str(at))
    else:
        stamp = datetime.now(UTC)
    return stamp.astimezone(UTC).replace(tzinfo=None) if stamp.tzinfo else stamp


def check_respondent(user: str, triggered_by: str | None, approvers: tuple[str, ...]) -> str:
    """Four eyes, checked again on our side whatever the auth manager allowed."""
    if not user:
        raise Refused("the approval has no respondent: refused")
    return check_decider(user, triggered_by=triggered_by, approvers=approvers)


def record_approval(summary: Mapping[str, Any], response: Mapping[str, Any]) -> list[str]:
    """Finance said yes: the ledger files the payments; returns the funds to deliver."""
    settings = task_settings()
    user = _response_user(response)
    check_respondent(user, summary.get("triggered_by"), settings.finance_approvers)
    run_dir = str(summary["run_dir"])
    with staged(settings.storage(), pull=[f"{run_dir}/payments"]) as area:
        filed = approve(
            engine_for(settings.ledger_url),
            area.root / run_dir,
            summary["run_id"],
            by=user,
            at=_response_time(response),
            approvers=settings.finance_approvers,
        )
    log.info("run %s approved by %s: %s payments filed", summary["run_id"], user, filed)
    return list(summary["funds_with_files"])


def record_rejection(summary: Mapping[str, Any], response: Mapping[str, Any]) -> dict[str, Any]:
    """Finance said no: the run's payments are cancelled; nothing is sent."""
    settings = task_settings()
    user = _response_user(response)
    check_respondent(user, summary.get("triggered_by"), settings.finance_approvers)
    reject(
        engine_for(settings.ledger_url),
        summary["run_id"],
        by=user,
        at=_response_time(response),
        approvers=settings.finance_approvers,
    )
    log.warning("run %s rejected by %s: nothing will be sent", summary["run_id"], user)
    return {"run_id": summary["run_id"], "rejected_by": user}
