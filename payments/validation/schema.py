"""The Pandera schema (polars backend) of a fund file's rows, built from the contract.

Every column is validated as text: casts are checks like any other, so every
failure is element-wise and Pandera reports its row (column-level dtype
failures carry no row index; see docs/decisions.md). Each check is named by its
rule code (``payments.validation.rules``), which is how failures are mapped
back to codes and sentences.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pandera.polars as pa
import polars as pl

from payments.contract import Column, Contract
from payments.schemes import Scheme
from payments.validation.kernels import (
    BIC_FORMAT,
    IBAN_FORMAT,
    french_rib_remainders,
    iban_bytes,
    iban_formats,
    iban_mod97_remainders,
    nir_formats,
    nir_keys_ok,
)

EARLIEST = date(1900, 1, 1)
#: Helper columns added before validation (``rows.duplicate_helpers``), so the
#: duplicate checks compare integers instead of 23 strings, and group only the
#: few rows whose household and month repeat: a hash of the whole row as sent
#: (0 where the key does not repeat) ...
ROW_HASH = "_row_hash"
#: ... and which repeated key the row has (a dense number; null where the key
#: is seen once).
KEY_GROUP = "_key_group"
#: Dates are parsed with ``cache=False``: polars' cache hashes every value to
#: parse each distinct one once, which costs more than parsing an ISO date.
DATE = "%Y-%m-%d"


@dataclass(frozen=True)
class Window:
    """What row validation needs to know of the scheme run."""

    months: tuple[str, ...]  # reference months accepted, YYYY-MM
    reference_date: date  # children born after it are errors (the scheme's age date)

    @classmethod
    def of(cls, scheme: Scheme) -> Window:
        """The window a scheme's run validates in: its reference months and age date."""
        return cls(tuple(scheme.spec.reference_months), scheme.spec.age_date)

    @classmethod
    def chosen(
        cls, scheme: Scheme, months: Sequence[str] | None, reference_date: date | None
    ) -> Window:
        """The scheme's window, with the months or reference date an operator gave instead.

        Months given without a date: the date is the last day of the latest month
        (a child born after the months is an error, as under the decrees).
        """
        if not months:
            return cls(tuple(scheme.spec.reference_months), reference_date or scheme.spec.age_date)
        if reference_date is None:
            year, month = (int(x) for x in max(months).split("-"))
            reference_date = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
        return cls(tuple(months), reference_date)


