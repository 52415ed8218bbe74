"""Finance's decision in the DAG: is it needed, what is asked, who may answer, recording it.

What is decided on is the payments run the ledger says *this* Airflow run
concluded (:func:`payments.ledger.approval.bound`), never the one an XCom
names: XComs can be rewritten through the REST API by anyone who may edit the
DAG. The question is rendered from the ledger and the signed manifest, whose
SHA-256 is recorded as shown; the answer is applied only to that manifest.
Four eyes are checked again here, whatever the auth manager allowed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from payments.clock import utc_now
from payments.errors import FourEyesError, Refused
from payments.four_eyes import check_decider, user_id
from payments.identity import Identity
from payments.ledger import approval as ledger_approval
from payments.ledger.migrate import engine_for
from payments.orchestration.approval import APPROVE, REJECT
from payments.orchestration.bound import AirflowRunRef, BoundRun, bound_required, bound_run, final
from payments.orchestration.settings import task_settings
from payments.release import approve, check_concluded, reject
from payments.sepa.layout import MANIFEST
from payments.storage import staged

log = logging.getLogger(__name__)


def needs_approval(airflow_run: AirflowRunRef) -> bool:
    """Finance is asked only when the ledger holds payment files of this Airflow run's
    payments run (a dry run records nothing; an empty run has no file)."""
    run = bound_run(airflow_run)
    if run is None:
        log.info("no payments run recorded (dry run, or nobody to pay): nothing to approve")
        return False
    with Session(engine_for(task_settings().ledger_url)) as session:
        funds = ledger_approval.funds_with_files(session, run.run_id)
    if not funds:
        log.info("run %s has no payment file: nothing to approve or send", run.run_id)
        return False
    return True


@dataclass(frozen=True)
class Question:
    """What finance is asked: the run, the text, who must not answer, the manifest shown."""

    run: BoundRun
    subject: str
    body: str
    manifest_sha256: str
    caused: dict[str, str]


def ask(airflow_run: AirflowRunRef) -> Question:
    """The question for this Airflow run's payments run, from the ledger and the signed
    manifest; the manifest is recorded as shown (the answer applies to it only)."""
    from payments.orchestration.approval import subject_of
    from payments.orchestration.summary import approval_text_of

    run = bound_required(airflow_run)
    settings = task_settings()
    manifest_key = f"{run.run_dir}/payments/{MANIFEST}"
    manifest_bytes = settings.storage().read_bytes(manifest_key)
    sha = hashlib.sha256(manifest_bytes).hexdigest()
    with Session(engine_for(settings.ledger_url)) as session, session.begin():
        check_concluded(session, run.run_id, json.loads(manifest_bytes))
        ledger_approval.mark_shown(session, *airflow_run, sha, utc_now())
        figures = ledger_approval.facts(session, run.run_id)
        caused = ledger_approval.causes(session, run.run_id)
        waiting = ledger_approval.released_waiting(session, figures["scheme_id"])
    body = approval_text_of(figures, caused, waiting, sha)
    return Question(run, subject_of(run.run_id), body, sha, caused.people())


@dataclass(frozen=True)
class Earlier:
    """A decision the ledger already holds for a run (it is final)."""

    decision: str
    by: str | None
    at: datetime | None

    def __str__(self) -> str:
        when = f" on {self.at:%Y-%m-%d %H:%M} UTC" if self.at else ""
        return f"{self.decision} by {self.by or 'unknown'}{when}"


def earlier_decision(airflow_run: AirflowRunRef) -> Earlier | None:
    """Finance's decision on this Airflow run's payments run if it was already made (the
    same inputs re-triggered conclude the same run)."""
    run = bound_required(airflow_run)
    if not run.decision:
        return None
    return Earlier(run.decision, run.decided_by, run.decided_at)


@dataclass(frozen=True)
class Answer:
    """Finance's answer as Airflow recorded it (the HITL record, delivered by the triggerer)."""

    user_id: str
    user_name: str
    option: str
    at: datetime

    @property
    def identity(self) -> Identity:
        return Identity(self.user_id, self.user_name)


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


