"""Pay an emergency social aid in one batch: fund files in, signed payment files at the bank.

**Tasks**: `plan` checks the trigger form; `receive` (one per fund) fetches the
fund's file, checks it and validates its rows; `conclude` deduplicates across
funds, computes the amounts, records them in the ledger and signs the payment
files; `approval` waits for finance (four eyes); `deliver` (one per fund)
uploads that fund's files exactly once; `report` ties the ledger to the files.

Everything is decided in the `payments` package (`payments.orchestration`):
this file only declares tasks. Each task imports its module of
`payments.orchestration` when it runs, never at parse time: the DAG processor
re-parses this file, and the scheduler that forks task processes must not hold
the data stack's threads. Each module imports only what its task needs: a
hundred `receive` and a hundred `deliver` processes each pay for their imports.
Operating guide: docs/operating.md.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import AsyncCallback, DeadlineAlert, dag, get_current_context, task

from payments.orchestration.approval import FinanceApprovalOperator
from payments.orchestration.assets import AT_THE_BANK, PAYMENT_BATCH, RUN_SUMMARY
from payments.orchestration.deadline import SchemeCutoff, batch_late
from payments.orchestration.defaults import OWNER, RETRIES, SFTP_POOL
from payments.orchestration.form import batch_params


@dag(
    dag_id="solidarity_payment_batch",
    schedule=None,
    catchup=False,
    max_active_runs=1,
    params=batch_params(),
    # Money leaves first: every task of a batch outranks the reconciliation runs its
    # deliveries trigger (weights 1-3), which otherwise took a slot from
    # delivery time and again (10 runs during a national delivery).
    default_args={"owner": OWNER, "priority_weight": 10, "weight_rule": "absolute", **RETRIES},
    deadline=DeadlineAlert(
        reference=SchemeCutoff(),
        interval=timedelta(0),
        callback=AsyncCallback(batch_late, kwargs={"what": "bank cut-off"}),
    ),
    tags=["payments", "solidarity"],
    doc_md=__doc__,
)
def solidarity_payment_batch() -> None:
    @task
    def plan() -> dict[str, Any]:
        from payments.orchestration import receiving as stage

        context = get_current_context()
        return stage.plan(context["params"], context["run_id"])

    @task
    def funds_to_receive(planned: dict[str, Any]) -> list[str]:
        return list(planned["funds"])

    @task(pool=SFTP_POOL, map_index_template="{{ fund_code }}")
    def receive(planned: dict[str, Any], fund_code: str) -> dict[str, Any]:
        from payments.orchestration import receiving as stage

        get_current_context()["fund_code"] = fund_code  # type: ignore[typeddict-unknown-key]
        return stage.receive(planned, fund_code)

    @task(trigger_rule="all_done", outlets=[RUN_SUMMARY])
    def conclude(planned: dict[str, Any]) -> dict[str, Any]:
        from payments.orchestration import national as stage

        dag_run = get_current_context()["dag_run"]
        return stage.conclude(
            planned,
            triggered_by=dag_run.triggering_user_name,
            airflow_run=(dag_run.dag_id, dag_run.run_id),
        )

    # From here on, each task finds its payments run in the ledger by its own Airflow
    # run: no XCom names what is approved or paid (the operator may rewrite XComs).
    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def needs_approval() -> bool:
        from payments.orchestration import decision as stage

        return stage.needs_approval(_this_run())

    approval = FinanceApprovalOperator(
        task_id="approval",
        approve_task_id="record_approval",
        reject_task_id="record_rejection",
        retries=0,
    )

    @task(outlets=[PAYMENT_BATCH])
    def record_approval() -> list[str]:
        from payments.orchestration import decision as stage

        return stage.record_approval(_this_run())

    @task
    def record_rejection() -> dict[str, Any]:
        from payments.orchestration import decision as stage

        return stage.record_rejection(_this_run())

    @task(pool=SFTP_POOL, outlets=[AT_THE_BANK], map_index_template="{{ fund_code }}")
    def deliver(fund_code: str) -> dict[str, Any]:
        from payments.orchestration import delivery as stage

        context = get_current_context()
        context["fund_code"] = fund_code  # type: ignore[typeddict-unknown-key]
        return stage.deliver(_this_run(), fund_code, owner=stage.task_owner(context["ti"]))

    @task(trigger_rule="none_failed_min_one_success")
    def report() -> dict[str, Any]:
        from payments.orchestration import delivery as stage

        params = get_current_context()["params"]
        return stage.report(_this_run(), dry_run=bool(params.get("dry_run")))

    planned = plan()
    received = receive.partial(planned=planned).expand(fund_code=funds_to_receive(planned))
    summary = conclude(planned)
    received >> summary
    summary >> needs_approval() >> approval
    funds = record_approval()
    rejected = record_rejection()
    approval >> [funds, rejected]
    delivered = deliver.expand(fund_code=funds)
    final = report()
    [summary, delivered, rejected] >> final


def _this_run() -> tuple[str, str]:
    """(DAG id, Airflow run id) of the running task: how the ledger names its payments run."""
    dag_run = get_current_context()["dag_run"]
    return dag_run.dag_id, dag_run.run_id


solidarity_payment_batch()
