"""A decision finance made on the payments pages, applied in finance's name.

Triggered by the Holds page (release a hold, with a note) and the Bank page
(apply a report finance uploaded), with a voucher the page signed for the
authenticated user and this very act: a run triggered otherwise (the Airflow
CLI, the REST API with a conf of one's own) is refused. The web server that
shows the pages only reads the ledger; this run writes it.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from payments.orchestration.defaults import NO_RETRIES, OWNER


@dag(
    dag_id="solidarity_finance_action",
    schedule=None,
    catchup=False,
    is_paused_upon_creation=False,
    params={
        "action": Param("release_hold", enum=["release_hold", "apply_report"]),
        "payment_id": Param(None, type=["null", "integer"], description="The held payment."),
        "note": Param(None, type=["null", "string"], description="Why the hold is lifted."),
        "report": Param(None, type=["null", "string"], description="The uploaded report."),
        "voucher": Param(None, type=["null", "string"], description="Signed by the page."),
    },
    default_args={"owner": OWNER, **NO_RETRIES},
    tags=["payments", "solidarity", "finance"],
    doc_md=__doc__,
)
def solidarity_finance_action() -> None:
    @task
    def act() -> dict[str, Any]:
        from payments.orchestration import finance_actions as stage

        context = get_current_context()
        params = dict(context["params"])
        return stage.act(params, triggered_as=context["dag_run"].triggering_user_name)

    act()


solidarity_finance_action()
