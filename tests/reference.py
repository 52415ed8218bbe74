"""Independent reference checks used as oracles by the tests.

Written the plainest way, separately from ``payments.identifiers``, so that a
bug there is not mirrored here. IBANs are checked with schwifty, a well-kept
third-party library, never with our own code.
"""

from __future__ import annotations

from schwifty import IBAN
from schwifty.exceptions import SchwiftyException


def nir_is_valid(nir: str | None) -> bool:
    """15 characters, digits except Corsica's 2A/2B, key = 97 - (body mod 97)."""
    if nir is None or len(nir) != 15:
        return False
    body, key = nir[:13], nir[13:]
    if body[5:7] == "2A":
        body = body[:5] + "19" + body[7:]
    elif body[5:7] == "2B":
        body = body[:5] + "18" + body[7:]
    if not (nir.isascii() and body.isdigit() and key.isdigit()):
        return False
    return 97 - int(body) % 97 == int(key)


def iban_is_valid(iban: str | None) -> bool:
    """Valid IBAN per schwifty, national (RIB) check included."""
    if not iban:
        return False
    try:
        IBAN(iban, validate_bban=True)
    except SchwiftyException:
        return False
    return True
