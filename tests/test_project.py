"""The project's own contract: layout, README commands, CI script, constraints, compose."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT


def test_top_level_layout() -> None:
    for name in ("dags", "plugins", "payments", "sql", "tests", "docs"):
        assert (ROOT / name).is_dir(), name
    for name in (
        "docker-compose.yml",
        "pyproject.toml",
        "Makefile",
        "README.md",
        ".ci/run",
        "constraints.txt",
    ):
        assert (ROOT / name).is_file(), name


def test_readme_gives_the_two_commands_and_ci_calls_make_test() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_constraints_pin_airflow_3_3_and_every_line() -> None:
    lines = [
        line
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[^=\s]+", line) for line in lines), lines
    pins = dict(line.split("==") for line in lines)
    names = {k.lower().replace("_", "-") for k in pins}
    assert any(re.fullmatch(r"3\.3\.\d+", v) for k, v in pins.items() if k == "apache-airflow")
    for required in (
        "pyarrow",
        "pandera",
        "polars",
        "sqlalchemy",
        "alembic",
        "paramiko",
        "cryptography",
        "lxml",
        "xmlschema",
        "apache-airflow-providers-sftp",
        "apache-airflow-providers-ssh",
        "apache-airflow-providers-standard",
        "pytest",
        "hypothesis",
        "schwifty",
    ):
        assert required in names, required


def test_installed_environment_is_consistent() -> None:
    out = subprocess.run(["pip", "check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def _compose() -> tuple[str, dict]:  # type: ignore[type-arg]
    text = (ROOT / "docker-compose.yml").read_text()
    return text, yaml.safe_load(text)


def test_compose_file_parses_and_keeps_secrets_out() -> None:
    text, doc = _compose()
    services = doc["services"]
    for service in services.values():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), image
    # secrets only as ${VAR} references or secret files, never literal
    keys = re.compile(r"^\s*[A-Z_]*(PASSWORD|SECRET|KEY)[A-Z_]*:\s*(\S+)", re.M)
    found = list(keys.finditer(text))
    assert found
    for match in found:
        value = match.group(2)
        assert value.startswith("${") or value.startswith("/run/secrets/"), match.group(0)
    for secret in doc["secrets"].values():
        assert secret["file"].startswith("./secrets/")
    ignored = (ROOT / ".gitignore").read_text().split()
    assert ".env" in ignored and "secrets/" in ignored
    example = (ROOT / ".env.example").read_text()
    for name in sorted(set(re.findall(r"\$\{([A-Z_]+):\?", text))):
        assert re.search(rf"^{name}=", example, re.M), f"{name} missing from .env.example"


def test_compose_runs_a_distributed_airflow_with_everything_the_dags_name() -> None:
    _, doc = _compose()
    services = doc["services"]
    for name in (
        "postgres",
        "redis",
        "minio",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
        "sftp-funds",
        "sftp-bank",
    ):
        assert name in services, name
    env = services["airflow-worker"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert "@redis:6379" in env["AIRFLOW__CELERY__BROKER_URL"]
    assert services["airflow-worker"]["deploy"]["replicas"] == 2
    # Airflow's metadata and the ledger: two databases, two owners, one server.
    assert "@postgres:5432/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert env["PAYMENTS_LEDGER_URL"].startswith("postgresql+psycopg://ledger:")
    assert env["PAYMENTS_LEDGER_URL"].endswith("@postgres:5432/ledger")
    init_db = (ROOT / "deploy" / "init-databases.sh").read_text()
    assert 'AIRFLOW_DB="${AIRFLOW_DB:-airflow}"' in init_db
    assert 'LEDGER_DB="${LEDGER_DB:-ledger}"' in init_db
    # The ledger's database in byte-order collation, as the bench and the tests create it.
    from payments.ledger.migrate import DATABASE_OPTIONS

    assert f'CREATE DATABASE :"ledger_db" OWNER ledger {DATABASE_OPTIONS};' in init_db
    # The init service creates what the DAGs name: the pool and the connections,
    # whose hosts are services of this file.
    from payments.orchestration.endpoints import BANK_CONN, FUNDS_CONN

    init = (ROOT / "deploy" / "airflow-init.sh").read_text()
    assert "airflow pools set payments_sftp" in init
    assert "payments ledger upgrade" in init and "airflow db migrate" in init
    for conn_id, host in ((FUNDS_CONN, "sftp-funds"), (BANK_CONN, "sftp-bank")):
        server = host.removeprefix("sftp-").upper()
        option = f'--conn-host "${{SFTP_{server}_HOST:-{host}}}"'
        assert f"connections add {conn_id} --conn-type sftp {option}" in init
        assert host in services
    assert '\\"host_key\\"' in init and "no_host_key_check" not in init
    # Every Airflow component waits for the init and for healthy dependencies,
    # shares the storage root and the network, and has a healthcheck.
    for name, service in services.items():
        assert "payments" in service["networks"], name
        if name.startswith("airflow-") and name != "airflow-init":
            deps = service["depends_on"]
            assert deps["airflow-init"]["condition"] == "service_completed_successfully"
            assert deps["postgres"]["condition"] == "service_healthy", name
            # No shared disk between workers: data goes through the object store.
            assert not [v for v in service["volumes"] if "data" in v.split(":")[0]], name
            environment = service["environment"]
            assert environment["PAYMENTS_STORAGE_ROOT"].startswith("s3://"), name
            assert environment["AWS_ENDPOINT_URL"] == "http://minio:9000", name
        if name != "airflow-init":
            assert "healthcheck" in service, name
    for volume in ("postgres-data", "minio-data"):
        assert volume in doc["volumes"]
    assert "payments storage check" in init  # the bucket exists before any DAG runs
    assert "[s3,celery]" in (ROOT / "deploy" / "Dockerfile").read_text()
    assert "payments" in doc["networks"]
    assert (ROOT / "deploy" / "Dockerfile").read_text().startswith("# The project's Airflow image")


#: What a service may hold, beyond Airflow's own settings: the secrets tasks use.
TASK_SECRETS = {"PAYMENTS_KEY_SECRET", "PAYMENTS_SIGNING_KEY", "AWS_SECRET_ACCESS_KEY"}


def test_compose_gives_each_service_only_the_secrets_it_uses() -> None:
    """Review L7: every Airflow container (API server and DAG processor included) held the
    signing key, the SFTP client key, the beneficiary-key secret, the ledger owner's password
    and the object store's root credentials."""
    _, doc = _compose()
    services = doc["services"]
    worker = services["airflow-worker"]
    assert set(worker["environment"]) >= TASK_SECRETS
    assert {"signing_key", "sftp_client_key"} <= set(worker["secrets"])
    for name in ("airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
        env = set(services[name]["environment"])
        assert not env & (TASK_SECRETS | {"PAYMENTS_LEDGER_URL", "AWS_ACCESS_KEY_ID"}), name
        assert not services[name].get("secrets"), name
    api = services["airflow-apiserver"]
    assert not set(api["environment"]) & {"PAYMENTS_KEY_SECRET", "PAYMENTS_SIGNING_KEY"}
    assert set(api.get("secrets", [])) <= {"signing_cert", "identity_key"}
    # The key that vouches for users is the API server's alone; workers check with its half.
    assert api["environment"]["PAYMENTS_IDENTITY_KEY"] == "/run/secrets/identity_key"
    assert "identity_public_key" in worker["secrets"] and "identity_key" not in worker["secrets"]
    assert "PAYMENTS_IDENTITY_KEY" not in worker["environment"]
    assert api["environment"]["PAYMENTS_LEDGER_URL"].startswith(
        "postgresql+psycopg://ledger_reader:"
    )
    init_db = (ROOT / "deploy" / "init-databases.sh").read_text()
    assert "GRANT SELECT ON TABLES TO ledger_reader" in init_db
    init = services["airflow-init"]
    assert not set(init["environment"]) & {"PAYMENTS_KEY_SECRET", "PAYMENTS_SIGNING_KEY"}


def test_one_tie_out_error_for_every_stage_under_the_project_s_base() -> None:
    """Validation and compute each had a TieOutError of their own, unrelated."""
    from payments.entitlement import decide
    from payments.errors import PaymentsError, TieOutError
    from payments.validation import rows

    assert rows.TieOutError is decide.TieOutError is TieOutError
    assert issubclass(TieOutError, PaymentsError)


def test_every_airflow_service_and_the_distributed_test_share_one_configuration(
    tmp_path: Path,
) -> None:
    """The distributed test (tests/test_distributed.py) starts every process with its compose
    service's environment (bench/distributed.py): a setting the compose file gives one Airflow
    service and not another, or gives two of them differently, fails here; a setting the
    harness sets itself cannot replace the compose file's."""
    from bench.airflow_runtime import airflow_env
    from bench.distributed import (
        AIRFLOW_SERVICES,
        SHARED_SETTINGS,
        WORKER_SERVICE,
        Plan,
        Site,
        compose_file,
        service_environment,
    )

    compose = compose_file()
    variables = {name: f"<{name}>" for name in _REQUIRED.findall(_compose()[0])}
    site = Site(addresses={"redis:6379": "127.0.0.1:1"}, databases={"airflow": "airflow_t"})
    seen: dict[str, set[str]] = {setting: set() for setting in SHARED_SETTINGS}
    for service in (*AIRFLOW_SERVICES, WORKER_SERVICE):
        env = service_environment(compose, service, variables, site)
        for setting in SHARED_SETTINGS:
            assert setting in env, (service, setting)
            seen[setting].add(env[setting])
    assert {k: len(v) for k, v in seen.items()} == dict.fromkeys(SHARED_SETTINGS, 1)
    # What the harness starts each process with: its own settings never win over compose's.
    common = airflow_env(tmp_path, tmp_path, 8080, {})
    plan = Plan(tmp_path, compose, variables, site, common, tmp_path)
    for service in (*AIRFLOW_SERVICES, WORKER_SERVICE):
        compose_env = service_environment(compose, service, variables, site)
        started = plan.env_of(service)
        assert {k: started[k] for k in SHARED_SETTINGS} == {
            k: compose_env[k] for k in SHARED_SETTINGS
        }, service
    worker = service_environment(compose, WORKER_SERVICE, variables, site)
    assert worker["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert worker["AIRFLOW__CELERY__BROKER_URL"] == "redis://:<REDIS_PASSWORD>@127.0.0.1:1/0"
    assert worker["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres:5432/airflow_t")


_REQUIRED = re.compile(r"\$\{([A-Z_]+):\?")


def test_compose_interpolation_as_docker_compose_does_it() -> None:
    from bench.distributed import interpolate

    given = {"A": "a", "EMPTY": ""}
    assert (
        interpolate("${A}-${A:-x}-${B:-x}-${EMPTY:-x}-$${HOSTNAME}", given) == "a-a-x-x-${HOSTNAME}"
    )
    with pytest.raises(KeyError, match=r"B must be set: set in \.env"):
        interpolate("${B:?set in .env}", given)
