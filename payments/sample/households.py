"""One fund's households, generated column by column with NumPy and Arrow.

Everything here is vectorised: no Python object is created per household, which
is what lets ``payments sample`` reach national scale (4.1 M rows) in seconds.
The output is an Arrow table in the input contract's column order, with values
as a fund would write them (text, ISO dates, integer cents).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from payments.contract import Contract
from payments.identifiers.iban import french_iban_check_digits, rib_keys
from payments.identifiers.nir import nir_keys
from payments.registry import Fund
from payments.sample.arrowtext import concat, date_text, pick, zpad
from payments.sample.names import COUNTRY_CODES, FEMALE_FIRST_NAMES, LAST_NAMES, MALE_FIRST_NAMES

I64 = npt.NDArray[np.int64]
EPOCH = date(1970, 1, 1)

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

#: Benefit mixes. Columns: rsa, ass, aer, prime, rso, housing.
MIXES: I64 = np.array(
    [
        [1, 0, 0, 0, 0, 0],  # RSA only
        [1, 0, 0, 0, 0, 1],  # RSA + housing aid
        [0, 1, 0, 0, 0, 0],  # ASS
        [0, 1, 0, 0, 0, 1],  # ASS + housing aid
        [0, 0, 1, 0, 0, 0],  # AER
        [0, 0, 0, 1, 0, 0],  # prime forfaitaire
        [0, 0, 0, 0, 1, 0],  # RSO (overseas only)
        [0, 0, 0, 0, 1, 1],  # RSO + housing aid
        [1, 1, 0, 0, 0, 0],  # RSA + ASS in one household
        [0, 0, 0, 0, 0, 1],  # housing aid only
    ],
    np.int64,
)
MIX_P_METRO = np.array([0.21, 0.17, 0.04, 0.03, 0.005, 0.015, 0, 0, 0.01, 0.52])
MIX_P_OVERSEAS = np.array([0.17, 0.14, 0.03, 0.02, 0.005, 0.01, 0.05, 0.04, 0.005, 0.53])
MIX_P_YOUNG = np.array([0.08, 0.07, 0.01, 0.01, 0, 0.01, 0, 0, 0, 0.82])


@dataclass(frozen=True)
class Window:
    """What the generator needs to know of the scheme run it writes files for."""

    scheme_id: str
    months: tuple[str, ...]  # reference months, e.g. ("2020-04", "2020-05")
    as_of: date  # extraction date of the files: nothing in them is later


def _days(d: date) -> int:
    return (d - EPOCH).days


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


def generate_households(
    rng: np.random.Generator,
    fund: Fund,
    n: int,
    window: Window,
    contract: Contract,
    allocator: NirAllocator | None = None,
) -> pa.Table:
    """``n`` households of ``fund`` as the fund would send them, in contract order."""
    as_of = _days(window.as_of)
    sex = rng.integers(1, 3, n)

    # Claimant age: mostly working age; a real share of under-25s (youth aids).
    band = rng.choice(3, size=n, p=[0.15, 0.76, 0.09])
    lo = np.array([18, 25, 65])[band]
    hi = np.array([25, 65, 90])[band]
    age_days = (rng.integers(lo * 36525, hi * 36525) // 100).astype(np.int64)
    birth = as_of - age_days
    age_years = age_days // 365

    # Couples, and the spouse's own identity.
    couple = rng.random(n) < 0.33
    spouse_age_days = np.maximum(age_days + rng.integers(-5 * 365, 5 * 365, n), 18 * 366)
    spouse_birth = as_of - spouse_age_days
    spouse_nir = make_nirs(rng, fund, 3 - sex, spouse_birth, allocator)

    # Children in the household's care: none for the oldest, siblings spread out.
    n_children = rng.choice(6, size=n, p=[0.44, 0.22, 0.19, 0.10, 0.035, 0.015])
    n_children = np.where(age_years >= 62, 0, n_children)
    n_children = np.where(age_years < 20, np.minimum(n_children, 1), n_children)
    parent = np.repeat(np.arange(n), n_children)
    max_child_age = np.minimum(21 * 365, (age_years[parent] - 16) * 365)
    child_age = rng.integers(0, np.maximum(max_child_age, 1))
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(n_children, out=offsets[1:])
    rank = np.arange(len(parent)) - offsets[parent]
    twin = (rank == 1) & (rng.random(len(parent)) < 0.03)
    child_age = np.where(twin, np.roll(child_age, 1), child_age)
    child_birth = as_of - child_age
    order = np.lexsort((child_birth, parent))
    child_text = date_text(child_birth[order])
    children = pc.binary_join(
        pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), child_text), "|"
    )

    # Benefits due for the reference month, in integer cents.
    p = MIX_P_OVERSEAS if fund.overseas else MIX_P_METRO
    mix_old = rng.choice(len(MIXES), size=n, p=p / p.sum())
    mix_young = rng.choice(len(MIXES), size=n, p=MIX_P_YOUNG / MIX_P_YOUNG.sum())
    flags = MIXES[np.where(age_years < 25, mix_young, mix_old)]
    rsa = flags[:, 0] * rng.integers(2_000, 90_000, n)
    rsa = np.where(rng.random(n) < 0.04, 0, rsa)  # RSA suspended: due zero this month
    ass = flags[:, 1] * rng.integers(30_000, 52_000, n)
    aer = flags[:, 2] * rng.integers(40_000, 110_000, n)
    prime = flags[:, 3] * np.where(rng.random(n) < 0.5, 10_000, 15_000)
    rso = flags[:, 4] * rng.integers(40_000, 56_000, n)
    housing = flags[:, 5] * rng.integers(3_000, 45_000, n)
    which = rng.choice(3, size=n, p=[0.6, 0.15, 0.25])
    apl, alf, als = (np.where(which == k, housing, 0) for k in range(3))

    young = age_years < 25
    status_young = rng.choice(4, size=n, p=[0.60, 0.30, 0.06, 0.04])
    status_old = np.where(rng.random(n) < 0.02, 1, 0)
    status = pick(
        contract.column("claimant_student_status").values,
        np.where(young, status_young, status_old),
    )

    # Names: spouses mostly share the last name; holder is how the bank writes it.
    female = sex == 2
    first = pc.if_else(
        pa.array(female),
        pick(FEMALE_FIRST_NAMES, rng.integers(0, len(FEMALE_FIRST_NAMES), n)),
        pick(MALE_FIRST_NAMES, rng.integers(0, len(MALE_FIRST_NAMES), n)),
    )
    last = pick(LAST_NAMES, rng.integers(0, len(LAST_NAMES), n))
    style = rng.random(n)
    holder = pc.if_else(
        pa.array(style < 0.6),
        concat(first, " ", last),
        pc.if_else(
            pa.array(couple & (style > 0.85)),
            concat("M OU MME ", pc.utf8_upper(last)),
            pc.utf8_upper(concat(first, " ", last)),
        ),
    )

    iban, bic = make_ibans(rng, n)
    bic = pc.if_else(pa.array(rng.random(n) < 0.6), bic, pa.scalar(None, pa.string()))
    changed = as_of - np.where(
        rng.random(n) < 0.01, rng.integers(0, 21, n), rng.integers(30, 4000, n)
    )
    changed = np.maximum(changed, birth + 18 * 365)

    step = max(1, 8_999_999 // max(n, 1))
    household = 1_000_000 + np.arange(n, dtype=np.int64) * step + rng.integers(0, step, n)
    month_idx = np.where(
        rng.random(n) < 0.8, len(window.months) - 1, rng.integers(0, len(window.months), n)
    )
    null = pa.scalar(None, pa.string())
    # Contract 1.1, drawn last so the 1.0 columns stay what they were for a seed: the
    # partner's studies (as the claimant's, by age), and a representative payee for
    # protected adults (about 1 %), who then holds the account.
    spouse_young = spouse_age_days // 365 < 25
    spouse_status = pick(
        contract.column("claimant_student_status").values,
        np.where(
            spouse_young,
            rng.choice(4, size=n, p=[0.60, 0.30, 0.06, 0.04]),
            np.where(rng.random(n) < 0.02, 1, 0),
        ),
    )
    represented = (rng.random(n) < 0.01) & (age_years >= 18)
    payee_kinds = [
        "tutelle",
        "curatelle",
        "habilitation_familiale",
        "mesure_accompagnement_judiciaire",
    ]
    payee_kind = pick(payee_kinds, rng.choice(4, size=n, p=[0.45, 0.40, 0.10, 0.05]))
    payee_name = pc.if_else(
        pa.array(rng.random(n) < 0.7),
        concat("UDAF ", pc.utf8_upper(pick(LAST_NAMES, rng.integers(0, len(LAST_NAMES), n)))),
        pc.utf8_upper(
            concat(
                pick(MALE_FIRST_NAMES, rng.integers(0, len(MALE_FIRST_NAMES), n)),
                " ",
                pick(LAST_NAMES, rng.integers(0, len(LAST_NAMES), n)),
            )
        ),
    )
    holder = pc.if_else(pa.array(represented), payee_name, holder)
    has_payee = pa.array(represented)
    columns = {
        "fund_code": pa.array([fund.code] * n, pa.string()) if n else pa.array([], pa.string()),
        "household_id": zpad(household, 7),
        "reference_month": pick(window.months, month_idx),
        "claimant_nir": make_nirs(rng, fund, sex, birth, allocator),
        "claimant_last_name": last,
        "claimant_first_name": first,
        "claimant_birth_date": date_text(birth),
        "claimant_student_status": status,
        "spouse_nir": pc.if_else(pa.array(couple), spouse_nir, null),
        "spouse_birth_date": pc.if_else(pa.array(couple), date_text(spouse_birth), null),
        "rsa_cents": pa.array(rsa, pa.int64()),
        "rso_cents": pa.array(rso, pa.int64()),
        "ass_cents": pa.array(ass, pa.int64()),
        "aer_cents": pa.array(aer, pa.int64()),
        "prime_forfaitaire_cents": pa.array(prime, pa.int64()),
        "apl_cents": pa.array(apl, pa.int64()),
        "alf_cents": pa.array(alf, pa.int64()),
        "als_cents": pa.array(als, pa.int64()),
        "children_birth_dates": pc.if_else(pa.array(n_children > 0), children, null),
        "iban": iban,
        "bic": bic,
        "account_holder": holder,
        "bank_details_changed_on": date_text(changed),
        "spouse_student_status": pc.if_else(pa.array(couple), spouse_status, null),
        "payee_kind": pc.if_else(has_payee, payee_kind, null),
        "payee_name": pc.if_else(has_payee, payee_name, null),
    }
    # A contract before 1.1 has no such columns: the generator writes what it asks.
    for later in ("spouse_student_status", "payee_kind", "payee_name"):
        if later not in contract.names:
            del columns[later]
    missing = set(contract.names) ^ columns.keys()
    if missing:
        raise RuntimeError(f"generator and contract {contract.version} disagree on {missing}")
    return pa.table({name: columns[name] for name in contract.names})
