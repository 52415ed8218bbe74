"""Finance's approval as an Airflow human-in-the-loop task, and how to answer it outside the UI.

``FinanceApprovalOperator`` is Airflow's ``HITLBranchOperator`` with two
options (Approve → ``record_approval``, Reject → ``record_rejection``) whose
respondents are fixed when the task runs: the configured finance approvers
minus the user who triggered the run and those who caused what it pays (four
eyes). Airflow's API refuses a response from anyone else
(``is_authorized_hitl_task``).

What is asked, and of which payments run, comes from the ledger: the run this
Airflow run concluded, its figures and the signed manifest's SHA-256
(:func:`payments.orchestration.decision.ask`), never from an XCom or a
template over one: XComs and task states can be written through the REST API
by anyone who may edit the DAG, the operator who triggered the run included.
The decision is recorded in the ledger by this task itself, when Airflow
delivers the answer read from its own HITL record (who answered, what, when;
:func:`payments.orchestration.decision.decide` checks four eyes again and the
manifest shown). ``record_approval`` then only reads the ledger's decision.

``respond`` records a response through Airflow's own HITL endpoint function
(the one the UI calls), as a given user: the demo and the tests answer this way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from airflow.providers.standard.operators.hitl import HITLBranchOperator, HITLOperator

from payments.config import DEMO_APPROVER, load_settings
from payments.errors import FourEyesError
from payments.four_eyes import approvers_of, user_id
from payments.statuses import RunDecision

log = logging.getLogger(__name__)
APPROVE = "Approve"
REJECT = "Reject"
__all__ = ["DEMO_APPROVER", "FinanceApprovalOperator", "respond", "respondents", "subject_of"]


def respondents(
    approvers: tuple[str, ...],
    triggered_by: str | None,
    caused: Mapping[str, str] | None = None,
) -> list[dict[str, str]]:
    """HITL assigned users: the approvers (by the auth manager's id, as Airflow compares
    them), without the one who triggered the run (by name, as Airflow records it) nor
    those who caused what the run pays (by id: a report's uploader, a hold's releaser).

    Never empty: an HITL task without assigned users may be answered by anyone
    allowed to edit the DAG, which would defeat the four eyes.
    """
    out = {user_id(who) for who in (caused or {})}
    users = [
        {"id": a.id, "name": a.name}
        for a in approvers_of(approvers)
        if user_id(a.name) != user_id(triggered_by) and user_id(a.id) not in out
    ]
    if not users:
        raise FourEyesError(
            f"no finance approver other than {triggered_by!r} and those who caused what the "
            "run pays (PAYMENTS_FINANCE_APPROVERS): nobody may approve it"
        )
    return users


class FinanceApprovalOperator(HITLBranchOperator):
    """Approve or reject the payments run this Airflow run concluded, as the ledger says;
    only assigned finance users may answer."""

    def __init__(self, *, approve_task_id: str, reject_task_id: str, **kwargs: Any) -> None:
        super().__init__(
            subject="Approve a payment run",
            options=[APPROVE, REJECT],
            options_mapping={APPROVE: approve_task_id, REJECT: reject_task_id},
            multiple=False,
            **kwargs,
        )

    def execute(self, context: Any) -> Any:
        from payments.orchestration.bound import final
        from payments.orchestration.decision import ask, earlier_decision

        airflow_run = _airflow_run(context)
        earlier = final(lambda: earlier_decision(airflow_run))
        if earlier is not None:
            # The same inputs again (same run id): finance decided already, and a decision
            # is final. Asking again would show money already sent as "to be paid".
            approved = earlier.decision == RunDecision.APPROVED
            log.info(
                "this run's payments were already %s: nothing new to decide; %s",
                earlier,
                "files not yet at the bank are delivered" if approved else "nothing is sent",
            )
            chosen = self.options_mapping[APPROVE if approved else REJECT]
            return self.do_branch(context=context, branches_to_execute=[chosen])
        question = final(lambda: ask(airflow_run))
        # Rendered here from the ledger and the signed manifest, never from a template
        # over an XCom, which the operator may rewrite before this task renders it.
        self.subject, self.body = question.subject, question.body
        self.assigned_users = final(  # type: ignore[assignment]
            lambda: respondents(
                load_settings().finance_approvers, question.run.triggered_by, question.caused
            )
        )
        log.info(
            "approval of %s (manifest %s) asked of %s (run triggered by %s)",
            question.run.run_id,
            question.manifest_sha256,
            [u["id"] for u in self.assigned_users or []],
            question.run.triggered_by,
        )
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        ret = HITLOperator.execute_complete(self, context=context, event=event)
        log.info("response: %s by %s", ret["chosen_options"], ret["responded_by_user"])
        from payments.orchestration.decision import decide

        decide(_airflow_run(context), ret)
        branches = [self.options_mapping.get(o, o) for o in ret["chosen_options"]]
        return self.do_branch(context=context, branches_to_execute=branches)


def _airflow_run(context: Any) -> tuple[str, str]:
    """This task's own Airflow run: what the ledger binds the payments run to."""
    dag_run = context["dag_run"]
    return str(dag_run.dag_id), str(dag_run.run_id)


