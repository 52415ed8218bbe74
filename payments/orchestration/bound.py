"""Which payments run a task of the batch DAG works on: the one the ledger bound to its
Airflow run at conclusion, never one an XCom or a conf names.

Light on purpose: the hundred ``deliver`` processes of a national run import
it, and need neither polars nor the payment-file writer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn, TypeVar

from sqlalchemy.orm import Session

from payments.errors import Refused
from payments.ledger import approval as ledger_approval
from payments.ledger.migrate import engine_for
from payments.ledger.models import Run
from payments.orchestration.settings import task_settings

T = TypeVar("T")
#: (DAG id, Airflow run id): how a task names the Airflow run it belongs to.
AirflowRunRef = tuple[str, str]


@dataclass(frozen=True)
class BoundRun:
    """The payments run an Airflow run concluded, as the ledger has it."""

    run_id: str
    triggered_by: str | None
    decision: str | None
    decided_by: str | None
    decided_at: datetime | None
    shown_manifest_sha256: str | None

    @property
    def run_dir(self) -> str:
        return f"runs/{self.run_id}"


def bound_run(airflow_run: AirflowRunRef) -> BoundRun | None:
    """The payments run this Airflow run concluded (None: a dry run, or nobody to pay)."""
    with Session(engine_for(task_settings().ledger_url)) as session:
        row = ledger_approval.bound(session, *airflow_run)
        if row is None:
            return None
        run = session.get(Run, row.run_id)
        assert run is not None  # a foreign key
        return BoundRun(
            run.run_id,
            run.triggered_by,
            run.decision,
            run.approved_by,
            run.approved_at,
            row.shown_manifest_sha256,
        )


def bound_required(airflow_run: AirflowRunRef) -> BoundRun:
    run = bound_run(airflow_run)
    if run is None:
        raise Refused(
            f"Airflow run {airflow_run[1]} concluded no payments run in the ledger: "
            "nothing to approve, record or send"
        )
    return run


def final(action: Callable[[], T]) -> T:
    """Run a decision task's step; a refusal fails the task for good (no retry can change it)."""
    try:
        return action()
    except Refused as exc:
        fail_for_good(str(exc))


def fail_for_good(message: str) -> NoReturn:
    """Fail the running task without retry: ``message`` says what happened and what to do."""
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException(message)
