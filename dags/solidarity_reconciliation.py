"""Reconcile with the bank: status reports and returns in, where every euro is out.

Scheduled by data, not by the clock: it runs when payment files reach the bank
(asset `solidarity_payments_at_bank`) or when the bank inbox watch sees new
reports (asset `solidarity_bank_reports`). `fetch` copies reports not seen
before, `ingest` applies them to the ledger (unmatched or duplicated lines are
flagged, never ignored), `reconcile` writes the finance table.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from payments.orchestration.assets import AT_THE_BANK, BANK_REPORTS, RECONCILIATION
from payments.orchestration.defaults import OWNER, RETRIES, SFTP_POOL


@dag(
    dag_id="solidarity_reconciliation",
    schedule=(AT_THE_BANK | BANK_REPORTS),
    catchup=False,
    # Runs by itself when its data arrives: not left paused by a deployment that pauses
    # new DAGs (airflow standalone, make airflow).
    is_paused_upon_creation=False,
    max_active_runs=1,
    default_args={"owner": OWNER, **RETRIES},
    tags=["payments", "solidarity", "finance"],
    doc_md=__doc__,
)
def solidarity_reconciliation() -> None:
    @task(pool=SFTP_POOL)
    def fetch() -> list[str]:
        from payments.orchestration import reconcile as stage

        return stage.new_reports()

    @task
    def ingest(paths: list[str]) -> dict[str, Any]:
        from payments.orchestration import reconcile as stage

        return stage.ingest(paths)

    @task(outlets=[RECONCILIATION])
    def reconcile(ingested: dict[str, Any]) -> dict[str, Any]:
        from payments.orchestration import reconcile as stage

        return stage.write_reconciliation()

    reconcile(ingest(fetch()))


solidarity_reconciliation()
