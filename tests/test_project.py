"""The project's own contract: layout, README commands, CI script, constraints, compose."""

from __future__ import annotations

import re
import subprocess

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


def test_compose_file_parses_and_keeps_secrets_out() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    doc = yaml.safe_load(text)
    services = doc["services"]
    for name in ("postgres", "airflow-apiserver", "airflow-scheduler", "sftp-funds", "sftp-bank"):
        assert name in services, name
    for service in services.values():
        assert ":" in service["image"] and not service["image"].endswith(":latest")
    # secrets only as ${VAR} references, never literal
    keys = re.compile(r"^\s*[A-Z_]*(PASSWORD|SECRET|KEY)[A-Z_]*:\s*(\S+)", re.M)
    found = list(keys.finditer(text))
    assert found
    for match in found:
        assert match.group(2).startswith("${"), match.group(0)
    assert (ROOT / ".env.example").exists()
    assert ".env" in (ROOT / ".gitignore").read_text().split()
