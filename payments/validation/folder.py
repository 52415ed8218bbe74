"""Validate every fund's file under a storage root and write what happened.

Per fund, under ``<out>/<fund>/``: ``accepted.parquet`` (contract types),
``quarantine.parquet`` and ``quarantine.csv`` (rows exactly as sent, with line,
error codes and sentences; the CSV opens in a spreadsheet), ``report.json``
(counts per rule, the tie-out). Nationally: ``validation.json``. A fund whose
file is missing or rejected is recorded and the others go on.
"""

from __future__ import annotations

import functools
import gc
import json
import logging
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

from payments.contract import Contract, conform, load_contract
from payments.intake import Receipt, receive_fund, reject_duplicate_contents
from payments.registry import Fund, load_registry
from payments.statuses import FundFile
from payments.validation.outputs import FolderValidation, FundReport, write_fund
from payments.validation.rows import quarantine_schema, validate_rows
from payments.validation.schema import Window

log = logging.getLogger(__name__)


def _as_of(receipt: Receipt, fallback: date) -> date:
    produced = receipt.details.get("produced_at")
    try:
        return datetime.fromisoformat(str(produced)).date() if produced else fallback
    except ValueError:
        return fallback


#: One fund's outcome: its report, its receipt, and the CPU seconds of each phase.
Validated = tuple[FundReport, Receipt, dict[str, float]]


def _validate_one(
    root: Path,
    out_dir: Path,
    fund: Fund,
    scheme_id: str,
    window: Window,
    contract_version: str,
) -> Validated:
    """Receive, validate and write one fund (in a worker process when asked); also the
    CPU seconds of each phase (:attr:`FolderValidation.cpu_seconds`)."""
    contract = load_contract(contract_version)
    spent: dict[str, float] = {}
    t = time.process_time()
    receipt, rows = receive_fund(root, fund, scheme_id, contract)
    spent["read"] = time.process_time() - t
    report = FundReport(
        fund.code,
        receipt.file,
        receipt.status,
        str(receipt.error) if receipt.error else None,
        receipt.message,
        receipt.sha256,
    )
    if rows is not None:
        t = time.process_time()
        result = validate_rows(
            rows.table,
            rows.lines,
            contract=rows.contract or contract,
            fund_code=fund.code,
            window=window,
            as_of=_as_of(receipt, window.reference_date),
            invalid_rows=rows.invalid,
        )
        if rows.contract is not None and rows.contract.version != contract.version:
            # an older contract's rows, with the columns it lacks left empty
            result.accepted = conform(result.accepted, contract.accepted_schema())
            result.quarantine = conform(result.quarantine, quarantine_schema(contract))
        report.rows_read = result.rows_read
        report.accepted = result.accepted_rows
        report.quarantined = result.quarantined_rows
        report.rules = result.rule_counts
        write_fund(out_dir / fund.code, result, report)
        spent["validate"] = time.process_time() - t
    return report, receipt, spent


def worker_start() -> None:
    """Start-up of a validation worker process: its imports set aside from garbage collection.

    By the time this runs, the worker has imported polars, pyarrow, Pandera
    and pandas: hundreds of thousands of objects that live as long as the
    process. Python's cycle collector went through all of them at every full
    collection, which the per-fund rules and expressions trigger again and
    again: about 6 % of the workers' CPU nationally (``perf``). Frozen, they
    are never scanned; what the funds allocate is collected as before.
    """
    gc.freeze()


def _tell(
    on_done: Callable[[Fund, FundReport], None],
    fund: Fund,
    future: Future[Validated],
) -> None:
    """A finished fund's report to ``on_done`` (a fund that failed is raised by the caller)."""
    if not future.cancelled() and future.exception() is None:
        on_done(fund, future.result()[0])


def largest_first(
    root: Path, funds: tuple[Fund, ...] | list[Fund], scheme_id: str, contract: Contract
) -> list[int]:
    """Indices of ``funds``, largest file first: the order to hand them to worker processes.

    Fund files range from a few thousand to hundreds of thousands of rows;
    taken in registry order, the largest ones came last and one worker
    finished them alone while the other idled. Largest first balances the
    workers (results are put back in registry order: outputs do not change).
    """

    def size(fund: Fund) -> int:
        path = root / fund.inbox / contract.data_file_name(fund.code, scheme_id)
        try:
            return path.stat().st_size
        except OSError:
            return 0

    sizes = [size(f) for f in funds]
    return sorted(range(len(funds)), key=lambda i: (-sizes[i], i))


Notify = Callable[[Fund, FundReport], None]


def validate_folder(
    root: Path,
    out_dir: Path,
    scheme_id: str,
    window: Window,
    *,
    funds: list[str] | None = None,
    workers: int = 1,
    on_fund: Notify | None = None,
    on_done: Notify | None = None,
) -> FolderValidation:
    """Receive and validate every selected fund's file; one fund never hides another.

    ``workers`` > 1 validates funds in that many processes (spawned, not forked:
    polars' thread pool does not survive a fork). Funds are independent, so
    the outputs are the same whatever the number of workers.

    ``on_fund`` is told of each fund in registry order (logs, progress);
    ``on_done`` as soon as each is done, in the order they finish (from a
    pool thread when there are workers), for work that can start on one
    fund's outputs at once (``entitlement.folder.FactsAhead``).
    """
    contract = load_contract()
    selected = load_registry().select(funds)
    args = [(root, out_dir, f, scheme_id, window, contract.version) for f in selected]
    processes = workers if workers > 1 and len(selected) > 1 else 1
    log.info("validating %s fund files in %s worker processes", len(selected), processes)
    if processes > 1:
        order = largest_first(root, selected, scheme_id, contract)
        done = _in_processes(processes, selected, args, order, on_fund, on_done)
    else:
        done = []
        for fund, a in zip(selected, args, strict=True):
            done.append(_validate_one(*a))
            if on_done is not None:
                on_done(fund, done[-1][0])
            _log_and_notify(fund, done[-1][0], on_fund)
    result = _finish_folder(out_dir, scheme_id, [d[0] for d in done], [d[1] for d in done])
    for _, _, spent in done:
        for phase, seconds in spent.items():
            result.cpu_seconds[phase] = result.cpu_seconds.get(phase, 0.0) + seconds
    return result


