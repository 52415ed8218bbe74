"""The `payments` command: help for every command, JSON output, the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from payments.cli import app

runner = CliRunner()
COMMANDS = ("sample", "validate", "run", "funds", "contract")


def test_help_lists_and_explains_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output
        sub = runner.invoke(app, [command, "--help"])
        assert sub.exit_code == 0 and "Usage" in sub.output


def test_sample_then_run_with_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_DEMO", "1")  # the demo's throw-away secrets
    result = runner.invoke(
        app, ["sample", "-n", "2000", "--defects", "0.05", "--data-dir", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["rows"] == 2000 and len(doc["files"]) == 101
    result = runner.invoke(app, ["run", "--data-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    totals = run["totals"]
    assert totals["funds"]["expected"] == 101
    assert totals["funds"]["rejected"] >= 2  # the non-UTF-8 and the truncated file
    assert totals["funds"]["received"] + totals["funds"]["rejected"] == 101
    assert totals["rows_read"] == totals["accepted"] + totals["quarantined"]
    assert totals["quarantined"] > 0
    assert Path(run["out_dir"], "validation", "validation.json").exists()


def test_console_entry_point_runs() -> None:
    exe = Path(sys.executable).with_name("payments")
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True)
    assert "sample" in out.stdout
    out = subprocess.run(
        [sys.executable, "-m", "payments", "funds", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    funds = json.loads(out.stdout)["funds"]
    assert len(funds) == 101


def test_funds_table_masks_paying_accounts() -> None:
    result = runner.invoke(app, ["funds"])
    assert result.exit_code == 0
    assert "FR7640031000010000000100043" not in result.output
    assert "0043" in result.output


@pytest.mark.parametrize(("profile", "version"), [("epc-2019", "09"), ("sepa-2009", "03")])
def test_run_for_a_bank_profile_writes_files_verify_and_the_official_xsd_accept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, profile: str, version: str
) -> None:
    from lxml import etree

    from payments.sepa.schemas import schema

    monkeypatch.setenv("PAYMENTS_DEMO", "1")
    data = ["--data-dir", str(tmp_path)]
    assert runner.invoke(app, ["sample", "-n", "1500", "--funds", "13,974", *data]).exit_code == 0
    result = runner.invoke(
        app, ["run", "--bank-profile", profile, "--funds", "13,974", "--no-ledger", *data, "--json"]
    )
    assert result.exit_code == 0, result.output
    batch = Path(json.loads(result.stdout)["out_dir"], "payments")
    checked = runner.invoke(app, ["verify", str(batch), *data])
    assert checked.exit_code == 0, checked.output
    xsd = schema(f"pain.001.001.{version}")
    files = sorted(batch.rglob("*.xml"))
    assert files and all(xsd.validate(etree.parse(str(f))) for f in files)
    assert json.loads((batch / "manifest.json").read_text())["format"] == f"pain.001.001.{version}"
    unknown = runner.invoke(app, ["run", "--bank-profile", "nope", *data])
    assert unknown.exit_code == 2 and "no bank profile 'nope'" in unknown.output


def test_validate_uses_the_worker_processes_it_is_given(tmp_path: Path) -> None:
    """`payments validate --workers N` was accepted and ignored (one process)."""
    data = ["--data-dir", str(tmp_path)]
    assert runner.invoke(app, ["sample", "-n", "600", "--funds", "13,75,59", *data]).exit_code == 0
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "payments",
            "--verbose",
            "validate",
            "--input",
            str(tmp_path),
            "--out",
            str(tmp_path / "validated"),
            "--funds",
            "13,75,59",
            "--workers",
            "2",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "validating 3 fund files in 2 worker processes" in out.stderr
    assert json.loads(out.stdout)["totals"]["funds"]["received"] == 3
