"""The approach a team would write by default, for the benchmark's side-by-side.

pandas with row-wise ``apply`` for validation and amounts, schwifty for each
IBAN, ``sepaxml`` for the payment files. Written plainly and correctly (the
same rules, the same amounts: the benchmark compares totals), not as a straw
man: pandas' vectorised ``read_csv``, ``groupby`` and ``drop_duplicates`` are
used where a team would reach for them. Never used by the pipeline.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from payments.contract import Contract
from payments.entitlement.facts import BENEFITS
from payments.entitlement.holds import HoldPolicy
from payments.registry import Registry
from payments.schemes import Scheme

NIR = re.compile(r"^[12][0-9]{2}(0[1-9]|1[0-2]|[2-9][0-9])(2A|2B|[0-9]{2})[0-9]{6}[0-9]{2}$")
BIC = re.compile(r"^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$")


@dataclass
class BaselineResult:
    rows_read: int = 0
    accepted: int = 0
    payable: int = 0
    payable_cents: int = 0
    held: int = 0
    files: list[bytes] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def read(root: Path, registry: Registry, contract: Contract, scheme_id: str) -> pd.DataFrame:
    """Every fund's file, as text columns, with its SHA-256 computed on the side."""
    frames = []
    for fund in registry.funds:
        path = root / fund.inbox / contract.data_file_name(fund.code, scheme_id)
        if not path.exists():
            continue
        hashlib.sha256(path.read_bytes()).hexdigest()
        frame = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False, encoding="utf-8")
        frame["_line"] = range(2, len(frame) + 2)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _nir_ok(nir: str) -> bool:
    if not NIR.match(nir):
        return False
    body = nir[:13].replace("2A", "19").replace("2B", "18")
    return 97 - int(body) % 97 == int(nir[13:])


def _date(text: str) -> date | None:
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        return None


def validate_row(row: pd.Series, months: tuple[str, ...], reference: date) -> list[str]:
    """Every rule a row breaks (the same codes as the pipeline's contract)."""
    from schwifty import IBAN
    from schwifty.exceptions import SchwiftyException

    errors = []
    if not re.fullmatch(r"[0-9]{7,10}", row["household_id"]):
        errors.append("household_id_format")
    if row["reference_month"] not in months:
        errors.append("month_outside_window")
    if not _nir_ok(row["claimant_nir"]):
        errors.append("nir_key")
    if row["spouse_nir"]:
        if not _nir_ok(row["spouse_nir"]):
            errors.append("nir_key")
        if row["spouse_nir"] == row["claimant_nir"]:
            errors.append("spouse_nir_same")
    for name in ("claimant_last_name", "claimant_first_name", "iban", "account_holder"):
        if not row[name]:
            errors.append("required")
    for name in ("claimant_birth_date", "bank_details_changed_on"):
        if _date(row[name]) is None:
            errors.append("date_format")
    if row["spouse_birth_date"] and _date(row["spouse_birth_date"]) is None:
        errors.append("date_format")
    for name in BENEFITS:
        if not re.fullmatch(r"[0-9]{1,11}", row[name]):
            errors.append("amount_format")
    if row["children_birth_dates"]:
        for child in row["children_birth_dates"].split("|"):
            born = _date(child)
            if born is None or born > reference:
                errors.append("children_format")
    try:
        IBAN(row["iban"])
    except SchwiftyException:
        errors.append("iban_checksum")
    if row["bic"] and not BIC.match(row["bic"]):
        errors.append("bic_format")
    if row["claimant_student_status"] not in ("none", "student", "apprentice", "salaried_student"):
        errors.append("enum_value")
    return errors


def validate(frame: pd.DataFrame, scheme: Scheme) -> pd.DataFrame:
    """Accepted rows (no rule broken, no exact duplicate); the rest would be quarantined."""
    months = tuple(scheme.spec.reference_months)
    reference = scheme.spec.age_date
    frame = frame.assign(_errors=frame.apply(validate_row, axis=1, args=(months, reference)))
    duplicate = frame.duplicated(["fund_code", "household_id", "reference_month"], keep="first")
    ok = frame["_errors"].map(len).eq(0) & ~duplicate
    return frame[ok].drop(columns=["_errors"])


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((born.month, born.day) > (on.month, on.day))


def amounts_row(row: pd.Series, scheme: Scheme) -> pd.Series:
    """The household's children, rule and amount, the way a row-wise ``apply`` does it."""
    on = scheme.spec.age_date
    children = 0
    if row["children_birth_dates"]:
        for child in row["children_birth_dates"].split("|"):
            born = _date(child)
            if born and born <= on and _age(born, on) < scheme.spec.children.max_age:
                children += 1
    cents = {b: int(row[b]) for b in BENEFITS}
    housing = cents["apl_cents"] + cents["alf_cents"] + cents["als_cents"]
    minima = ("rso_cents", "ass_cents", "prime_forfaitaire_cents", "aer_cents")
    if cents["rsa_cents"] > 0:
        rule, base, per_child = "rsa", 15000, 10000
    elif any(cents[m] > 0 for m in minima):
        rule, base, per_child = "minima", 15000, 10000
    elif housing > 0 and children > 0:
        rule, base, per_child = "housing_children", 0, 10000
    else:
        rule, base, per_child = "", 0, 0
    return pd.Series({"rule": rule, "children": children, "amount": base + per_child * children})


