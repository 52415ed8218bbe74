"""Airflow as docker-compose.yml deploys it, on this machine: CeleryExecutor, Redis, workers.

No Docker engine here, so the compose file's services run as processes,
each as close to its container as one machine allows:

- **One configuration.** Every Airflow process gets its service's
  ``environment`` read from docker-compose.yml itself (YAML anchors merged,
  ``${VAR}`` filled from this run's ``.env`` values, the compose host names
  ``postgres``, ``redis``, ``minio``, ``airflow-apiserver`` mapped to this
  machine's ports and the two databases to this run's names). Only what a
  container gets from its image or its port mapping is added here (the DAG
  folder, the API port, the auth manager's test users, short intervals).
  :data:`SHARED_SETTINGS` is what the distributed test compares with the
  running workers' own environment.
- **Nothing shared but the stores.** Each process runs in mount and UTS
  namespaces of its own (``unshare``): its own host name (so Airflow records
  which worker ran a task), a private tmpfs at the compose file's
  ``PAYMENTS_DATA_DIR`` (the same path in every worker, a different folder in
  each: a local path handed from one task to the next would point into
  another worker's empty scratch), and its compose ``secrets`` only, at
  ``/run/secrets``.
- **The init service's own scripts**: ``deploy/init-databases.sh`` creates the
  two databases (names of this run) on the local PostgreSQL,
  ``deploy/airflow-init.sh`` migrates, checks the bucket, sets the pool and
  the SFTP connections (this run's sshd).

The object store (moto's S3 server) and the SFTP server (OpenSSH) are started
by the caller; Redis is started here with a password, as in compose.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import yaml

from bench.airflow_runtime import (
    BIN,
    ROOT,
    Airflow,
    _api_up,
    _session_members,
    airflow_env,
    free_port,
    stop,
    unpause,
    wait_for,
    wait_parsed,
)
from payments.storage import Storage

if TYPE_CHECKING:
    from tests.sshd import SshServer

COMPOSE = ROOT / "docker-compose.yml"
#: The settings that make a deployment distributed, and must be the same in the
#: compose file and in what the test runs.
SHARED_SETTINGS = (
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "PAYMENTS_STORAGE_ROOT",
    "AWS_ENDPOINT_URL",
)
#: The compose services started here, each with the Airflow command its ``command`` names.
AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
)
WORKER_SERVICE = "airflow-worker"
#: Where a container finds its compose secrets.
SECRETS_DIR = "/run/secrets"
#: Seconds without a task's heartbeat before the scheduler fails (and retries) it: Airflow's
#: default is 300; a lost worker is noticed sooner here so that the test ends sooner.
HEARTBEAT_TIMEOUT_S = 30
_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:\?|:-)(?P<arg>[^}]*))?\}"
)
_ADDRESS = re.compile(r"(?P<sep>@|//)(?P<addr>[a-z][a-z0-9-]*:\d+)(?:/(?P<path>[A-Za-z0-9_]+))?")


def compose_file() -> dict[str, Any]:
    """docker-compose.yml, anchors and ``<<`` merges resolved (as ``docker compose config``)."""
    return dict(yaml.safe_load(COMPOSE.read_text()))


def interpolate(value: str, variables: Mapping[str, str]) -> str:
    """Compose's interpolation: ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``, ``$$``."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name", "op", "arg")
        given = variables.get(name, "")
        if given:
            return given
        if op == ":-":
            return str(arg)
        if op == ":?":
            raise KeyError(f"{name} must be set: {arg}")
        return given

    return _VARIABLE.sub(one, value)


@dataclass(frozen=True)
class Site:
    """Where this machine runs what the compose file names: addresses and database names."""

    #: ``service:port`` in the compose file -> ``host:port`` here.
    addresses: Mapping[str, str]
    #: A database name in a compose URL -> this run's.
    databases: Mapping[str, str]

    def rewrite(self, value: str) -> str:
        def one(match: re.Match[str]) -> str:
            address = self.addresses.get(match["addr"], match["addr"])
            path = match["path"]
            if path is None:
                return f"{match['sep']}{address}"
            return f"{match['sep']}{address}/{self.databases.get(path, path)}"

        return _ADDRESS.sub(one, value)


