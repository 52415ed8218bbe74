"""Transports against a real OpenSSH sshd and a local folder: pinned keys, atomic uploads,
checked downloads, crashes and reruns, concurrent uploads."""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime, timedelta
from pathlib import Path

import paramiko
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from payments.contract import Companion, load_contract
from payments.transport.base import (
    PART_SUFFIX,
    TransportError,
    fetch_checked,
    upload_atomic,
    with_retries,
)
from payments.transport.deliver import LEASE, Outgoing, deliver
from payments.transport.local import LocalTransport
from payments.transport.sftp import SftpTransport
from tests.sshd import SshServer

DATA = b"<Document>" + b"x" * 200_000 + b"</Document>\n"


def _connect(server: SshServer, **kwargs: object) -> SftpTransport:
    options = {"host_key": server.host_key_line, "root": str(server.root)} | kwargs
    return SftpTransport(server.host, server.port, server.username, server.client_key, **options)  # type: ignore[arg-type]


@pytest.fixture(params=["local", "sftp"])
def transport(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "local":
        yield LocalTransport(tmp_path)
        return
    server: SshServer = request.getfixturevalue("sshd")
    sub = server.root / tmp_path.name
    sub.mkdir()
    with _connect(server, root=str(sub)) as t:
        yield t


def test_upload_is_atomic_and_idempotent(transport) -> None:  # type: ignore[no-untyped-def]
    assert upload_atomic(transport, "bank/13/F.xml", DATA) == "uploaded"
    assert transport.read("bank/13/F.xml") == DATA
    assert transport.listdir("bank/13") == ["F.xml"]
    assert upload_atomic(transport, "bank/13/F.xml", DATA) == "already_there"
    with pytest.raises(TransportError, match="different file is already there"):
        upload_atomic(transport, "bank/13/F.xml", DATA + b" ")


def test_crash_mid_upload_then_rerun_leaves_one_complete_file(transport) -> None:  # type: ignore[no-untyped-def]
    # the first attempt died after writing half of the temporary file
    transport.write("bank/13/F.xml" + PART_SUFFIX, DATA[: len(DATA) // 2])
    assert transport.size("bank/13/F.xml") is None  # the bank sees nothing yet
    assert upload_atomic(transport, "bank/13/F.xml", DATA) == "uploaded"
    assert transport.listdir("bank/13") == ["F.xml"]
    assert (
        hashlib.sha256(transport.read("bank/13/F.xml")).hexdigest()
        == hashlib.sha256(DATA).hexdigest()
    )


def test_download_refuses_a_file_whose_hash_differs(transport) -> None:  # type: ignore[no-untyped-def]
    contract = load_contract()
    companion = Companion(
        "1.0",
        "13",
        "s",
        "13_s.csv",
        1,
        len(DATA),
        hashlib.sha256(DATA).hexdigest(),
        "2020-05-10T06:00:00+00:00",
    )
    transport.write("funds/13/13_s.csv", DATA)
    transport.write("funds/13/13_s.csv.ctl.json", companion.to_json())
    data, _ = fetch_checked(transport, "funds/13", "13_s.csv", contract)
    assert data == DATA
    transport.write("funds/13/13_s.csv", DATA[:-1] + b"!")
    with pytest.raises(TransportError, match="differs from the companion"):
        fetch_checked(transport, "funds/13", "13_s.csv", contract)


def test_changed_host_key_is_refused(sshd: SshServer) -> None:
    other = paramiko.Ed25519Key.from_private_key_file(str(sshd.client_key))  # not the host's
    wrong = f"{other.get_name()} {other.get_base64()}"
    with pytest.raises(TransportError, match="refusing to connect"):
        _connect(sshd, host_key=wrong)


def test_unknown_host_key_is_refused(sshd: SshServer, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(TransportError, match="refusing to connect"):
        SftpTransport(sshd.host, sshd.port, sshd.username, sshd.client_key, known_hosts=empty)
    with pytest.raises(TransportError, match="no pinned host key"):
        SftpTransport(sshd.host, sshd.port, sshd.username, sshd.client_key)


def test_known_hosts_file_pins_too(sshd: SshServer, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(f"[{sshd.host}]:{sshd.port} {sshd.host_key_line}\n")
    with SftpTransport(
        sshd.host, sshd.port, sshd.username, sshd.client_key, known_hosts=known, root=str(sshd.root)
    ) as t:
        assert t.listdir("does-not-exist") == []


def test_connection_drop_during_download_then_retry_gets_it_whole(
    sshd: SshServer, tmp_path: Path
) -> None:
    sub = sshd.root / "drop"
    sub.mkdir()
    (sub / "F.csv").write_bytes(DATA)
    attempts = {"n": 0}

    def download() -> bytes:
        attempts["n"] += 1
        with _connect(sshd, root=str(sub)) as t:
            if attempts["n"] == 1:
                with t.sftp.open(t._p("F.csv"), "rb") as fh:
                    fh.read(1000)
                    t.client.get_transport().close()  # type: ignore[union-attr]
                    fh.read()  # the connection is gone mid-file
            return t.read("F.csv")

    data = with_retries(download, attempts=3, delay=0.01, what="download")
    assert data == DATA and attempts["n"] == 2


def test_no_auto_add_policy_anywhere() -> None:
    from tests.conftest import ROOT

    for folder in ("payments", "dags", "plugins"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            assert "AutoAddPolicy" not in text and "WarningPolicy" not in text, path


def _recorded_file(
    ledger: Engine, at: datetime, upload_state: str = "written", owner: str | None = None
) -> None:
    """A run and its payment file M1 (holding DATA) in the ledger."""
    from datetime import date

    from payments.ledger.models import PaymentFileRow, Run

    with Session(ledger) as s, s.begin():
        s.add(
            Run(
                run_id="r",
                scheme_id="s",
                scheme_version=1,
                scheme_sha256="0" * 64,
                parameters="{}",
                code_version="t",
                started_at=at,
            )
        )
        s.flush()
        s.add(
            PaymentFileRow(
                run_id="r",
                fund_code="13",
                msg_id="M1",
                path="13/M1.xml",
                sha256=hashlib.sha256(DATA).hexdigest(),
                bytes=len(DATA),
                nb_of_txs=1,
                ctrl_sum_cents=1,
                execution_date=date(2020, 5, 15),
                upload_state=upload_state,
                lease_owner=owner,
                lease_until=at + LEASE if owner else None,
            )
        )


def _outgoing() -> Outgoing:
    return Outgoing(
        file_id=1, msg_id="M1", remote_path="13/M1.xml", data=DATA, signature=b"sig", run_id="r"
    )


def test_two_workers_upload_the_same_file_once(ledger: Engine, tmp_path: Path) -> None:
    """Two workers deliver the same payment file at once: one uploads, the other stands down.

    On SQLite too (review M8: a row lock that SQLite ignores let both upload).
    """
    at = datetime(2020, 5, 14, 9)
    _recorded_file(ledger, at)
    bank = LocalTransport(tmp_path / "bank")
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def worker(owner: str) -> None:
        barrier.wait()
        outcomes.append(deliver(ledger, bank, _outgoing(), owner=owner, at=at).outcome)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) in (["in_progress", "uploaded"], ["already_sent", "uploaded"])
    assert bank.listdir("13") == ["M1.xml", "M1.xml.p7s"]


@pytest.mark.parametrize(
    ("state", "at_the_bank", "outcome"),
    [
        ("uploading", [], "uploaded"),
        ("uploading", ["13/M1.xml.part"], "uploaded"),  # a partial .part, written again
        ("committing", ["13/M1.xml.part"], "uploaded"),  # killed before the rename
        ("committing", ["13/M1.xml"], "already_there"),  # killed after it
        ("committing", [], "collected"),  # after it, and the bank took the file
    ],
)
def test_an_upload_a_dead_sender_left_is_taken_over_once_its_lease_expires(
    ledger: Engine, tmp_path: Path, state: str, at_the_bank: list[str], outcome: str
) -> None:
    """Review H5/M8: the upload a killed worker left was never carried on, or sent twice."""
    at = datetime(2020, 5, 14, 9)
    _recorded_file(ledger, at, upload_state=state, owner="dead-worker")
    bank = LocalTransport(tmp_path / "bank")
    for path in at_the_bank:  # a partial .part when the sender died while writing it
        bank.write(path, DATA[:1000] if state == "uploading" else DATA)
    assert deliver(ledger, bank, _outgoing(), owner="other", at=at).outcome == "in_progress"
    later = at + LEASE + timedelta(seconds=1)
    assert deliver(ledger, bank, _outgoing(), owner="other", at=later).outcome == outcome
    expected = [] if outcome == "collected" else ["M1.xml"]
    assert [n for n in bank.listdir("13") if not n.endswith(".p7s")] == expected
    if expected:
        assert bank.read("13/M1.xml") == DATA
    again = deliver(ledger, bank, _outgoing(), owner="third", at=later)
    assert again.outcome == "already_sent"


def test_a_retry_of_the_same_task_carries_on_at_once(ledger: Engine, tmp_path: Path) -> None:
    """Review H5: the DAG's retries returned in_progress and ended green, the file missing."""
    at = datetime(2020, 5, 14, 9)
    _recorded_file(ledger, at, upload_state="uploading", owner="airflow:dag:run:deliver:3")
    bank = LocalTransport(tmp_path / "bank")
    done = deliver(ledger, bank, _outgoing(), owner="airflow:dag:run:deliver:3", at=at)
    assert done.outcome == "uploaded"
    assert bank.read("13/M1.xml") == DATA


def test_sftp_upload_killed_mid_transfer_then_rerun(sshd: SshServer) -> None:
    sub = sshd.root / "killed"
    sub.mkdir()
    t = _connect(sshd, root=str(sub))
    fh = t.sftp.open(t._p("M1.xml" + PART_SUFFIX), "wb")
    fh.write(DATA[: len(DATA) // 3])
    t.client.get_transport().close()  # type: ignore[union-attr]  # the worker dies here
    assert not (sub / "M1.xml").exists()  # the bank never sees a partial file
    with _connect(sshd, root=str(sub)) as again:
        assert upload_atomic(again, "M1.xml", DATA) == "uploaded"
    assert sorted(p.name for p in sub.iterdir()) == ["M1.xml"]
    assert (sub / "M1.xml").read_bytes() == DATA
