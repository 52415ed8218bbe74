"""The payment batch DAG end to end with Airflow's dag.test(), over a real OpenSSH SFTP server.

Funds' files are on the SFTP drop zone, the bank is another folder of the
server (two Airflow connections with pinned host keys); the storage root holds
only what the run fetched and produced. Finance answers through Airflow's own
HITL endpoint function, as the UI would: first as users Airflow must refuse.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from fastapi import HTTPException
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from payments.contract import load_contract
from payments.ledger.migrate import engine_for
from payments.ledger.models import Payment, Run
from payments.orchestration.approval import respond
from payments.orchestration.local_run import DAG_ID, answer_as, run_dag
from payments.sample.writer import SampleSpec, write_sample
from payments.sepa.signing import load_certificate, signer_paths
from payments.sepa.verify import verify_batch
from tests.conftest import MAY_2020
from tests.sshd import SshServer, connection

DAGS = Path(__file__).resolve().parents[1] / "dags"
FUNDS = ["01", "13", "75", "976"]


def _conn(server: SshServer, root: Path) -> str:
    root.mkdir(parents=True, exist_ok=True)
    return json.dumps(connection(server, root))


@pytest.fixture
def batch_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: str, sshd: SshServer
) -> dict[str, Path]:
    """A sample on the funds' SFTP zone (one fund's file missing), empty storage root and bank."""
    sample_dir = tmp_path / "sample"
    write_sample(
        SampleSpec(households=1500, seed=7, window=MAY_2020, funds=tuple(FUNDS)), sample_dir
    )
    zone = sshd.root / tmp_path.name / "funds-zone"
    bank = sshd.root / tmp_path.name / "bank-zone"
    shutil.copytree(sample_dir / "funds", zone / "funds")
    shutil.rmtree(zone / "funds" / "976")  # late fund: listed for a complementary run
    data = tmp_path / "data"
    monkeypatch.setenv("PAYMENTS_DATA_DIR", str(data))
    monkeypatch.setenv("PAYMENTS_LEDGER_URL", f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    monkeypatch.setenv("PAYMENTS_DEMO", "1")  # generated signing key and beneficiary secret
    monkeypatch.setenv("PAYMENTS_FINANCE_APPROVERS", "finance")
    monkeypatch.setenv("AIRFLOW_CONN_PAYMENTS_FUNDS", _conn(sshd, zone))
    monkeypatch.setenv("AIRFLOW_CONN_PAYMENTS_BANK", _conn(sshd, bank))
    return {"data": data, "zone": zone, "bank": bank, "sample": sample_dir, "tmp": tmp_path}


def _bank_files(bank: Path) -> dict[str, str]:
    return {
        str(p.relative_to(bank)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(bank.rglob("*"))
        if p.is_file()
    }


def _ledger(tmp: Path) -> dict[str, tuple[int, int]]:
    with Session(engine_for(f"sqlite:///{tmp / 'ledger.sqlite'}")) as session:
        rows = session.execute(
            select(Payment.state, func.count(), func.sum(Payment.amount_cents)).group_by(
                Payment.state
            )
        ).all()
    return {str(s): (int(n), int(c)) for s, n, c in rows}


def _data_rows(zone: Path) -> int:
    contract = load_contract()
    total = 0
    for path in sorted((zone / "funds").rglob("*.csv")):
        total += len(path.read_bytes().splitlines()) - 1  # header
        assert path.name == contract.data_file_name(path.parent.name, "aes-2020-05")
    return total


def _personal_data(sample: Path) -> list[str]:
    values: list[str] = []
    for path in sorted((sample / "funds").rglob("*.csv")):
        table = pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(delimiter=";", invalid_row_handler=lambda _r: "skip"),
            convert_options=pacsv.ConvertOptions(
                column_types={"claimant_nir": "string", "iban": "string"}
            ),
            read_options=pacsv.ReadOptions(encoding="latin-1"),
        )
        values += [v for v in table.column("claimant_nir").to_pylist()[:40] if v]
        values += [v for v in table.column("iban").to_pylist()[:40] if v]
    return values


def _receive_states(run: Any) -> dict[str, str]:
    """Each fund's ``receive`` task state in a finished DAG run."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.scalars(
            select(TaskInstance).where(
                TaskInstance.run_id == run.run_id, TaskInstance.task_id == "receive"
            )
        ).all()
        return {str(ti.rendered_map_index): str(ti.state) for ti in tis}


