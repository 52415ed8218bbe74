"""One function per task of the ``solidarity_payment_batch`` DAG.

Each takes and returns small JSON documents; data moves through the storage
root (``PAYMENTS_STORAGE_ROOT``: a folder, by default ``PAYMENTS_DATA_DIR``, or
an object-store URL), under the Airflow run's workspace
(``runs/.staging-<airflow run>/``) until the national step publishes it as the
run id (``runs/<run_id>/``). Each task works in a local folder
(:func:`payments.storage.staged`) and publishes what it wrote only when it
succeeds, so tasks can run on any worker. A retried task finds what its previous attempt
left and ends in the same state: files are fetched again, validated again
(same bytes, same outputs), delivered at most once (the ledger's guarantee).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from payments.config import DEMO_APPROVER, Settings, load_settings
from payments.contract import load_contract
from payments.entitlement.folder import load_secret
from payments.ledger.migrate import engine_for
from payments.ledger.models import Payment
from payments.logs import install_masking
from payments.money import euros
from payments.orchestration.endpoints import bank_target, describe, fund_source
from payments.orchestration.request import parse_request
from payments.orchestration.summary import approval_text, run_summary
from payments.pipeline import LATEST, conclude_run
from payments.registry import Fund, load_registry
from payments.release import approve, reject, send
from payments.sepa.signing import generate_demo_pair, load_certificate, load_signer, signer_paths
from payments.storage import staged
from payments.transport.base import Transport, TransportError, fetch_checked, with_retries
from payments.validation.folder import gather_validation, validate_fund
from payments.validation.schema import Window

log = logging.getLogger(__name__)
SUMMARY = "summary.json"


def _settings() -> Settings:
    install_masking()  # Airflow set its handlers up before the task: mask through them too
    return load_settings()


def workspace_for(airflow_run_id: str) -> str:
    """The Airflow run's staging folder, relative to the storage root."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", airflow_run_id)
    digest = hashlib.sha256(airflow_run_id.encode()).hexdigest()[:8]
    return f"runs/.staging-{safe[:60]}-{digest}"


def plan(params: Mapping[str, Any], airflow_run_id: str) -> dict[str, Any]:
    """Check the trigger form and fix what the run covers; fails with the wrong parameter named."""
    settings = _settings()
    request = parse_request(params)
    request.scheme()  # a moved payment date must still give a valid scheme
    planned = {**request.to_dict(), "workspace": workspace_for(airflow_run_id)}
    log.info(
        "batch planned: scheme %s, %s funds, payment date %s, dry run %s, storage root %s",
        request.scheme_id,
        len(request.funds),
        request.payment_date or "the scheme's",
        request.dry_run,
        settings.storage(),
    )
    return planned


def _fetch(transport: Transport, fund: Fund, scheme_id: str, into: Path) -> str:
    """Copy the fund's file and companion into ``into``; return what was found.

    A companion whose hash does not match is fetched once more (a transfer
    glitch), then copied as it is: the file check rejects it with the fund's
    reason code (``sha256_mismatch``), so it is the fund's error, not ours.
    """
    contract = load_contract()
    name = contract.data_file_name(fund.code, scheme_id)
    companion = contract.companion_name(name)
    present = set(with_retries(lambda: transport.listdir(fund.inbox), what=f"list {fund.inbox}"))
    if name not in present:
        return "missing"
    folder = into / fund.inbox
    folder.mkdir(parents=True, exist_ok=True)
    if companion in present:
        try:
            data, companion_bytes = with_retries(
                lambda: fetch_checked(transport, fund.inbox, name, contract),
                what=f"fetch {fund.inbox}/{name}",
            )
        except TransportError:
            data = transport.read(f"{fund.inbox}/{name}")
            companion_bytes = transport.read(f"{fund.inbox}/{companion}")
        _write(folder / companion, companion_bytes)
    else:
        data = with_retries(lambda: transport.read(f"{fund.inbox}/{name}"), what=f"fetch {name}")
    _write(folder / name, data)
    log.info(
        "fund %s: fetched %s (%s bytes, sha256 %s)",
        fund.code,
        name,
        len(data),
        hashlib.sha256(data).hexdigest(),
    )
    return "fetched"


