"""``make bench-distributed``: the batch on 1, then 2, Celery workers (compose's settings).

The compose deployment as the distributed test starts it (:mod:`bench.distributed`:
Redis, PostgreSQL, moto's S3 server as the storage root, a real sshd for the
funds and the bank, every Airflow service in namespaces of its own), on a small
sample, once per worker count, each worker with one task slot. This machine
has two cores: the point is what distribution costs and where the time goes,
not speed. Figures, never asserted:

- the cluster's start (migrations, init, every service answering);
- trigger → finance asked (plan, receive per fund, conclude), finance's answer
  → the run's end (deliveries, report), the fixed approval pause left out;
- per task: wall time (the task instance's own start and end) and peak RSS of
  its task process; the time each task waited between queued and started;
- how many tasks each worker ran.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.dag_runtime import _stamp, _summary, _WorkerRss
from bench.distributed import (
    APPROVAL_PAUSE_S,
    approve_when_asked,
    on_sshd,
    run_state,
    running_cluster,
    task_instances,
    trigger_batch,
)

if TYPE_CHECKING:
    from tests.sshd import SshServer

FUNDS = ("01", "13", "2A", "59", "69", "75")
SCHEME = "aes-2020-05"
HOUSEHOLDS = 12_000
RUN_TIMEOUT = 1800


def measure(
    base: Path, sample: Path, workers: int, s3_endpoint: str, sshd: SshServer
) -> dict[str, Any]:
    """One run of the batch on ``workers`` Celery workers; its figures."""
    servers = on_sshd(sshd, sample, base)
    started = time.time()
    with running_cluster(
        base, s3_endpoint=s3_endpoint, servers=servers, workers=workers
    ) as cluster:
        ready = time.time()
        with _WorkerRss() as rss:
            triggered = time.time()
            run_id = trigger_batch(cluster.airflow, {"scheme_id": SCHEME, "funds": list(FUNDS)})
            asked = approve_when_asked(cluster.airflow, run_id, RUN_TIMEOUT)
            answered = asked + APPROVAL_PAUSE_S
            state = _wait_end(cluster.airflow, run_id)
            ended = time.time()
        instances = task_instances(cluster.airflow, run_id)
    return _figures(
        workers, state, instances, rss.peak_mb, started, ready, triggered, asked, answered, ended
    )


def _wait_end(airflow: Any, run_id: str) -> str:
    from bench.airflow_runtime import wait_for

    return str(
        wait_for(
            lambda: run_state(airflow, run_id),
            timeout=RUN_TIMEOUT,
            what="the run",
            airflow=airflow,
            every=1,
        )
    )


def _figures(
    workers: int,
    state: str,
    instances: list[dict[str, Any]],
    peak_mb: dict[str, int],
    started: float,
    ready: float,
    triggered: float,
    asked: float,
    answered: float,
    ended: float,
) -> dict[str, Any]:
    tasks, waits = [], []
    by_worker: dict[str, int] = {}
    for ti in instances:
        start, end = _stamp(ti["start_date"]), _stamp(ti["end_date"])
        queued = _stamp(ti.get("queued_when"))
        if start and queued:
            waits.append(start - queued)
        if ti["hostname"]:
            by_worker[ti["hostname"]] = by_worker.get(ti["hostname"], 0) + 1
        tasks.append(
            {
                "task": ti["task_id"],
                "map_index": ti["map_index"],
                "state": ti["state"],
                "wall_s": round(end - start, 2) if start and end else None,
                "peak_rss_mb": peak_mb.get(ti["id"]),
                "xcom_bytes": 0,
            }
        )
    return {
        "workers": workers,
        "state": state,
        "cluster_start_s": round(ready - started, 1),
        "trigger_to_asked_s": round(asked - triggered, 1),
        "answered_to_end_s": round(ended - answered, 1),
        "total_without_pause_s": round(ended - triggered - APPROVAL_PAUSE_S, 1),
        "task_seconds": round(sum(t["wall_s"] or 0 for t in tasks), 1),
        "queued_to_start_median_s": round(statistics.median(waits), 2) if waits else None,
        "queued_to_start_max_s": round(max(waits), 2) if waits else None,
        "tasks_by_worker": dict(sorted(by_worker.items())),
        # XCom sizes are bench-dag's business (the national run's); not read here.
        "tasks": [{k: v for k, v in t.items() if k != "xcom_bytes_max"} for t in _summary(tasks)],
    }


def main(households: int, json_path: Path | None, worker_counts: tuple[int, ...] = (1, 2)) -> None:
    """Both runs on one sample; prints a table and writes the JSON."""
    import logging

    from moto.server import ThreadedMotoServer

    from payments.sample.households import Window
    from payments.sample.writer import SampleSpec, write_sample
    from tests.sshd import started_sshd

    with tempfile.TemporaryDirectory(prefix="bench-distributed-") as tmp:
        base = Path(tmp)
        sample = base / "sample"
        window = Window(SCHEME, ("2020-04", "2020-05"), date(2020, 5, 10))
        write_sample(SampleSpec(households, seed=5, window=window, funds=FUNDS), sample)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
        s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        s3.start()
        host, port = s3.get_host_and_port()
        runs = []
        try:
            with started_sshd(base / "sshd") as sshd:
                for n in worker_counts:
                    print(f"--- {n} worker(s) ---", flush=True)
                    runs.append(measure(base / f"w{n}", sample, n, f"http://{host}:{port}", sshd))
        finally:
            s3.stop()
    figures = {"households": households, "funds": list(FUNDS), "runs": runs}
    print(table(figures))
    out = json_path or Path("bench-distributed.json")
    out.write_text(json.dumps(figures, indent=2))
    print(f"figures: {out}")


def table(figures: dict[str, Any]) -> str:
    rows = [
        ("state", "state"),
        ("cluster start (s)", "cluster_start_s"),
        ("trigger -> finance asked (s)", "trigger_to_asked_s"),
        ("finance's answer -> end (s)", "answered_to_end_s"),
        ("total, approval pause left out (s)", "total_without_pause_s"),
        ("sum of task wall times (s)", "task_seconds"),
        ("queued -> started, median (s)", "queued_to_start_median_s"),
        ("queued -> started, max (s)", "queued_to_start_max_s"),
        ("tasks by worker", "tasks_by_worker"),
    ]
    head = f"{'':36}" + "".join(f"{r['workers']} worker(s)".rjust(24) for r in figures["runs"])
    lines = [f"{figures['households']} households, {len(figures['funds'])} funds", head]
    for label, key in rows:
        cells = [_cell(r[key]) for r in figures["runs"]]
        lines.append(f"{label:36}" + "".join(c.rjust(24) for c in cells))
    for run in figures["runs"]:
        lines.append(f"-- per task, {run['workers']} worker(s)")
        for task in run["tasks"]:
            lines.append("   " + json.dumps(task))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(f"{k}:{v}" for k, v in value.items())
    return str(value)