def test_approved_batch_goes_from_fund_sftp_to_bank_sftp_exactly_once(
    batch_env: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    refused: list[str] = []

    def finance_answers(airflow_run_id: str, task_id: str) -> None:
        # The user who triggered the run (dag.test's "dag_test") and a user who is
        # not in finance are refused by Airflow itself, then finance approves.
        for user in ("dag_test", "operator"):
            with pytest.raises(HTTPException) as refusal:
                respond(DAG_ID, airflow_run_id, task_id, user=user, option="Approve")
            assert refusal.value.status_code == 403
            refused.append(user)
        respond(DAG_ID, airflow_run_id, task_id, user="finance", option="Approve")

    conf = {"funds": FUNDS}
    run = run_dag(DAGS, conf, finance_answers)
    assert str(run.state) == "success"
    assert refused == ["dag_test", "operator"]

    data, bank = batch_env["data"], batch_env["bank"]
    run_id = (data / "runs" / "LATEST").read_text().strip()
    run_dir = data / "runs" / run_id
    summary = json.loads((run_dir / "summary.json").read_text())
    manifest = json.loads((run_dir / "payments" / "manifest.json").read_text())

    # The late fund is listed, the others were paid; its task is skipped, not green.
    assert _receive_states(run) == {
        "01": "success",
        "13": "success",
        "75": "success",
        "976": "skipped",
    }
    assert [n["fund"] for n in summary["not_received"]] == ["976"]
    assert summary["not_received"][0]["reason"] == "file_missing"
    assert summary["funds_with_files"] == ["01", "13", "75"]

    # Counts tie out from the rows read to the payments sent.
    v = summary["validation"]
    assert v["rows_read"] == _data_rows(batch_env["zone"])
    assert v["rows_read"] == v["accepted"] + v["quarantined"]
    decisions = pq.read_table(run_dir / "compute" / "decisions.parquet")
    payable = [s for s in decisions.column("status").to_pylist() if s == "payable"]
    files = summary["payment_files"]
    assert files["payments"] == len(payable) == manifest["totals"]["nb_of_txs"]
    ledger = _ledger(batch_env["tmp"])
    assert ledger["sent"] == (files["payments"], files["cents"])
    assert set(ledger) <= {"sent", "held"}

    # At the bank: every file and signature, byte for byte, and the batch verifies.
    at_bank = _bank_files(bank)
    for f in manifest["files"]:
        name = f"bank/{f['fund_code']}/{Path(f['path']).name}"
        assert at_bank[name] == f["sha256"]
        assert name + ".p7s" in at_bank
    assert not [n for n in at_bank if n.endswith(".part")]
    trusted = load_certificate(signer_paths(data)[1])
    assert verify_batch(run_dir / "payments", trusted) == []

    # The ledger knows who approved; the DAG's answer was recorded as given.
    with Session(engine_for(f"sqlite:///{batch_env['tmp'] / 'ledger.sqlite'}")) as session:
        recorded = session.get(Run, run_id)
        assert recorded is not None
        assert (recorded.decision, recorded.approved_by) == ("approved", "finance")
        assert recorded.triggered_by == "dag_test"

    # Re-triggering the same run pays nobody twice: same files at the bank, same ledger;
    # and finance is not asked again to approve what it approved and what was sent.
    asked: list[str] = []
    run_again = run_dag(
        DAGS,
        conf,
        lambda airflow_run_id, task_id: (
            asked.append(airflow_run_id)
            or respond(DAG_ID, airflow_run_id, task_id, user="finance", option="Approve")
        ),
    )
    assert str(run_again.state) == "success"
    assert asked == []
    assert (data / "runs" / "LATEST").read_text().strip() == run_id
    assert _bank_files(bank) == at_bank
    assert _ledger(batch_env["tmp"]) == ledger

    # A retried delivery task (what Airflow's retries run) sends nothing again.
    from payments.orchestration.delivery import deliver

    again = deliver((DAG_ID, str(run.run_id)), "75", owner="a-retry")
    assert set(again["files"].values()) == {"already_sent"}
    assert again["payments_sent"] == 0
    assert _bank_files(bank) == at_bank

    # An auditor replays the DAG's run from its archive: byte-identical.
    from payments.credentials import load_secret
    from payments.replay import replay_run
    from payments.sepa.signing import load_signer

    replayed = replay_run(
        data,
        run_id,
        batch_env["tmp"] / "replay",
        secret=load_secret(data, create=False),
        signer=load_signer(*signer_paths(data)),
    )
    assert replayed.problems == [] and replayed.ok

    # Task logs carry counts and sums, never a clear NIR or IBAN.
    text = caplog.text
    assert "approved by finance" in text
    assert re.search(r"rows read \d+ = accepted \d+ \+ quarantined \d+", text)
    leaked = [value for value in _personal_data(batch_env["sample"]) if value in text]
    assert leaked == []


def test_rejected_batch_sends_nothing_and_cancels_its_payments(
    batch_env: dict[str, Path],
) -> None:
    run = run_dag(DAGS, {"funds": ["01", "13"]}, answer_as("finance", "Reject"))
    assert str(run.state) == "success"
    assert _bank_files(batch_env["bank"]) == {}
    ledger = _ledger(batch_env["tmp"])
    assert "sent" not in ledger and "approved" not in ledger and ledger["cancelled"][0] > 0
    run_id = (batch_env["data"] / "runs" / "LATEST").read_text().strip()
    url = f"sqlite:///{batch_env['tmp'] / 'ledger.sqlite'}"
    with Session(engine_for(url)) as session:
        recorded = session.get(Run, run_id)
        assert recorded is not None and recorded.decision == "rejected"
    # Issue 37: a rejected run's events were never anchored, and its bundle never checked.
    from payments.bundle import check_bundle, export_bundle

    data = batch_env["data"]
    cert = signer_paths(data)[1]
    zipped = export_bundle(data, url, run_id, batch_env["tmp"] / "rejected.zip", cert)
    assert check_bundle(zipped, load_certificate(cert)) == []


def test_dry_run_records_nothing_and_asks_nobody(
    batch_env: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    run = run_dag(DAGS, {"funds": ["13"], "dry_run": True})
    assert str(run.state) == "success"
    # The national step's log says it is a dry run, with the budget it was run for.
    assert re.search(r"DRY RUN \S+: nothing recorded.*\d+ households to be paid", caplog.text)
    dry = [p.name for p in (batch_env["data"] / "runs").iterdir() if p.name.startswith("dry-")]
    assert len(dry) == 1
    assert not (batch_env["data"] / "runs" / "LATEST").exists()
    assert _ledger(batch_env["tmp"]) == {}
    assert _bank_files(batch_env["bank"]) == {}


def test_reconciliation_dag_applies_the_banks_reports_and_ties_out(
    batch_env: dict[str, Path],
) -> None:
    """Paid batch → the bank answers (some rejections) → the reconciliation DAG ties out."""
    from payments.orchestration.reconcile import pending_reports
    from tests.bank_simulator import status_report

    run = run_dag(DAGS, {"funds": ["01", "75"]}, answer_as("finance", "Approve"))
    assert str(run.state) == "success"
    bank = batch_env["bank"]
    reports = bank / "bank" / "reports"
    reports.mkdir(parents=True)
    rejected: list[str] = []
    for path in sorted((bank / "bank").rglob("*.xml")):
        if path.parent == reports:
            continue
        report, ids = status_report(path.read_bytes(), reject_share=0.05, seed=3)
        (reports / f"STS-{path.name}").write_bytes(report)
        rejected += ids
    assert rejected and pending_reports() == 2

    sent = _ledger(batch_env["tmp"])["sent"]
    run = run_dag(DAGS, dag_id="solidarity_reconciliation")
    assert str(run.state) == "success"
    ledger = _ledger(batch_env["tmp"])
    assert ledger["rejected"][0] == len(rejected)
    assert ledger["accepted"][0] + ledger["rejected"][0] == sent[0]
    assert ledger["accepted"][1] + ledger["rejected"][1] == sent[1]
    assert pending_reports() == 0  # the inbox watch has nothing more to announce

    csv = (batch_env["data"] / "reconciliation" / "by_fund.csv").read_text()
    header, *rows = csv.strip().splitlines()
    columns = header.replace('"', "").split(";")
    total = {c: 0 for c in columns if c.endswith("_cents")}
    for row in rows:
        values = dict(zip(columns, row.replace('"', "").split(";"), strict=True))
        for c in total:
            total[c] += int(values[c])
    assert total["accepted_cents"] == ledger["accepted"][1]
    assert total["rejected_cents"] == ledger["rejected"][1]
    assert total["sent_cents"] == sent[1]
    # The bank's answers are anchored: the chain's head signed after the reconciliation,
    # and the whole ledger checks against what is signed.
    from payments.ledger.integrity import verify_ledger

    assert (batch_env["data"] / "reconciliation" / "chain-head.json.p7s").exists()
    with Session(engine_for(f"sqlite:///{batch_env['tmp'] / 'ledger.sqlite'}")) as session:
        cert = load_certificate(signer_paths(batch_env["data"])[1])
        assert verify_ledger(session, batch_env["data"], cert) == []

    # A second run finds nothing new: nothing applied twice.
    run = run_dag(DAGS, dag_id="solidarity_reconciliation")
    assert str(run.state) == "success"
    assert _ledger(batch_env["tmp"]) == ledger

    # Days later the bank returns two accepted payments (closed accounts, camt.054).
    from payments.ledger.models import PaymentFileRow
    from tests.bank_simulator import returns_notification

    with Session(engine_for(f"sqlite:///{batch_env['tmp'] / 'ledger.sqlite'}")) as session:
        back = session.execute(
            select(PaymentFileRow.msg_id, Payment.end_to_end_id, Payment.amount_cents)
            .join(PaymentFileRow, Payment.payment_file_id == PaymentFileRow.id)
            .where(Payment.state == "accepted")
            .order_by(Payment.end_to_end_id)
            .limit(2)
        ).all()
    (reports / "RTN-1.xml").write_bytes(returns_notification([tuple(r) for r in back]))
    run = run_dag(DAGS, dag_id="solidarity_reconciliation")
    assert str(run.state) == "success"
    after = _ledger(batch_env["tmp"])
    assert after["returned"] == (2, sum(r[2] for r in back))
    assert after["accepted"][0] == ledger["accepted"][0] - 2
    assert after["accepted"][1] + after["returned"][1] + after["rejected"][1] == sent[1]

    # The re-issue list holds exactly the rejected and returned households...
    from payments.ledger.finance import reissue_list, tie_out

    url = f"sqlite:///{batch_env['tmp'] / 'ledger.sqlite'}"
    with Session(engine_for(url)) as session:
        listed = reissue_list(session, "aes-2020-05")
        gone = session.execute(
            select(Payment.fund_code, Payment.household_id).where(
                Payment.state.in_(["rejected", "returned"])
            )
        ).all()
    assert sorted((r["fund_code"], r["household_id"]) for r in listed) == sorted(
        (f, h) for f, h in gone
    )
    assert {r["end_to_end_id"] for r in listed} >= set(rejected) | {r[1] for r in back}

    # ...and a complementary run a week later pays them, and nobody else.
    before = _bank_files(bank)
    run = run_dag(
        DAGS, {"funds": ["01", "75"], "payment_date": "2020-05-22"}, answer_as("finance", "Approve")
    )
    assert str(run.state) == "success"
    new_files = {k: v for k, v in _bank_files(bank).items() if k not in before}
    assert new_files and all(v == before.get(k, v) for k, v in _bank_files(bank).items())
    with Session(engine_for(url)) as session:
        reissued = session.execute(
            select(Payment.fund_code, Payment.household_id, Payment.attempt, Payment.end_to_end_id)
            .where(Payment.attempt > 1)
            .order_by(Payment.fund_code, Payment.household_id)
        ).all()
        assert reissue_list(session, "aes-2020-05") == []
        keys = session.execute(select(func.count(func.distinct(Payment.beneficiary_key)))).scalar()
        live = session.execute(
            select(func.count()).where(Payment.state.in_(["sent", "accepted", "in_file", "held"]))
        ).scalar()
    # Every rejected or returned household has its second attempt (sent, or held
    # again for review if a hold applies now); nobody else was paid.
    assert gone and {(f, h) for f, h, _, _ in reissued} == {(f, h) for f, h in gone}
    assert all(a == 2 and e.endswith("-R2") for _, _, a, e in reissued)
    in_new_files = [
        e2e
        for name in new_files
        if name.endswith(".xml")
        for e2e in re.findall(r"<EndToEndId>([^<]+)</EndToEndId>", (bank / name).read_text())
    ]
    assert in_new_files and all(e.endswith("-R2") for e in in_new_files)
    assert set(in_new_files) <= {e for _, _, _, e in reissued}
    assert live == keys  # one live payment per household: nobody twice
    assert all(r["ties_out"] for r in tie_out(engine_for(url)))


def test_a_dry_run_after_a_paid_run_reports_a_dry_run(batch_env: dict[str, Path]) -> None:
    """The review: a dry run's ``report`` compared the real run's sent payments with its
    own (no) files and logged "ties out: False" while green. A dry run has nothing to tie."""
    from payments.orchestration import delivery

    paid = run_dag(DAGS, {"funds": ["13"]}, answer_as("finance", "Approve"))
    assert str(paid.state) == "success"
    dry = run_dag(DAGS, {"funds": ["13"], "dry_run": True})
    assert str(dry.state) == "success"
    [folder] = [p for p in (batch_env["data"] / "runs").iterdir() if p.name.startswith("dry-")]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["dry_run"] is True
    # what the DAG's last task returns: the ledger holds nothing of this Airflow run
    reported = delivery.report((DAG_ID, str(dry.run_id)), dry_run=True)
    assert reported == {"recorded": False, "dry_run": True}
    assert "sent_ties_out" not in reported  # nothing was sent by this run: nothing to tie out