def check_respondent(
    answer: Answer,
    triggered_by: str | None,
    approvers: tuple[str, ...],
    caused: Mapping[str, str] | None = None,
) -> str:
    """Four eyes, checked again on our side whatever the auth manager allowed: the
    respondent's id is an approver's, bound to its name; the name is not the triggerer's;
    the id caused nothing this run pays (:func:`payments.four_eyes.check_decider`)."""
    if user_id(triggered_by) and user_id(triggered_by) in (
        user_id(answer.user_name),
        user_id(answer.user_id),
    ):
        raise FourEyesError("the user who triggered the run cannot decide on it (four eyes)")
    return check_decider(
        answer.identity, triggered_by=triggered_by, approvers=approvers, caused=caused
    )


__all__ = [
    "APPROVE",
    "REJECT",
    "ask",
    "decide",
    "needs_approval",
    "record_approval",
    "record_rejection",
]


def decide(airflow_run: AirflowRunRef, response: Mapping[str, Any]) -> str:
    """Record finance's answer in the ledger; called by the approval task when Airflow delivers
    the answer, and only then. Returns the option chosen. A refusal fails the task for good."""
    return final(lambda: _decide(airflow_run, answer_from(response)))


def _decide(airflow_run: AirflowRunRef, answer: Answer) -> str:
    run = bound_required(airflow_run)
    if answer.option == APPROVE:
        _approved(run, answer)
    elif answer.option == REJECT:
        _rejected(run, answer)
    else:
        raise Refused(f"the approval's answer {answer.option!r} is neither option: refused")
    return answer.option


def record_approval(airflow_run: AirflowRunRef) -> list[str]:
    """After the approval: the funds to deliver, if the ledger holds finance's approval.

    The ledger is written by the approval task itself when Airflow delivers
    finance's answer (:func:`decide`). Marking ``approval`` successful
    through the API (which an operator may do) skips that: no decision is in
    the ledger, and this task fails without retry; nothing is delivered.
    """
    run = final(lambda: _recorded(airflow_run, "approved"))
    with Session(engine_for(task_settings().ledger_url)) as session:
        return ledger_approval.funds_with_files(session, run.run_id)


def record_rejection(airflow_run: AirflowRunRef) -> dict[str, Any]:
    """After the approval: the run as rejected, if the ledger holds finance's rejection."""
    run = final(lambda: _recorded(airflow_run, "rejected"))
    return {"run_id": run.run_id, "rejected_by": run.decided_by}


def _recorded(airflow_run: AirflowRunRef, decision: str) -> BoundRun:
    """The bound run, if the ledger holds that decision from finance; refused otherwise."""
    run = bound_required(airflow_run)
    if run.decision != decision:
        raise Refused(
            f"run {run.run_id}: the ledger holds no {decision} decision from finance "
            "(an answer given in Airflow records it; marking the approval task done does not)"
        )
    log.info("run %s %s by %s", run.run_id, decision, run.decided_by)
    return run


def _approved(run: BoundRun, answer: Answer) -> None:
    settings = task_settings()
    if run.shown_manifest_sha256 is None:
        raise Refused(f"run {run.run_id}: finance was never shown this run: nothing approved")
    with Session(engine_for(settings.ledger_url)) as session:
        caused = ledger_approval.causes(session, run.run_id).people()
    user = check_respondent(answer, run.triggered_by, settings.finance_approvers, caused)
    with staged(settings.storage(), pull=[f"{run.run_dir}/payments"]) as area:
        filed = approve(
            engine_for(settings.ledger_url),
            area.root / run.run_dir,
            run.run_id,
            by=answer.identity,
            at=answer.at,
            approvers=settings.finance_approvers,
            shown_manifest_sha256=run.shown_manifest_sha256,
        )
    log.info("run %s approved by %s: %s payments filed", run.run_id, user, filed)


def _rejected(run: BoundRun, answer: Answer) -> None:
    settings = task_settings()
    user = check_respondent(answer, run.triggered_by, settings.finance_approvers)
    reject(
        engine_for(settings.ledger_url),
        run.run_id,
        by=answer.identity,
        at=answer.at,
        approvers=settings.finance_approvers,
    )
    log.warning("run %s rejected by %s: nothing will be sent", run.run_id, user)
