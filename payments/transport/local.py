"""A local folder as a transport: the embedded default (demo, single machine)."""

from __future__ import annotations

import os
from pathlib import Path


class LocalTransport:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _p(self, path: str) -> Path:
        return self.root / path

    def read(self, path: str) -> bytes:
        return self._p(path).read_bytes()

    def write(self, path: str, data: bytes) -> None:
        target = self._p(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def size(self, path: str) -> int | None:
        target = self._p(path)
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
