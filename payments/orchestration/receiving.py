"""The DAG's first tasks: ``plan`` checks the trigger form, ``receive`` (one per fund)
fetches a fund's file, checks it and validates its rows.

Data moves through the storage root (``PAYMENTS_STORAGE_ROOT``: a folder, by
default ``PAYMENTS_DATA_DIR``, or an object-store URL), under the Airflow run's
workspace (``runs/.staging-<airflow run>/``) until the national step publishes
it as the run id (``runs/<run_id>/``). Each task works in a local folder
(:func:`payments.storage.staged`) and publishes what it wrote only when it
succeeds, so tasks can run on any worker; a retried ``receive`` fetches and
validates again (same bytes, same outputs). Imports only what receiving needs
(not the computation, the ledger or the payment files): each of the national
run's hundred ``receive`` task processes pays for its imports.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from payments.contract import load_contract
from payments.orchestration.endpoints import describe, fund_source
from payments.orchestration.request import parse_request
from payments.orchestration.settings import task_settings
from payments.registry import Fund, load_registry
from payments.statuses import FundFile
from payments.storage import staged
from payments.transport.base import Transport, TransportError, fetch_checked, with_retries
from payments.validation.folder import validate_fund
from payments.validation.schema import Window

log = logging.getLogger(__name__)


def workspace_for(airflow_run_id: str) -> str:
    """The Airflow run's staging folder, relative to the storage root."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", airflow_run_id)
    digest = hashlib.sha256(airflow_run_id.encode()).hexdigest()[:8]
    return f"runs/.staging-{safe[:60]}-{digest}"


def plan(params: Mapping[str, Any], airflow_run_id: str) -> dict[str, Any]:
    """Check the trigger form and fix what the run covers; fails with the wrong parameter named."""
    settings = task_settings()
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
    settings = task_settings()
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
        window = Window.of(scheme)
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
    if report.status != FundFile.RECEIVED:
        # Not a failure of ours (nothing to retry: the fund must send a file), and not a
        # success either: the task ends skipped, so the grid shows which funds are out.
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(
            f"fund {fund.code}: file {report.status} ({report.file_error}): "
            f"{report.message or 'no file in the drop zone'}; the run goes on without it"
        )
    return outcome
