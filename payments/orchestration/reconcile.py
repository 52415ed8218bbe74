"""The reconciliation DAG's tasks: fetch the bank's reports, apply them, write where every euro is.

The bank drops its status reports (pain.002) and returns (camt.054) in
``bank/reports/`` on its server (the ``payments_bank`` connection; locally
``<storage root>/bank/reports/``). Each report is copied once into
``<storage root>/bank-reports/`` under its SHA-256 prefix, applied to the
ledger (matched by MsgId / EndToEndId), and every unmatched or duplicated line
is logged as a warning and returned, never dropped.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy.orm import Session

from payments.bank.reports import apply_report, parse_camt054, parse_pain002
from payments.config import load_settings
from payments.ledger.finance import finance_by_fund, reissue_list, tie_out
from payments.ledger.migrate import engine_for, upgrade
from payments.logs import install_masking
from payments.money import euros
from payments.orchestration.endpoints import bank_target
from payments.storage import staged

log = logging.getLogger(__name__)
REPORTS_FOLDER = "bank/reports"
LOCAL_COPIES = "bank-reports"
RECONCILED = "reconciliation"


def _local_name(name: str, data: bytes) -> str:
    return f"{hashlib.sha256(data).hexdigest()[:16]}-{name}"


def pending_reports() -> int:
    """How many reports in the bank's folder were not copied yet (the inbox watch)."""
    install_masking()
    storage = load_settings().storage()
    seen = set(storage.files(LOCAL_COPIES))
    with bank_target() as transport:
        names = [n for n in transport.listdir(REPORTS_FOLDER) if n.endswith(".xml")]
        waiting = sum(
            _local_name(n, transport.read(f"{REPORTS_FOLDER}/{n}")) not in seen for n in names
        )
    log.info("bank reports folder: %s files, %s not reconciled yet", len(names), waiting)
    return waiting


def new_reports() -> list[str]:
    """Copy reports not seen before from the bank; return their paths in the storage root."""
    install_masking()
    storage = load_settings().storage()
    seen = set(storage.files(LOCAL_COPIES))
    fetched: list[str] = []
    with bank_target() as transport:
        for name in transport.listdir(REPORTS_FOLDER):
            if not name.endswith(".xml"):
                continue
            data = transport.read(f"{REPORTS_FOLDER}/{name}")
            local_name = _local_name(name, data)
            if local_name in seen:
                continue
            storage.write_bytes(f"{LOCAL_COPIES}/{local_name}", data)
            fetched.append(f"{LOCAL_COPIES}/{local_name}")
    log.info("bank reports: %s new", len(fetched))
    return sorted(fetched)


def ingest(paths: list[str]) -> dict[str, Any]:
    """Apply each report to the ledger; counts per kind and every flagged line."""
    install_masking()
    settings = load_settings()
    storage = settings.storage()
    upgrade(settings.ledger_url)
    engine = engine_for(settings.ledger_url)
    counts = {"reports": 0, "accepted": 0, "rejected": 0, "returned": 0}
    flagged: list[str] = []
    for rel in paths:
        data = storage.read_bytes(rel)
        lines = parse_pain002(data) if b"CstmrPmtStsRpt" in data else parse_camt054(data)
        with Session(engine) as session, session.begin():
            applied = apply_report(
                session,
                lines,
                source=Path(rel).name,
                data=data,
                at=datetime.now(UTC).replace(tzinfo=None),
            )
        log.info(
            "%s: %s lines: accepted %s, rejected %s, returned %s",
            Path(rel).name,
            applied.lines,
            applied.accepted,
            applied.rejected,
            applied.returned,
        )
        for line in applied.flagged:
            log.warning("flagged: %s", line)
        counts["reports"] += 1
        for k in ("accepted", "rejected", "returned"):
            counts[k] += getattr(applied, k)
        flagged += applied.flagged
    return {**counts, "flagged": flagged}


def _write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    pacsv.write_csv(pa.Table.from_pylist(rows), path, pacsv.WriteOptions(delimiter=";"))


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
