"""The transport interface and the operations built on it (atomic upload, checked fetch)."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from payments.contract import Companion, Contract

log = logging.getLogger(__name__)
T = TypeVar("T")
PART_SUFFIX = ".part"


class TransportError(RuntimeError):
    """A transfer that cannot be trusted; the message says what and where."""


class Inconsistent(TransportError):
    """The payment files and the ledger disagree: no retry can change that, only a person
    (``payments audit verify`` says where; a new run pays what this one cannot)."""


class Transport(Protocol):
    """What a storage endpoint must do; paths are relative to its root, '/'-separated."""

    def read(self, path: str) -> bytes: ...
    def write(self, path: str, data: bytes) -> None: ...
    def size(self, path: str) -> int | None: ...  # None when absent
    def rename(self, source: str, target: str) -> None: ...  # must not replace an existing target
    def remove(self, path: str) -> None: ...
    def listdir(self, folder: str) -> list[str]: ...


def upload_atomic(transport: Transport, path: str, data: bytes) -> str:
    """Put ``data`` at ``path`` so that a reader never sees a partial file.

    Writes ``<path>.part``, checks its size and hash by reading it back, then
    renames it into place. If ``path`` already holds the same bytes (a rerun after
    a crash), nothing is sent again; if it holds other bytes, that is an error —
    a payment file is never silently replaced. Returns what happened.
    """
    if transport.size(path) is not None:
        return already_there(transport, path, data)
    transport.write(path + PART_SUFFIX, data)
    check_part(transport, path, data)
    transport.rename(path + PART_SUFFIX, path)
    return "uploaded"


def already_there(transport: Transport, path: str, data: bytes) -> str:
    """``path`` holds ``data`` already ("already_there"); other bytes there are an error."""
    there = transport.read(path)
    if len(there) != len(data) or hashlib.sha256(there).digest() != hashlib.sha256(data).digest():
        raise TransportError(f"{path}: a different file is already there; refusing to replace it")
    return "already_there"


def check_part(transport: Transport, path: str, data: bytes) -> None:
    """``<path>.part``, read back, is ``data``: size, then SHA-256."""
    temp = path + PART_SUFFIX
    if transport.size(temp) != len(data):
        raise TransportError(f"{temp}: remote size differs after upload")
    if hashlib.sha256(transport.read(temp)).digest() != hashlib.sha256(data).digest():
        raise TransportError(f"{temp}: remote content differs after upload")


def with_retries(
    action: Callable[[], T], *, attempts: int = 3, delay: float = 0.2, what: str = "transfer"
) -> T:
    """Run ``action``, retrying on connection errors (OSError and paramiko's SSHException)."""
    last: Exception | None = None
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except TransportError:
            raise
        except Exception as exc:
            last = exc
            log.warning("%s failed (attempt %s/%s): %s", what, attempt, attempts, exc)
            time.sleep(delay * attempt)
    raise TransportError(f"{what}: failed after {attempts} attempts: {last}") from last


def fetch_checked(
    transport: Transport, folder: str, file_name: str, contract: Contract
) -> tuple[bytes, bytes]:
    """Data file and companion, refused unless the data's SHA-256 is the companion's."""
    companion_bytes = transport.read(f"{folder}/{contract.companion_name(file_name)}")
    data = transport.read(f"{folder}/{file_name}")
    companion = Companion.from_json(companion_bytes)
    digest = hashlib.sha256(data).hexdigest()
    if digest != companion.sha256:
        raise TransportError(
            f"{folder}/{file_name}: received SHA-256 {digest} differs from the companion's "
            f"{companion.sha256}"
        )
    return data, companion_bytes
