"""Building transports from Airflow connections (used by the DAGs).

An SFTP connection for a fund or the bank carries: host, port, login, and in
its extras ``key_file`` (the private key path on the workers), ``host_key``
(the server's public key, ``ssh-ed25519 AAAA…``: pinned) and ``root`` (the
folder all paths are relative to). ``no_host_key_check`` must be absent or
false: a connection that disables the check is refused here, whatever the
provider's defaults.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from payments.transport.base import TransportError
from payments.transport.sftp import SftpTransport


def sftp_from_connection(conn: Any) -> SftpTransport:
    """An ``SftpTransport`` from an Airflow ``Connection`` object."""
    extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else json.loads(conn.extra or "{}")
    if str(extra.get("no_host_key_check", "false")).lower() == "true":
        raise TransportError(f"connection {conn.conn_id}: no_host_key_check is true; refused")
    if not extra.get("host_key") and not extra.get("known_hosts"):
        raise TransportError(f"connection {conn.conn_id}: no host_key or known_hosts extra")
    return SftpTransport(
        conn.host,
        int(conn.port or 22),
        conn.login,
        Path(extra["key_file"]),
        root=extra.get("root", "/"),
        host_key=extra.get("host_key"),
        known_hosts=Path(extra["known_hosts"]) if extra.get("known_hosts") else None,
    )
