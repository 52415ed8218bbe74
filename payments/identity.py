"""Who acts, as the auth manager vouches for it: signed vouchers for each money-moving act.

Airflow authenticates a user on the API server, and only there. A task on a
worker sees a DAG run's ``conf`` (which whoever triggers the run writes) and
its ``triggering_user_name`` (which the Airflow CLI takes from ``$LOGNAME``):
neither says who really asked. So the payments pages, after Airflow has
authenticated the request, sign a *voucher*: this user (the auth manager's id
and name), for this action with these parameters, until this time, once. The
API server alone holds the private key (``PAYMENTS_IDENTITY_KEY``); workers and
the ``payments`` command hold the public key (``PAYMENTS_IDENTITY_PUBLIC_KEY``)
and verify; the ledger records each voucher's nonce once
(:func:`payments.ledger.vouchers.spend`), so a voucher read from a run's conf
cannot be used again.

A voucher is ``base64url(canonical JSON) "." base64url(Ed25519 signature)``.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from payments.errors import Refused

if TYPE_CHECKING:  # the DAG files import Identity: cryptography only when a key is used
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

ENV_KEY = "PAYMENTS_IDENTITY_KEY"
ENV_PUBLIC_KEY = "PAYMENTS_IDENTITY_PUBLIC_KEY"
#: How long a voucher from a page stays good: the DAG run it starts takes seconds.
PAGE_TTL = timedelta(minutes=10)
#: How long a voucher for the ``payments`` command stays good (downloaded, then used).
CLI_TTL = timedelta(minutes=15)
#: The action a voucher for the ``payments`` command names: its parameters name the command.
CLI = "cli"


class VoucherRefused(Refused):
    """A voucher missing, forged, expired, spent, or for something else."""


@dataclass(frozen=True)
class Identity:
    """A user as the auth manager knows them: its id (``get_id()``) and name (``get_name()``).

    Under the simple auth manager both are the user name; under FAB the id is
    a number, under Keycloak a subject. Membership of a role is checked on the
    id; "not the one who triggered" on the name (Airflow records a run's
    triggerer by name).
    """

    id: str
    name: str

    @classmethod
    def named(cls, user: str | Identity) -> Identity:
        """A plain string is a simple-auth-manager user: its id is its name."""
        return user if isinstance(user, Identity) else cls(user, user)


@dataclass(frozen=True)
class Voucher:
    """A verified voucher: who, for what, once."""

    user: Identity
    action: str
    params: dict[str, Any]
    nonce: str
    issued_at: datetime
    expires_at: datetime


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def vouch(
    key: Ed25519PrivateKey,
    user: Identity,
    action: str,
    params: Mapping[str, Any],
    *,
    at: datetime,
    ttl: timedelta = PAGE_TTL,
) -> str:
    """A voucher for ``user`` doing ``action`` with ``params``, good from ``at`` for ``ttl``."""
    body = {
        "user": {"id": user.id, "name": user.name},
        "action": action,
        "params": dict(params),
        "nonce": secrets.token_hex(16),
        "issued_at": at.isoformat(),
        "expires_at": (at + ttl).isoformat(),
    }
    data = canonical(body)
    return f"{_b64(data)}.{_b64(key.sign(data))}"


def verify(
    public: Ed25519PublicKey,
    token: object,
    *,
    action: str,
    params: Mapping[str, Any],
    at: datetime,
) -> Voucher:
    """The voucher, if the API server signed it for this action and these parameters and it
    is still good; refused otherwise. Spending it once is the ledger's part."""
    from cryptography.exceptions import InvalidSignature

    if not isinstance(token, str) or token.count(".") != 1:
        raise VoucherRefused(
            f"{action}: no voucher from the payments pages: an act that moves money is "
            "asked for on the pages (or with a voucher they issued), never by a bare trigger"
        )
    data_text, sig_text = token.split(".")
    try:
        data, signature = _unb64(data_text), _unb64(sig_text)
        public.verify(signature, data)
        body = json.loads(data)
        voucher = Voucher(
            Identity(str(body["user"]["id"]), str(body["user"]["name"])),
            str(body["action"]),
            dict(body["params"]),
            str(body["nonce"]),
            datetime.fromisoformat(body["issued_at"]),
            datetime.fromisoformat(body["expires_at"]),
        )
    except (InvalidSignature, ValueError, KeyError, TypeError) as exc:
        raise VoucherRefused(
            f"{action}: the voucher is not one the payments pages signed ({type(exc).__name__})"
        ) from None
    if voucher.action != action or canonical(voucher.params) != canonical(dict(params)):
        raise VoucherRefused(
            f"{action}: the voucher was issued for {voucher.action} {voucher.params}, "
            "not for what this run asks"
        )
    if not voucher.issued_at <= at <= voucher.expires_at:
        raise VoucherRefused(
            f"{action}: the voucher of {voucher.user.name} is good from "
            f"{voucher.issued_at:%Y-%m-%d %H:%M} to {voucher.expires_at:%H:%M} UTC, not now"
        )
    return voucher


def verify_for_run(
    public: Ed25519PublicKey,
    token: object,
    *,
    action: str,
    params: Mapping[str, Any],
    at: datetime,
    triggered_as: str | None,
) -> Voucher:
    """:func:`verify`, for a DAG run a page started: the voucher's user is the one Airflow
    recorded as triggering the run (a voucher copied into another's run serves nothing)."""
    from payments.four_eyes import user_id

    voucher = verify(public, token, action=action, params=params, at=at)
    if user_id(voucher.user.name) != user_id(triggered_as):
        raise VoucherRefused(
            f"{action}: the voucher is {voucher.user.name}'s, the run was triggered as "
            f"{triggered_as!r}: a voucher serves the run its page started"
        )
    return voucher


def key_paths(data_dir: Path) -> tuple[Path, Path]:
    """(private, public) key files: the environment's, else ``<data>/secrets/identity-key*``."""
    folder = data_dir / "secrets"
    return (
        Path(os.environ.get(ENV_KEY) or folder / "identity-key.pem"),
        Path(os.environ.get(ENV_PUBLIC_KEY) or folder / "identity-key.pub.pem"),
    )


def generate_pair(private: Path, public: Path) -> None:
    """A new key pair, each file 0600 and renamed into place."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from payments.credentials import write_private

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(private, pem)
    write_private(public, pub)


def load_private(path: Path) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from payments.credentials import MissingSecret

    if not path.exists():
        raise MissingSecret(
            f"no identity key at {path}: the API server signs vouchers with it "
            f"(set {ENV_KEY}; PAYMENTS_DEMO=1 makes one on a one-machine demo)"
        )
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise MissingSecret(f"{path}: not an Ed25519 private key")
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from payments.credentials import MissingSecret

    if not path.exists():
        raise MissingSecret(
            f"no identity public key at {path}: vouchers cannot be checked "
            f"(set {ENV_PUBLIC_KEY} to the API server's public key)"
        )
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise MissingSecret(f"{path}: not an Ed25519 public key")
    return key
