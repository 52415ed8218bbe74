"""``python -m bench --dag``: the national batch through the Airflow runtime operators use.

The scheduler (LocalExecutor, parallelism 2), API server, DAG processor and
triggerer run as separate processes (:mod:`bench.airflow_runtime`),
the ledger is PostgreSQL, ``operator`` triggers through the REST API and
``finance`` approves through the human-in-the-loop API, as in production.
Figures, read against the issue's targets, never asserted:

- per task: wall time (the task instance's own start and end), peak RSS of
  its task process (``airflow worker -- <ti id>``, sampled every 0.2 s);
- XCom bytes per task (the metadata database's stored values);
- the DAG folder's parse time, and whether it loaded polars or pyarrow;
- trigger → the last file at the bank.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from bench.airflow_runtime import ROOT, Airflow, running_airflow, unpause, wait_for

DAG = "solidarity_payment_batch"
#: Seconds between the approval pausing and finance answering (see where it is used).
APPROVAL_PAUSE_S = 10
WORKER_TITLE = "airflow worker -- "
#: Targets of the national-runtime issue (2 cores / 24 GB).
TARGET_TOTAL_S = 600
TARGET_TASK_RSS_MB = 4096
TARGET_XCOM_BYTES = 64 * 1024
TARGET_PARSE_S = 1.0


class _WorkerRss:
    """Peak RSS of every task process seen, by task instance id (a sampling thread)."""

    def __init__(self, every: float = 0.2) -> None:
        self.every = every
        self.peak_mb: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-rss", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for process in psutil.process_iter(["cmdline", "memory_info"]):
                cmdline = " ".join(process.info["cmdline"] or [])
                if not cmdline.startswith(WORKER_TITLE) or process.info["memory_info"] is None:
                    continue
                ti = cmdline.removeprefix(WORKER_TITLE).strip()
                mb = process.info["memory_info"].rss // 2**20
                self.peak_mb[ti] = max(self.peak_mb.get(ti, 0), mb)
            self._stop.wait(self.every)

    def __enter__(self) -> _WorkerRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


_PARSE = """
import importlib.util, json, sys, time
import airflow.sdk  # Airflow itself is loaded by the DAG processor before any file
start = time.perf_counter()
for i, path in enumerate(sys.argv[1:]):
    spec = importlib.util.spec_from_file_location(f"dag_{i}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
print(json.dumps({"seconds": time.perf_counter() - start,
                  "polars": "polars" in sys.modules, "pyarrow": "pyarrow" in sys.modules}))
"""


def parse_time() -> dict[str, Any]:
    """Seconds to import every DAG file once Airflow is loaded (best of three)."""
    files = [str(p) for p in sorted((ROOT / "dags").glob("*.py"))]
    runs = []
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", _PARSE, *files],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    best: dict[str, Any] = min(runs, key=lambda r: r["seconds"])
    return best


def _task_instances(airflow: Airflow, run_id: str) -> list[dict[str, Any]]:
    """Every task instance of the run, page by page (the API caps a page at 100)."""
    found: list[dict[str, Any]] = []
    with airflow.client("operator") as api:
        while True:
            answer = api.get(
                f"/dags/{DAG}/dagRuns/{run_id}/taskInstances",
                params={"limit": 100, "offset": len(found)},
            )
            answer.raise_for_status()
            page = answer.json()["task_instances"]
            found += page
            if len(page) < 100:
                return found


def _state(airflow: Airflow, run_id: str) -> str:
    with airflow.client("operator") as api:
        answer = api.get(f"/dags/{DAG}/dagRuns/{run_id}")
        answer.raise_for_status()
    return str(answer.json()["state"])


def _xcom_bytes(metadata_url: str, run_id: str) -> dict[tuple[str, int], int]:
    """Bytes of every XCom value the run stored, by (task, map index)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(metadata_url)
    try:
        with engine.connect() as db:
            rows = db.execute(
                text(
                    "SELECT task_id, map_index, SUM(OCTET_LENGTH(CAST(value AS TEXT))) FROM xcom "
                    "WHERE run_id = :run GROUP BY task_id, map_index"
                ),
                {"run": run_id},
            ).all()
    finally:
        engine.dispose()
    return {(str(t), int(m)): int(b or 0) for t, m, b in rows}


def _stamp(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


@contextmanager
def _data_dir(sample_root: Path, work: Path) -> Iterator[Path]:
    """A fresh storage root whose funds' inboxes hold the cached sample's files.

    Hard links (a copy across file systems), not a symbolic link to the sample:
    the local transport refuses a link that leads out of its folder, as it
    would in a fund's drop zone.
    """
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copytree(sample_root / "funds", work / "funds", copy_function=_link_or_copy)
    yield work


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def run_dag(
    households: int, postgres_url: str, *, parallelism: int = 2, timeout: float = 3600
) -> dict[str, Any]:
    """One national run through the runtime; returns the figures."""
    from bench.national import _fresh_postgres, bench_dir, sample

    root = sample(households)
    ledger = _fresh_postgres(postgres_url)
    metadata = _fresh_postgres(postgres_url + "_airflow")
    if ledger is None or metadata is None:
        raise SystemExit(f"bench --dag needs a PostgreSQL server ({postgres_url})")
    work = bench_dir() / f"dag-{households}"
    shutil.rmtree(work / "airflow", ignore_errors=True)  # a fresh metadata database and logs
    extra = {
        "PAYMENTS_DEMO": "1",
        "PAYMENTS_FINANCE_APPROVERS": "finance",
        "PAYMENTS_LEDGER_URL": ledger,
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        # Airflow's own metadata in PostgreSQL too, as the deployment has it
        # (docker-compose.yml): with SQLite, the scheduler, the API server and
        # every task's state changes wait on one file lock.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": metadata,
    }
    with (
        _data_dir(root, work / "data") as data,
        running_airflow(work / "airflow", data, extra) as airflow,
    ):
        wait_for(
            lambda: airflow.client("operator").get(f"/dags/{DAG}").status_code == 200,
            timeout=300,
            what="the DAG to be parsed",
            airflow=airflow,
        )
        unpause(airflow, DAG)
        with _WorkerRss() as rss:
            triggered = time.time()
            with airflow.client("operator") as api:
                answer = api.post(f"/dags/{DAG}/dagRuns", json={"logical_date": None, "conf": {}})
                answer.raise_for_status()
                run_id = answer.json()["dag_run_id"]
            print(f"triggered {run_id} as operator")

            def waiting() -> bool:
                states = {t["task_id"]: t["state"] for t in _task_instances(airflow, run_id)}
                if _state(airflow, run_id) in ("success", "failed"):
                    raise SystemExit(f"the run ended before its approval: {states}")
                return states.get("approval") in ("deferred", "awaiting_input")

            wait_for(waiting, timeout=timeout, what="the approval", airflow=airflow, every=5)
            # Answered at once, the response can reach the scheduler before the pausing
            # task process's own exit is reported, and the scheduler then marks the
            # resumed task failed (executor state mismatch). A person takes longer.
            time.sleep(APPROVAL_PAUSE_S)
            asked = time.time()
            path = f"/dags/{DAG}/dagRuns/{run_id}/taskInstances/approval/-1/hitlDetails"
            with airflow.client("finance") as api:
                api.patch(path, json={"chosen_options": ["Approve"]}).raise_for_status()
            print(f"approved as finance after {asked - triggered:.0f} s")
            state = wait_for(
                lambda: (s := _state(airflow, run_id)) in ("success", "failed") and s,
                timeout=timeout,
                what="the run to end",
                airflow=airflow,
                every=5,
            )
        instances = _task_instances(airflow, run_id)
        xcoms = _xcom_bytes(metadata, run_id)
    tasks = []
    for ti in sorted(instances, key=lambda t: (_stamp(t["start_date"]) or 0, t["map_index"])):
        start, end = _stamp(ti["start_date"]), _stamp(ti["end_date"])
        tasks.append(
            {
                "task": ti["task_id"],
                "map_index": ti["map_index"],
                "state": ti["state"],
                "wall_s": round(end - start, 2) if start and end else None,
                "peak_rss_mb": rss.peak_mb.get(ti["id"]),
                "xcom_bytes": xcoms.get((ti["task_id"], ti["map_index"]), 0),
            }
        )
    delivered = [_stamp(t["end_date"]) for t in instances if t["task_id"] == "deliver"]
    last_at_bank = max((d for d in delivered if d), default=None)
    return {
        "households": households,
        "state": state,
        "run_id": run_id,
        "parallelism": parallelism,
        "ledger": "postgresql",
        "trigger_to_bank_s": round(last_at_bank - triggered, 1) if last_at_bank else None,
        "approval_pause_s": APPROVAL_PAUSE_S,
        "trigger_to_approval_asked_s": round(asked - triggered, 1),
        "tasks": tasks,
    }


def _summary(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per task (mapped ones together): count, wall total and max, peak RSS, XCom max."""
    by: dict[str, list[dict[str, Any]]] = {}
    for t in tasks:
        by.setdefault(t["task"], []).append(t)
    out = []
    for name, items in by.items():
        walls = [t["wall_s"] for t in items if t["wall_s"] is not None]
        out.append(
            {
                "task": name,
                "instances": len(items),
                "wall_s_sum": round(sum(walls), 1),
                "wall_s_max": max(walls, default=None),
                "peak_rss_mb": max((t["peak_rss_mb"] or 0 for t in items), default=0),
                "xcom_bytes_max": max(t["xcom_bytes"] for t in items),
            }
        )
    return out


def verdicts(figures: dict[str, Any]) -> list[str]:
    """Each figure against its target, as sentences."""
    lines = []
    total = figures["trigger_to_bank_s"]
    pause = figures.get("approval_pause_s", 0)
    system = None if total is None else round(total - pause, 1)
    lines.append(
        f"trigger → every file at the bank: {system} s with finance answering at once "
        f"({total} s measured, of which finance's deliberate {pause} s) "
        f"(target ≤ {TARGET_TOTAL_S} s): "
        + ("met" if system is not None and system <= TARGET_TOTAL_S else "NOT met")
    )
    rss = max((t["peak_rss_mb"] or 0 for t in figures["tasks"]), default=0)
    lines.append(
        f"largest task process: {rss} MB (target ≤ {TARGET_TASK_RSS_MB} MB): "
        + ("met" if rss <= TARGET_TASK_RSS_MB else "NOT met")
    )
    xcom = max((t["xcom_bytes"] for t in figures["tasks"]), default=0)
    lines.append(
        f"largest XCom: {xcom} bytes (target ≤ {TARGET_XCOM_BYTES}): "
        + ("met" if xcom <= TARGET_XCOM_BYTES else "NOT met")
    )
    parse = figures["parse"]
    heavy = [m for m in ("polars", "pyarrow") if parse[m]]
    lines.append(
        f"parsing dags/: {parse['seconds']:.3f} s, "
        + (f"loads {', '.join(heavy)}" if heavy else "without polars or pyarrow")
        + f" (target ≤ {TARGET_PARSE_S} s, neither loaded): "
        + ("met" if parse["seconds"] <= TARGET_PARSE_S and not heavy else "NOT met")
    )
    return lines


def main(households: int, postgres_url: str, json_path: Path | None) -> dict[str, Any]:
    """Run, print the per-task table and the verdicts, keep everything in ``bench.json``."""
    from bench.national import bench_dir

    parse = parse_time()
    figures = run_dag(households, postgres_url)
    figures["parse"] = parse
    figures["by_task"] = _summary(figures["tasks"])
    figures["verdicts"] = verdicts(figures)
    print(f"{'task':<18}{'n':>5}{'wall Σ s':>10}{'wall max s':>12}{'peak MB':>9}{'XCom max B':>12}")
    for t in figures["by_task"]:
        print(
            f"{t['task']:<18}{t['instances']:>5}{t['wall_s_sum']:>10}"
            f"{t['wall_s_max'] if t['wall_s_max'] is not None else '-':>12}"
            f"{t['peak_rss_mb']:>9}{t['xcom_bytes_max']:>12}"
        )
    for line in figures["verdicts"]:
        print(line)
    # Beside the national bench's figures, under "dag" (the rest of the file is kept).
    path = json_path or bench_dir() / "bench.json"
    kept = json.loads(path.read_text()) if path.exists() else {}
    kept["dag"] = figures
    path.write_text(json.dumps(kept, indent=2) + "\n")
    print(f"figures kept in {path} (key 'dag')")
    return figures
