"""The runs in the ledger: recorded once, keyed as before, decided once.

Every change appends to the hash-chained event log in the same transaction;
times come in as arguments (the shell passes the clock).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from payments.entitlement.keys import KEY_VERSION
from payments.errors import PaymentsError, Refused, UnknownRun
from payments.ledger import events, states
from payments.ledger.models import (
    InputFile,
    Payment,
    Run,
)
from payments.ledger.moves import move
from payments.schemes import Scheme
from payments.statuses import RunDecision


class KeyVersionError(PaymentsError):
    """The ledger's runs of a scheme were keyed with another construction or secret."""


def check_key_version(session: Session, scheme_ids: Sequence[str]) -> None:
    """Every run of these schemes must have keyed beneficiaries as this code does.

    Keys are how "paid at most once" is enforced: a run keyed differently would
    find nobody already paid and pay everyone again. Runs recorded before key
    versions were recorded used version 1.
    """
    found = {
        int(json.loads(text_).get("key_version", 1))
        for (text_,) in session.execute(select(Run.parameters).where(Run.scheme_id.in_(scheme_ids)))
    }
    other = sorted(found - {KEY_VERSION})
    if other:
        raise KeyVersionError(
            f"the ledger holds runs of {', '.join(scheme_ids)} with beneficiary keys of version "
            f"{', '.join(map(str, other))}; this code makes version {KEY_VERSION}, which would "
            "find nobody already paid. Finish the scheme with the code that started it."
        )


def check_key_fingerprint(session: Session, scheme_ids: Sequence[str], key: str) -> None:
    """Every run of these schemes that recorded a secret's fingerprint recorded this one.

    A different secret finds nobody already paid, and one claimant filed by
    two funds is paid twice: refused before anything is computed or recorded.
    """
    found = {
        json.loads(text_).get("key_fingerprint")
        for (text_,) in session.execute(select(Run.parameters).where(Run.scheme_id.in_(scheme_ids)))
    } - {None, key}
    if found:
        raise KeyVersionError(
            f"the ledger's runs of {', '.join(scheme_ids)} were keyed with another "
            f"beneficiary-key secret (fingerprint {', '.join(sorted(found))}, this one {key}): "
            "set PAYMENTS_KEY_SECRET to the secret those runs used"
        )


def record_run(
    session: Session,
    *,
    run_id: str,
    scheme: Scheme,
    parameters: dict[str, Any],
    code_version: str,
    at: datetime,
    triggered_by: str | None = None,
    key_fingerprint: str | None = None,
) -> Run:
    """The run row (idempotent: a rerun of the same run id finds it).

    Refuses to record a run whose beneficiary keys would not match those the
    ledger already holds for the scheme (``KeyVersionError``): another
    construction, or (``key_fingerprint``) another secret.
    """
    schemes = [scheme.id, *scheme.spec.not_cumulable_with]
    check_key_version(session, schemes)
    parameters = {**parameters, "key_version": KEY_VERSION}
    if key_fingerprint:
        check_key_fingerprint(session, schemes, key_fingerprint)
        parameters["key_fingerprint"] = key_fingerprint
    run = session.get(Run, run_id)
    if run is not None and run.decision == RunDecision.REJECTED:
        raise Refused(
            f"run {run_id} was rejected by {run.approved_by}: a decision is final; "
            "a new run needs new input files (or another scheme version)"
        )
    if run is None:
        run = Run(
            run_id=run_id,
            scheme_id=scheme.id,
            scheme_version=scheme.spec.version,
            scheme_sha256=hashlib.sha256(scheme.text.encode()).hexdigest(),
            parameters=events.canonical(parameters),
            code_version=code_version,
            started_at=at,
            triggered_by=triggered_by,
        )
        session.add(run)
        session.flush()
        events.append(
            session,
            "run_started",
            {"scheme": scheme.id, "parameters": parameters, "code_version": code_version},
            at=at,
            run_id=run_id,
        )
    return run


def record_input_files(session: Session, run_id: str, reports: Iterable[Any], at: datetime) -> None:
    for r in reports:
        exists = session.execute(
            select(InputFile.id).where(
                InputFile.run_id == run_id, InputFile.fund_code == r.fund_code
            )
        ).first()
        if exists:
            continue
        session.add(
            InputFile(
                run_id=run_id,
                fund_code=r.fund_code,
                file_name=r.file,
                sha256=r.sha256,
                status=r.status,
                file_error=r.file_error,
                rows_read=r.rows_read,
                accepted=r.accepted,
                quarantined=r.quarantined,
            )
        )
        events.append(
            session,
            "input_file",
            {"fund": r.fund_code, "status": r.status, "sha256": r.sha256, "rows": r.rows_read},
            at=at,
            run_id=run_id,
        )
    session.flush()


def approve_run(
    session: Session, run_id: str, *, by: str, at: datetime, manifest_sha256: str | None = None
) -> int:
    """Finance's approval: the run's computed payments that are in a file go ``in_file``.

    The caller has checked who decides (:mod:`payments.four_eyes`); the
    ledger refuses a run already decided. Recorded as two steps (approved,
    then in its file) in one update of a state only: on PostgreSQL that
    rewrites each row in its own page (a HOT update, no index touched; see
    migration 0006), where changing a second column would touch every index
    (docs/decisions.md, "Ledger load"). A hold released after the files
    were written is in no file: it stays ``computed`` for the next run.
    Returns the payments filed.
    """
    run = session.get(Run, run_id)
    if run is None:
        raise UnknownRun(f"run {run_id} is not in the ledger")
    if run.decision is not None:
        raise Refused(f"run {run_id} was already {run.decision}: a decision is final")
    where = (
        (Payment.run_id == run_id)
        & (Payment.state == states.COMPUTED)
        & Payment.payment_file_id.is_not(None)
    )
    count = session.execute(select(func.count()).select_from(Payment).where(where)).scalar_one()
    run.approved_by, run.approved_at, run.decision = by, at, RunDecision.APPROVED
    payload: dict[str, Any] = {"by": by, "payments": count}
    if manifest_sha256:
        payload["manifest_sha256"] = manifest_sha256
    events.append(session, "run_approved", payload, at=at, run_id=run_id)
    session.flush()
    return move(
        session, where, states.IN_FILE, at=at, actor=by, run_id=run_id, via=[states.APPROVED]
    )


def count_by_state(session: Session, scheme_id: str) -> dict[str, int]:
    rows = session.execute(
        select(Payment.state, func.count())
        .where(Payment.scheme_id == scheme_id)
        .group_by(Payment.state)
    )
    return {str(state): int(n) for state, n in rows}
