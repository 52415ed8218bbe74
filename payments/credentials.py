"""The run's two secrets, from configuration: the beneficiary-key secret and the signing key.

One way to load them for the CLI and the DAG. Only a one-machine demo
(``PAYMENTS_DEMO=1``, no shared storage root) makes throw-away ones when they
are missing; anywhere else a missing secret stops the command or task with one
sentence. A secret made on the spot would key beneficiaries differently from
the ledger's earlier runs (nobody found already paid: a claimant filed by two
funds paid twice) and sign files the bank does not know.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from payments.config import Settings
from payments.errors import PaymentsError
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
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
    return bytes.fromhex(path.read_text().strip())


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
        generate_demo_pair(key, cert, common_name="solidarity-payments demo signer")
    return load_signer(key, cert)
