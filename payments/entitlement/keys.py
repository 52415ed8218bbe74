"""Keyed pseudonyms of NIRs: how a household is recognised across funds without a clear NIR.

Without the operator's secret nobody can tell whether a given NIR is in an
output or the ledger; with it, the same NIR always gives the same key, so
deduplication and "paid at most once" work across funds, runs and schemes.

Construction (version 2): a NIR is 15 ASCII characters, so it fits one AES
block. Each value is padded to 16 bytes (ISO/IEC 7816-4: ``0x80`` then
zeros), encrypted with AES-256 under a subkey derived from the secret
(HKDF-SHA-256, ``info`` names the version), and XORed with its own block
(Matyas–Meyer–Oseas): a pseudo-random function of the NIR that even the key
holder cannot run backwards. Encrypting all blocks is one AES-ECB call over a
contiguous buffer (AES-NI), where one HMAC-SHA-256 call per value costs
a Python call per NIR (docs/decisions.md has the figures). Values
longer than 15 bytes (never a valid NIR) take HMAC-SHA-256 of the same subkey,
so a value's key depends on the value only, never on the batch it came in.

Keys are 128 bits, written as 32 hexadecimal characters. Changing this
construction changes every key: it is versioned, never changed during a
scheme.
"""

from __future__ import annotations

import hmac

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 16
BLOCK = 16
#: Recorded with every run in the ledger, which refuses to mix versions in a scheme.
KEY_VERSION = 2
VERSION = f"solidarity-payments beneficiary-key v{KEY_VERSION}".encode()


def fingerprint(secret: bytes) -> str:
    """A public fingerprint of the beneficiary-key secret, recorded with each run.

    Two runs of a scheme keyed with different secrets would not recognise the
    same person (national deduplication and "paid once" break silently): the
    ledger compares fingerprints and refuses the second. An HMAC of a fixed
    label, so it says nothing of the secret itself.
    """
    return hmac.new(secret, b"payments/beneficiary-key/fingerprint", "sha256").hexdigest()[:16]


def _subkey(secret: bytes) -> bytes:
    if len(secret) < 16:
        raise ValueError("the beneficiary-key secret must be at least 16 bytes")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=VERSION).derive(secret)


def _blocks(values: pa.Array, lengths: np.ndarray) -> np.ndarray:
    """Each value padded to one 16-byte block (value, 0x80, zeros), as an (n, 16) matrix.

    ``lengths`` are the values' byte lengths, all below 16 (the caller empties
    longer ones). The values' bytes, back to back in Arrow's data buffer, fill
    the cells left of each row's length in row order: one masked copy, where a
    gather per byte took seconds nationally.
    """
    n = len(values)
    offsets = np.frombuffer(values.buffers()[1], np.int32, n + 1, values.offset * 4)
    data = values.buffers()[2]
    raw = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    blocks = np.zeros((n, BLOCK), np.uint8)
    raw = raw[offsets[0] : offsets[n]]
    width = int(lengths[0]) if n else 0
    if n and (lengths == width).all():  # every NIR has 15 characters: a plain reshape
        blocks[:, :width] = raw.reshape(n, width)
        blocks[:, width] = 0x80
        return blocks
    blocks[np.arange(BLOCK) < lengths[:, None]] = raw
    blocks[np.arange(n), lengths] = 0x80
    return blocks


#: ASCII hexadecimal digits, indexed by nibble.
_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)


def _encrypted(values: pa.Array, subkey: bytes) -> np.ndarray:
    """The 16-byte key of each value of ``values`` (no nulls), as an (n, 16) matrix."""
    n = len(values)
    lengths = np.asarray(pc.binary_length(values), np.int64)
    short = lengths < BLOCK
    if short.all():
        blocks = _blocks(values, lengths)
    else:
        blocks = _blocks(pc.if_else(pa.array(short), values, ""), np.where(short, lengths, 0))
    encryptor = Cipher(algorithms.AES(subkey), modes.ECB()).encryptor()
    cipher = np.frombuffer(encryptor.update(blocks.tobytes()) + encryptor.finalize(), np.uint8)
    keys: np.ndarray = cipher.reshape(n, BLOCK) ^ blocks
    for i in np.flatnonzero(~short):  # not a NIR: never on the fast path, same answer always
        text = values[int(i)].as_py().encode()
        keys[i] = np.frombuffer(hmac.digest(subkey, text, "sha256")[:KEY_BYTES], np.uint8)
    return keys


def _hex(keys: np.ndarray) -> np.ndarray:
    """(n, 16) bytes as n × 32 lower-case hexadecimal digits, back to back."""
    out = np.empty((len(keys), 2 * KEY_BYTES), np.uint8)
    out[:, 0::2] = _HEX[keys >> 4]
    out[:, 1::2] = _HEX[keys & 0x0F]
    return out


def beneficiary_keys(nirs: pa.Array | pa.ChunkedArray, secret: bytes) -> pa.Array:
    """Key of each NIR (null stays null).

    Only the values present are encrypted (most spouses are absent), and the
    keys' hexadecimal text is written straight into the result's data buffer,
    nulls taking no bytes.
    """
    subkey = _subkey(secret)
    values = nirs.combine_chunks() if isinstance(nirs, pa.ChunkedArray) else nirs
    values = values.cast(pa.string())
    n = len(values)
    width = 2 * KEY_BYTES
    if values.null_count:
        valid = np.asarray(values.is_valid(), bool)
        digits = _hex(_encrypted(values.drop_null(), subkey))
        offsets = np.zeros(n + 1, np.int32)
        np.cumsum(np.where(valid, width, 0), out=offsets[1:])
        validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
    else:
        digits = _hex(_encrypted(values, subkey))
        offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
        validity = None
    buffers = [validity, pa.py_buffer(offsets), pa.py_buffer(digits)]
    return pa.Array.from_buffers(pa.string(), n, buffers, null_count=values.null_count)
