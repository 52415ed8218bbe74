"""Run a scheme's cases file through the production path: contract files → validation → compute.

A cases file (``payments/schemes/cases/<scheme>.toml``) is reviewed data: each
case is a household as facts (its rows, one per fund and month, in contract
columns), the cents the decree gives it, the rule that must decide, and the
article that says so. Here every case of a scheme becomes rows of real fund
files (CSV and companion, as a fund sends them), which the pipeline receives,
validates and computes like any run; the decisions are then read back per case.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from payments.contract import Companion, load_contract
from payments.entitlement.decide import PRIOR_SCHEMA
from payments.entitlement.folder import compute_folder
from payments.entitlement.keys import beneficiary_keys
from payments.schemes import Scheme, load_scheme
from payments.validation.folder import validate_folder
from payments.validation.schema import Window
from tests.households import DEFAULTS, SECRET, iban, nir

#: What a case's row does not say: the tests' default household.
DEFAULT_ROW = DEFAULTS


@dataclass(frozen=True)
class Case:
    id: str
    article: str
    expect_cents: int
    expect_rule: str | None
    rows: list[dict[str, Any]]
    paid_before: dict[str, Any] | None


@dataclass(frozen=True)
class Outcome:
    case: Case
    cents: int
    rule: str | None
    statuses: list[str]

    @property
    def holds(self) -> bool:
        return self.cents == self.case.expect_cents and self.rule == self.case.expect_rule


def cases_of(scheme_id: str) -> list[Case]:
    text = resources.files("payments.schemes").joinpath(f"cases/{scheme_id}.toml").read_text()
    doc = tomllib.loads(text)
    assert doc["scheme"] == scheme_id
    return [
        Case(
            c["id"],
            c["article"],
            int(c["expect_cents"]),
            c.get("expect_rule"),
            [dict(r) for r in c["rows"]],
            c.get("paid_before"),
        )
        for c in doc["cases"]
    ]


def _cell(value: Any, separator: str) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return separator.join(_cell(v, separator) for v in value)
    return value.isoformat() if isinstance(value, date) else str(value)


def _rows(scheme: Scheme, cases: list[Case]) -> dict[str, list[dict[str, Any]]]:
    """Every case's rows in contract columns, by fund: one household per case and fund."""
    by_fund: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for n, case in enumerate(cases, start=1):
        for given in case.rows:
            row = {**DEFAULT_ROW, "reference_month": scheme.spec.reference_months[-1], **given}
            row["household_id"] = f"{8_000_000 + n}"
            row["claimant_nir"] = _claimant_nir(n, case)
            if row["spouse_birth_date"] is not None and row["spouse_nir"] is None:
                row["spouse_nir"] = nir(sex=1, birth=row["spouse_birth_date"], serial=500 + n)
            row["iban"] = iban(n)
            by_fund[str(row["fund_code"])].append(row)
    return by_fund


def write_fund_files(root: Path, scheme: Scheme, cases: list[Case]) -> None:
    """The cases as each fund would send them: a contract CSV and its companion."""
    contract = load_contract()
    for fund, rows in _rows(scheme, cases).items():
        lines = [
            contract.delimiter.join(_cell(r[c], contract.list_separator) for c in contract.names)
            for r in rows
        ]
        data = contract.header_line + "".join(
            line + contract.line_terminator for line in lines
        ).encode(contract.encoding)
        name = contract.data_file_name(fund, scheme.id)
        folder = root / "funds" / fund
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
        companion = Companion(
            contract_version=contract.version,
            fund_code=fund,
            scheme_id=scheme.id,
            file_name=name,
            row_count=len(rows),
            byte_size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            produced_at=f"{scheme.spec.age_date.isoformat()}T06:00:00+00:00",
        )
        (folder / f"{name}.ctl.json").write_bytes(companion.to_json())


def _claimant_nir(case_no: int, case: Case) -> str:
    birth = case.rows[0].get("claimant_birth_date", DEFAULT_ROW["claimant_birth_date"])
    return nir(birth=birth, serial=case_no)


def _prior(cases: list[Case]) -> pa.Table | None:
    """What the ledger would say was paid before: the cases' ``paid_before``."""
    paid = [(n, c) for n, c in enumerate(cases, start=1) if c.paid_before]
    if not paid:
        return None
    nirs = pa.array([_claimant_nir(n, c) for n, c in paid])
    return pa.table(
        {
            "beneficiary_key": beneficiary_keys(nirs, SECRET),
            "scheme_id": [str(c.paid_before["scheme"]) for _, c in paid if c.paid_before],
            "base_cents": [int(c.paid_before["base_cents"]) for _, c in paid if c.paid_before],
        },
        schema=PRIOR_SCHEMA,
    )


def run_cases(scheme_id: str, root: Path) -> list[Outcome]:
    """Every case of ``scheme_id`` through receive → validate → compute; one outcome per case."""
    scheme = load_scheme(scheme_id)
    cases = cases_of(scheme_id)
    write_fund_files(root, scheme, cases)
    funds = sorted({str(r.get("fund_code", "13")) for c in cases for r in c.rows})
    window = Window(tuple(scheme.spec.reference_months), scheme.spec.age_date)
    validate_folder(root, root / "validation", scheme.id, window, funds=funds)
    computed = compute_folder(
        root / "validation",
        root / "compute",
        scheme,
        secret=SECRET,
        run_date=scheme.spec.payment_date,
        prior=_prior(cases),
    )
    decisions = (
        computed.frame
        if computed.frame is not None
        else pl.read_parquet(root / "compute" / "decisions.parquet")
    )
    outcomes = []
    for n, case in enumerate(cases, start=1):
        mine = decisions.filter(pl.col("household_id") == f"{8_000_000 + n}")
        payable = mine.filter(pl.col("status").is_in(["payable", "held"]))
        rules = payable.get_column("rule_id").drop_nulls().to_list()
        outcomes.append(
            Outcome(
                case,
                int(payable.get_column("entitled_cents").sum() or 0),
                rules[0] if len(rules) == 1 else (None if not rules else ",".join(rules)),
                sorted(mine.get_column("status").to_list()),
            )
        )
    return outcomes
