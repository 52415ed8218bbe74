"""Generated identities: NIRs unique across a sample, valid French IBANs and BICs.

Vectorised like the households they belong to (no Python object per person);
every value passes the checks a fund's data would (NIR key, RIB key, mod-97).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from payments.identifiers.iban import french_iban_check_digits, rib_keys
from payments.identifiers.nir import nir_keys
from payments.registry import Fund
from payments.sample.arrowtext import concat, pick, zpad
from payments.sample.names import COUNTRY_CODES

I64 = npt.NDArray[np.int64]

#: Metropolitan département codes as written in a NIR and as used for its key.
METRO_CODES: tuple[str, ...] = tuple([f"{d:02d}" for d in range(1, 96) if d != 20] + ["2A", "2B"])
METRO_KEY_NUMBERS: I64 = np.array(
    [int(c) if c.isdigit() else {"2A": 19, "2B": 18}[c] for c in METRO_CODES], np.int64
)

#: French banks (bank code, BIC) and rough shares of retail accounts.
BANKS: tuple[tuple[int, str, float], ...] = (
    (30004, "BNPAFRPPXXX", 0.14),
    (30003, "SOGEFRPPXXX", 0.12),
    (30002, "CRLYFRPPXXX", 0.08),
    (20041, "PSSTFRPPXXX", 0.16),
    (10278, "CMCIFR2AXXX", 0.10),
    (11306, "AGRIFRPP813", 0.08),
    (13335, "CEPAFRPP333", 0.10),
    (30066, "CMCIFRPPXXX", 0.05),
    (10107, "BREDFRPPXXX", 0.05),
    (16606, "AGRIFRPP866", 0.06),
    (15589, "CMBRFR2BXXX", 0.06),
)


def _year_month(days: I64) -> tuple[I64, I64]:
    months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    return months // 12 + 1970, months % 12 + 1


def _birth_places(
    rng: np.random.Generator, fund: Fund, birth_year: I64
) -> tuple[pa.Array, I64, I64]:
    """Département text, its number for the NIR key, and commune for each person."""
    n = len(birth_year)
    u = rng.random(n)
    metro_idx = rng.integers(0, len(METRO_CODES), n)
    dept_text = pick(METRO_CODES, metro_idx)
    dept_num = METRO_KEY_NUMBERS[metro_idx].copy()
    commune = rng.integers(1, 700, n)
    home_share, abroad_share = (0.85, 0.05) if fund.overseas else (0.75, 0.07)
    home = u < home_share
    abroad = u >= 1 - abroad_share
    if fund.overseas:
        dom_digit = int(fund.code[2])
        dept_text = pc.if_else(pa.array(home), "97", dept_text)
        dept_num = np.where(home, 97, dept_num)
        commune = np.where(home, dom_digit * 100 + rng.integers(1, 35, n), commune)
    else:
        code = fund.code
        num = {"2A": 19, "2B": 18}.get(code, int(code) if code.isdigit() else 0)
        dept_text = pc.if_else(pa.array(home), code, dept_text)
        dept_num = np.where(home, num, dept_num)
    # Corsica was one département (20) until 1976: older NIRs carry 20.
    corsican = pc.is_in(dept_text, pa.array(["2A", "2B"])).to_numpy(zero_copy_only=False)
    before_split = corsican & (birth_year < 1976)
    dept_text = pc.if_else(pa.array(before_split), "20", dept_text)
    dept_num = np.where(before_split, 20, dept_num)
    # Born abroad: 99 + INSEE country code.
    country = np.array(COUNTRY_CODES, np.int64)[rng.integers(0, len(COUNTRY_CODES), n)]
    dept_text = pc.if_else(pa.array(abroad), "99", dept_text)
    dept_num = np.where(abroad, 99, dept_num)
    commune = np.where(abroad, country, commune)
    return dept_text, dept_num, commune


class NirAllocator:
    """Hands out NIR order numbers so that no two generated people share a NIR.

    Two people collide when sex, birth year and month, département and commune
    (the "cell") are equal and so is the order number. Each cell's order
    numbers are handed out in sequence from a counter, so the same number never
    comes twice. Counters live in a fixed table indexed by a hash of the cell:
    cells sharing a slot share a counter, which only skips numbers. Memory is
    fixed (8 MB), whatever the sample size; no Python object per person.
    """

    SLOTS = 1 << 22

    def __init__(self) -> None:
        self.counter = np.zeros(self.SLOTS, np.int64)

    def orders(self, cell: I64) -> I64:
        slot = (cell * 0x9E3779B1) % self.SLOTS
        order = np.argsort(slot, kind="stable")
        sorted_slot = slot[order]
        starts = np.r_[0, np.flatnonzero(np.diff(sorted_slot)) + 1]
        run_start = np.repeat(starts, np.diff(np.r_[starts, len(slot)]))
        rank = np.empty(len(slot), np.int64)
        rank[order] = np.arange(len(slot)) - run_start
        seq = self.counter[slot] + rank
        np.add.at(self.counter, slot, 1)
        # 1..999, looking random but distinct for distinct seq (7 is prime to 999).
        return 1 + (seq * 7 + cell % 999) % 999


def make_nirs(
    rng: np.random.Generator,
    fund: Fund,
    sex: I64,
    birth_days: I64,
    allocator: NirAllocator | None = None,
) -> pa.Array:
    """Valid NIRs consistent with sex, birth date and a plausible birth place.

    With an ``allocator`` shared by every call of a sample, NIRs are unique
    across the whole sample: a household in two funds' files is then always an
    injected defect, never chance.
    """
    year, month = _year_month(birth_days)
    dept_text, dept_num, commune = _birth_places(rng, fund, year)
    yy = year % 100
    if allocator is None:
        order = rng.integers(1, 1000, len(sex))
    else:
        # Corsica's 2A/2B (19/18 in the key) must not share cells with 19 and 18.
        corsica = pc.is_in(dept_text, pa.array(["2A", "2B"])).to_numpy(zero_copy_only=False)
        ident = np.where(corsica, np.where(dept_num == 19, 196, 198), dept_num)
        cell = (((sex * 100 + yy) * 100 + month) * 1000 + ident) * 1000 + commune
        order = allocator.orders(cell)
    body = sex * 10**12 + yy * 10**10 + month * 10**8 + dept_num * 10**6 + commune * 10**3 + order
    keys = nir_keys(body)
    return concat(
        zpad(sex, 1),
        zpad(yy, 2),
        zpad(month, 2),
        dept_text,
        zpad(commune, 3),
        zpad(order, 3),
        zpad(keys, 2),
    )


def make_ibans(rng: np.random.Generator, n: int) -> tuple[pa.Array, pa.Array]:
    """Valid French IBANs (RIB key and mod-97) and the matching BICs."""
    shares = np.array([b[2] for b in BANKS])
    bank_idx = rng.choice(len(BANKS), size=n, p=shares / shares.sum())
    bank = np.array([b[0] for b in BANKS], np.int64)[bank_idx]
    branch = rng.integers(0, 100_000, n)
    account = rng.integers(0, 10**11, n)
    key = rib_keys(bank, branch, account)
    check = french_iban_check_digits(bank, branch, account, key)
    iban = concat(
        "FR", zpad(check, 2), zpad(bank, 5), zpad(branch, 5), zpad(account, 11), zpad(key, 2)
    )
    bic = pick([b[1] for b in BANKS], bank_idx)
    return iban, bic
