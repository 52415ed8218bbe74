"""Transports against a real OpenSSH sshd and a local folder: pinned keys, atomic uploads,
checked downloads, crashes and reruns, concurrent uploads."""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime
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


def _recorded_file(ledger: Engine, at: datetime, upload_state: str = "written") -> None:
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
            )
        )


def test_two_workers_upload_the_same_file_once(ledger: Engine, tmp_path: Path) -> None:
    """Two workers deliver the same payment file at once: one uploads, the other stands down."""
    from datetime import datetime

    from payments.transport.deliver import deliver

    if ledger.dialect.name == "sqlite":
        pytest.skip("concurrent workers share a PostgreSQL ledger in production")
    at = datetime(2020, 5, 14, 9)
    _recorded_file(ledger, at)
    bank = LocalTransport(tmp_path / "bank")
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        barrier.wait()
        outcomes.append(deliver(ledger, bank, "M1", "13/M1.xml", DATA, at=at))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) in (["in_progress", "uploaded"], ["already_sent", "uploaded"])
    assert bank.listdir("13") == ["M1.xml"]


@pytest.mark.parametrize("crash", ["before_upload", "mid_upload", "after_rename"])
def test_deliver_after_a_crash_at_any_point_sends_exactly_one_file(
    ledger: Engine, tmp_path: Path, crash: str
) -> None:
    from datetime import datetime

    from payments.transport.deliver import deliver

    at = datetime(2020, 5, 14, 9)
    _recorded_file(ledger, at, upload_state="uploading")  # the first attempt got this far
    bank = LocalTransport(tmp_path / "bank")
    if crash == "mid_upload":
        bank.write("13/M1.xml" + PART_SUFFIX, DATA[:1000])
    elif crash == "after_rename":
        bank.write("13/M1.xml", DATA)
    assert deliver(ledger, bank, "M1", "13/M1.xml", DATA, at=at) == "in_progress"
    outcome = deliver(ledger, bank, "M1", "13/M1.xml", DATA, at=at, takeover=True)
    assert outcome == ("already_there" if crash == "after_rename" else "uploaded")
    assert bank.listdir("13") == ["M1.xml"]
    assert hashlib.sha256(bank.read("13/M1.xml")).hexdigest() == hashlib.sha256(DATA).hexdigest()
    assert deliver(ledger, bank, "M1", "13/M1.xml", DATA, at=at, takeover=True) == "already_sent"


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
