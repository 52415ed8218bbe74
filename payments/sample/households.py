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
from payments.registry import Fund
from payments.sample.arrowtext import concat, date_text, pick, zpad
from payments.sample.identities import NirAllocator, make_ibans, make_nirs
from payments.sample.names import FEMALE_FIRST_NAMES, LAST_NAMES, MALE_FIRST_NAMES

I64 = npt.NDArray[np.int64]
EPOCH = date(1970, 1, 1)

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


def generate_households(
    rng: np.random.Generator,
    fund: Fund,
    n: int,
    window: Window,
    contract: Contract,
    allocator: NirAllocator | None = None,
) -> pa.Table:
    """``n`` households of ``fund`` as the fund would send them, in contract order.

    Each part is drawn in a fixed order from ``rng`` (the order is what makes
    a seed give the same bytes): people, spouses, children, benefits, studies,
    names, bank details, household numbers, contract 1.1's columns, NIRs.
    """
    as_of = _days(window.as_of)
    sex, age_days = _claimants(rng, n)
    birth, age_years = as_of - age_days, age_days // 365
    couple, spouse_age_days, spouse_nir = _spouses(rng, fund, sex, age_days, as_of, allocator)
    n_children, children = _children(rng, age_years, as_of)
    benefits = _benefits(rng, fund, age_years)
    statuses = contract.column("claimant_student_status").values
    status = _student_status(rng, age_years < 25, statuses)
    first, last, holder = _names(rng, sex, couple)
    iban, bic, changed = _bank_details(rng, as_of, birth)
    household, month_idx = _household_numbers(rng, n, len(window.months))
    # Contract 1.1, drawn last so the 1.0 columns stay what they were for a seed: the
    # partner's studies (as the claimant's, by age), and a representative payee for
    # protected adults, who then holds the account.
    spouse_status = _student_status(rng, spouse_age_days // 365 < 25, statuses)
    represented, payee_kind, payee_name = _payees(rng, age_years)
    null = pa.scalar(None, pa.string())
    has_payee = pa.array(represented)
    in_couple = pa.array(couple)
    columns = {
        "fund_code": pa.array([fund.code] * n, pa.string()) if n else pa.array([], pa.string()),
        "household_id": zpad(household, 7),
        "reference_month": pick(window.months, month_idx),
        "claimant_nir": make_nirs(rng, fund, sex, birth, allocator),
        "claimant_last_name": last,
        "claimant_first_name": first,
        "claimant_birth_date": date_text(birth),
        "claimant_student_status": status,
        "spouse_nir": pc.if_else(in_couple, spouse_nir, null),
        "spouse_birth_date": pc.if_else(in_couple, date_text(as_of - spouse_age_days), null),
        **{name: pa.array(cents, pa.int64()) for name, cents in benefits.items()},
        "children_birth_dates": pc.if_else(pa.array(n_children > 0), children, null),
        "iban": iban,
        "bic": bic,
        "account_holder": pc.if_else(has_payee, payee_name, holder),
        "bank_details_changed_on": date_text(changed),
        "spouse_student_status": pc.if_else(in_couple, spouse_status, null),
        "payee_kind": pc.if_else(has_payee, payee_kind, null),
        "payee_name": pc.if_else(has_payee, payee_name, null),
    }
    return _in_contract_order(columns, contract)


def _claimants(rng: np.random.Generator, n: int) -> tuple[I64, I64]:
    """Sex, and age in days: mostly working age; a real share of under-25s (youth aids)."""
    sex = rng.integers(1, 3, n)
    band = rng.choice(3, size=n, p=[0.15, 0.76, 0.09])
    lo = np.array([18, 25, 65])[band]
    hi = np.array([25, 65, 90])[band]
    return sex, (rng.integers(lo * 36525, hi * 36525) // 100).astype(np.int64)


def _spouses(
    rng: np.random.Generator,
    fund: Fund,
    sex: I64,
    age_days: I64,
    as_of: int,
    allocator: NirAllocator | None,
) -> tuple[npt.NDArray[np.bool_], I64, pa.Array]:
    """Couples, the spouse's age in days and NIR (drawn for every household)."""
    n = len(sex)
    couple = rng.random(n) < 0.33
    spouse_age_days = np.maximum(age_days + rng.integers(-5 * 365, 5 * 365, n), 18 * 366)
    return (
        couple,
        spouse_age_days,
        make_nirs(rng, fund, 3 - sex, as_of - spouse_age_days, allocator),
    )


def _children(rng: np.random.Generator, age_years: I64, as_of: int) -> tuple[I64, pa.Array]:
    """Children in the household's care (none for the oldest, siblings spread out):
    how many, and their birth dates joined by ``|``, oldest first."""
    n = len(age_years)
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
    return n_children, children


def _benefits(rng: np.random.Generator, fund: Fund, age_years: I64) -> dict[str, I64]:
    """Benefits due for the reference month, in integer cents, by contract column."""
    n = len(age_years)
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
    return {
        "rsa_cents": rsa,
        "rso_cents": rso,
        "ass_cents": ass,
        "aer_cents": aer,
        "prime_forfaitaire_cents": prime,
        "apl_cents": apl,
        "alf_cents": alf,
        "als_cents": als,
    }


def _student_status(
    rng: np.random.Generator, young: npt.NDArray[np.bool_], values: tuple[str, ...] | list[str]
) -> pa.Array:
    """Studies: common under 25, rare after."""
    n = len(young)
    status_young = rng.choice(4, size=n, p=[0.60, 0.30, 0.06, 0.04])
    status_old = np.where(rng.random(n) < 0.02, 1, 0)
    return pick(values, np.where(young, status_young, status_old))


def _names(
    rng: np.random.Generator, sex: I64, couple: npt.NDArray[np.bool_]
) -> tuple[pa.Array, pa.Array, pa.Array]:
    """First and last names, and the account holder as the bank writes it (spouses
    mostly share the last name)."""
    n = len(sex)
    first = pc.if_else(
        pa.array(sex == 2),
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
    return first, last, holder


def _bank_details(
    rng: np.random.Generator, as_of: int, birth: I64
) -> tuple[pa.Array, pa.Array, I64]:
    """IBAN, BIC (often left out) and the day the bank details last changed."""
    n = len(birth)
    iban, bic = make_ibans(rng, n)
    bic = pc.if_else(pa.array(rng.random(n) < 0.6), bic, pa.scalar(None, pa.string()))
    changed = as_of - np.where(
        rng.random(n) < 0.01, rng.integers(0, 21, n), rng.integers(30, 4000, n)
    )
    return iban, bic, np.maximum(changed, birth + 18 * 365)


def _household_numbers(rng: np.random.Generator, n: int, months: int) -> tuple[I64, I64]:
    """Household numbers, increasing through the file, and each row's reference month
    (mostly the latest)."""
    step = max(1, 8_999_999 // max(n, 1))
    household = 1_000_000 + np.arange(n, dtype=np.int64) * step + rng.integers(0, step, n)
    month_idx = np.where(rng.random(n) < 0.8, months - 1, rng.integers(0, months, n))
    return household, month_idx


PAYEE_KINDS = ("tutelle", "curatelle", "habilitation_familiale", "mesure_accompagnement_judiciaire")


def _payees(
    rng: np.random.Generator, age_years: I64
) -> tuple[npt.NDArray[np.bool_], pa.Array, pa.Array]:
    """Protected adults (about 1 %) and their representative: the kind of measure and
    the payee's name (an association, or a relative)."""
    n = len(age_years)
    represented = (rng.random(n) < 0.01) & (age_years >= 18)
    payee_kind = pick(list(PAYEE_KINDS), rng.choice(4, size=n, p=[0.45, 0.40, 0.10, 0.05]))
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
    return represented, payee_kind, payee_name


def _in_contract_order(columns: dict[str, pa.Array], contract: Contract) -> pa.Table:
    """The columns the contract asks for, in its order (a contract before 1.1 has no
    partner's studies or payee)."""
    for later in ("spouse_student_status", "payee_kind", "payee_name"):
        if later not in contract.names:
            del columns[later]
    missing = set(contract.names) ^ columns.keys()
    if missing:
        raise RuntimeError(f"generator and contract {contract.version} disagree on {missing}")
    return pa.table({name: columns[name] for name in contract.names})
