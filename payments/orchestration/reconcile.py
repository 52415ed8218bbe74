"""The reconciliation DAG's tasks: fetch the bank's reports, apply them, write where every euro is.

The bank drops its status reports (pain.002) and returns (camt.054) in
``bank/reports/`` on its server (the ``payments_bank`` connection; locally
``<storage root>/bank/reports/``). Each report the ledger has not seen is
copied into ``<storage root>/bank-reports/`` under its SHA-256 prefix, then
applied to the ledger (:mod:`payments.bank.inbox`: seen means recorded there,
with the outcome). Every unmatched or duplicated line is logged as a warning
and returned, never dropped; a report that cannot be applied is quarantined
and fails the task once the others are applied.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from payments.bank.inbox import ReportsQuarantined, digest, ingest_reports, seen
from payments.clock import utc_now
from payments.config import load_settings
from payments.credentials import payment_signer
from payments.ledger.finance import finance_by_fund, reissue_list, tie_out
from payments.ledger.integrity import CHAIN_HEAD, write_chain_head
from payments.ledger.migrate import engine_for, upgrade
from payments.logs import install_masking
from payments.money import euros
from payments.orchestration.endpoints import bank_target
from payments.spreadsheet import write_csv
from payments.storage import staged
from payments.transport.base import Transport

log = logging.getLogger(__name__)
REPORTS_FOLDER = "bank/reports"
LOCAL_COPIES = "bank-reports"
RECONCILED = "reconciliation"


def _local_name(name: str, data: bytes) -> str:
    return f"{hashlib.sha256(data).hexdigest()[:16]}-{name}"


def _bank_name(local: str) -> str:
    """The name the bank gave a report, from its local copy's (``<sha prefix>-<name>``)."""
    return Path(local).name.split("-", 1)[-1]


def _unseen(transport: Transport, known: set[str]) -> list[tuple[str, bytes]]:
    out = []
    for name in transport.listdir(REPORTS_FOLDER):
        if not name.endswith(".xml"):
            continue
        data = transport.read(f"{REPORTS_FOLDER}/{name}")
        if digest(data) not in known:
            out.append((name, data))
    return out


def pending_reports() -> int:
    """How many reports in the bank's folder the ledger has not seen yet (the inbox watch)."""
    install_masking()
    settings = load_settings()
    upgrade(settings.ledger_url)
    known = seen(engine_for(settings.ledger_url))
    with bank_target() as transport:
        waiting = len(_unseen(transport, known))
    log.info("bank reports folder: %s not reconciled yet", waiting)
    return waiting


def reports_or_skip() -> int:
    """The inbox watch: how many reports wait; none skips the task, so that no asset event
    is emitted (a task that succeeds emits its outlets' events even when it found
    nothing, and the reconciliation would run every 15 minutes for nothing)."""
    waiting = pending_reports()
    if not waiting:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException("no new bank report: nothing to reconcile")
    return waiting


def new_reports() -> list[str]:
    """Copy the reports the ledger has not seen; return their paths in the storage root."""
    install_masking()
    settings = load_settings()
    upgrade(settings.ledger_url)
    storage = settings.storage()
    known = seen(engine_for(settings.ledger_url))
    fetched: list[str] = []
    with bank_target() as transport:
        for name, data in _unseen(transport, known):
            path = f"{LOCAL_COPIES}/{_local_name(name, data)}"
            storage.write_bytes(path, data)
            fetched.append(path)
    log.info("bank reports: %s new", len(fetched))
    return sorted(fetched)


def ingest(paths: list[str]) -> dict[str, Any]:
    """Apply each report to the ledger; counts per kind and every flagged line.

    Fails (after applying every report that can be) when one was quarantined,
    on each retry too: a person must look. The next run does not fetch it
    again; the ledger keeps it with its reason.
    """
    install_masking()
    settings = load_settings()
    storage = settings.storage()
    upgrade(settings.ledger_url)
    done = ingest_reports(
        engine_for(settings.ledger_url),
        ((_bank_name(rel), storage.read_bytes(rel)) for rel in paths),
        at=utc_now(),
    )
    log.info(
        "bank reports: %s applied, %s seen before; accepted %s, rejected %s, returned %s",
        done.applied,
        done.already_seen,
        done.accepted,
        done.rejected,
        done.returned,
    )
    for line in done.flagged:
        log.warning("flagged: %s", line)
    for line in done.quarantined:
        log.error("quarantined: %s", line)
    for line in done.unmatched:
        log.error("%s", line)
    if done.quarantined:
        raise ReportsQuarantined(
            f"{len(done.quarantined)} bank reports quarantined (the others are applied): "
            + "; ".join(done.quarantined[:3])
        )
    return {
        "reports": done.applied,
        "accepted": done.accepted,
        "rejected": done.rejected,
        "returned": done.returned,
        "flagged": done.flagged,
        "unmatched": done.unmatched,
    }


def _write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    write_csv(rows, path)


def write_reconciliation() -> dict[str, Any]:
    """``reconciliation/by_fund.csv`` from the ledger's finance view, and its national totals."""
    install_masking()
    settings = load_settings()
    engine = engine_for(settings.ledger_url)
    rows = finance_by_fund(engine)
    with staged(settings.storage(), publish=[RECONCILED]) as area:
        out = area.root / RECONCILED
        out.mkdir(parents=True, exist_ok=True)
        if rows:
            _write_csv(rows, out / "by_fund.csv")
        per_run = tie_out(engine)
        if per_run:
            _write_csv(per_run, out / "by_run_fund.csv")
        with Session(engine) as session:
            reissue = reissue_list(session)
        if reissue:
            _write_csv(reissue, out / "reissue.csv")
        else:
            (out / "reissue.csv").unlink(missing_ok=True)  # an old list would mislead finance
        log.info("re-issue list: %s payments rejected or returned, not re-issued yet", len(reissue))
        with Session(engine) as session:  # the bank's answers anchored like the deliveries
            head = write_chain_head(session, out, payment_signer(settings))
        log.info("event chain head %s signed into %s/%s", head["seq"], RECONCILED, CHAIN_HEAD)
        broken = [f"{r['run_id']}/{r['fund_code']}" for r in per_run if not r["ties_out"]]
        for line in broken:
            log.error("reconciliation: %s does not tie out (files at the bank vs ledger)", line)
    cents_columns = sorted({k for r in rows for k in r if k.endswith("_cents")})
    totals = {k: sum(int(r[k] or 0) for r in rows) for k in cents_columns}
    for k, v in totals.items():
        log.info("reconciliation: %s %s", k.removesuffix("_cents"), euros(v))
    return {
        "rows": len(rows),
        "totals_cents": totals,
        "csv": f"{settings.storage()}/{RECONCILED}/by_fund.csv",
        "not_tied_out": broken,
        "reissue": len(reissue),
    }
