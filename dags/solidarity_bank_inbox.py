"""Watch the bank's report folder: an asset event when new status reports or returns arrive.

Runs every 15 minutes; a run that finds nothing new is skipped (no event), so
the reconciliation DAG runs only when there is something to reconcile.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from payments.orchestration.assets import BANK_REPORTS
from payments.orchestration.defaults import OWNER, SFTP_POOL, WATCH_RETRIES


@dag(
    dag_id="solidarity_bank_inbox",
    schedule=timedelta(minutes=15),
    start_date=datetime(2020, 5, 1),
    catchup=False,
    # Runs by itself when its data arrives: not left paused by a deployment that pauses
    # new DAGs (airflow standalone, make airflow).
    is_paused_upon_creation=False,
    max_active_runs=1,
    default_args={"owner": OWNER, **WATCH_RETRIES},
    tags=["payments", "solidarity", "finance"],
    doc_md=__doc__,
)
def solidarity_bank_inbox() -> None:
    @task(pool=SFTP_POOL, outlets=[BANK_REPORTS])
    def new_reports_waiting() -> int:
        from payments.orchestration.reconcile import reports_or_skip

        return reports_or_skip()

    new_reports_waiting()


solidarity_bank_inbox()
