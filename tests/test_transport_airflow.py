"""Host keys are pinned through Airflow connections too: ours and the provider's hook.

Runs in a subprocess with its own AIRFLOW_HOME, the connection given as an
AIRFLOW_CONN_* environment variable (no metadata database needed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import paramiko

from tests.sshd import SshServer, connection

SCRIPT = """
import sys
from airflow.providers.sftp.hooks.sftp import SFTPHook
from airflow.sdk import Connection
from payments.transport.base import TransportError
from payments.transport.connections import sftp_from_connection

conn = Connection.from_json(sys.argv[1], conn_id="bank_sftp")
try:
    with sftp_from_connection(conn) as t:
        print("ours:ok", t.listdir("."))
except TransportError as exc:
    print("ours:refused", exc)
try:
    SFTPHook(ssh_conn_id="bank_sftp").get_conn().listdir(".")
    print("provider:ok")
except Exception as exc:
    print("provider:refused", type(exc).__name__)
"""


def _run(server: SshServer, host_key: str, tmp_path: Path) -> str:
    conn = connection(server, server.root, host_key)
    env = os.environ | {
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW_CONN_BANK_SFTP": json.dumps(conn),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
    }
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(conn)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_changed_host_key_is_refused_through_the_airflow_connection(
    sshd: SshServer, tmp_path: Path
) -> None:
    right = _run(sshd, sshd.host_key_line, tmp_path)
    assert "ours:ok" in right and "provider:ok" in right, right
    other = paramiko.Ed25519Key.from_private_key_file(str(sshd.client_key))
    wrong = _run(sshd, f"{other.get_name()} {other.get_base64()}", tmp_path)
    assert "ours:refused" in wrong and "provider:refused" in wrong, wrong
