"""Finance's decision in the DAG: is it needed, who may give it, and recording it.

Four eyes are checked again here, whatever the auth manager allowed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from payments.errors import FourEyesError, Refused
from payments.four_eyes import check_decider, user_id
from payments.ledger.migrate import engine_for
from payments.ledger.models import Run
from payments.orchestration.approval import APPROVE, REJECT
from payments.orchestration.settings import task_settings
from payments.release import approve, reject
from payments.storage import staged

log = logging.getLogger(__name__)
T = TypeVar("T")


def needs_approval(summary: Mapping[str, Any]) -> bool:
    """Finance is asked only when something would leave (not on a dry run, not on nothing)."""
    if summary["dry_run"]:
        log.info("dry run: nothing recorded, nothing to approve or send")
        return False
    if not summary.get("payment_files") or not summary["payment_files"]["payments"]:
        log.info("no payment in this run: nothing to approve or send")
        return False
    return True


@dataclass(frozen=True)
class Earlier:
    """A decision the ledger already holds for a run (it is final)."""

    decision: str
    by: str | None
    at: datetime | None

    def __str__(self) -> str:
        when = f" on {self.at:%Y-%m-%d %H:%M} UTC" if self.at else ""
        return f"{self.decision} by {self.by or 'unknown'}{when}"


def earlier_decision(summary: Mapping[str, Any]) -> Earlier | None:
    """Finance's decision on this run if it was already made (the same run re-triggered)."""
    with Session(engine_for(task_settings().ledger_url)) as session:
        run = session.get(Run, summary["run_id"])
    if run is None or not run.decision:
        return None
    return Earlier(run.decision, run.approved_by, run.approved_at)


@dataclass(frozen=True)
class Answer:
    """Finance's answer as Airflow recorded it (the HITL record, delivered by the triggerer)."""

    user_id: str
    user_name: str
    option: str
    at: datetime


def answer_from(response: Mapping[str, Any]) -> Answer:
    """The answer in the HITL operator's completion event (from the triggerer, which read it
    from Airflow's HITL record: no API call writes that event)."""
    user = response.get("responded_by_user") or {}
    options = list(response.get("chosen_options") or [])
    at = response.get("responded_at")
    if not user or not at or len(options) != 1:
        raise Refused(f"the approval's answer is incomplete ({options}, {user}): refused")
    stamp = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
    if stamp.tzinfo:
        stamp = stamp.astimezone(UTC).replace(tzinfo=None)
    return Answer(str(user.get("id") or ""), str(user.get("name") or ""), options[0], stamp)


def check_respondent(answer: Answer, triggered_by: str | None, approvers: tuple[str, ...]) -> str:
    """Four eyes, checked again on our side whatever the auth manager allowed.

    Like with like: the respondent's *id* must be an approver's (the ids HITL
    assigns), and the respondent's *name* must not be the triggerer's (Airflow
    records who triggered a run by name). Under the simple auth manager they
    are one string; under FAB or Keycloak they differ.
    """
    trigger = user_id(triggered_by)
    if trigger and trigger in (user_id(answer.user_name), user_id(answer.user_id)):
        raise FourEyesError("the user who triggered the run cannot decide on it (four eyes)")
    return check_decider(answer.user_id, triggered_by=triggered_by, approvers=approvers)


__all__ = ["decide", "needs_approval", "record_approval", "record_rejection"]


def decide(
    summary: Mapping[str, Any], response: Mapping[str, Any], triggered_by: str | None
) -> str:
    """Record finance's answer in the ledger; called by the approval task when Airflow delivers
    the answer, and only then. Returns the option chosen. A refusal fails the task for good."""
    return final(lambda: _decide(summary, answer_from(response), triggered_by))


def _decide(summary: Mapping[str, Any], answer: Answer, triggered_by: str | None) -> str:
    if answer.option == APPROVE:
        _approved(summary, answer, triggered_by)
    elif answer.option == REJECT:
        _rejected(summary, answer, triggered_by)
    else:
        raise Refused(f"the approval's answer {answer.option!r} is neither option: refused")
    return answer.option


def record_approval(summary: Mapping[str, Any]) -> list[str]:
    """After the approval: the funds to deliver, if the ledger holds finance's approval.

    The ledger is written by the approval task itself when Airflow delivers
    finance's answer (:func:`decide`). Marking ``approval`` successful
    through the API (which an operator may do) skips that: no decision is in
    the ledger, and this task fails without retry; nothing is delivered.
    """
    final(lambda: _recorded(summary, "approved"))
    return list(summary["funds_with_files"])


def record_rejection(summary: Mapping[str, Any]) -> dict[str, Any]:
    """After the approval: the run as rejected, if the ledger holds finance's rejection."""
    return {
        "run_id": summary["run_id"],
        "rejected_by": final(lambda: _recorded(summary, "rejected")),
    }


def _recorded(summary: Mapping[str, Any], decision: str) -> str | None:
    """Who made the decision the ledger holds; refused if it holds no such decision."""
    settings = task_settings()
    with Session(engine_for(settings.ledger_url)) as session:
        run = session.get(Run, summary["run_id"])
    if run is None or run.decision != decision:
        raise Refused(
            f"run {summary['run_id']}: the ledger holds no {decision} decision from finance "
            "(an answer given in Airflow records it; marking the approval task done does not)"
        )
    log.info("run %s %s by %s", run.run_id, decision, run.approved_by)
    return run.approved_by


def _approved(summary: Mapping[str, Any], answer: Answer, triggered_by: str | None) -> list[str]:
    if answer.option != APPROVE:
        raise Refused(f"the approval's answer is {answer.option!r}, not {APPROVE!r}: refused")
    settings = task_settings()
    user = check_respondent(answer, triggered_by, settings.finance_approvers)
    run_dir = str(summary["run_dir"])
    with staged(settings.storage(), pull=[f"{run_dir}/payments"]) as area:
        filed = approve(
            engine_for(settings.ledger_url),
            area.root / run_dir,
            summary["run_id"],
            by=user,
            at=answer.at,
            approvers=settings.finance_approvers,
        )
    log.info("run %s approved by %s: %s payments filed", summary["run_id"], user, filed)
    return list(summary["funds_with_files"])


def _rejected(
    summary: Mapping[str, Any], answer: Answer, triggered_by: str | None
) -> dict[str, Any]:
    if answer.option != REJECT:
        raise Refused(f"the approval's answer is {answer.option!r}, not {REJECT!r}: refused")
    settings = task_settings()
    user = check_respondent(answer, triggered_by, settings.finance_approvers)
    reject(
        engine_for(settings.ledger_url),
        summary["run_id"],
        by=user,
        at=answer.at,
        approvers=settings.finance_approvers,
    )
    log.warning("run %s rejected by %s: nothing will be sent", summary["run_id"], user)
    return {"run_id": summary["run_id"], "rejected_by": user}


def final(action: Callable[[], T]) -> T:
    """Run a decision task's step; a refusal fails the task for good (no retry can change it)."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        return action()
    except Refused as exc:
        raise AirflowFailException(str(exc)) from exc
