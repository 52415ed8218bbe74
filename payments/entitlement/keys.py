"""Keyed hashes of NIRs: how a household is recognised across funds without a clear NIR.

HMAC-SHA-256 with a secret held by the operator, truncated to 128 bits and
written in hexadecimal. Without the secret nobody can test whether a given NIR
is in an output or the ledger; with it, the same NIR always gives the same key,
so deduplication and "paid at most once" work across funds, runs and schemes.
"""

from __future__ import annotations

import hmac

import pyarrow as pa

KEY_BYTES = 16


def beneficiary_keys(nirs: pa.Array | pa.ChunkedArray, secret: bytes) -> pa.Array:
    """Key of each NIR (null stays null).

    One C-level HMAC call per value: ~1.7 µs each, so this runs in the per-fund
    step, which the shell spreads over processes.
    """
    if len(secret) < 16:
        raise ValueError("the beneficiary-key secret must be at least 16 bytes")
    values = nirs.to_pylist()
    return pa.array(
        [
            None if v is None else hmac.digest(secret, v.encode(), "sha256")[:KEY_BYTES].hex()
            for v in values
        ],
        pa.string(),
    )