def _write(path: Path, data: bytes) -> None:
    temp = path.with_name(path.name + ".part")
    temp.write_bytes(data)
    os.replace(temp, path)


def receive(planned: Mapping[str, Any], fund_code: str) -> dict[str, Any]:
    """Mapped per fund: fetch (SFTP or local), check the file, validate its rows."""
    settings = _settings()
    request = parse_request(planned)
    scheme = request.scheme()
    fund = load_registry().get(fund_code)
    ws = str(planned["workspace"])
    publish = [f"{ws}/received/{fund.inbox}", f"{ws}/validation/{fund.code}"]
    with staged(settings.storage(), publish=publish) as area:
        staging = area.root / ws
        received = staging / "received"
        shutil.rmtree(received / fund.inbox, ignore_errors=True)  # a retry starts clean
        with fund_source(fund) as transport:
            log.info("fund %s: from %s", fund.code, describe(fund))
            _fetch(transport, fund, scheme.id, received)
        window = Window(tuple(scheme.spec.reference_months), scheme.spec.age_date)
        report = validate_fund(received, staging / "validation", fund, scheme.id, window)
    outcome = {
        "fund": fund.code,
        "status": report.status,
        "reason": report.file_error,
        "rows_read": report.rows_read,
        "accepted": report.accepted,
        "quarantined": report.quarantined,
        "tie_out": report.tie_out,
    }
    log.info("fund %s: %s", fund.code, json.dumps(outcome, sort_keys=True))
    return outcome


def _signer(settings: Settings) -> Any:
    key, cert = signer_paths(settings.data_dir)
    if not key.exists() or not cert.exists():
        if not settings.may_create_secrets:
            raise FileNotFoundError(
                "no signing key: set PAYMENTS_SIGNING_KEY and PAYMENTS_SIGNING_CERT "
                "(or PAYMENTS_DEMO=1 on a one-machine demo)"
            )
        generate_demo_pair(key, cert, common_name="solidarity-payments demo signer")
    return load_signer(key, cert)


def conclude(
    planned: Mapping[str, Any], *, triggered_by: str | None, started_at: datetime | None = None
) -> dict[str, Any]:
    """National step: gather the funds, deduplicate and compute, record, sign the files.

    Writes ``summary.json`` and ``approval.md`` beside the run's outputs. On a
    retry after the workspace was already renamed, returns the summary it wrote.
    """
    settings = _settings()
    request = parse_request(planned)
    scheme = request.scheme()
    storage = settings.storage()
    ws = str(planned["workspace"])
    pointer = f"runs/.airflow/{PurePosixPath(ws).name}"
    if not storage.exists(ws) and storage.exists(pointer):
        done = storage.read_text(pointer)
        log.info("national step already done by an earlier attempt: %s", done)
        summary: dict[str, Any] = json.loads(storage.read_text(done))
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
            staging,
            scheme,
            validation,
            secret=load_secret(settings.data_dir, create=settings.may_create_secrets),
            signer=_signer(settings),
            ledger_url=settings.ledger_url,
            started_at=started_at,
            triggered_by=triggered_by,
            parameters={k: v for k, v in request.to_dict().items() if k != "dry_run"},
            dry_run=request.dry_run,
            inputs_root=staging / "received",
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
    _log_summary(summary)
    return summary


def _log_summary(summary: Mapping[str, Any]) -> None:
    v = summary["validation"]
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


def needs_approval(summary: Mapping[str, Any]) -> bool:
    """Finance is asked only when something would leave (not on a dry run, not on nothing)."""
    if summary["dry_run"]:
        log.info("dry run: nothing recorded, nothing to approve or send")
        return False
    if not summary.get("payment_files") or not summary["payment_files"]["payments"]:
        log.info("no payment in this run: nothing to approve or send")
        return False
    return True


def _response_user(response: Mapping[str, Any]) -> str:
    user = response.get("responded_by_user") or {}
    return str(user.get("id") or user.get("name") or "")


def _response_time(response: Mapping[str, Any]) -> datetime:
    at = response.get("responded_at")
    if isinstance(at, datetime):
        stamp = at
    elif at:
        stamp = datetime.fromisoformat(str(at))
    else:
        stamp = datetime.now(UTC)
    return stamp.astimezone(UTC).replace(tzinfo=None) if stamp.tzinfo else stamp


