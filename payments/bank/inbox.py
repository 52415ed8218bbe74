"""The bank's reports, each applied once, one at a time: the loop the CLI and the DAG share.

A report is *seen* when the ledger holds it (``bank_reports``, by SHA-256),
recorded in the same transaction that applied it. One that cannot be read
(not XML, not a report, too large, a line the ledger refuses) is recorded as
*quarantined* with the reason, in a transaction of its own, and the others go
on: a bad report never takes good ones down with it, and none is lost.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from payments.bank.lines import read_report
from payments.bank.messages import ReportError
from payments.bank.reports import apply_report
from payments.errors import PaymentsError
from payments.ledger import events
from payments.ledger.models import BankReport
from payments.ledger.states import IllegalTransition
from payments.registry import load_registry

#: The cap when the caller names none: the registry's banks' (48 MiB in the shipped
#: profiles: larger than any report a bank sends for our files, a status line per
#: transaction of a 100,000-payment file being ~20 MB; parsing one costs ~20x its size).
MAX_REPORT_BYTES = 48 * 2**20


class ReportsQuarantined(PaymentsError):
    """Some reports could not be applied; they are in the ledger with their reasons."""


@dataclass
class Ingested:
    applied: int = 0
    accepted: int = 0
    rejected: int = 0
    returned: int = 0
    already_seen: int = 0
    flagged: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)  # "name: reason"
    #: Applied reports in which no line found a payment or file of ours.
    unmatched: list[str] = field(default_factory=list)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def seen(engine: Engine) -> set[str]:
    """SHA-256 of every report the ledger holds (applied or quarantined)."""
    with Session(engine) as session:
        return set(session.execute(select(BankReport.sha256)).scalars())


def ingest_reports(
    engine: Engine,
    reports: Iterable[tuple[str, bytes]],
    *,
    at: datetime,
    max_bytes: int | None = None,
) -> Ingested:
    """Apply each (name, bytes) report not seen before, each in its own transaction.

    ``max_bytes``: a larger report is quarantined unread (default: the largest
    ``report_max_bytes`` of the registry's bank profiles).
    """
    cap = max_bytes or load_registry().report_max_bytes
    out = Ingested()
    for name, data in reports:
        sha = digest(data)
        with Session(engine) as session:
            known = session.get(BankReport, sha)
            if known is not None:
                out.already_seen += 1
                if known.outcome == "quarantined":
                    out.quarantined.append(f"{name}: {known.reason}")
                continue
        try:
            _apply(engine, name, data, sha, at, out, cap)
        except (ReportError, IllegalTransition, SQLAlchemyError) as exc:
            reason = _reason(exc)
            _quarantine(engine, name, data, sha, reason, at)
            out.quarantined.append(f"{name}: {reason}")
    return out


def _apply(
    engine: Engine, name: str, data: bytes, sha: str, at: datetime, out: Ingested, cap: int
) -> None:
    if len(data) > cap:
        raise ReportError(f"{len(data):,} bytes, over the {cap:,} a report may have")
    lines = read_report(data)
    with Session(engine) as session, session.begin():
        applied = apply_report(session, lines, source=name, data=data, at=at)
        session.add(
            BankReport(sha256=sha, name=name, bytes=len(data), received_at=at, outcome="applied")
        )
    out.applied += 1
    out.accepted += applied.accepted
    out.rejected += applied.rejected
    out.returned += applied.returned
    out.flagged += applied.flagged
    if applied.lines and not applied.matched:
        out.unmatched.append(f"{name}: no line matched a payment file or payment of ours")


def _reason(exc: Exception) -> str:
    if isinstance(exc, SQLAlchemyError):
        return f"the ledger refused a line ({type(getattr(exc, 'orig', None) or exc).__name__})"
    return str(exc).splitlines()[0][:500]


def _quarantine(
    engine: Engine, name: str, data: bytes, sha: str, reason: str, at: datetime
) -> None:
    with Session(engine) as session, session.begin():
        session.add(
            BankReport(
                sha256=sha,
                name=name,
                bytes=len(data),
                received_at=at,
                outcome="quarantined",
                reason=reason,
            )
        )
        events.append(
            session,
            "bank_report_quarantined",
            {"source": name, "sha256": sha, "reason": reason},
            at=at,
        )


def received(engine: Engine, *, quarantined_only: bool = False) -> list[dict[str, object]]:
    """Every report the ledger holds, newest first: name, SHA-256, size, outcome, reason."""
    query = select(BankReport).order_by(BankReport.received_at.desc(), BankReport.name)
    if quarantined_only:
        query = query.where(BankReport.outcome == "quarantined")
    with Session(engine) as session:
        return [
            {
                "name": r.name,
                "sha256": r.sha256,
                "bytes": r.bytes,
                "received_at": r.received_at,
                "outcome": r.outcome,
                "reason": r.reason or "",
            }
            for r in session.execute(query).scalars()
        ]


def record_uploads(
    engine: Engine, reports: list[tuple[str, bytes]], *, by: str, at: datetime
) -> None:
    """Who brought these reports (not the bank's inbox): recorded before they are applied,
    so that each re-issue they cause is traced to that user (four eyes at its approval)."""
    with Session(engine) as session, session.begin():
        for name, data in reports:
            events.append(
                session,
                "bank_report_uploaded",
                {"by": by, "name": name, "sha256": digest(data)},
                at=at,
            )
