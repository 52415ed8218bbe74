"""Detached CMS (PKCS#7) signatures a bank verifies with the stock ``openssl`` command.

Each file ``F`` gets ``F.p7s``: DER, detached (the file is not embedded), binary
(no MIME canonicalisation of the XML bytes), signer certificate included, no
signed attributes. Without attributes there is no signing time inside, so the
same key signing the same bytes gives the same signature (RSA PKCS#1 v1.5 is
deterministic): replays stay byte-identical. A bank verifies with::

    openssl cms -verify -binary -inform DER -in F.p7s -content F \\
        -CAfile fund-cert.pem -purpose any -out /dev/null

``cryptography`` builds the signature but cannot verify CMS, so verification
reads the few DER fields it needs (``_der``) and checks the RSA signature with
the certificate the verifier trusts.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

ENV_KEY = "PAYMENTS_SIGNING_KEY"
ENV_CERT = "PAYMENTS_SIGNING_CERT"
SIGNATURE_SUFFIX = ".p7s"
_OPTIONS = [
    pkcs7.PKCS7Options.DetachedSignature,
    pkcs7.PKCS7Options.Binary,
    pkcs7.PKCS7Options.NoAttributes,
]


class SignatureError(ValueError):
    """A signature that does not verify; the message says why."""


@dataclass(frozen=True)
class Signer:
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    def sign(self, data: bytes) -> bytes:
        """Detached DER CMS signature of ``data``."""
        return self.sign_digest(hashlib.sha256(data).digest())

    def sign_digest(self, digest: bytes) -> bytes:
        """The detached CMS signature of the data whose SHA-256 is ``digest``.

        The payment files are hashed for the manifest anyway: hashing each one
        a second time inside the CMS builder would double that work. Without
        signed attributes, the CMS structure holds nothing
        that depends on the data but the RSA signature of its digest (PKCS#1
        v1.5, deterministic): ``cryptography`` builds the structure once (over
        empty data) and the signature of this digest takes its place. Tested
        byte for byte against ``cryptography`` signing the data itself.
        """
        template, empty = self._template
        signature = self.key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        if len(signature) != len(empty):
            raise SignatureError("signature length differs from the template's")
        return template[: -len(empty)] + signature

    @functools.cached_property
    def _template(self) -> tuple[bytes, bytes]:
        """``cryptography``'s CMS of empty data, and its signature (the DER's last bytes)."""
        der = (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(b"")
            .add_signer(self.certificate, self.key, hashes.SHA256())
            .sign(serialization.Encoding.DER, _OPTIONS)
        )
        empty = self.key.sign(b"", padding.PKCS1v15(), hashes.SHA256())
        if not der.endswith(empty):  # the signature is the SignerInfo's last field
            raise SignatureError("unexpected CMS layout: the signature is not last")
        return der, empty


def load_signer(key_path: Path, cert_path: Path) -> Signer:
    """Key and certificate from PEM files (configuration, never the repository)."""
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{key_path}: an RSA private key is expected")
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return Signer(key, cert)


def signer_paths(data_dir: Path) -> tuple[Path, Path]:
    """$PAYMENTS_SIGNING_KEY / $PAYMENTS_SIGNING_CERT, else the demo pair under <data>/secrets."""
    key = os.environ.get(ENV_KEY)
    cert = os.environ.get(ENV_CERT)
    if key and cert:
        return Path(key), Path(cert)
    return data_dir / "secrets" / "signing-key.pem", data_dir / "secrets" / "signing-cert.pem"


def generate_demo_pair(key_path: Path, cert_path: Path, *, common_name: str) -> None:
    """A throw-away RSA-3072 key and self-signed certificate for the demo and tests."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "solidarity-payments demo (not for use)"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


# --- reading the CMS structure -------------------------------------------------


def _tlv(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the DER element at ``pos``."""
    if pos + 2 > len(buf):
        raise SignatureError("signature truncated")
    tag = buf[pos]
    length = buf[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(buf):
            raise SignatureError("signature has a malformed length")
        length = int.from_bytes(buf[pos : pos + count], "big")
        pos += count
    if pos + length > len(buf):
        raise SignatureError("signature truncated")
    return tag, pos, pos + length


def _children(buf: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    pos = start
    while pos < end:
        tag, s, e = _tlv(buf, pos)
        out.append((tag, s, e))
        pos = e
    return out


_SHA256_OID = bytes.fromhex("608648016503040201")


def _signature_value(der: bytes) -> tuple[bytes, bool]:
    """The signature bytes of the only SignerInfo, and whether it signs attributes."""
    tag, s, e = _tlv(der, 0)  # ContentInfo
    content = _children(der, s, e)
    if len(content) != 2 or content[1][0] != 0xA0:
        raise SignatureError("not a CMS ContentInfo")
    _, s, e = content[1]
    _, s, e = _tlv(der, s)  # SignedData SEQUENCE
    fields = _children(der, s, e)
    signer_infos = fields[-1]
    if signer_infos[0] != 0x31:
        raise SignatureError("no SignerInfos")
    infos = _children(der, signer_infos[1], signer_infos[2])
    if len(infos) != 1:
        raise SignatureError(f"{len(infos)} signers, expected 1")
    parts = _children(der, infos[0][1], infos[0][2])
    digest_alg = parts[2]
    if _SHA256_OID not in der[digest_alg[1] : digest_alg[2]]:
        raise SignatureError("digest algorithm is not SHA-256")
    signed_attributes = any(tag == 0xA0 for tag, _, _ in parts[3:])
    tag, s, e = parts[-1] if parts[-1][0] == 0x04 else parts[-2]
    if tag != 0x04:
        raise SignatureError("no signature value")
    return der[s:e], signed_attributes


def verify_detached(data: bytes, signature: bytes, trusted: x509.Certificate) -> None:
    """Raise ``SignatureError`` unless ``signature`` is the trusted signer's over ``data``."""
    try:
        embedded = pkcs7.load_der_pkcs7_certificates(signature)
    except ValueError as exc:
        raise SignatureError(f"not a DER CMS signature ({exc})") from None
    fingerprint = trusted.fingerprint(hashes.SHA256())
    if not any(c.fingerprint(hashes.SHA256()) == fingerprint for c in embedded):
        raise SignatureError("signed by another certificate than the trusted one")
    value, signed_attributes = _signature_value(signature)
    if signed_attributes:
        raise SignatureError("signed attributes are not expected in these signatures")
    public_key = trusted.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise SignatureError("trusted certificate does not hold an RSA key")
    try:
        public_key.verify(value, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise SignatureError("signature does not match the content") from None


def load_certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())
