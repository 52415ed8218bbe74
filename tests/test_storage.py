"""The storage root, on a local folder and on a real S3-compatible server (moto, over HTTP)."""

from __future__ import annotations

from pathlib import Path

import pytest

from payments.config import load_settings
from payments.storage import Storage, StorageError, open_storage, staged


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return open_storage(tmp_path / "root")
    return open_storage(request.getfixturevalue("s3_root"))


def test_small_objects_round_trip(storage: Storage) -> None:
    assert not storage.exists("runs/LATEST")
    storage.write_text("runs/LATEST", "aes-2020-05-abc\n")
    storage.write_bytes("runs/x/payments/a.xml", b"<a/>")
    assert storage.exists("runs/LATEST") and storage.exists("runs/x")
    assert storage.read_text("runs/LATEST") == "aes-2020-05-abc\n"
    assert storage.files("runs") == ["LATEST", "x/payments/a.xml"]
    assert storage.files("nothing-here") == []
    storage.delete("runs/x")
    assert not storage.exists("runs/x") and storage.exists("runs/LATEST")


def test_a_path_outside_the_root_is_refused(storage: Storage) -> None:
    for bad in ("../etc/passwd", "/etc/passwd", "a/../../b", ""):
        with pytest.raises(StorageError, match="not a path inside the storage root"):
            storage.key(bad)


def test_upload_replaces_a_folder_but_only_adds_to_the_archive(
    storage: Storage, tmp_path: Path
) -> None:
    first = tmp_path / "first"
    (first / "sub").mkdir(parents=True)
    (first / "a.txt").write_text("1")
    (first / "sub" / "b.txt").write_text("2")
    assert storage.upload(first, "folder") == 2
    second = tmp_path / "second"
    second.mkdir()
    (second / "a.txt").write_text("1 again")
    storage.upload(second, "folder")
    assert storage.files("folder") == ["a.txt"]  # sub/b.txt was not written again: gone
    assert storage.read_text("folder/a.txt") == "1 again"
    storage.upload(first, "archive", replace=False)
    storage.upload(second, "archive", replace=False)
    assert storage.files("archive") == ["a.txt", "sub/b.txt"]
    assert storage.read_text("archive/a.txt") == "1"  # content-addressed: never rewritten

    back = tmp_path / "back"
    assert storage.download("archive", back) == 2
    assert (back / "archive" / "sub" / "b.txt").read_text() == "2"
    assert storage.download("folder/a.txt", back) == 1


def test_staged_publishes_on_success_only(storage: Storage) -> None:
    storage.write_text("in/data.csv", "x;y\n")
    with staged(storage, pull=["in"], publish=["out"]) as area:
        assert (area.root / "in" / "data.csv").read_text() == "x;y\n"
        (area.root / "out").mkdir(exist_ok=True)
        (area.root / "out" / "result.txt").write_text("done")
        area.publish("late/also.txt")
        (area.root / "late").mkdir(exist_ok=True)
        (area.root / "late" / "also.txt").write_text("late")
        area.remove("in")
    assert storage.read_text("out/result.txt") == "done"
    assert storage.read_text("late/also.txt") == "late"
    assert not storage.exists("in")

    with (
        pytest.raises(RuntimeError, match="task failed"),
        staged(storage, publish=["failed"]) as area,
    ):
        (area.root / "failed").mkdir()
        (area.root / "failed" / "half.txt").write_text("half")
        raise RuntimeError("task failed")
    if not storage.is_local:  # a local root is the task's own folder: nothing to hold back
        assert not storage.exists("failed")


def test_an_object_store_root_leaves_nothing_on_the_workers_disk(s3_root: str) -> None:
    storage = open_storage(s3_root)
    storage.write_text("in/data.csv", "x")
    with staged(storage, pull=["in"]) as area:
        local = area.root
        assert local.exists()
    assert not local.exists()


def test_settings_name_the_storage_root_and_refuse_demo_secrets_when_shared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYMENTS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PAYMENTS_DEMO", "1")
    monkeypatch.delenv("PAYMENTS_STORAGE_ROOT", raising=False)
    local = load_settings()
    assert local.storage().is_local and local.storage().local_root == tmp_path.resolve()
    assert local.may_create_secrets
    monkeypatch.setenv("PAYMENTS_STORAGE_ROOT", "s3://payments/root")
    shared = load_settings()
    assert shared.shared_storage and not shared.may_create_secrets


def test_an_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(StorageError, match="nosuch://x"):
        open_storage("nosuch://x")


def test_storage_check_creates_the_bucket_and_round_trips_a_probe(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from payments.cli import app

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("PAYMENTS_STORAGE_ROOT", "s3://made-by-the-check/data")
    out = CliRunner().invoke(app, ["storage", "check", "--data-dir", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert "storage root usable: s3://made-by-the-check/data" in out.output
    storage = open_storage("s3://made-by-the-check/data")
    assert storage.fs.exists("made-by-the-check") and not storage.exists(".probe")

    monkeypatch.setenv("PAYMENTS_STORAGE_ROOT", "nosuch://x")
    out = CliRunner().invoke(app, ["storage", "check", "--data-dir", str(tmp_path)])
    assert out.exit_code == 1 and out.exception is not None
    assert isinstance(out.exception, SystemExit)  # a clear message, not a traceback


def test_storage_check_names_an_unreachable_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    storage = open_storage("s3://nowhere/data")
    with pytest.raises(StorageError, match="storage root s3://nowhere/data"):
        storage.check()