def _check(code: str, rule: Callable[[pl.Expr], pl.Expr]) -> pa.Check:
    """A Pandera check named by its rule code; nulls pass (nullability is its own rule)."""

    def expr(value: pl.Expr) -> pl.Expr:
        return (value.is_null() | rule(value)).fill_null(True)

    def run(data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(expr(pl.col(data.key)))

    run.expr = expr  # type: ignore[attr-defined]  # for the fused executor (validation.fused)
    return pa.Check(run, name=code)


#: What the NumPy kernels of one column share (the IBAN remainder, computed once).
Memo = dict[str, Any]


def _array_check(code: str, rule: Callable[[pl.Series, Memo], npt.NDArray[np.bool_]]) -> pa.Check:
    """A check computed by a NumPy kernel over the column (see ``kernels``).

    ``memo`` is shared by the kernels of the same column in one validation
    (the fused executor passes one per column; Pandera's path, a fresh one).
    """

    def array(column: pl.Series, memo: Memo | None = None) -> npt.NDArray[np.bool_]:
        return np.asarray(
            column.is_null().to_numpy() | rule(column, {} if memo is None else memo), bool
        )

    def run(data: pa.PolarsData) -> pl.LazyFrame:
        return pl.LazyFrame({code: array(data.lazyframe.select(data.key).collect().to_series())})

    run.array = array  # type: ignore[attr-defined]  # for the fused executor
    return pa.Check(run, name=code)


def _iban_shared(column: pl.Series, memo: Memo) -> tuple[Any, Any, Any, Any]:
    """Bytes, well-formedness, French shape and mod-97 remainder of the column, once."""
    if "iban" not in memo:
        b = iban_bytes(column)
        well_formed, french_ok = iban_formats(b)
        memo["iban"] = (b, well_formed, french_ok, iban_mod97_remainders(b=b))
    shared: tuple[Any, Any, Any, Any] = memo["iban"]
    return shared


def _iban_checksum(column: pl.Series, memo: Memo) -> npt.NDArray[np.bool_]:
    _, well_formed, _, remainder = _iban_shared(column, memo)
    return np.asarray(~well_formed | (remainder == 1), bool)


def _iban_rib(column: pl.Series, memo: Memo) -> npt.NDArray[np.bool_]:
    """French IBANs whose mod-97 passes must also carry a right RIB key (and 27 chars)."""
    b, well_formed, french_ok, remainder = _iban_shared(column, memo)
    matrix = b.columns()  # bytes 0 and 1: "FR" (only well-formed values are checked)
    checked = well_formed & (matrix[0] == ord("F")) & (matrix[1] == ord("R")) & (remainder == 1)
    return np.asarray(~checked | (french_ok & (french_rib_remainders(b=b) == 0)), bool)


def _frame_check(code: str, rule: pl.Expr) -> pa.Check:
    def run(data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(rule.fill_null(True).alias(code))

    run.frame_expr = rule.fill_null(True)  # type: ignore[attr-defined]  # for the fused executor
    return pa.Check(run, name=code)


def _date_checks(as_of: date) -> list[pa.Check]:
    def parsed(e: pl.Expr) -> pl.Expr:
        return e.str.to_date(DATE, strict=False, cache=False)

    return [
        _check("date_format", lambda e: parsed(e).is_not_null() & (e.str.len_bytes() == 10)),
        _check(
            "date_implausible",
            lambda e: parsed(e).is_null() | parsed(e).is_between(EARLIEST, as_of),
        ),
    ]


def column_checks(column: Column, *, fund_code: str, window: Window, as_of: date) -> list[pa.Check]:
    """The checks of one contract column."""
    name, kind = column.name, column.kind
    if name == "fund_code":
        return [_check("fund_code_mismatch", lambda e: e == fund_code)]
    if name == "household_id":
        return [_check("household_id_format", lambda e: e.str.contains(r"^[0-9]{7,10}$"))]
    if name.endswith("_nir"):
        return [
            # Both read the column's bytes once (the memo); a regex cost as much again.
            _array_check("nir_format", nir_formats),
            _array_check("nir_key", nir_keys_ok),
        ]
    if name == "iban":
        return [
            _check("iban_format", lambda e: e.str.contains(IBAN_FORMAT)),
            _array_check("iban_checksum", _iban_checksum),
            _array_check("iban_rib_key", _iban_rib),
        ]
    if name == "bic":
        return [_check("bic_format", lambda e: e.str.contains(BIC_FORMAT))]
    if kind == "month":
        months = list(window.months)
        return [
            _check("month_format", lambda e: e.str.contains(r"^[0-9]{4}-(0[1-9]|1[0-2])$")),
            _check(
                "month_outside_window",
                lambda e: ~e.str.contains(r"^[0-9]{4}-[0-9]{2}$") | e.is_in(months),
            ),
        ]
    if kind == "date":
        return _date_checks(as_of)
    if kind == "cents":
        return [
            _check("amount_format", lambda e: e.str.contains(r"^-?[0-9]{1,11}$")),
            _check("amount_negative", lambda e: ~e.str.starts_with("-")),
        ]
    if kind == "dates":
        each = pl.element().str.to_date(DATE, strict=False, cache=False)
        return [
            _check(
                "children_format",
                lambda e: (
                    e.str.split("|")
                    .list.eval(each.is_not_null() & (pl.element().str.len_bytes() == 10))
                    .list.all()
                ),
            ),
            _check(
                "child_after_reference",
                lambda e: (
                    e.str.split("|")
                    .list.eval(each.is_null() | (each <= window.reference_date))
                    .list.all()
                ),
            ),
        ]
    if kind == "enum":
        values = list(column.values)
        return [_check("enum_value", lambda e: e.is_in(values))]
    return []


@dataclass(frozen=True)
class RowRules:
    """A fund file's row rules: the Pandera columns and frame-wide checks, by name.

    What a ``DataFrameSchema`` is made of, before it is made: building one
    deep-copies every column and check (once per fund file), which only
    Pandera's own validation needs. The fused executor reads these same
    objects (``columns``, ``checks``), so both paths run one definition.
    """

    columns: dict[str, pa.Column]
    checks: list[pa.Check]

    def schema(self) -> pa.DataFrameSchema:
        """The Pandera schema of these rules (strict, ordered)."""
        return pa.DataFrameSchema(self.columns, checks=self.checks, strict=True, ordered=True)


def row_rules(contract: Contract, *, fund_code: str, window: Window, as_of: date) -> RowRules:
    """Every rule of one fund file's rows (all text), each check named by its rule code."""
    columns = {
        c.name: pa.Column(
            str,
            checks=column_checks(c, fund_code=fund_code, window=window, as_of=as_of),
            nullable=not c.required,
        )
        for c in contract.columns
    }
    row, once = pl.col(ROW_HASH), pl.col(KEY_GROUP).is_null()
    columns[ROW_HASH] = pa.Column(pl.Int64, nullable=False)
    columns[KEY_GROUP] = pa.Column(pl.Int64, nullable=True)
    checks = [
        # An exact copy of an earlier row: keep the first, quarantine the copies.
        _frame_check("duplicate_row", once | row.is_first_distinct()),
        # Same household and month with different data: nobody can tell which is right.
        _frame_check("duplicate_household", once | (row.n_unique().over(KEY_GROUP) == 1)),
        _frame_check(
            "spouse_nir_same",
            pl.col("spouse_nir").is_null() | (pl.col("spouse_nir") != pl.col("claimant_nir")),
        ),
    ]
    if "payee_kind" in columns:  # contract 1.1 on
        # A measure without the representative's name (or the reverse) cannot be paid right.
        kind, name = pl.col("payee_kind").is_null(), pl.col("payee_name").is_null()
        checks.append(_frame_check("payee_incomplete", kind == name))
    return RowRules(columns, checks)


def row_schema(
    contract: Contract, *, fund_code: str, window: Window, as_of: date
) -> pa.DataFrameSchema:
    """Pandera schema of one fund file's rows (all text), with every rule as a named check."""
    return row_rules(contract, fund_code=fund_code, window=window, as_of=as_of).schema()
