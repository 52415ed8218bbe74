"""Starting a DAG run from a page, in the name of the user who clicked, with a voucher.

What a page decides that changes the ledger or takes long (a hold released,
a report applied, an audit) runs as a DAG run on a worker: the API server
reads the ledger only. Airflow records the triggering user's name; the page
adds a voucher (:mod:`payments.identity`) signed here, where Airflow has just
authenticated the user: their id and name, this action, these parameters.
The task verifies it and spends it once; a run triggered any other way has
none and is refused.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException

from payments.ui.guard import Visitor

#: Applies what finance decides on the pages (holds released, reports uploaded).
FINANCE_ACTION_DAG = "solidarity_finance_action"


def trigger(
    dag_id: str, visitor: Visitor, conf: dict[str, Any], *, action: str, vouched: dict[str, Any]
) -> str:
    """A run of ``dag_id`` with ``conf``, triggered as the visitor, with a voucher for
    ``action`` over ``vouched`` (the parameters the task checks); its Airflow run id."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import DagNotFound
    from airflow.utils.types import DagRunTriggeredByType

    from payments.clock import utc_now
    from payments.identity import Identity, vouch

    key = page_key()
    voucher = vouch(key, Identity(visitor.id, visitor.name), action, vouched, at=utc_now())
    conf = {**conf, "voucher": voucher}

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


def page_key() -> Any:
    """The API server's key that signs vouchers; 503 with the reason when it has none."""
    from payments.config import load_settings
    from payments.credentials import MissingSecret, identity_signing_key

    try:
        return identity_signing_key(load_settings())
    except MissingSecret as exc:
        raise HTTPException(503, str(exc)) from None
