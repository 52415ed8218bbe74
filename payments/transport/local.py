"""A local folder as a transport: the embedded default (demo, single machine).

Only regular files inside the folder are read: a symbolic link in a fund's drop
zone (pointing at the beneficiary-key secret, say) is refused, not followed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from payments.transport.base import TransportError


def read_regular(root: Path, target: Path) -> bytes:
    """The bytes of ``target``, a regular file inside ``root``; a link or anything else refused."""
    shown = target.relative_to(root) if target.is_relative_to(root) else target
    if not target.resolve().is_relative_to(root.resolve()):
        raise TransportError(f"{shown}: outside the folder {root}; refused")
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        if target.is_symlink():
            raise TransportError(f"{shown}: a symbolic link, not a file; refused") from None
        raise
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise TransportError(f"{shown}: not a regular file; refused")
        return fh.read()


class LocalTransport:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _p(self, path: str) -> Path:
        return self.root / path

    def read(self, path: str) -> bytes:
        return read_regular(self.root, self._p(path))

    def write(self, path: str, data: bytes) -> None:
        target = self._p(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def size(self, path: str) -> int | None:
        target = self._p(path)
        if target.is_symlink():
            raise TransportError(f"{path}: a symbolic link, not a file; refused")
        return target.stat().st_size if target.exists() else None

    def rename(self, source: str, target: str) -> None:
        if self._p(target).exists():
            raise FileExistsError(target)
        os.rename(self._p(source), self._p(target))

    def remove(self, path: str) -> None:
        self._p(path).unlink(missing_ok=True)

    def listdir(self, folder: str) -> list[str]:
        target = self._p(folder)
        return sorted(p.name for p in target.iterdir()) if target.exists() else []
