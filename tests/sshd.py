"""A real OpenSSH sshd on a loopback port, for the SFTP tests.

Generated host key, one authorised client key, internal-sftp, a temp folder as
the files' root. Without sshd installed the tests are skipped with the reason
shown, unless PAYMENTS_REQUIRE_SSHD is set (CI sets it), then they fail.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)


@dataclass
class SshServer:
    host: str
    port: int
    username: str
    client_key: Path
    host_key_line: str  # "ssh-ed25519 AAAA..."
    root: Path
    process: subprocess.Popen[bytes]


def connection(server: SshServer, root: Path, host_key: str | None = None) -> dict[str, object]:
    """An Airflow SFTP connection (as JSON-able data) to ``server``, paths under ``root``."""
    return {
        "conn_type": "sftp",
        "host": server.host,
        "port": server.port,
        "login": server.username,
        "extra": {
            "key_file": str(server.client_key),
            "host_key": host_key or server.host_key_line,
            "root": str(root),
            "no_host_key_check": False,
        },
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    if SSHD is None:
        reason = "OpenSSH sshd is not installed (apt-get install openssh-server)"
        if os.environ.get("PAYMENTS_REQUIRE_SSHD"):
            pytest.fail(reason + " and PAYMENTS_REQUIRE_SSHD is set")
        pytest.skip(reason)
    with started_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@contextmanager
def started_sshd(base: Path) -> Iterator[SshServer]:
    """An sshd serving SFTP under ``base/files`` on a free loopback port, until the block ends."""
    if SSHD is None:
        raise RuntimeError("OpenSSH sshd is not installed (apt-get install openssh-server)")
    root = base / "files"
    root.mkdir(parents=True)
    host_key = base / "host_ed25519"
    client_key = base / "client_ed25519"
    for key in (host_key, client_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (base / "authorized_keys").write_text(Path(str(client_key) + ".pub").read_text())
    os.chmod(base / "authorized_keys", 0o600)
    Path("/run/sshd").mkdir(exist_ok=True)
    port = _free_port()
    config = base / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
        f"AuthorizedKeysFile {base / 'authorized_keys'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nUsePAM no\n"
        "PermitRootLogin prohibit-password\nStrictModes no\n"
        "Subsystem sftp internal-sftp\n"
        f"PidFile {base / 'sshd.pid'}\n"
    )
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        if process.poll() is not None:
            raise RuntimeError(process.stderr.read().decode() if process.stderr else "sshd died")
        time.sleep(0.05)
    host_key_line = " ".join(Path(str(host_key) + ".pub").read_text().split()[:2])
    try:
        yield SshServer(
            "127.0.0.1", port, getpass.getuser(), client_key, host_key_line, root, process
        )
    finally:
        process.terminate()
        process.wait(timeout=10)
