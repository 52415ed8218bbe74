"""The storage root: where tasks leave what the next task reads.

On one machine it is a local folder (``PAYMENTS_DATA_DIR``, the embedded
default). On several (``docker compose``), tasks run on any worker, so it is
an object-store URL (``PAYMENTS_STORAGE_ROOT=s3://bucket/prefix``, through
fsspec; credentials and endpoint from the usual ``AWS_*`` variables). No task
relies on another task's local disk.

The pipeline's stages work on local files (Arrow, Parquet, XML, signing need
random access and ``os.replace``). :func:`staged` bridges the two: it gives a
task a local folder that mirrors the parts of the storage root it reads, and
publishes the parts it wrote when the task succeeds. With a local storage root
that folder *is* the storage root: nothing is copied, behaviour is unchanged.
A task that fails publishes nothing; its retry starts from what the storage
root holds, so a half-done attempt is never seen by the next task.

Publishing a folder replaces it (files the task did not write again are
removed), except for the content-addressed archive, which only grows.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

log = logging.getLogger(__name__)


PROBE = ".probe"


class StorageError(RuntimeError):
    """A storage root that cannot be used (bad URL, missing backend, unreachable)."""


def _clean(rel: str) -> str:
    """A relative key inside the root: no absolute path, no ``..`` (never outside the root)."""
    parts = [p for p in PurePosixPath(rel).parts if p not in ("", ".")]
    if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
        raise StorageError(f"not a path inside the storage root: {rel!r}")
    return "/".join(parts)


@dataclass
class Storage:
    """A storage root: a local folder or an fsspec URL (``s3://bucket/prefix``)."""

    url: str
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        options = dict(self.options)
        if "://" in self.url and not self.url.startswith("file://"):
            # Another worker may have written since: never answer from a cached listing.
            options.setdefault("use_listings_cache", False)
            options.setdefault("skip_instance_cache", True)
        try:
            self.fs, base = fsspec.core.url_to_fs(self.url, **options)
        except ImportError as exc:
            raise StorageError(
                f"storage root {self.url}: its backend is not installed "
                f"(pip install 'solidarity-payments[s3]' for s3://): {exc}"
            ) from exc
        except ValueError as exc:
            raise StorageError(f"storage root {self.url}: {exc}") from exc
        self.base = base.rstrip("/")

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    @property
    def local_root(self) -> Path:
        """The folder itself, for a local root (the only case where there is one)."""
        if not self.is_local:
            raise StorageError(f"{self.url} is not a local folder")
        return Path(self.base)

    def key(self, rel: str) -> str:
        return f"{self.base}/{_clean(rel)}"

    def __str__(self) -> str:
        return self.url

    def check(self) -> None:
        """Create the root if needed (the bucket, on an object store), then write, read
        and delete a probe: the init service runs this before any DAG does."""
        try:
            if self.is_local:
                Path(self.base).mkdir(parents=True, exist_ok=True)
            else:
                bucket = self.base.split("/", 1)[0]
                if not self.fs.exists(bucket):
                    self.fs.mkdir(bucket)
            self.write_bytes(PROBE, b"ok")
            if self.read_bytes(PROBE) != b"ok":
                raise StorageError(f"{self.url}: the probe did not read back")
            self.delete(PROBE)
        except StorageError:
            raise
        except Exception as exc:  # botocore's errors are not all OSErrors: name them all
            raise StorageError(f"storage root {self.url}: {type(exc).__name__}: {exc}") from exc

    # --- small objects -------------------------------------------------
    def exists(self, rel: str) -> bool:
        """A file, or a folder holding at least one file."""
        key = self.key(rel)
        if self.fs.isfile(key):
            return True
        return bool(self.files(rel))

    def read_bytes(self, rel: str) -> bytes:
        data: bytes = self.fs.cat_file(self.key(rel))
        return data

    def read_text(self, rel: str) -> str:
        return self.read_bytes(rel).decode()

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Whole object at once: a reader sees the old bytes or the new, never a part."""
        key = self.key(rel)
        if self.is_local:
            path = Path(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = path.with_name(path.name + ".part")
            temp.write_bytes(data)
            temp.replace(path)
        else:
            self.fs.pipe_file(key, data)  # one PUT: atomic on an object store

    def write_text(self, rel: str, text: str) -> None:
        self.write_bytes(rel, text.encode())

    def files(self, rel: str) -> list[str]:
        """Every file under ``rel``, as paths relative to ``rel``, sorted."""
        key = self.key(rel)
        if not self.fs.isdir(key):
            return []
        prefix = str(self.fs._strip_protocol(key)).rstrip("/") + "/"
        out = [str(f)[len(prefix) :] for f in self.fs.find(key) if str(f).startswith(prefix)]
        return sorted(o for o in out if o)

    def folders(self, rel: str) -> list[str]:
        """The names of the folders directly under ``rel``, sorted (one listing call)."""
        key = self.key(rel)
        if not self.fs.isdir(key):
            return []
        entries = self.fs.ls(key, detail=True)
        return sorted(
            str(e["name"]).rstrip("/").rsplit("/", 1)[-1]
            for e in entries
            if e["type"] == "directory"
        )

    def delete(self, rel: str) -> None:
        key = self.key(rel)
        if self.fs.exists(key):
            self.fs.rm(key, recursive=True)

    # --- folders, between the root and a local mirror ----------------------
    def download(self, rel: str, into: Path) -> int:
        """Copy ``rel`` (a file or a folder) to ``into/rel``; return the number of files."""
        target = into / _clean(rel)
        key = self.key(rel)
        if self.fs.isfile(key):
            target.parent.mkdir(parents=True, exist_ok=True)
            self.fs.get_file(key, str(target))
            return 1
        names = self.files(rel)
        for name in names:
            dest = target / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            self.fs.get_file(f"{key}/{name}", str(dest))
        return len(names)

    def _put(self, local: Path, key: str) -> None:
        if self.is_local:
            Path(key).parent.mkdir(parents=True, exist_ok=True)
        self.fs.put_file(str(local), key)

    def upload(self, local: Path, rel: str, *, replace: bool = True) -> int:
        """Copy ``local`` (a file or a folder) to ``rel``; return the number of files.

        ``replace`` removes what ``rel`` held and ``local`` does not (a
        re-published folder is exactly what the task wrote); without it, files
        are only added (the content-addressed archive).
        """
        key = self.key(rel)
        if local.is_file():
            self._put(local, key)
            return 1
        names = sorted(
            str(p.relative_to(local).as_posix()) for p in local.rglob("*") if p.is_file()
        )
        existing = set(self.files(rel))
        for name in names:
            if not replace and name in existing:
                continue  # content-addressed: same name, same bytes
            self._put(local / name, f"{key}/{name}")
        if replace:
            for stale in sorted(existing - set(names)):
                self.fs.rm_file(f"{key}/{stale}")
        return len(names)


def open_storage(url_or_path: str | Path) -> Storage:
    """A local path or a URL with a scheme fsspec knows (``s3://``, ``gs://``, ``file://``)."""
    text = str(url_or_path)
    if "://" not in text:
        text = str(Path(text).resolve())
    return Storage(text)


@dataclass
class Staged:
    """What :func:`staged` hands the task: a local folder standing for the storage root."""

    root: Path
    storage: Storage
    _publish: list[tuple[str, bool]] = field(default_factory=list)
    _remove: list[str] = field(default_factory=list)

    def pull(self, *rels: str) -> None:
        """Bring more of the storage root into the local folder (decided during the task)."""
        if self.storage.is_local:
            return
        for rel in rels:
            n = self.storage.download(rel, self.root)
            log.info("storage: %s files from %s/%s", n, self.storage.url, rel)

    def publish(self, rel: str, *, replace: bool = True) -> None:
        """Send ``rel`` back to the storage root when the task succeeds."""
        self._publish.append((rel, replace))

    def remove(self, rel: str) -> None:
        """Delete ``rel`` from the storage root when the task succeeds (after publishing)."""
        self._remove.append(rel)


@contextmanager
def staged(
    storage: Storage, *, pull: Iterable[str] = (), publish: Iterable[str] = ()
) -> Iterator[Staged]:
    """A local folder mirroring ``pull`` of the storage root; ``publish`` goes back on success.

    For a local root the folder is the root itself and nothing moves (the
    stage functions keep their own atomic renames). For an object store the
    folder is a fresh temporary one, deleted afterwards: nothing stays on the
    worker's disk for a later task to rely on.
    """
    if storage.is_local:
        area = Staged(storage.local_root, storage)
        yield area
        for rel in area._remove:
            shutil.rmtree(storage.local_root / _clean(rel), ignore_errors=True)
        return
    with tempfile.TemporaryDirectory(prefix="payments-stage-") as temp:
        area = Staged(Path(temp), storage)
        area.pull(*pull)
        for rel in publish:
            area.publish(rel)
        yield area
        for rel, replace in area._publish:
            local = area.root / _clean(rel)
            if not local.exists():
                continue
            n = storage.upload(local, rel, replace=replace)
            log.info("storage: %s files to %s/%s", n, storage.url, rel)
        for rel in area._remove:
            storage.delete(rel)
