"""The DAG's national step, ``conclude``: gather the funds, deduplicate and compute,
record in the ledger, write and sign the payment files.

On a retry after the workspace was already published, it returns the summary
its earlier attempt wrote.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from payments.credentials import beneficiary_secret, payment_signer
from payments.money import euros
from payments.orchestration.request import parse_request
from payments.orchestration.settings import task_settings
from payments.orchestration.summary import approval_text, run_summary
from payments.pipeline import LATEST, conclude_run
from payments.run_spec import Gathered, Recording, RunOptions
from payments.storage import staged
from payments.validation.folder import gather_validation

log = logging.getLogger(__name__)


SUMMARY = "summary.json"


def conclude(
    planned: Mapping[str, Any],
    *,
    triggered_by: str | None,
    airflow_run: tuple[str, str] | None = None,
    started_at: datetime | None = None,
) -> dict[str, Any]:
    """National step: gather the funds, deduplicate and compute, record, sign the files.

    Writes ``summary.json`` and ``approval.md`` beside the run's outputs, and
    records in the ledger that ``airflow_run`` (DAG id, Airflow run id)
    concluded this payments run: the later tasks look it up there, never in
    this task's XCom. On a retry after the workspace was already renamed,
    returns the summary it wrote.
    """
    settings = task_settings()
    request = parse_request(planned)
    scheme = request.scheme()
    storage = settings.storage()
    ws = str(planned["workspace"])
    pointer = f"runs/.airflow/{PurePosixPath(ws).name}"
    if not storage.exists(ws) and storage.exists(pointer):
        done = storage.read_text(pointer)
        log.info("national step already done by an earlier attempt: %s", done)
        summary: dict[str, Any] = json.loads(storage.read_text(done))
        _bind(settings.ledger_url, airflow_run, summary)
        return summary
    with staged(storage, pull=[f"{ws}/validation", f"{ws}/received"]) as area:
        root = area.root
        staging = root / ws
        validation = gather_validation(
            staging / "validation",
            scheme.id,
            list(request.funds),
            why_absent="its receive task failed after its retries (see that task's log); "
            "take it in a complementary run",
        )
        result = conclude_run(
            root,
            scheme,
            Gathered(staging, validation, inputs_root=staging / "received"),
            secret=beneficiary_secret(settings),
            signer=payment_signer(settings),
            recording=Recording(
                settings.ledger_url,
                triggered_by,
                started_at,
                parameters={k: v for k, v in request.to_dict().items() if k != "dry_run"},
            ),
            options=RunOptions(dry_run=request.dry_run, run_date=request.hold_date()),
        )
        summary = run_summary(result, request.to_dict(), root, triggered_by)
        summary["approval_text"] = approval_text(summary)
        (result.out_dir / SUMMARY).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        (result.out_dir / "approval.md").write_text(summary["approval_text"])
        (root / pointer).parent.mkdir(parents=True, exist_ok=True)
        (root / pointer).write_text(f"{summary['run_dir']}/{SUMMARY}")
        # Published in this order: a pointer is never seen before what it points to.
        area.publish("archive", replace=False)
        area.publish(summary["run_dir"])
        if not request.dry_run:
            area.publish(f"runs/{LATEST}")
        area.publish(pointer)
        area.remove(ws)
    _bind(settings.ledger_url, airflow_run, summary)
    _log_summary(summary)
    return summary


def _bind(ledger_url: str, airflow_run: tuple[str, str] | None, summary: Mapping[str, Any]) -> None:
    """The ledger learns which payments run this Airflow run concluded (not for a dry run,
    which the ledger does not hold)."""
    if airflow_run is None or summary.get("dry_run"):
        return
    from sqlalchemy.orm import Session

    from payments.clock import utc_now
    from payments.ledger.approval import bind
    from payments.ledger.migrate import engine_for

    with Session(engine_for(ledger_url)) as session, session.begin():
        bind(session, *airflow_run, str(summary["run_id"]), utc_now())


def _log_summary(summary: Mapping[str, Any]) -> None:
    v = summary["validation"]
    if summary.get("dry_run"):
        national = summary.get("national") or {}
        log.warning(
            "DRY RUN %s: nothing recorded, nothing to approve or send; the budget: %s households "
            "to be paid, %s (Browse → Payments: Runs)",
            summary["run_id"],
            (national.get("payable") or {}).get("households", 0),
            euros(national.get("payable_cents", 0)),
        )
    log.info(
        "run %s: rows read %s = accepted %s + quarantined %s; funds %s",
        summary["run_id"],
        v["rows_read"],
        v["accepted"],
        v["quarantined"],
        v["funds"],
    )
    files = summary.get("payment_files")
    if files:
        log.info(
            "run %s: %s payments, %s, in %s signed files (not sent)",
            summary["run_id"],
            files["payments"],
            euros(files["cents"]),
            files["files"],
        )
    for held_reason, h in summary.get("by_hold_reason", {}).items():
        log.info("held %s: %s households, %s", held_reason, h["households"], euros(h["cents"]))
    for n in summary.get("not_received", []):
        log.warning("fund %s not in this run: %s", n["fund"], n["message"])
