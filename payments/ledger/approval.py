"""What finance is shown before approving a run, and what binds the answer: from the ledger.

Everything here is read from the ledger, which only the ledger's writer (a
worker) changes, never from an XCom or a run's ``conf``. The Airflow run that
concluded a payments run is recorded with it (:func:`bind`), every later task
of that Airflow run finds its payments run with :func:`bound`; the approval
text is rendered from :func:`facts` and :func:`causes`, with the signed
manifest's SHA-256 recorded as shown (:func:`mark_shown`).

Each query is a grouped count over one run's payments (indexed by run, by
key): memory does not grow with the run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from payments.errors import Refused
from payments.ledger import events, states
from payments.ledger.models import (
    AirflowRun,
    BankEvent,
    Event,
    Hold,
    InputFile,
    Payment,
    PaymentFileRow,
    Run,
)

#: Who moved a payment when no person did: a report the bank's SFTP inbox fetched.
THE_BANK = "the bank (SFTP inbox)"


def bind(session: Session, dag_id: str, airflow_run_id: str, run_id: str, at: datetime) -> None:
    """Record that this Airflow run concluded ``run_id``; refused if it concluded another."""
    if session.get(Run, run_id) is None:
        return  # nothing recorded (nobody accepted): nothing to approve or send
    known = session.get(AirflowRun, (dag_id, airflow_run_id))
    if known is not None:
        if known.run_id != run_id:
            raise Refused(
                f"Airflow run {airflow_run_id} concluded payments run {known.run_id}, "
                f"not {run_id}: a DAG run pays one run"
            )
        return
    session.add(
        AirflowRun(dag_id=dag_id, airflow_run_id=airflow_run_id, run_id=run_id, concluded_at=at)
    )
    events.append(
        session, "airflow_run_bound", {"dag": dag_id, "airflow_run": airflow_run_id}, at=at,
        run_id=run_id,
    )  # fmt: skip
    session.flush()


def bound(session: Session, dag_id: str, airflow_run_id: str) -> AirflowRun | None:
    """The payments run this Airflow run concluded, if it concluded one."""
    return session.get(AirflowRun, (dag_id, airflow_run_id))


def mark_shown(
    session: Session, dag_id: str, airflow_run_id: str, manifest_sha256: str, at: datetime
) -> None:
    """The manifest finance is shown for this Airflow run (once: a second render must agree)."""
    row = session.get(AirflowRun, (dag_id, airflow_run_id))
    if row is None:
        raise Refused(f"Airflow run {airflow_run_id} concluded no payments run")
    if row.shown_manifest_sha256 and row.shown_manifest_sha256 != manifest_sha256:
        raise Refused(
            f"run {row.run_id}: finance was shown manifest {row.shown_manifest_sha256[:12]}…, "
            f"the run's is now {manifest_sha256[:12]}…: nothing is approved; rerun the batch"
        )
    if not row.shown_manifest_sha256:
        row.shown_manifest_sha256, row.shown_at = manifest_sha256, at
        events.append(
            session,
            "approval_shown",
            {"airflow_run": airflow_run_id, "manifest_sha256": manifest_sha256},
            at=at,
            run_id=row.run_id,
        )
        session.flush()


@dataclass
class Cause:
    """Payments of the run that pay again what something else stopped, and who caused it."""

    payments: int = 0
    cents: int = 0
    by: set[str] = field(default_factory=set)


@dataclass
class Causes:
    """Re-issues by the state of the attempt they replace, and released holds adopted."""

    reissued: dict[str, Cause] = field(default_factory=dict)
    released: Cause = field(default_factory=Cause)

    def people(self) -> dict[str, str]:
        """User id → what they did, for four eyes (the bank is nobody)."""
        out: dict[str, str] = {}
        for state, cause in self.reissued.items():
            for who in cause.by - {THE_BANK}:
                out.setdefault(who, f"caused re-issues ({state})")
        for who in self.released.by:
            out.setdefault(who, "released a hold")
        return out


def causes(session: Session, run_id: str) -> Causes:
    """What in this run pays again (re-issues) or was held and released, and who caused each."""
    out = Causes()
    earlier = aliased(Payment)
    replaced = (
        (earlier.beneficiary_key == Payment.beneficiary_key)
        & (earlier.scheme_id == Payment.scheme_id)
        & (earlier.attempt == Payment.attempt - 1)
    )
    for state, n, cents in session.execute(
        select(earlier.state, func.count(), func.coalesce(func.sum(Payment.amount_cents), 0))
        .join(earlier, replaced)
        .where(Payment.run_id == run_id, Payment.attempt > 1)
        .group_by(earlier.state)
    ):
        out.reissued[str(state)] = Cause(int(n), int(cents))
    if out.reissued:
        reports = session.execute(
            select(earlier.state, BankEvent.source_sha256)
            .select_from(Payment)
            .join(earlier, replaced)
            .join(BankEvent, BankEvent.end_to_end_id == earlier.end_to_end_id)
            .where(Payment.run_id == run_id, Payment.attempt > 1, BankEvent.status == earlier.state)
            .distinct()
        ).all()
        uploaders = _uploaders(session, {str(sha) for _, sha in reports})
        for state, sha in reports:
            out.reissued[str(state)].by.add(uploaders.get(str(sha), THE_BANK))
        rejecters = session.execute(
            select(Run.approved_by)
            .select_from(Payment)
            .join(earlier, replaced)
            .join(Run, Run.run_id == earlier.run_id)
            .where(
                Payment.run_id == run_id,
                Payment.attempt > 1,
                earlier.state == states.CANCELLED,
            )
            .distinct()
        ).scalars()
        for who in rejecters:
            if states.CANCELLED in out.reissued and who:
                out.reissued[states.CANCELLED].by.add(f"{who} (rejected the earlier run)")
    # Released holds this run pays: in one of its files (one released after the files
    # were written stays for the next run, which pays it).
    paid = Payment.payment_file_id.is_not(None)
    n, cents = session.execute(
        select(func.count(), func.coalesce(func.sum(Payment.amount_cents), 0))
        .join(Hold, Hold.payment_id == Payment.id)
        .where(Payment.run_id == run_id, paid, Hold.released_at.is_not(None))
    ).one()
    out.released = Cause(int(n), int(cents))
    if n:
        out.released.by = {
            str(w)
            for w in session.execute(
                select(Hold.released_by)
                .join(Payment, Hold.payment_id == Payment.id)
                .where(Payment.run_id == run_id, paid, Hold.released_at.is_not(None))
                .distinct()
            ).scalars()
            if w
        }
    return out


def _uploaders(session: Session, digests: set[str]) -> dict[str, str]:
    """Report SHA-256 → the finance user who uploaded it on the Bank page."""
    if not digests:
        return {}
    out: dict[str, str] = {}
    for payload in session.execute(
        select(Event.payload).where(Event.kind == "bank_report_uploaded")
    ).scalars():
        body = json.loads(payload)
        if body.get("sha256") in digests and body.get("by"):
            out[str(body["sha256"])] = str(body["by"])
    return out


def released_waiting(session: Session, scheme_id: str) -> tuple[int, int]:
    """Holds released and not paid yet under the scheme (their fund's next run pays them)."""
    from payments.ledger.claims import released_ids  # polars: not for the deliver tasks

    n, cents = session.execute(
        select(func.count(), func.coalesce(func.sum(Payment.amount_cents), 0)).where(
            Payment.id.in_(released_ids(scheme_id))
        )
    ).one()
    return int(n), int(cents)


def facts(session: Session, run_id: str) -> dict[str, Any]:
    """The run's figures for finance, from the ledger: what the files pay, by rule, what is
    held and why, the funds' rows, the dates and who triggered it."""
    run = session.get(Run, run_id)
    if run is None:
        raise Refused(f"run {run_id} is not in the ledger")
    files = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(PaymentFileRow.nb_of_txs), 0),
            func.coalesce(func.sum(PaymentFileRow.ctrl_sum_cents), 0),
            func.min(PaymentFileRow.execution_date),
            func.count(func.distinct(PaymentFileRow.fund_code)),
        ).where(PaymentFileRow.run_id == run_id)
    ).one()
    filed = Payment.payment_file_id.is_not(None)
    by_rule = {
        str(rule): {"payments": int(n), "cents": int(c)}
        for rule, n, c in session.execute(
            select(Payment.rule_id, func.count(), func.sum(Payment.amount_cents))
            .where(Payment.run_id == run_id, filed)
            .group_by(Payment.rule_id)
            .order_by(Payment.rule_id)
        )
    }
    held: dict[str, dict[str, int]] = {}
    for reasons, n, c in session.execute(
        select(Hold.reasons, func.count(), func.sum(Payment.amount_cents))
        .join(Payment, Hold.payment_id == Payment.id)
        .where(Payment.run_id == run_id, Hold.released_at.is_(None))
        .group_by(Hold.reasons)
    ):
        for reason in str(reasons).split(","):
            acc = held.setdefault(reason, {"payments": 0, "cents": 0})
            acc["payments"] += int(n)
            acc["cents"] += int(c)
    held_total = session.execute(
        select(func.count(), func.coalesce(func.sum(Payment.amount_cents), 0))
        .join(Hold, Hold.payment_id == Payment.id)
        .where(Payment.run_id == run_id, Hold.released_at.is_(None))
    ).one()
    inputs = session.execute(
        select(
            InputFile.status,
            func.count(),
            func.sum(InputFile.rows_read),
            func.sum(InputFile.accepted),
            func.sum(InputFile.quarantined),
        )
        .where(InputFile.run_id == run_id)
        .group_by(InputFile.status)
    ).all()
    parameters = json.loads(run.parameters)
    return {
        "run_id": run_id,
        "scheme_id": run.scheme_id,
        "triggered_by": run.triggered_by,
        "decision": run.decision,
        "files": {"files": int(files[0]), "payments": int(files[1]), "cents": int(files[2])},
        "funds_with_files": int(files[4]),
        "execution_date": files[3].isoformat() if files[3] else None,
        "payment_date": parameters.get("payment_date"),
        "hold_date": parameters.get("hold_date"),
        "by_rule": by_rule,
        "held": dict(sorted(held.items())),
        "held_total": {"payments": int(held_total[0]), "cents": int(held_total[1])},
        "funds": {str(s): int(n) for s, n, *_ in inputs},
        "rows": {
            "read": sum(int(r[2] or 0) for r in inputs),
            "accepted": sum(int(r[3] or 0) for r in inputs),
            "quarantined": sum(int(r[4] or 0) for r in inputs),
        },
    }


def funds_with_files(session: Session, run_id: str) -> list[str]:
    """The funds the run has payment files for (what ``deliver`` maps over)."""
    return [
        str(f)
        for f in session.execute(
            select(PaymentFileRow.fund_code)
            .where(PaymentFileRow.run_id == run_id)
            .distinct()
            .order_by(PaymentFileRow.fund_code)
        ).scalars()
    ]