def service_environment(
    compose: Mapping[str, Any], service: str, variables: Mapping[str, str], site: Site
) -> dict[str, str]:
    """A compose service's ``environment``, interpolated, its addresses mapped to ``site``."""
    raw = compose["services"][service].get("environment") or {}
    return {k: site.rewrite(interpolate(str(v), variables)) for k, v in raw.items()}


def service_secrets(compose: Mapping[str, Any], service: str) -> dict[str, Path]:
    """A service's compose secrets: name -> the file (under the project) it is read from."""
    declared = compose.get("secrets") or {}
    names = compose["services"][service].get("secrets") or []
    return {name: (ROOT / declared[name]["file"]).resolve() for name in names}


def airflow_command(compose: Mapping[str, Any], service: str) -> list[str]:
    """What the service's container runs: the image's entrypoint is ``airflow``."""
    return [str(BIN / "airflow"), *str(compose["services"][service]["command"]).split()]


def can_contain() -> str | None:
    """Why processes cannot get namespaces of their own here (None: they can)."""
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run(
        ["unshare", "--mount", "--uts", "true"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        return f"unshare --mount --uts is not allowed here: {probe.stderr.strip()}"
    return None


def contained(hostname: str, scratch: str, secrets_dir: Path | None, argv: list[str]) -> list[str]:
    """``argv`` in its own mount and UTS namespaces: host name, private scratch, its secrets."""
    script = (
        'hostname "$1" && mount -t tmpfs -o mode=0700 scratch "$2" && '
        '{ [ -z "$3" ] || mount --bind -o ro "$3" ' + SECRETS_DIR + "; } && "
        'shift 3 && exec "$@"'
    )
    return [
        "unshare",
        "--mount",
        "--uts",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        script,
        "sh",
        hostname,
        scratch,
        str(secrets_dir or ""),
        *argv,
    ]


@dataclass
class Cluster:
    """A running distributed deployment: Airflow's API, the workers, what they were started from."""

    airflow: Airflow
    plan: Plan
    #: Worker host name -> its process (the one ``unshare`` became).
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    #: The environment each process was started with, by name.
    environments: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def compose(self) -> dict[str, Any]:
        return self.plan.compose

    @property
    def variables(self) -> dict[str, str]:
        return self.plan.variables

    @property
    def site(self) -> Site:
        return self.plan.site

    @property
    def scratch(self) -> str:
        return self.plan.scratch

    @property
    def ledger_url(self) -> str:
        return self.plan.env_of(WORKER_SERVICE)["PAYMENTS_LEDGER_URL"]

    @property
    def storage_root(self) -> str:
        return self.plan.env_of(WORKER_SERVICE)["PAYMENTS_STORAGE_ROOT"]

    def storage(self) -> Storage:
        """The storage root, opened with the workers' object-store credentials."""
        env = self.airflow.env
        options = {
            "key": env["AWS_ACCESS_KEY_ID"],
            "secret": env["AWS_SECRET_ACCESS_KEY"],
            "endpoint_url": env["AWS_ENDPOINT_URL"],
        }
        return Storage(self.storage_root, options)

    def scratch_of(self, worker: str) -> Path:
        """A worker's scratch folder as the worker sees it (through its mount namespace)."""
        return Path(f"/proc/{self.workers[worker].pid}/root") / self.scratch.lstrip("/")

    def kill_worker(self, worker: str) -> None:
        """SIGKILL the worker and everything it started (Celery's pool, the task processes):
        the machine is lost, nothing runs a ``finally``."""
        process = self.workers[worker]
        for member in _session_members({process.pid}):
            with suppress(psutil.Error):
                member.kill()
        process.wait(timeout=30)
        del self.airflow.processes[worker]


def variables_for(run: str, sshd_host_key: str) -> dict[str, str]:
    """This run's ``.env``: every variable the compose file requires, fresh secrets."""
    from cryptography.fernet import Fernet

    return {
        "POSTGRES_PASSWORD": secrets.token_hex(8),
        "AIRFLOW_DB_PASSWORD": secrets.token_hex(8),
        "LEDGER_DB_PASSWORD": secrets.token_hex(8),
        "LEDGER_READER_PASSWORD": secrets.token_hex(8),
        "REDIS_PASSWORD": secrets.token_hex(12),
        "AIRFLOW_JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW_FERNET_KEY": Fernet.generate_key().decode(),
        "MINIO_ROOT_USER": "payments-test",
        "MINIO_ROOT_PASSWORD": secrets.token_hex(12),
        "PAYMENTS_KEY_SECRET": secrets.token_hex(32),
        "PAYMENTS_BUCKET": f"payments-{run}",
        "PAYMENTS_FINANCE_APPROVERS": "finance",
        "PAYMENTS_AUDITORS": "auditor",
        "PAYMENTS_OPERATORS": "operator",
        "SFTP_FUNDS_HOST_KEY": sshd_host_key,
        "SFTP_BANK_HOST_KEY": sshd_host_key,
    }


@dataclass(frozen=True)
class Servers:
    """The funds' drop zone and the bank on one sshd, and what the cluster needs to reach them."""

    funds: Path  # the funds' files, under funds/<code>/
    bank: Path  # what the bank receives, under bank/<fund>/
    #: deploy/airflow-init.sh's SFTP_* variables for both servers.
    sftp: dict[str, str]
    #: The files compose's ``secrets`` name: throw-away signing and identity pairs, the
    #: sshd's client key.
    keys: Path


def on_sshd(sshd: SshServer, sample: Path, base: Path) -> Servers:
    """The sample's funds' files on ``sshd``, an empty bank beside them, keys under ``base``."""
    from payments.identity import generate_pair
    from payments.sepa.signing import generate_demo_pair

    funds, bank = sshd.root / base.name / "funds-zone", sshd.root / base.name / "bank-zone"
    shutil.copytree(sample / "funds", funds / "funds")
    bank.mkdir(parents=True)
    keys = base / "keys"
    generate_demo_pair(keys / "signing-key.pem", keys / "signing-cert.pem", common_name=base.name)
    generate_pair(keys / "identity-key.pem", keys / "identity-key.pub.pem")
    shutil.copyfile(sshd.client_key, keys / "sftp_client_key")
    sftp: dict[str, str] = {}
    for server, root in (("FUNDS", funds), ("BANK", bank)):
        sftp |= {
            f"SFTP_{server}_HOST": sshd.host,
            f"SFTP_{server}_PORT": str(sshd.port),
            f"SFTP_{server}_LOGIN": sshd.username,
            f"SFTP_{server}_ROOT": str(root),
            f"SFTP_{server}_HOST_KEY": sshd.host_key_line,
        }
    return Servers(funds, bank, sftp, keys)


@contextmanager
def running_redis(base: Path, password: str) -> Iterator[int]:
    """Debian's redis-server on a free port, with a password and nothing kept on disk."""
    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    base.mkdir(parents=True, exist_ok=True)
    options = ["--bind", "127.0.0.1", "--requirepass", password, "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(
        [server, "--port", str(port), *options, "--dir", str(base)],
        stdout=(base / "redis.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=port, password=password)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(
                        f"redis-server did not start: {base / 'redis.log'}"
                    ) from None
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)


@contextmanager
def databases(run: str, variables: Mapping[str, str], server: str = "127.0.0.1") -> Iterator[Site]:
    """Airflow's and the ledger's databases, created by deploy/init-databases.sh; dropped after."""
    names = {"airflow": f"airflow_{run}", "ledger": f"ledger_{run}"}
    env = {
        **os.environ,
        **variables,
        "POSTGRES_USER": "postgres",
        "PGHOST": server,
        "AIRFLOW_DB": names["airflow"],
        "LEDGER_DB": names["ledger"],
    }
    script = ROOT / "deploy" / "init-databases.sh"
    out = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{script.name}: {out.stderr[-2000:]}")
    try:
        yield Site(addresses={"postgres:5432": f"{server}:5432"}, databases=names)
    finally:
        for name in names.values():
            drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
            psql = ["psql", "-q", "-h", server, "-U", "postgres", "-c", drop]
            subprocess.run(psql, capture_output=True, check=False)


def _secrets_folder(base: Path, compose: Mapping[str, Any], service: str, keys: Path) -> Path:
    """The service's compose secrets, as files named as compose mounts them (from ``keys``)."""
    folder = base / "run-secrets" / service
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in service_secrets(compose, service).items():
        shutil.copyfile(keys / source.name, folder / name)
        (folder / name).chmod(0o600)
    return folder


def healthcheck(compose: Mapping[str, Any], service: str) -> str:
    """The shell command of a service's ``CMD-SHELL`` healthcheck, ``$$`` unescaped."""
    kind, command = compose["services"][service]["healthcheck"]["test"]
    assert kind == "CMD-SHELL", (service, kind)
    return interpolate(str(command), {})


@dataclass
class Plan:
    """What every process of one cluster is started from."""

    base: Path
    compose: dict[str, Any]
    variables: dict[str, str]
    site: Site
    common: dict[str, str]  # what a container has from its image and port mapping
    keys: Path

    @property
    def home(self) -> Path:
        return self.base / "airflow"

    def env_of(self, service: str) -> dict[str, str]:
        compose = service_environment(self.compose, service, self.variables, self.site)
        return {**self.common, **compose}

    @property
    def scratch(self) -> str:
        return self.env_of(WORKER_SERVICE)["PAYMENTS_DATA_DIR"]

    def start(
        self, airflow: Airflow, service: str, env: dict[str, str], name: str, argv: list[str]
    ) -> subprocess.Popen[bytes]:
        secrets_dir = None
        if service_secrets(self.compose, service):
            secrets_dir = _secrets_folder(self.home, self.compose, service, self.keys)
        process = subprocess.Popen(
            contained(name, self.scratch, secrets_dir, argv),
            env=env,
            stdout=(self.home / f"{name}.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session: stopped with every process it starts
        )
        airflow.processes[name] = process
        return process


def _init(plan: Plan, sftp: Mapping[str, str]) -> None:
    """The ``airflow-init`` service: deploy/airflow-init.sh with its compose environment."""
    for mountpoint in (plan.scratch, SECRETS_DIR):
        Path(mountpoint).mkdir(parents=True, exist_ok=True)
    script = ["sh", str(ROOT / "deploy" / "airflow-init.sh")]
    init = subprocess.run(
        contained("airflow-init", plan.scratch, None, script),
        env={**plan.env_of("airflow-init"), **sftp},
        capture_output=True,
        text=True,
        timeout=900,
    )
    if init.returncode != 0:
        raise RuntimeError(f"airflow-init.sh: {init.stdout[-2000:]}\n{init.stderr[-3000:]}")


def _worker_up(plan: Plan, hostname: str) -> bool:
    """The worker service's compose healthcheck (Celery's ping through the broker) passes."""
    out = subprocess.run(
        ["sh", "-c", healthcheck(plan.compose, WORKER_SERVICE)],
        env={**plan.env_of(WORKER_SERVICE), "HOSTNAME": hostname},
        capture_output=True,
        check=False,
        timeout=120,
    )
    return out.returncode == 0


@contextmanager
def running_cluster(
    base: Path,
    *,
    s3_endpoint: str,
    servers: Servers,
    workers: int = 2,
    concurrency: int = 1,
    worker_extra: Mapping[str, Mapping[str, str]] | None = None,
) -> Iterator[Cluster]:
    """The compose deployment's Airflow on this machine, until the block ends.

    ``servers``: the SFTP servers and the keys (:func:`on_sshd`).
    ``worker_extra``: more environment for a worker, by host name (a fault).
    """
    problem = can_contain()
    if problem:
        raise RuntimeError(problem)
    run = secrets.token_hex(4)
    variables = {**variables_for(run, servers.sftp["SFTP_FUNDS_HOST_KEY"]), **servers.sftp}
    home = base / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    with (
        running_redis(base / "redis", variables["REDIS_PASSWORD"]) as redis_port,
        databases(run, variables) as db_site,
    ):
        port = free_port()
        site = Site(
            addresses={
                **db_site.addresses,
                "redis:6379": f"127.0.0.1:{redis_port}",
                "minio:9000": s3_endpoint.removeprefix("http://"),
                "airflow-apiserver:8080": f"127.0.0.1:{port}",
            },
            databases=db_site.databases,
        )
        test_only = {
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_S),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__CORE__PARALLELISM": str(max(2, workers * concurrency)),
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        common = airflow_env(home, home / "unused-data-dir", port, test_only)
        plan = Plan(base, compose_file(), variables, site, common, servers.keys)
        _init(plan, servers.sftp)
        airflow = Airflow(f"http://127.0.0.1:{port}", home, plan.env_of("airflow-apiserver"))
        cluster = Cluster(airflow, plan)
        try:
            _start_all(cluster, workers, concurrency, worker_extra or {})
            yield cluster
        finally:
            stop(airflow)


def _start_all(
    cluster: Cluster,
    workers: int,
    concurrency: int,
    worker_extra: Mapping[str, Mapping[str, str]],
) -> None:
    """Every Airflow service, then the workers; back once the API and each worker answer."""
    airflow, plan = cluster.airflow, cluster.plan
    for service in AIRFLOW_SERVICES:
        cluster.environments[service] = plan.env_of(service)
        argv = airflow_command(plan.compose, service)
        plan.start(airflow, service, cluster.environments[service], service, argv)
    for n in range(1, workers + 1):
        hostname = f"worker-{n}"
        env = {
            **plan.env_of(WORKER_SERVICE),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            **worker_extra.get(hostname, {}),
        }
        cluster.environments[hostname] = env
        argv = [*airflow_command(plan.compose, WORKER_SERVICE), "--concurrency", str(concurrency)]
        cluster.workers[hostname] = plan.start(airflow, WORKER_SERVICE, env, hostname, argv)
    wait_for(lambda: _api_up(airflow), timeout=240, what="the API server", airflow=airflow)
    for hostname in cluster.workers:
        wait_for(
            lambda h=hostname: _worker_up(plan, h),  # type: ignore[misc]
            timeout=240,
            what=f"Celery worker {hostname}",
            airflow=airflow,
            every=3,
        )


# The batch through Airflow's REST API, as its users drive it (the test and the bench).

DAG = "solidarity_payment_batch"
#: Seconds between the approval pausing and finance answering: answered at once, the
#: response can reach the scheduler before the pausing task's exit is reported, and the
#: resumed task is then marked failed (see test_airflow_runtime). A person takes longer.
APPROVAL_PAUSE_S = 10


def api(airflow: Airflow, user: str, method: str, path: str, **kwargs: Any) -> Any:
    """One REST call as ``user``; anything but 200 is an error naming the call."""
    with airflow.client(user) as client:
        answer = client.request(method, path, **kwargs)
    if answer.status_code != 200:
        raise AssertionError(f"{method} {path}: {answer.status_code} {answer.text}")
    return answer.json()


def task_instances(airflow: Airflow, run_id: str) -> list[dict[str, Any]]:
    path = f"/dags/{DAG}/dagRuns/{run_id}/taskInstances"
    return list(api(airflow, "operator", "GET", path, params={"limit": 500})["task_instances"])


def run_state(airflow: Airflow, run_id: str) -> str | None:
    """``success`` or ``failed`` once the run ended, else None."""
    state = str(api(airflow, "operator", "GET", f"/dags/{DAG}/dagRuns/{run_id}")["state"])
    return state if state in ("success", "failed") else None


def xcom(airflow: Airflow, run_id: str, task_id: str) -> Any:
    path = f"/dags/{DAG}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
    params = {"deserialize": True, "stringify": False}
    return api(airflow, "operator", "GET", path, params=params)["value"]


def trigger_batch(airflow: Airflow, conf: Mapping[str, Any]) -> str:
    """``operator`` unpauses (new DAGs start paused, as compose sets) and triggers the batch."""
    wait_parsed(airflow, DAG)
    unpause(airflow, DAG)
    body = {"logical_date": None, "conf": dict(conf)}
    return str(api(airflow, "operator", "POST", f"/dags/{DAG}/dagRuns", json=body)["dag_run_id"])


def approve_when_asked(airflow: Airflow, run_id: str, timeout: float) -> float:
    """Wait for the approval, then answer it as ``finance``; returns when finance was asked."""

    def asked() -> float | None:
        states = {ti["task_id"]: ti["state"] for ti in task_instances(airflow, run_id)}
        if "failed" in states.values() or run_state(airflow, run_id):
            raise AssertionError(f"the run ended before its approval: {states}\n{airflow.logs()}")
        return time.time() if states.get("approval") in ("deferred", "awaiting_input") else None

    at = float(wait_for(asked, timeout=timeout, what="the approval", airflow=airflow))
    time.sleep(APPROVAL_PAUSE_S)
    hitl = f"/dags/{DAG}/dagRuns/{run_id}/taskInstances/approval/-1/hitlDetails"
    api(airflow, "finance", "PATCH", hitl, json={"chosen_options": ["Approve"]})
    return at
