"""Audit: verify the ledger's integrity, or replay a run and compare every output.

Started by an auditor from the payments *Audit* page, which signs a voucher
for the auditor and the check (a run without one is refused):
`verify` checks the hash-chained event log, the ledger's rows and every
payment file; `replay` recomputes a run from its archive and compares each
output byte for byte. The result is kept in the storage root (`audits/`)
and shown on the Audit page; a check that finds a problem fails.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from payments.orchestration.defaults import NO_RETRIES, OWNER


@dag(
    dag_id="solidarity_audit",
    schedule=None,
    catchup=False,
    is_paused_upon_creation=False,
    params={
        "check": Param("verify", enum=["verify", "replay"], description="What to check."),
        "run_id": Param(
            None,
            type=["null", "string"],
            description="The payment run to replay (a replay only).",
        ),
        "voucher": Param(None, type=["null", "string"], description="Signed by the page."),
    },
    default_args={"owner": OWNER, **NO_RETRIES},
    tags=["payments", "solidarity", "audit"],
    doc_md=__doc__,
)
def solidarity_audit() -> None:
    @task
    def check() -> dict[str, Any]:
        from payments.orchestration import audit as stage

        context = get_current_context()
        params = context["params"]
        return stage.run_check(
            params["check"],
            params.get("run_id") or "",
            requested_by=context["dag_run"].triggering_user_name,
            voucher=params.get("voucher"),
        )

    check()


solidarity_audit()
