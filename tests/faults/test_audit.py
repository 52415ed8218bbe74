"""Tamper evidence anchored outside the database: audit verify sees edited rows and cut chains."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from payments.ledger.events import GENESIS, event_hash
from tests.faults.runs import payments_cli
from tests.vouchers import voucher_file


def _payments(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return payments_cli(data, *args)


@pytest.fixture(scope="module")
def sent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-fund run, approved and sent with the CLI: the untouched ledger."""
    data = tmp_path_factory.mktemp("audit") / "data"
    done = _payments(data, "sample", "--households", "400", "--funds", "13,75")
    assert done.returncode == 0, done.stderr[-2000:]
    operator = str(voucher_file(data, "operator"))
    done = _payments(data, "run", "--funds", "13,75", "--voucher", operator, "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    run_id = json.loads(done.stdout)["run_id"]
    finance = str(voucher_file(data, "finance"))
    for args in (("approve", run_id, "--voucher", finance), ("send", run_id)):
        done = _payments(data, *args)
        assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert (data / "runs" / run_id / "chain-head.json.p7s").exists()
    return data


def _rehash(db: sqlite3.Connection) -> None:
    """The review's A8: the approver rewritten in the event log, then the whole chain re-hashed."""
    prev = GENESIS
    rows = db.execute(
        "SELECT seq, at, kind, run_id, payload FROM event_log ORDER BY seq"
    ).fetchall()
    for seq, at, kind, run_id, payload in rows:
        if kind == "run_approved":
            body = json.loads(payload)
            body["by"] = "mallory"
            payload = json.dumps(body, sort_keys=True, separators=(",", ":"))
        digest = event_hash(seq, datetime.fromisoformat(at), kind, run_id, payload, prev)
        db.execute(
            "UPDATE event_log SET payload = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            (payload, prev, digest, seq),
        )
        prev = digest
    db.execute("UPDATE runs SET approved_by = 'mallory'")


TAMPERING: dict[str, Callable[[sqlite3.Connection], object]] = {
    "amount": lambda db: db.execute(
        "UPDATE payments SET amount_cents = amount_cents + 99900, base_cents = base_cents + 99900 "
        "WHERE id = (SELECT MIN(id) FROM payments WHERE state = 'sent')"
    ),
    "state": lambda db: db.execute(
        "UPDATE payments SET state = 'cancelled' WHERE id = "
        "(SELECT MIN(id) FROM payments WHERE state = 'sent')"
    ),
    "tail": lambda db: db.execute(
        "DELETE FROM event_log WHERE seq > (SELECT MAX(seq) - 3 FROM event_log)"
    ),
    "approver": lambda db: db.execute("UPDATE runs SET approved_by = 'mallory'"),
    "upload": lambda db: db.execute("UPDATE payment_files SET upload_state = 'written'"),
    "rehash": _rehash,
}


@pytest.mark.parametrize("how", sorted(TAMPERING))
def test_audit_verify_sees_what_the_chain_alone_missed(
    sent: Path, tmp_path: Path, how: str
) -> None:
    """M5: an edited payments or runs row, a deleted tail and a re-hashed chain all passed
    `payments audit verify` ("✓ event log intact")."""
    assert _payments(sent, "audit", "verify").returncode == 0
    data = tmp_path / "data"
    shutil.copytree(sent, data)
    db = sqlite3.connect(data / "ledger.sqlite")
    TAMPERING[how](db)
    db.commit()
    db.close()
    done = _payments(data, "audit", "verify")
    assert done.returncode == 1, done.stdout
    assert "✗" in done.stdout


@pytest.mark.parametrize("forge", ["events", "reconciliation"])
def test_check_bundle_refuses_a_rewritten_bundle(sent: Path, tmp_path: Path, forge: str) -> None:
    """M5: a bundle with the approver rewritten in events.jsonl (each event re-hashed), or every
    'sent' turned 'accepted' in reconciliation.csv, and its index recomputed passed check-bundle,
    even with --cert."""
    import hashlib
    import zipfile

    run_id = next(p.name for p in (sent / "runs").iterdir() if p.name.startswith("aes-"))
    real = tmp_path / "real.zip"
    done = _payments(sent, "audit", "bundle", run_id, "--out", str(real))
    assert done.returncode == 0, done.stdout + done.stderr
    cert = str(sent / "secrets" / "signing-cert.pem")
    assert _payments(sent, "audit", "check-bundle", str(real), "--cert", cert).returncode == 0
    with zipfile.ZipFile(real) as z:
        members = {n: z.read(n) for n in z.namelist()}
    lines = []
    if forge == "reconciliation":
        members["reconciliation.csv"] = members["reconciliation.csv"].replace(
            b";sent;", b";accepted;"
        )
    for line in members["events.jsonl"].decode().splitlines():
        event = json.loads(line)
        if forge == "events" and event.get("kind") == "run_approved":
            body = json.loads(event["payload"])
            body["by"] = "finance-chief"
            event["payload"] = json.dumps(body, sort_keys=True, separators=(",", ":"))
            event["hash"] = event_hash(
                event["seq"],
                datetime.fromisoformat(event["at"]),
                event["kind"],
                event["run_id"],
                event["payload"],
                event["prev_hash"],
            )
        lines.append(json.dumps(event, sort_keys=True))
    members["events.jsonl"] = ("\n".join(lines) + "\n").encode()
    index = json.loads(members["BUNDLE.json"])
    index["members"] = {
        n: hashlib.sha256(d).hexdigest() for n, d in members.items() if n != "BUNDLE.json"
    }
    members["BUNDLE.json"] = (json.dumps(index, indent=2, sort_keys=True) + "\n").encode()
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(forged, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    done = _payments(sent, "audit", "check-bundle", str(forged), "--cert", cert)
    assert done.returncode == 1 and "rewritten" in done.stdout, done.stdout
    assert ("reconciliation.csv" in done.stdout) == (forge == "reconciliation")


def test_a_replay_never_deletes_the_folder_its_conf_names(
    sent: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """N4: the audit DAG replayed any ``run_id`` its conf named; ``../runs/<run>`` made the
    replay's scratch folder the run's own, and the second try deleted it (payment files,
    signatures, run record, chain head). Any user who may trigger DAGs could."""
    from payments.errors import PaymentsError
    from payments.orchestration.audit import run_check
    from tests.vouchers import voucher

    data = tmp_path / "data"
    shutil.copytree(sent, data)
    for name, value in {
        "PAYMENTS_DATA_DIR": str(data),
        "PAYMENTS_DEMO": "1",
        "PAYMENTS_AUDITORS": "auditor",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PAYMENTS_LEDGER_URL", raising=False)
    monkeypatch.delenv("PAYMENTS_STORAGE_ROOT", raising=False)
    run_id = (data / "runs" / "LATEST").read_text().strip()
    before = sorted(p.name for p in (data / "runs" / run_id).iterdir())
    climbing = f"../runs/{run_id}"
    for _try in range(2):
        conf = {"check": "replay", "run_id": climbing}
        with pytest.raises(PaymentsError, match=r"not .*'\.\./runs/"):
            run_check("replay", climbing, requested_by="auditor",
                      voucher=voucher(data, "auditor", "audit", conf))  # fmt: skip
    assert sorted(p.name for p in (data / "runs" / run_id).iterdir()) == before
    # The DAG re-checks what the page checks: an auditor's voucher for this very check.
    with pytest.raises(PaymentsError, match="no voucher"):
        run_check("replay", run_id, requested_by="operator")
    operators = voucher(data, "operator", "audit", {"check": "replay", "run_id": run_id})
    with pytest.raises(PaymentsError, match="not an auditor"):
        run_check("replay", run_id, requested_by="operator", voucher=operators)
    replay = {"check": "replay", "run_id": run_id}
    done = run_check(
        "replay", run_id, requested_by="auditor", voucher=voucher(data, "auditor", "audit", replay)
    )
    assert done["ok"] and done["replayed_run_id"] == run_id
    assert sorted(p.name for p in (data / "runs" / run_id).iterdir()) == before


def test_a_rejected_runs_bundle_checks(tmp_path: Path) -> None:
    """Issue 37: a rejected run's bundle always failed check-bundle (no signed chain head;
    its cancelled payments counted against the manifest)."""
    data = tmp_path / "data"
    assert _payments(data, "sample", "--households", "200", "--funds", "13").returncode == 0
    operator = str(voucher_file(data, "operator"))
    ran = _payments(data, "run", "--funds", "13", "--json", "--voucher", operator)
    run_id = json.loads(ran.stdout)["run_id"]
    finance = str(voucher_file(data, "finance"))
    rejected = _payments(data, "approve", run_id, "--reject", "--voucher", finance)
    assert rejected.returncode == 0, rejected.stdout + rejected.stderr[-2000:]
    bundle = tmp_path / "rejected.zip"
    assert _payments(data, "audit", "bundle", run_id, "--out", str(bundle)).returncode == 0
    checked = _payments(data, "audit", "check-bundle", str(bundle))
    assert checked.returncode == 0, checked.stdout
