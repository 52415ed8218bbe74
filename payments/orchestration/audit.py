"""The audit DAG's task: verify the ledger, or replay a run, and keep the result.

What ``payments audit verify`` and ``payments replay`` do, run by Airflow for
an auditor who started it from the Audit page (or the trigger form). The
result is written to ``<storage root>/audits/`` as JSON (who asked, when, what
was checked, every problem found) and returned; the Audit page lists them.
A check that finds a problem fails the task, so the run turns red.
"""

from __future__ import annotations

import json
import logging
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from payments.clock import utc_now
from payments.config import load_settings
from payments.credentials import beneficiary_secret, identity_public_key, payment_signer
from payments.errors import PaymentsError, Refused
from payments.four_eyes import user_id
from payments.identity import verify_for_run
from payments.ledger.integrity import audit
from payments.ledger.migrate import engine_for
from payments.ledger.vouchers import spend
from payments.logs import install_masking
from payments.replay import replay_run
from payments.run_ids import RUN_ID
from payments.sepa.signing import load_certificate, signer_paths
from payments.storage import staged

log = logging.getLogger(__name__)
AUDITS = "audits"
CHECKS = ("verify", "replay")


class AuditFailed(PaymentsError):
    """The check found problems (listed in its result)."""


def result_key(check: str, run_id: str, at: datetime) -> str:
    """Where a check's result is kept: sortable by time, named by what was checked."""
    what = f"{check}-{run_id}" if run_id else check
    return f"{AUDITS}/{at:%Y%m%dT%H%M%S}-{what}.json"


def run_check(
    check: str, run_id: str, *, requested_by: str | None, voucher: object = None
) -> dict[str, Any]:
    """Run one check; write and return its result; fail when it found a problem.

    What the Audit page checks is checked again here, since anyone who may
    trigger DAGs can start this one with any conf: the voucher the page signed
    for an auditor and this check, and the run id's form (a replay scratches a
    folder named after it).
    """
    install_masking()
    if check not in CHECKS:
        raise PaymentsError(f"unknown check {check!r}: one of {', '.join(CHECKS)}")
    if check == "replay" and not RUN_ID.fullmatch(run_id):
        raise PaymentsError(f"a replay needs the id of a payments run, not {run_id!r}")
    settings = load_settings()
    vouched = verify_for_run(
        identity_public_key(settings),
        voucher,
        action="audit",
        params={"check": check, "run_id": run_id if check == "replay" else None},
        at=utc_now(),
        triggered_as=requested_by,
    )
    if user_id(vouched.user.id) not in {user_id(a) for a in settings.auditors}:
        raise Refused(f"{vouched.user.name} is not an auditor (PAYMENTS_AUDITORS)")
    with Session(engine_for(settings.ledger_url)) as session, session.begin():
        spend(session, vouched, utc_now())
    started = utc_now()
    storage = settings.storage()
    if check == "verify":
        with staged(storage, pull=["runs"]) as area:
            cert = signer_paths(settings.data_dir)[1]
            trusted = load_certificate(cert) if cert.exists() else None
            with Session(engine_for(settings.ledger_url)) as session:
                problems, files = audit(session, area.root, trusted)
        details: dict[str, Any] = {"payment_files_checked": files}
    else:
        secret = beneficiary_secret(settings, create=False)
        signer = payment_signer(settings, create=False)
        with (
            staged(storage, pull=[f"runs/{run_id}", "archive"]) as area,
            tempfile.TemporaryDirectory(prefix="replay-") as scratch,
        ):
            # A fresh folder of its own: a replay never clears a path the conf names.
            report = replay_run(area.root, run_id, Path(scratch) / run_id, secret=secret,
                                signer=signer)  # fmt: skip
        problems = report.problems
        details = {
            "identical_files": len(report.identical),
            "replayed_run_id": report.replayed_run_id,
        }
    result = {
        "check": check,
        "run_id": run_id or None,
        "requested_by": requested_by,
        "started_at": started.isoformat(),
        "finished_at": utc_now().isoformat(),
        "ok": not problems,
        "problems": problems,
        **details,
    }
    storage.write_text(result_key(check, run_id, started), json.dumps(result, indent=2) + "\n")
    for problem in problems:
        log.error("%s: %s", check, problem)
    if problems:
        raise AuditFailed(f"{check}: {len(problems)} problems, see {AUDITS}/ or the Audit page")
    log.info("%s %s: intact (%s)", check, run_id or "ledger", details)
    return result