def _in_processes(
    workers: int,
    selected: Sequence[Fund],
    args: list[tuple[Any, ...]],
    order: list[int],
    on_fund: Notify | None,
    on_done: Notify | None,
) -> list[Validated]:
    """Every fund validated in ``workers`` spawned processes, handed out in ``order``
    (largest first); the outcomes come back in registry order."""
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=worker_start)
    done: list[Validated] = []
    try:
        submitted = {i: pool.submit(_validate_one, *args[i]) for i in order}
        if on_done is not None:
            for i, future in submitted.items():
                future.add_done_callback(functools.partial(_tell, on_done, selected[i]))
        futures = [submitted[i] for i in range(len(args))]
        for fund, future in zip(selected, futures, strict=True):
            done.append(future.result())
            _log_and_notify(fund, done[-1][0], on_fund)
    finally:
        # Not waiting for the workers to exit (freeing their memory takes a
        # moment): the next stage starts meanwhile.
        pool.shutdown(wait=False, cancel_futures=True)
    return done


def _finish_folder(
    out_dir: Path, scheme_id: str, reports: list[FundReport], receipts: list[Receipt]
) -> FolderValidation:
    """Cross-fund checks (the same bytes sent by two funds), then ``validation.json``."""
    reject_duplicate_contents(receipts)
    for receipt, report in zip(receipts, reports, strict=True):
        if report.status == FundFile.RECEIVED and not receipt.ok:  # same bytes as another fund's
            report.status, report.file_error, report.message = (
                receipt.status,
                str(receipt.error),
                receipt.message,
            )
            report.rows_read = report.accepted = report.quarantined = 0
            report.rules = {}
            for name in ("accepted.parquet", "quarantine.parquet", "quarantine.csv"):
                (out_dir / report.fund_code / name).unlink(missing_ok=True)
            (out_dir / report.fund_code).mkdir(parents=True, exist_ok=True)
            (out_dir / report.fund_code / "report.json").write_text(
                json.dumps({**asdict(report), "tie_out": report.tie_out}, indent=2, sort_keys=True)
                + "\n"
            )
    result = FolderValidation(scheme_id, out_dir, reports, receipts)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "validation.json").write_text(
        json.dumps(result.to_dict(), indent=2, sort_keys=True) + "\n"
    )
    return result


OUTCOME = "outcome.json"


def validate_fund(
    root: Path,
    out_dir: Path,
    fund: Fund,
    scheme_id: str,
    window: Window,
    contract_version: str | None = None,
) -> FundReport:
    """One fund on its own (the DAG's mapped task): validate, then leave ``outcome.json``.

    ``outcome.json`` holds the fund's report and receipt, so the national step
    (``gather_validation``), possibly on another worker, sees every fund's fate
    without relying on task return values.
    """
    report, receipt, _ = _validate_one(
        root, out_dir, fund, scheme_id, window, contract_version or load_contract().version
    )
    _log_and_notify(fund, report, None)
    folder = out_dir / fund.code
    folder.mkdir(parents=True, exist_ok=True)
    record = {"report": asdict(report), "receipt": asdict(receipt)}
    (folder / OUTCOME).write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    return report


def gather_validation(
    out_dir: Path, scheme_id: str, fund_codes: list[str], *, why_absent: str
) -> FolderValidation:
    """Every selected fund's outcome, in registry order; a fund with none is ``missing``.

    A fund has no outcome when its task failed for good (server unreachable
    after the retries): it is listed as missing with ``why_absent`` so a
    complementary run can take it, and the others go on.
    """
    registry = load_registry()
    reports: list[FundReport] = []
    receipts: list[Receipt] = []
    for fund in registry.select(fund_codes):
        path = out_dir / fund.code / OUTCOME
        if path.exists():
            record = json.loads(path.read_text())
            reports.append(FundReport(**record["report"]))
            receipts.append(Receipt(**record["receipt"]))
            continue
        rel = f"{fund.inbox}"
        message = f"{rel}: {why_absent}"
        reports.append(FundReport(fund.code, rel, FundFile.MISSING, "file_missing", message, None))
        receipts.append(Receipt(fund.code, rel, FundFile.MISSING, "file_missing", message))
    return _finish_folder(out_dir, scheme_id, reports, receipts)


def _log_and_notify(
    fund: Fund, report: FundReport, on_fund: Callable[[Fund, FundReport], None] | None
) -> None:
    if report.status == FundFile.RECEIVED:
        log.info(
            "fund %s: %s rows read, %s accepted, %s quarantined",
            fund.code,
            report.rows_read,
            report.accepted,
            report.quarantined,
        )
    elif report.status == FundFile.REJECTED:
        log.warning("fund %s: file rejected: %s", fund.code, report.message)
    else:
        log.info("fund %s: %s", fund.code, report.message)
    if on_fund:
        on_fund(fund, report)