def _name(text: str) -> str:
    from text_unidecode import unidecode

    return re.sub(r"[^A-Z]+", " ", unidecode(text).upper()).strip()


def compute(
    accepted: pd.DataFrame,
    scheme: Scheme,
    policy: HoldPolicy,
    registry: Registry,
    run_date: date,
) -> pd.DataFrame:
    """Merge months, amounts row by row, national deduplication, holds."""
    numeric = accepted.astype({b: "int64" for b in BENEFITS})
    numeric = numeric.sort_values(["fund_code", "household_id", "reference_month"])
    merged = numeric.groupby(["fund_code", "household_id"], sort=False).agg(
        {
            **{b: "max" for b in BENEFITS},
            **{
                c: "last"
                for c in accepted.columns
                if c not in BENEFITS and c not in ("fund_code", "household_id")
            },
        }
    )
    merged = merged.reset_index()
    merged = merged.astype({b: "str" for b in BENEFITS})
    merged = pd.concat([merged, merged.apply(amounts_row, axis=1, args=(scheme,))], axis=1)
    # National deduplication: the latest month, then registry order, then household.
    order = {f.code: i for i, f in enumerate(registry.funds)}
    merged["_fund_rank"] = merged["fund_code"].map(order)
    merged = merged.sort_values(
        ["reference_month", "_fund_rank", "household_id"], ascending=[False, True, True]
    )
    seen: set[str] = set()
    keep = []
    for claimant, spouse in zip(merged["claimant_nir"], merged["spouse_nir"], strict=True):
        people = {claimant, spouse} - {""}
        keep.append(not (people & seen))
        seen |= people
    decided = merged[keep].copy()
    eligible = decided[decided["rule"] != ""].copy()
    per_iban = eligible["iban"].map(eligible["iban"].value_counts())

    def _holder_related(row: pd.Series, holder: str) -> bool:
        payee = row.get("payee_name")
        if isinstance(payee, str) and payee:  # a representative holds the account
            return _name(payee) in holder
        return _name(row["claimant_last_name"]) in holder or (
            _name(row["claimant_first_name"]) in holder
        )

    def held(row: pd.Series) -> bool:
        country = row["iban"][:2]
        changed = _date(row["bank_details_changed_on"])
        holder = _name(row["account_holder"])
        return bool(
            per_iban[row.name] > policy.max_households_per_iban
            or (changed is not None and (run_date - changed).days < policy.recent_bank_change_days)
            or country not in policy.home_countries
            or (policy.check_holder_name and not _holder_related(row, holder))
        )

    eligible["held"] = eligible.apply(held, axis=1)
    return eligible


def write(
    eligible: pd.DataFrame,
    scheme: Scheme,
    registry: Registry,
    created_at: datetime,
    run_id: str,
) -> list[bytes]:
    """One pain.001 file per fund with ``sepaxml``, one ``add_payment`` per household."""
    from sepaxml import SepaTransfer

    payable = eligible[~eligible["held"]]
    files = []
    for fund in registry.funds:
        part = payable[payable["fund_code"] == fund.code]
        if part.empty:
            continue
        sepa = SepaTransfer(
            {
                "name": fund.debtor_name[:70],
                "IBAN": fund.debtor_iban,
                "BIC": fund.debtor_bic,
                "batch": True,
                "currency": "EUR",
            },
            clean=True,
        )
        for household, row in zip(part["household_id"], part.itertuples(), strict=True):
            payment: dict[str, Any] = {
                "name": row.account_holder[:70],
                "IBAN": row.iban,
                "amount": int(row.amount),
                "execution_date": scheme.spec.payment_date,
                "description": scheme.spec.remittance[:140],
                "endtoend_id": f"{run_id[:10]}-{fund.code}-{household}"[:35],
            }
            if row.bic:
                payment["BIC"] = row.bic
            sepa.add_payment(payment)
        files.append(sepa.export(validate=True))
    return files


def run(
    root: Path,
    scheme: Scheme,
    *,
    contract: Contract,
    registry: Registry,
    policy: HoldPolicy,
    sign: Callable[[bytes], bytes],
    created_at: datetime,
    clock: Callable[[], float],
) -> BaselineResult:
    """The whole baseline, stage by stage, with each stage's wall time."""
    result = BaselineResult()
    t = clock()
    frame = read(root, registry, contract, scheme.id)
    result.timings["read"], t = clock() - t, clock()
    accepted = validate(frame, scheme)
    result.timings["validate"], t = clock() - t, clock()
    eligible = compute(accepted, scheme, policy, registry, scheme.spec.payment_date)
    result.timings["compute"], t = clock() - t, clock()
    result.files = write(eligible, scheme, registry, created_at, scheme.id)
    result.timings["write"], t = clock() - t, clock()
    for data in result.files:
        sign(data)
    result.timings["sign"] = clock() - t
    payable = eligible[~eligible["held"]]
    result.rows_read = len(frame)
    result.accepted = len(accepted)
    result.payable = len(payable)
    result.payable_cents = int(payable["amount"].sum())
    result.held = int(eligible["held"].sum())
    return result
