"""The run's two secrets, from configuration: the beneficiary-key secret and the signing key.

One way to load them for the CLI and the DAG. Only a one-machine demo
(``PAYMENTS_DEMO=1``, no shared storage root) makes throw-away ones when they
are missing; anywhere else a missing secret stops the command or task with one
sentence. A secret made on the spot would key beneficiaries differently from
the ledger's earlier runs (nobody found already paid: a claimant filed by two
funds paid twice) and sign files the bank does not know.
"""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from payments.config import Settings
from payments.errors import PaymentsError
from payments.identity import generate_pair, key_paths, load_private, load_public

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

from payments.sepa.signing import ENV_CERT, ENV_KEY, Signer, generate_demo_pair, load_signer
from payments.sepa.signing import signer_paths as _paths

ENV_SECRET = "PAYMENTS_KEY_SECRET"


class MissingSecret(PaymentsError):
    """A secret the configuration does not provide, outside the demo."""


def load_secret(data_dir: Path, *, create: bool) -> bytes:
    """The beneficiary-key secret: $PAYMENTS_KEY_SECRET (hex), else <data>/secrets/beneficiary-key.

    ``create`` makes a throw-away one for the demo when none exists, 0600 in a
    0700 folder.
    """
    if os.environ.get(ENV_SECRET):
        return bytes.fromhex(os.environ[ENV_SECRET])
    path = data_dir / "secrets" / "beneficiary-key"
    if not path.exists():
        if not create:
            raise FileNotFoundError(f"no beneficiary-key secret: set {ENV_SECRET} or create {path}")
        with _making(path.parent):
            if not path.exists():
                write_private(path, (secrets.token_hex(32) + "\n").encode())
    return bytes.fromhex(path.read_text().strip())


@contextmanager
def _making(folder: Path) -> Iterator[None]:
    """One process at a time makes the demo's secrets in ``folder``.

    Tasks start together on a fresh demo machine (the batch's national step and
    the reconciliation both sign): without the lock each made its own key and
    the last certificate written was not the one the files were signed with.
    The demo's secrets are local (never on a shared storage root), so a lock
    on a local file is enough.
    """
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(folder / ".making", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def write_private(path: Path, data: bytes) -> None:
    """Write 0600 under a temporary name, then rename: a reader sees all or nothing."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.part")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(temp, path)


def beneficiary_secret(settings: Settings, *, create: bool | None = None) -> bytes:
    """``create``: None (the default) creates one only where the demo may."""
    allowed = settings.may_create_secrets if create is None else create
    try:
        return load_secret(settings.data_dir, create=allowed)
    except FileNotFoundError:
        raise MissingSecret(
            f"no beneficiary-key secret: set {ENV_SECRET} (hex) to the secret the ledger's "
            f"runs used, or place it in {settings.data_dir / 'secrets' / 'beneficiary-key'}"
        ) from None


def payment_signer(settings: Settings, *, create: bool | None = None) -> Signer:
    """The key and certificate payment files are signed with (a demo pair only in the demo)."""
    allowed = settings.may_create_secrets if create is None else create
    key, cert = _paths(settings.data_dir)
    if not key.exists() or not cert.exists():
        if not allowed:
            raise MissingSecret(
                f"no signing key: set {ENV_KEY} and {ENV_CERT} "
                "(or run payments keygen, or PAYMENTS_DEMO=1 on a one-machine demo)"
            )
        with _making(key.parent):
            if not key.exists() or not cert.exists():
                _make_demo_pair(key, cert)
    return load_signer(key, cert)


def _make_demo_pair(key: Path, cert: Path) -> None:
    """A demo pair, each file renamed into place: never a key beside another's certificate."""
    key_part = key.with_name(f".{key.name}.{os.getpid()}.part")
    cert_part = cert.with_name(f".{cert.name}.{os.getpid()}.part")
    generate_demo_pair(key_part, cert_part, common_name="solidarity-payments demo signer")
    os.replace(key_part, key)
    os.replace(cert_part, cert)


def identity_signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The API server's key that signs vouchers (a demo pair only in the demo)."""
    return load_private(_identity_pair(settings)[0])


def identity_public_key(settings: Settings) -> Ed25519PublicKey:
    """The public key that checks vouchers (workers, the ``payments`` command)."""
    return load_public(_identity_pair(settings)[1])


def _identity_pair(settings: Settings) -> tuple[Path, Path]:
    private, public = key_paths(settings.data_dir)
    if settings.may_create_secrets and not public.exists():
        with _making(public.parent):
            if not public.exists():
                generate_pair(private, public)
    return private, public
