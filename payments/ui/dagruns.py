"""Starting a DAG run from a page, in the name of the user who clicked.

What a page decides that changes the ledger or takes long (a hold released,
a report applied, an audit) runs as a DAG run on a worker: the API server
reads the ledger only. Airflow records the triggering user from the
authenticated request, and the task takes that name as the author.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException

from payments.ui.guard import Visitor

#: Applies what finance decides on the pages (holds released, reports uploaded).
FINANCE_ACTION_DAG = "solidarity_finance_action"


def trigger(dag_id: str, visitor: Visitor, conf: dict[str, Any]) -> str:
    """A run of ``dag_id`` with ``conf``, triggered as the visitor; its Airflow run id."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import DagNotFound
    from airflow.utils.types import DagRunTriggeredByType

    try:
        run = trigger_dag(
            dag_id,
            triggered_by=DagRunTriggeredByType.UI,
            triggering_user_name=visitor.name,
            conf=conf,
        )
    except DagNotFound as exc:
        raise HTTPException(503, f"the {dag_id} DAG is not loaded yet: try again") from exc
    return str(run.run_id) if run else ""
