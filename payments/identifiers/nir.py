"""The NIR (French social security number) and its control key.

A NIR is 13 characters followed by a 2-digit key: sex (1), birth year (2),
birth month (2), birth département (2: ``01``-``95``, ``2A``/``2B`` for Corsica,
``97`` for overseas, ``99`` abroad), commune (3), order number (3), key (2).

key = 97 - (N mod 97), where N is the 13-character body read as a number with
Corsica's ``2A`` replaced by ``19`` and ``2B`` by ``18`` (the rule INSEE gives).
People born in Corsica before the 1976 split carry département ``20``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

NIR_LENGTH = 15
CORSICA_KEY_SUBSTITUTES = {"2A": 19, "2B": 18}


def nir_body_number(body: str) -> int:
    """The 13-character body as the integer the key is computed on."""
    if len(body) != 13:
        raise ValueError("a NIR body has 13 characters")
    dept = body[5:7].upper()
    if dept in CORSICA_KEY_SUBSTITUTES:
        body = body[:5] + str(CORSICA_KEY_SUBSTITUTES[dept]) + body[7:]
    if not (body.isascii() and body.isdigit()):
        raise ValueError("a NIR body is digits, or 2A/2B at positions 6-7")
    return int(body)


def nir_key(body: str) -> int:
    """Control key of a 13-character NIR body (reference implementation)."""
    return 97 - nir_body_number(body) % 97


def is_valid_nir(nir: str) -> bool:
    """True when ``nir`` has 15 characters and its last two are the right key."""
    if len(nir) != NIR_LENGTH or not (nir[13:].isascii() and nir[13:].isdigit()):
        return False
    try:
        return nir_key(nir[:13]) == int(nir[13:])
    except ValueError:
        return False


def nir_keys(body_numbers: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Vectorised key over body numbers (Corsica already substituted)."""
    return 97 - body_numbers % 97
