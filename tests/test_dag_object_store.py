"""The payment DAGs with the storage root on an S3-compatible server (moto, over HTTP).

As in the compose deployment with MinIO: tasks exchange everything through
the object store, so any worker can run any task. The funds and the bank are
the real OpenSSH SFTP server of the other DAG tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from payments.orchestration.local_run import answer_as, run_dag
from payments.sepa.signing import generate_demo_pair, load_certificate, load_signer
from payments.sepa.verify import verify_batch
from payments.storage import open_storage
from tests.test_dag_batch import DAGS, FUNDS, _bank_files, _ledger, batch_env  # noqa: F401

SECRET = "5e" * 32


@pytest.fixture
def on_object_store(
    batch_env: dict[str, Path],  # noqa: F811 - the shared fixture
    s3_root: str,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Path]:
    """The batch environment with the storage root in a bucket and secrets from the environment.

    With a shared storage root no demo secret is generated on a worker (each
    would make its own): the keys come in as files and variables, as on the
    compose workers.
    """
    keys = batch_env["tmp"] / "keys"
    generate_demo_pair(keys / "k.pem", keys / "c.pem", common_name="object store test")
    monkeypatch.setenv("PAYMENTS_STORAGE_ROOT", s3_root)
    monkeypatch.setenv("PAYMENTS_KEY_SECRET", SECRET)
    monkeypatch.setenv("PAYMENTS_SIGNING_KEY", str(keys / "k.pem"))
    monkeypatch.setenv("PAYMENTS_SIGNING_CERT", str(keys / "c.pem"))
    return {**batch_env, "keys": keys}


def test_batch_and_reconciliation_with_the_storage_root_on_an_object_store(
    on_object_store: dict[str, Path], s3_root: str
) -> None:
    env = on_object_store
    run = run_dag(DAGS, {"funds": FUNDS}, answer_as("finance", "Approve"))
    assert str(run.state) == "success"

    storage = open_storage(s3_root)
    run_id = storage.read_text("runs/LATEST").strip()
    summary = json.loads(storage.read_text(f"runs/{run_id}/summary.json"))
    manifest = json.loads(storage.read_text(f"runs/{run_id}/payments/manifest.json"))
    assert summary["funds_with_files"] == ["01", "13", "75"]
    assert [n["fund"] for n in summary["not_received"]] == ["976"]

    # Nothing was left on the worker's disk for another task to rely on, and
    # the Airflow run's workspace is gone from the bucket once published.
    assert not (env["data"] / "runs").exists()
    assert not [f for f in storage.files("runs") if f.startswith(".staging-")]
    for fund in ("01", "13", "75"):
        assert storage.files(f"runs/{run_id}/validation/{fund}")

    # What left for the bank is what the bucket holds, and it ties out to the ledger.
    files = summary["payment_files"]
    assert _ledger(env["tmp"])["sent"] == (files["payments"], files["cents"])
    at_bank = _bank_files(env["bank"])
    for f in manifest["files"]:
        assert at_bank[f"bank/{f['fund_code']}/{Path(f['path']).name}"] == f["sha256"]
    local = env["tmp"] / "from-bucket"
    storage.download(f"runs/{run_id}", local)
    storage.download("archive", local)
    trusted = load_certificate(env["keys"] / "c.pem")
    assert verify_batch(local / "runs" / run_id / "payments", trusted) == []

    # A retried national step finds its published result instead of recomputing.
    from payments.orchestration.national import conclude
    from payments.orchestration.receiving import plan

    again = conclude(plan({"funds": FUNDS}, run.run_id), triggered_by="dag_test")
    assert again["run_id"] == run_id and again == summary

    # The archive in the bucket is complete: an auditor replays the run byte for byte.
    from payments.replay import replay_run

    replayed = replay_run(
        local,
        run_id,
        env["tmp"] / "replay",
        secret=bytes.fromhex(SECRET),
        signer=load_signer(env["keys"] / "k.pem", env["keys"] / "c.pem"),
    )
    assert replayed.problems == [] and replayed.ok

    # The bank answers; the reconciliation DAG reads and writes through the bucket too.
    from tests.bank_simulator import status_report

    reports = env["bank"] / "bank" / "reports"
    reports.mkdir(parents=True)
    rejected: list[str] = []
    for path in sorted((env["bank"] / "bank").rglob("*.xml")):
        if path.parent != reports:
            report, ids = status_report(path.read_bytes(), reject_share=0.05, seed=5)
            (reports / f"STS-{path.name}").write_bytes(report)
            rejected += ids
    run = run_dag(DAGS, dag_id="solidarity_reconciliation")
    assert str(run.state) == "success"
    ledger = _ledger(env["tmp"])
    assert ledger["rejected"][0] == len(rejected)
    assert ledger["accepted"][0] + ledger["rejected"][0] == files["payments"]
    assert len(storage.files("bank-reports")) == len(manifest["files"])
    by_fund = storage.read_text("reconciliation/by_fund.csv")
    assert by_fund.startswith('"fund_code"') or "fund_code" in by_fund.splitlines()[0]
    assert storage.exists("reconciliation/reissue.csv")
    assert not (env["data"] / "reconciliation").exists()
