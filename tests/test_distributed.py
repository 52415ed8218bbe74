"""The batch on the CeleryExecutor as docker-compose.yml deploys it; one worker lost mid-delivery.

Redis (with its password), PostgreSQL (Airflow's metadata and the ledger, two
databases made by deploy/init-databases.sh), the object store (moto's S3
server) as the storage root, the funds and the bank on a real OpenSSH sshd,
deploy/airflow-init.sh, then the API server, scheduler, DAG processor,
triggerer and two Celery workers, each in namespaces of its own (its host
name, a private scratch at the compose ``PAYMENTS_DATA_DIR``, its compose
secrets): :mod:`bench.distributed`. Every Airflow setting comes from the
compose file.

``operator`` triggers through the REST API, ``finance`` approves through the
human-in-the-loop API. The first ``deliver`` to have its ``.part`` complete at
the bank, on whichever worker, stops there (``PAYMENTS_FAULT=...:stall``, once
for the cluster), and the test SIGKILLs that whole worker (Celery's pool, the
task's supervisor and process): the scheduler notices the lost heartbeat and
the retry runs on the other worker. The bank collects each file the moment it appears, so a second
upload of a file would show as a second copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from bench.airflow_runtime import wait_for
from bench.distributed import (
    AIRFLOW_SERVICES,
    DAG,
    SHARED_SETTINGS,
    WORKER_SERVICE,
    Cluster,
    api,
    approve_when_asked,
    can_contain,
    on_sshd,
    run_state,
    running_cluster,
    service_environment,
    task_instances,
    trigger_batch,
    xcom,
)
from payments.ledger.models import Payment, PaymentFileRow
from payments.sample.writer import SampleSpec, write_sample
from payments.sepa.signing import load_certificate
from payments.sepa.verify import verify_batch
from tests.conftest import MAY_2020
from tests.faults.scenarios import Collector
from tests.sshd import SshServer

FUNDS = ["01", "13", "2A", "59", "69", "75"]
WORKERS = ("worker-1", "worker-2")
RUN_TIMEOUT = 1200


def _required(reason: str) -> None:
    if os.environ.get("PAYMENTS_REQUIRE_DISTRIBUTED"):
        pytest.fail(reason + " and PAYMENTS_REQUIRE_DISTRIBUTED is set")
    pytest.skip(reason)


@dataclass
class DistributedRun:
    cluster: Cluster
    run_id: str
    #: The worker killed mid-delivery, and the other one.
    lost: str
    survivor: str
    state: str
    task_instances: list[dict[str, Any]]
    #: The delivery the lost worker was running: its map index and fund.
    lost_tries: list[dict[str, Any]]
    summary: dict[str, Any]
    bank: Collector
    bank_zone: Path
    #: What each worker's scratch held: at the start (after a marker was put in each), at the end.
    scratch_at_start: dict[str, list[str]]
    scratch_at_end: dict[str, list[str]]
    environments: dict[str, dict[str, str]]


@pytest.fixture(scope="module")
def distributed(
    tmp_path_factory: pytest.TempPathFactory, sshd: SshServer, s3_endpoint: str
) -> Iterator[DistributedRun]:
    problem = can_contain() or (
        None if shutil.which("redis-server") else "redis-server is not installed"
    )
    if problem:
        _required(problem)
    base = tmp_path_factory.mktemp("distributed")
    sample = base / "sample"
    write_sample(SampleSpec(households=1200, seed=11, window=MAY_2020, funds=tuple(FUNDS)), sample)
    servers = on_sshd(sshd, sample, base)
    fault = {"PAYMENTS_FAULT": "send.part_written:stall", "PAYMENTS_FAULT_ONCE": f"{base}/stalled"}
    with (
        running_cluster(
            base,
            s3_endpoint=s3_endpoint,
            servers=servers,
            worker_extra=dict.fromkeys(WORKERS, fault),
        ) as cluster,
        Collector(servers.bank, every=0.2) as bank,
    ):
        yield _pay(cluster, bank, servers.bank, Path(fault["PAYMENTS_FAULT_ONCE"]))


def _scratch(cluster: Cluster) -> dict[str, list[str]]:
    return {
        w: sorted(
            str(p.relative_to(cluster.scratch_of(w))) for p in cluster.scratch_of(w).rglob("*")
        )
        for w in cluster.workers
    }


def _pay(cluster: Cluster, bank: Collector, bank_zone: Path, stalled: Path) -> DistributedRun:
    airflow = cluster.airflow
    for worker in WORKERS:
        (cluster.scratch_of(worker) / f"left-by-{worker}").write_text("private")
    scratch_at_start = _scratch(cluster)
    run_id = trigger_batch(airflow, {"scheme_id": "aes-2020-05", "funds": FUNDS})
    approve_when_asked(airflow, run_id, RUN_TIMEOUT)

    def stalled_delivery() -> dict[str, Any] | None:
        worker = stalled.read_text() if stalled.exists() else ""
        # A running task's map index is not rendered yet: its fund is record_approval's n-th.
        for ti in task_instances(airflow, run_id) if worker else []:
            if ti["task_id"] == "deliver" and ti["state"] == "running" and ti["hostname"] == worker:
                fund = xcom(airflow, run_id, "record_approval")[ti["map_index"]]
                if list((bank_zone / "bank" / fund).glob("*.part")):
                    return {**ti, "fund": fund}
        if run_state(airflow, run_id):
            raise AssertionError(f"the run ended and no delivery stalled\n{airflow.logs()}")
        return None

    lost = wait_for(
        stalled_delivery,
        timeout=RUN_TIMEOUT,
        what="a delivery to stop with its .part at the bank",
        airflow=airflow,
        every=0.5,
    )
    cluster.kill_worker(lost["hostname"])
    (survivor,) = set(WORKERS) - {lost["hostname"]}
    state = wait_for(
        lambda: run_state(airflow, run_id), timeout=RUN_TIMEOUT, what="the run", airflow=airflow
    )
    tries = api(
        airflow,
        "operator",
        "GET",
        f"/dags/{DAG}/dagRuns/{run_id}/taskInstances/deliver/{lost['map_index']}/tries",
    )["task_instances"]
    summary = xcom(airflow, run_id, "conclude")
    return DistributedRun(
        cluster=cluster,
        run_id=run_id,
        lost=lost["hostname"],
        survivor=survivor,
        state=state,
        task_instances=task_instances(airflow, run_id),
        lost_tries=tries,
        summary=summary,
        bank=bank,
        bank_zone=bank_zone,
        scratch_at_start=scratch_at_start,
        scratch_at_end={w: v for w, v in _scratch(cluster).items() if w == survivor},
        environments=dict(cluster.environments),
    )


def test_the_batch_runs_on_two_celery_workers_through_the_object_store(
    distributed: DistributedRun,
) -> None:
    run = distributed
    assert run.state == "success", run.cluster.airflow.logs()
    receives = [ti for ti in run.task_instances if ti["task_id"] == "receive"]
    assert sorted(ti["rendered_map_index"] for ti in receives) == sorted(FUNDS)
    assert {ti["state"] for ti in receives} == {"success"}
    ran_on = {ti["hostname"] for ti in receives}
    # Each worker took at least one fund (the lost one's receives ran before it was lost).
    assert ran_on == set(WORKERS), ran_on
    by_task = {ti["task_id"]: ti["hostname"] for ti in run.task_instances}
    assert by_task["conclude"] in WORKERS


def test_a_worker_lost_mid_delivery_loses_and_duplicates_nothing(
    distributed: DistributedRun,
) -> None:
    run = distributed
    assert run.state == "success", run.cluster.airflow.logs()
    first, *later = sorted(run.lost_tries, key=lambda t: t["try_number"])
    assert first["hostname"] == run.lost and first["state"] == "failed", run.lost_tries
    assert later and later[-1]["hostname"] == run.survivor and later[-1]["state"] == "success"

    storage = run.cluster.storage()
    payments_run = run.summary["run_id"]
    manifest = json.loads(storage.read_text(f"runs/{payments_run}/payments/manifest.json"))
    expected = {Path(f["path"]).name: f["sha256"] for f in manifest["files"]}
    assert len(expected) >= len(FUNDS)
    # Every file reached the bank exactly once, as signed; nothing half-written is left.
    assert run.bank.copies() == Counter(dict.fromkeys(expected, 1))
    taken = {p.name.rsplit(".", 1)[0]: p for p in run.bank.taken.glob("*.xml.*")}
    assert {n: hashlib.sha256(p.read_bytes()).hexdigest() for n, p in taken.items()} == expected
    assert not list(run.bank_zone.rglob("*.part"))
    local = run.cluster.airflow.home.parent / "from-bucket"
    storage.download(f"runs/{payments_run}", local)
    storage.download("archive", local)
    cert = load_certificate(
        run.cluster.airflow.home / "run-secrets" / WORKER_SERVICE / "signing_cert"
    )
    assert verify_batch(local / "runs" / payments_run / "payments", cert) == []

    # The ledger ties out: every payment of the files sent, each file uploaded once.
    with Session(create_engine(run.cluster.ledger_url)) as session:
        files = session.execute(
            select(PaymentFileRow.upload_state, func.count(), func.sum(PaymentFileRow.nb_of_txs))
            .where(PaymentFileRow.run_id == payments_run)
            .group_by(PaymentFileRow.upload_state)
        ).all()
        sent = session.execute(
            select(func.count(), func.sum(Payment.amount_cents)).where(
                Payment.run_id == payments_run, Payment.state == "sent"
            )
        ).one()
    paid = run.summary["payment_files"]
    assert [(s, n) for s, n, _ in files] == [("uploaded", len(expected))]
    assert (sent[0], sent[1]) == (paid["payments"], paid["cents"])


def test_no_worker_sees_another_worker_s_scratch(distributed: DistributedRun) -> None:
    run = distributed
    # Each worker sees its own scratch only (the same path in both), and the machine neither.
    assert run.scratch_at_start == {w: [f"left-by-{w}"] for w in WORKERS}
    assert not list(Path(run.cluster.scratch).glob("left-by-*"))
    # Every task cleaned up after itself: the survivor ran most of the run and kept nothing.
    assert run.scratch_at_end == {run.survivor: [f"left-by-{run.survivor}"]}


def test_the_run_used_the_compose_file_s_configuration(distributed: DistributedRun) -> None:
    run = distributed
    cluster = run.cluster
    for name, environment in run.environments.items():
        service = WORKER_SERVICE if name.startswith("worker-") else name
        assert service in (*AIRFLOW_SERVICES, WORKER_SERVICE), name
        compose = service_environment(cluster.compose, service, cluster.variables, cluster.site)
        for setting in SHARED_SETTINGS:
            assert environment.get(setting) == compose.get(setting), (name, setting)
    assert run.environments[run.survivor]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    scheduler = (cluster.airflow.home / "airflow-scheduler.log").read_text()
    assert "celery_executor.CeleryExecutor" in scheduler  # the executor it really loaded
