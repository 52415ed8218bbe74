"""Airflow as operators run it: scheduler (LocalExecutor), API server, DAG processor, triggerer.

What ``airflow standalone`` starts, started here as separate processes on a
free port, with a SQLite metadata database in a temporary AIRFLOW_HOME and
this checkout's DAGs and plugins. Tests talk to it only through the REST API,
as users of the simple auth manager. Unlike ``dag.test()``, task processes are
forked by the executor from the scheduler: what the scheduler imported lives
on in them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from payments.orchestration.defaults import SFTP_POOL

#: The checkout whose dags/ and plugins/ Airflow loads.
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
#: Users of the simple auth manager (Airflow role, password): operator triggers, finance
#: approves, auditor audits, viewer only looks.
USERS = {
    "admin": ("admin", "admin-pw"),
    "operator": ("op", "op-pw"),
    "finance": ("user", "fin-pw"),
    # A second finance user: who released a hold does not approve the run that pays it.
    "bob": ("user", "bob-pw"),
    "auditor": ("viewer", "aud-pw"),
    "viewer": ("viewer", "view-pw"),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Airflow:
    """A running Airflow: its URL, home, environment and processes."""

    url: str
    home: Path
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, user: str) -> str:
        """``user``'s JWT, from the API server's login endpoint (as the UI gets it)."""
        if user not in self.tokens:
            answer = httpx.post(
                f"{self.url}/auth/token",
                json={"username": user, "password": USERS[user][1]},
                timeout=30,
            )
            answer.raise_for_status()
            self.tokens[user] = answer.json()["access_token"]
        return self.tokens[user]

    def client(self, user: str) -> httpx.Client:
        """An API client authenticated as ``user``."""
        return httpx.Client(
            base_url=f"{self.url}/api/v2",
            headers={"Authorization": f"Bearer {self.token(user)}"},
            timeout=60,
        )

    def logs(self, limit: int = 6_000) -> str:
        """The components' and the tasks' logs (tails), for a failure's message."""
        parts = []
        for path in sorted(self.home.glob("*.log")):  # one per component (or worker)
            parts.append(f"--- {path.stem} ---\n{path.read_text(errors='replace')[-limit:]}")
        for path in sorted((self.home / "logs").rglob("*.log")):
            text = path.read_text(errors="replace")
            parts.append(f"--- {path.relative_to(self.home / 'logs')} ---\n{text[-limit // 3 :]}")
        return "\n".join(parts)

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AssertionError(f"airflow {name} exited ({process.returncode})\n{self.logs()}")


def airflow_env(home: Path, data_dir: Path, port: int, extra: dict[str, str]) -> dict[str, str]:
    """The environment every component and CLI call shares (one Airflow configuration)."""
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({u: p for u, (_, p) in USERS.items()}))
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
            f"{u}:{role}" for u, (role, _) in USERS.items()
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API_AUTH__JWT_SECRET": "test-runtime-jwt-secret-0123456789abcdef",
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "PAYMENTS_DATA_DIR": str(data_dir),
    }
    env.pop("AIRFLOW__CORE__SQL_ALCHEMY_CONN", None)
    env.update(extra)
    return env


def _cli(env: dict[str, str], *args: str) -> None:
    out = subprocess.run(
        [str(BIN / "airflow"), *args], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, f"airflow {' '.join(args)}: {out.stderr[-3000:]}"


@contextmanager
def running_airflow(home: Path, data_dir: Path, extra: dict[str, str]) -> Iterator[Airflow]:
    """Migrate, then start the four components; stop them all (their children too) at the end."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = airflow_env(home, data_dir, port, extra)
    _cli(env, "db", "migrate")
    _cli(env, "pools", "set", SFTP_POOL, "4", "SFTP sessions to funds and bank")
    airflow = Airflow(url=f"http://127.0.0.1:{port}", home=home, env=env)
    try:
        for name in COMPONENTS:
            log = (home / f"{name}.log").open("wb")
            airflow.processes[name] = subprocess.Popen(
                [str(BIN / "airflow"), name],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own session: stopped with every process it starts
            )
        wait_for(lambda: _api_up(airflow), timeout=240, what="the API server", airflow=airflow)
        yield airflow
    finally:
        stop(airflow)


def _session_members(sessions: set[int]) -> list[psutil.Process]:
    """Every live process in these sessions (task processes get a group of their own)."""
    members = []
    for process in psutil.process_iter():
        with suppress(psutil.Error, ProcessLookupError):
            if os.getsid(process.pid) in sessions:
                members.append(process)
    return members


def stop(airflow: Airflow, grace: float = 30) -> None:
    """SIGTERM to every process the components started (their sessions), SIGKILL after ``grace``."""
    sessions = {p.pid for p in airflow.processes.values()}
    for process in _session_members(sessions):
        with suppress(psutil.Error):
            process.terminate()
    deadline = time.monotonic() + grace
    for process in airflow.processes.values():
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(1, deadline - time.monotonic()))
    for process in _session_members(sessions):
        with suppress(psutil.Error):
            process.kill()
    for process in airflow.processes.values():
        process.wait()


def unpause(airflow: Airflow, dag_id: str) -> None:
    """What "Unpause on trigger" does in the trigger form (new DAGs start paused, as in
    ``airflow standalone``): as the operator."""
    with airflow.client("operator") as api:
        answer = api.patch(f"/dags/{dag_id}", json={"is_paused": False})
    answer.raise_for_status()


def wait_parsed(airflow: Airflow, dag_id: str, timeout: float = 300) -> None:
    """Wait until the DAG processor has parsed ``dag_id`` (the API then knows it)."""
    wait_for(
        lambda: airflow.client("operator").get(f"/dags/{dag_id}").status_code == 200,
        timeout=timeout,
        what=f"the DAG processor to parse {dag_id}",
        airflow=airflow,
    )


def _api_up(airflow: Airflow) -> bool:
    try:
        return httpx.get(f"{airflow.url}/api/v2/monitor/health", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(
    condition: Callable[[], Any], *, timeout: float, what: str, airflow: Airflow, every: float = 2
) -> Any:
    """Poll ``condition`` until it returns something true; on timeout, fail with the logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        airflow.check_alive()
        found = condition()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{airflow.logs()}")
