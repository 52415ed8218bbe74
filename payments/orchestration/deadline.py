"""The bank cut-off as an Airflow deadline: an alert when a batch is not at the bank in time.

SEPA credit transfers must reach the bank the business day before the payment
date; we take 16:00 UTC on the day before (``BANK_CUTOFF``). The deadline is
computed per run from its own parameters (scheme, payment date), so one DAG
serves every scheme; a run that starts after its cut-off (a replay, a past
scheme) gets no deadline rather than an alert at once. Registered with
Airflow through this package's plugin (entry point ``airflow.plugins``), as
custom deadline references must be.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, ClassVar

from airflow.sdk.definitions.deadline import BaseDeadlineReference, deadline_reference

log = logging.getLogger(__name__)
BANK_CUTOFF = time(16, 0)


def bank_cutoff(payment_date: date) -> datetime:
    """When the files must be at the bank for ``payment_date`` (UTC)."""
    return datetime.combine(payment_date - timedelta(days=1), BANK_CUTOFF, tzinfo=UTC)


def cutoff_for_conf(
    conf: dict[str, Any] | None, started: datetime | None = None
) -> datetime | None:
    """The cut-off of a run from its trigger parameters; None when they are not usable,
    or when the run starts after it (a replay, a past scheme run again, a demo of a
    2020 decree): an alert raised the moment it starts would say nothing."""
    from payments.orchestration.request import RequestError, parse_request
    from payments.schemes import SchemeError

    try:
        scheme = parse_request(conf or {}).scheme()
    except (RequestError, SchemeError):
        return None
    cutoff = bank_cutoff(scheme.spec.payment_date)
    if started is not None and started >= cutoff:
        log.info(
            "payment date %s: its cut-off %s has passed, no deadline",
            scheme.spec.payment_date,
            cutoff,
        )
        return None
    return cutoff


@deadline_reference
@dataclass
class SchemeCutoff(BaseDeadlineReference):
    """Deadline reference: the bank cut-off of the scheme (and payment date) the run pays."""

    required_kwargs: ClassVar[set[str]] = {"dag_id", "run_id"}

    def _evaluate_with(self, *, session: Any, **kwargs: Any) -> datetime | None:
        from airflow.models.dagrun import DagRun
        from sqlalchemy import select

        row = session.execute(
            select(DagRun.conf, DagRun.run_after).where(
                DagRun.dag_id == kwargs["dag_id"], DagRun.run_id == kwargs["run_id"]
            )
        ).first()
        if row is None:
            return None
        conf, run_after = row
        if run_after is not None and run_after.tzinfo is None:
            run_after = run_after.replace(tzinfo=UTC)
        return cutoff_for_conf(conf, started=run_after)


def late_message(context: dict[str, Any] | None, what: str = "bank cut-off") -> str:
    """The alert's sentence, from the context Airflow gives deadline callbacks (JSON-like)."""
    context = context or {}
    run = context.get("dag_run") or {}
    deadline = context.get("deadline") or {}
    conf = run.get("conf") or {}
    return (
        f"DEADLINE MISSED: payment batch {run.get('dag_run_id', '?')} "
        f"(scheme {conf.get('scheme_id') or 'default'}) is not at the bank by its {what} "
        f"({deadline.get('deadline_time', '?')}). Check the run in the Airflow UI: "
        "approval still waiting, or a delivery failing?"
    )


async def batch_late(context: dict[str, Any] | None = None, what: str = "bank cut-off") -> None:
    """Deadline callback: the batch is not at the bank by the cut-off. Someone must act now."""
    log.error(late_message(context, what))