def respond(
    dag_id: str,
    airflow_run_id: str,
    task_id: str,
    *,
    user: str,
    option: str,
    role: str = "user",
) -> dict[str, Any]:
    """Answer a waiting approval as ``user`` (simple auth manager) through Airflow's HITL
    endpoint function: the demo and the tests answer this way.

    Raises ``fastapi.HTTPException`` (403) when ``user`` is not an assigned
    respondent, exactly as the UI's request would be refused.
    """
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    create_auth_manager()  # the API server's, as configured ([core] auth_manager)
    return respond_as(
        SimpleAuthManagerUser(username=user, role=role), dag_id, airflow_run_id, task_id, option
    )


def respond_as(
    user: Any, dag_id: str, airflow_run_id: str, task_id: str, option: str
) -> dict[str, Any]:
    """Answer a waiting approval as an authenticated Airflow ``user``, with the checks of
    Airflow's own PATCH route: the right to answer the DAG's required actions, then the
    endpoint's own (an assigned respondent, not answered yet). Raises ``HTTPException``."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import (
        DagAccessEntity,
        DagDetails,
    )
    from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
    from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
    from airflow.utils.session import create_session
    from fastapi import HTTPException

    if not get_auth_manager().is_authorized_dag(
        method="PUT",
        access_entity=DagAccessEntity.HITL_DETAIL,
        details=DagDetails(id=dag_id),
        user=user,
    ):
        raise HTTPException(403, f"{user.get_name()} may not answer required actions of {dag_id}")
    with create_session() as session:
        result = update_hitl_detail(
            dag_id=dag_id,
            dag_run_id=airflow_run_id,
            task_id=task_id,
            update_hitl_detail_payload=UpdateHITLDetailPayload(chosen_options=[option]),
            user=user,
            session=session,
        )
        return dict(result.model_dump(mode="json"))


def waiting_approval_of(dag_id: str, run_id: str) -> tuple[str, str] | None:
    """(Airflow run id, task id) of the approval waiting for payments run ``run_id``, if any
    (its subject names the run: the payments run id is not Airflow's)."""
    waiting = waiting_approvals(dag_id, subject=subject_of(run_id))
    return waiting[0] if waiting else None


def subject_of(run_id: str) -> str:
    """The approval's subject as Required actions lists it."""
    return f"Approve payment run {run_id}"


def waiting_approvals(dag_id: str, *, subject: str | None = None) -> list[tuple[str, str]]:
    """(Airflow run id, task id) of every approval of ``dag_id`` waiting for an answer (with
    that subject, when given)."""
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.run_id, TaskInstance.task_id)
            .join(HITLDetail, HITLDetail.ti_id == TaskInstance.id)
            .where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.state == TaskInstanceState.AWAITING_INPUT,
                HITLDetail.responded_at.is_(None),
                *([HITLDetail.subject == subject] if subject else []),
            )
        ).all()
    return [(str(r[0]), str(r[1])) for r in rows]
