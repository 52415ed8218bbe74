"""French IBANs: the RIB key of the domestic account and the ISO 13616 mod-97.

A French IBAN is ``FR`` + 2 check digits + BBAN, the BBAN being bank code (5
digits), branch code (5), account number (11, digits or letters) and RIB key (2).

RIB key = 97 - ((89 * bank + 15 * branch + 3 * account) mod 97), letters of the
account number first replaced by digits (A,J=1 B,K,S=2 … I,R,Z=9).
IBAN check digits = 98 - (BBAN + "FR00" as digits, mod 97), with F=15, R=27.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

# Letters in French account numbers map to digits by this table (RIB rule).
_RIB_LETTERS = {
    **dict.fromkeys("AJ", "1"),
    **dict.fromkeys("BKS", "2"),
    **dict.fromkeys("CLT", "3"),
    **dict.fromkeys("DMU", "4"),
    **dict.fromkeys("ENV", "5"),
    **dict.fromkeys("FOW", "6"),
    **dict.fromkeys("GPX", "7"),
    **dict.fromkeys("HQY", "8"),
    **dict.fromkeys("IRZ", "9"),
}


def rib_key(bank: str, branch: str, account: str) -> int:
    """RIB key of a French account (reference implementation)."""
    digits = "".join(_RIB_LETTERS.get(c, c) for c in account.upper())
    return 97 - (89 * int(bank) + 15 * int(branch) + 3 * int(digits)) % 97


def iban_mod97(iban: str) -> int:
    """ISO 13616 remainder: 1 for a valid IBAN."""
    s = iban.replace(" ", "").upper()
    rearranged = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97


def french_iban(bank: str, branch: str, account: str) -> str:
    """Build a valid French IBAN from its domestic parts."""
    bban = f"{bank}{branch}{account}{rib_key(bank, branch, account):02d}"
    check = 98 - iban_mod97(f"FR00{bban}")
    return f"FR{check:02d}{bban}"


def rib_keys(
    bank: npt.NDArray[np.int64], branch: npt.NDArray[np.int64], account: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Vectorised RIB key for all-digit account numbers."""
    return 97 - (89 * bank + 15 * branch + 3 * (account % 97)) % 97


def french_iban_check_digits(
    bank: npt.NDArray[np.int64],
    branch: npt.NDArray[np.int64],
    account: npt.NDArray[np.int64],
    key: npt.NDArray[np.int64],
) -> npt.NDArray[np.int64]:
    """Vectorised IBAN check digits for all-digit French BBANs.

    The 23-digit BBAN overflows int64, so the remainder is folded in pieces:
    (r * 10**k + next_k_digits) mod 97 stays small at every step.
    """
    r = bank % 97
    r = (r * 10**5 + branch) % 97
    r = (r * 10**11 + account) % 97
    r = (r * 10**2 + key) % 97
    r = (r * 10**6 + 152700) % 97  # "FR00" -> 15 27 00
    return 98 - r
