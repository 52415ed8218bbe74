"""SFTP transport (paramiko) with the server's host key pinned.

The host key is either a ``known_hosts`` file or the key itself
(``ssh-ed25519 AAAA…``) from configuration or an Airflow connection's
``host_key`` extra. An unknown or changed host key is refused
(``RejectPolicy``): never auto-added. Authentication is by private key only.
"""

from __future__ import annotations

import base64
import contextlib
import posixpath
import stat
from pathlib import Path

import paramiko

from payments.transport.base import TransportError


def pinned_client(
    host: str, port: int, *, host_key: str | None = None, known_hosts: Path | None = None
) -> paramiko.SSHClient:
    """An SSH client that trusts exactly the configured host key."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    if known_hosts is not None:
        client.load_host_keys(str(known_hosts))
    if host_key:
        kind, _, blob = host_key.strip().partition(" ")
        key = paramiko.PKey.from_type_string(kind, base64.b64decode(blob.split()[0]))
        name = host if port == 22 else f"[{host}]:{port}"
        client.get_host_keys().add(name, key.get_name(), key)
    if known_hosts is None and not host_key:
        raise TransportError(f"{host}: no pinned host key configured (host_key or known_hosts)")
    return client


class SftpTransport:
    """Paths are relative to ``root`` on the server."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        key_file: Path,
        *,
        root: str = "/",
        host_key: str | None = None,
        known_hosts: Path | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port, self.root = host, port, root
        self.client = pinned_client(host, port, host_key=host_key, known_hosts=known_hosts)
        try:
            self.client.connect(
                host,
                port=port,
                username=username,
                key_filename=str(key_file),
                look_for_keys=False,
                allow_agent=False,
                timeout=timeout,
            )
        except paramiko.BadHostKeyException as exc:
            raise TransportError(
                f"{host}:{port}: host key CHANGED (got {exc.key.get_name()} "
                f"{exc.key.get_fingerprint().hex()}); refusing to connect"
            ) from None
        except paramiko.SSHException as exc:
            raise TransportError(f"{host}:{port}: {exc}; refusing to connect") from None
        self.sftp = self.client.open_sftp()

    def close(self) -> None:
        self.sftp.close()
        self.client.close()

    def __enter__(self) -> SftpTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _p(self, path: str) -> str:
        return posixpath.join(self.root, path)

    def read(self, path: str) -> bytes:
        with self.sftp.open(self._p(path), "rb") as fh:
            fh.prefetch()
            return bytes(fh.read())

    def _makedirs(self, folder: str) -> None:
        parts = folder.strip("/").split("/")
        current = "/" if folder.startswith("/") else ""
        for part in parts:
            current = posixpath.join(current, part)
            try:
                self.sftp.stat(current)
            except FileNotFoundError:
                self.sftp.mkdir(current)

    def write(self, path: str, data: bytes) -> None:
        target = self._p(path)
        self._makedirs(posixpath.dirname(target))
        with self.sftp.open(target, "wb") as fh:
            fh.set_pipelined(True)
            fh.write(data)

    def size(self, path: str) -> int | None:
        try:
            st = self.sftp.stat(self._p(path))
        except FileNotFoundError:
            return None
        return None if st.st_mode is not None and stat.S_ISDIR(st.st_mode) else st.st_size

    def rename(self, source: str, target: str) -> None:
        if self.size(target) is not None:
            raise FileExistsError(target)
        self.sftp.posix_rename(self._p(source), self._p(target))

    def remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.sftp.remove(self._p(path))

    def listdir(self, folder: str) -> list[str]:
        try:
            return sorted(self.sftp.listdir(self._p(folder)))
        except FileNotFoundError:
            return []
