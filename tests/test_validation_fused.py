"""The fused executor reports exactly what Pandera reports, on the same schema object."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payments.contract import load_contract
from payments.intake import read_rows
from payments.sample.writer import SampleResult
from payments.validation.fused import fused_failures
from payments.validation.rows import _failures, duplicate_helpers
from payments.validation.schema import ROW_HASH, Window, row_rules, row_schema
from tests.test_validation_rules import GOOD, OTHER

CONTRACT = load_contract()
WINDOW = Window(("2020-04", "2020-05"), date(2020, 5, 31))


def _frame(data: bytes) -> pl.DataFrame:
    rows = read_rows(data, CONTRACT)
    df = pl.from_arrow(rows.table)
    assert isinstance(df, pl.DataFrame)
    return df.with_columns(duplicate_helpers(df, CONTRACT))


def _both(df: pl.DataFrame, fund: str) -> tuple[set[tuple[int, str, str]], ...]:
    """The fused pass over the rules (as validation runs it) and Pandera over their schema."""
    rules = row_rules(CONTRACT, fund_code=fund, window=WINDOW, as_of=date(2020, 5, 10))
    fused = fused_failures(df, rules)
    assert fused is not None, "the rules must be fusable"
    return set(fused.iter_rows()), set(_failures(df, rules.schema()).iter_rows())


def test_same_failures_as_pandera_on_a_defect_sample(defect_sample: SampleResult) -> None:
    compared = 0
    for stat in defect_sample.files:
        path = Path(defect_sample.root) / stat.path
        try:
            df = _frame(path.read_bytes())
        except Exception:  # a file the intake rejects whole has no rows to compare
            continue
        fused, pandera = _both(df, stat.fund_code)
        assert fused == pandera, stat.fund_code
        compared += len(pandera)
    assert compared > 50  # the sample's defects were really exercised


values = st.sampled_from(["", "x", "2020-05", "2020-13", "13", "-1", "12", "FR76", "2A", "é"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(CONTRACT.names), values), max_size=12))
def test_same_failures_as_pandera_on_altered_rows(changes: list[tuple[str, str]]) -> None:
    rows = [dict(GOOD), dict(OTHER), dict(GOOD)]  # the third duplicates the first
    for i, (column, value) in enumerate(changes):
        rows[i % 3][column] = value
    data = (
        CONTRACT.header_line
        + "".join(";".join(r[c] for c in CONTRACT.names) + "\n" for r in rows).encode()
    )
    df = _frame(data)
    fused, pandera = _both(df, "13")
    assert fused == pandera


def test_an_unknown_check_falls_back_to_pandera() -> None:
    import pandera.polars as pa

    schema = row_schema(CONTRACT, fund_code="13", window=WINDOW, as_of=date(2020, 5, 10))
    plain = pa.Check(lambda data: data.lazyframe.select(pl.lit(True)), name="opaque")
    changed = schema.update_column("iban", checks=[*schema.columns["iban"].checks, plain])
    df = _frame(CONTRACT.header_line + (";".join(GOOD[c] for c in CONTRACT.names) + "\n").encode())
    assert fused_failures(df, changed) is None
    assert fused_failures(df.drop(ROW_HASH), schema) is None


@pytest.mark.parametrize("fund", ["13"])
def test_a_clean_row_has_no_failure(fund: str) -> None:
    df = _frame(CONTRACT.header_line + (";".join(GOOD[c] for c in CONTRACT.names) + "\n").encode())
    fused, pandera = _both(df, fund)
    assert fused == pandera == set()
