"""Beneficiary keys: the vectorised construction against a one-value-at-a-time reference."""

from __future__ import annotations

import hmac

import pyarrow as pa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from payments.entitlement.keys import VERSION, beneficiary_keys

SECRET = b"0123456789abcdef-test-secret"


def reference(value: str | None, secret: bytes = SECRET) -> str | None:
    """The documented construction, written plainly for one value."""
    if value is None:
        return None
    subkey = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=VERSION).derive(secret)
    data = value.encode()
    if len(data) >= 16:
        return hmac.digest(subkey, data, "sha256")[:16].hex()
    block = data + b"\x80" + b"\x00" * (15 - len(data))
    enc = Cipher(algorithms.AES(subkey), modes.ECB()).encryptor()
    out = enc.update(block) + enc.finalize()
    return bytes(a ^ b for a, b in zip(out, block, strict=True)).hex()


nirs = st.one_of(
    st.none(),
    st.text(alphabet="0123456789AB", min_size=15, max_size=15),
    st.text(max_size=20),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(nirs, max_size=40), st.integers(0, 5))
def test_same_as_the_reference_whatever_the_batch(values: list[str | None], cut: int) -> None:
    expected = [reference(v) for v in values]
    assert beneficiary_keys(pa.array(values, pa.string()), SECRET).to_pylist() == expected
    chunked = pa.chunked_array(
        [pa.array(values[:cut], pa.string()), pa.array(values[cut:], pa.string())]
    )
    assert beneficiary_keys(chunked, SECRET).to_pylist() == expected
    sliced = pa.array(["x", *values], pa.string()).slice(1)
    assert beneficiary_keys(sliced, SECRET).to_pylist() == expected


def test_keys_depend_on_the_secret_and_separate_nirs() -> None:
    values = pa.array(["185057800608491", "185057800608492", None, "185057800608491"])
    a = beneficiary_keys(values, SECRET).to_pylist()
    b = beneficiary_keys(values, SECRET + b"!").to_pylist()
    assert a[0] == a[3] and a[0] != a[1] and a[2] is None
    assert a[0] != b[0] and len(a[0]) == 32 and int(a[0], 16) >= 0
    assert "185057800608491" not in "".join(k for k in a if k)