def check_respondent(user: str, triggered_by: str | None, approvers: tuple[str, ...]) -> None:
    """Four eyes, checked again on our side whatever the auth manager allowed."""
    if not user:
        raise PermissionError("the approval has no respondent: refused")
    if user not in approvers:
        raise PermissionError(f"{user!r} is not a finance approver ({', '.join(approvers)})")
    if triggered_by and user == triggered_by:
        raise PermissionError("the user who triggered the run cannot approve it (four eyes)")


def record_approval(summary: Mapping[str, Any], response: Mapping[str, Any]) -> list[str]:
    """Finance said yes: the ledger files the payments; returns the funds to deliver."""
    settings = _settings()
    user = _response_user(response)
    check_respondent(user, summary.get("triggered_by"), settings.finance_approvers)
    # make demo answers as the demo approver: the ledger says so.
    by = f"{user} (demo setting)" if settings.demo and user == DEMO_APPROVER else user
    run_dir = str(summary["run_dir"])
    with staged(settings.storage(), pull=[f"{run_dir}/payments"]) as area:
        filed = approve(
            engine_for(settings.ledger_url),
            area.root / run_dir,
            summary["run_id"],
            by=by,
            at=_response_time(response),
        )
    log.info("run %s approved by %s: %s payments filed", summary["run_id"], by, filed)
    return list(summary["funds_with_files"])


def record_rejection(summary: Mapping[str, Any], response: Mapping[str, Any]) -> dict[str, Any]:
    """Finance said no: the run's payments are cancelled; nothing is sent."""
    settings = _settings()
    user = _response_user(response)
    check_respondent(user, summary.get("triggered_by"), settings.finance_approvers)
    reject(engine_for(settings.ledger_url), summary["run_id"], by=user, at=_response_time(response))
    log.warning("run %s rejected by %s: nothing will be sent", summary["run_id"], user)
    return {"run_id": summary["run_id"], "rejected_by": user}


def deliver(summary: Mapping[str, Any], fund_code: str) -> dict[str, Any]:
    """Mapped per fund: verify the batch, upload this fund's files exactly once."""
    settings = _settings()
    trusted = load_certificate(signer_paths(settings.data_dir)[1])
    run_dir = str(summary["run_dir"])
    with (
        staged(settings.storage(), pull=[f"{run_dir}/payments"]) as area,
        bank_target() as transport,
    ):
        log.info("fund %s: delivering to %s", fund_code, describe(None))
        sent = send(
            engine_for(settings.ledger_url),
            area.root / run_dir,
            summary["run_id"],
            transport,
            trusted=trusted,
            at=datetime.now(UTC).replace(tzinfo=None),
            fund=fund_code,
        )
    log.info(
        "fund %s: files %s; payments marked sent now: %s",
        fund_code,
        sent.files,
        sent.payments_sent,
    )
    return {"fund": fund_code, "files": sent.files, "payments_sent": sent.payments_sent}


def report(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The run as the ledger now has it: payments and cents by state (ties out to the files)."""
    settings = _settings()
    with Session(engine_for(settings.ledger_url)) as session:
        rows = session.execute(
            select(Payment.state, func.count(), func.coalesce(func.sum(Payment.amount_cents), 0))
            .where(Payment.run_id == summary["run_id"])
            .group_by(Payment.state)
            .order_by(Payment.state)
        ).all()
    states = {str(s): {"payments": int(n), "cents": int(c)} for s, n, c in rows}
    for state, t in states.items():
        log.info(
            "run %s: %s %s payments, %s", summary["run_id"], state, t["payments"], euros(t["cents"])
        )
    files = summary.get("payment_files") or {"payments": 0, "cents": 0}
    sent = states.get("sent", {"payments": 0, "cents": 0})
    out = {
        "run_id": summary["run_id"],
        "states": states,
        "files": files,
        "sent_ties_out": sent == {"payments": files["payments"], "cents": files["cents"]},
        "run_dir": summary["run_dir"],
    }
    log.info("run %s: sent ties out to the files: %s", summary["run_id"], out["sent_ties_out"])
    return out
