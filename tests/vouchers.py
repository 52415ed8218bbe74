"""Vouchers as the payments pages sign them, for tests that play the API server.

The tests hold the identity key the API server would (``<data>/secrets``, or
the environment's): they sign what a page would sign after Airflow has
authenticated the user.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from payments.clock import utc_now
from payments.identity import CLI, Identity, generate_pair, key_paths, load_private, vouch


def signing_key(data_dir: Path) -> Any:
    private, public = key_paths(data_dir)
    if not private.exists():
        generate_pair(private, public)
    return load_private(private)


def voucher(
    data_dir: Path,
    user: str | Identity,
    action: str = CLI,
    params: dict[str, Any] | None = None,
    *,
    at: datetime | None = None,
) -> str:
    """A voucher for ``user`` (a name: simple auth manager) doing ``action`` with ``params``."""
    return vouch(
        signing_key(data_dir), Identity.named(user), action, params or {}, at=at or utc_now()
    )


def voucher_file(data_dir: Path, user: str | Identity, folder: Path | None = None) -> Path:
    """A voucher for the ``payments`` command in a file, as the page's download gives it."""
    target = (folder or data_dir) / f"voucher-{Identity.named(user).id}-{utc_now():%H%M%S%f}"
    target.write_text(voucher(data_dir, user) + "\n")
    return target


def public_key_path(data_dir: Path) -> Path:
    """Where the commands find the public key that checks these vouchers."""
    signing_key(data_dir)
    return key_paths(data_dir)[1]
