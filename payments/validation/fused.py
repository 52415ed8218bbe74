"""The Pandera schema's checks in one polars pass: the fast path of row validation.

Pandera (polars backend) runs each check as its own query and collects its
failure cases twice; on 101 fund files of 45 checks each, that per-check
overhead, not the checks, dominated validation. Here the same rules
(``validation.schema.row_rules``: the single definition, which ``row_schema``
makes a Pandera schema of; either can be passed) are read, and every check's
own expression is evaluated in one ``select`` over the frame, which polars
runs in parallel across checks. The NumPy kernels
(IBAN mod-97, RIB key) run once per column.

It returns exactly what Pandera's lazy validation reports, as (row, column,
code) triples; the test suite compares both on defect samples and fuzzed
rows. Anything the fast path does not recognise (a check without its
expression, a column of an unexpected type, missing or extra columns) makes it
return ``None`` and Pandera runs instead, so a schema change can never be
silently skipped.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

#: Pandera's name for a null in a column that may not hold one, as our rule code.
REQUIRED = "required"
#: The column reported for a frame-wide check (Pandera reports none).
FRAME = "(row)"
FAILURES_SCHEMA = {"row": pl.Int64, "column": pl.String, "code": pl.String}


def fused_failures(df: pl.DataFrame, schema: Any) -> pl.DataFrame | None:
    """Every (row, column, code) failure of ``df`` under ``schema``; None if not fusable."""
    columns = schema.columns
    if list(df.columns) != list(columns):
        return None  # strict and ordered: Pandera reports the structure itself
    exprs: list[pl.Expr] = []
    labels: list[tuple[str, str]] = []
    arrays: list[tuple[str, str, Any]] = []
    types = df.schema  # built on each access: once, not once per column
    for name, column in columns.items():
        expected = getattr(column.dtype, "type", None)
        if expected is None or types[name] != expected:
            return None
        if not column.nullable:
            exprs.append(pl.col(name).is_not_null().alias(f"c{len(exprs)}"))
            labels.append((name, REQUIRED))
        for check in column.checks:
            fn = check._check_fn
            if hasattr(fn, "expr"):
                exprs.append(fn.expr(pl.col(name)).alias(f"c{len(exprs)}"))
                labels.append((name, str(check.name)))
            elif hasattr(fn, "array"):
                arrays.append((name, str(check.name), fn.array))
            else:
                return None
    for check in schema.checks:
        fn = check._check_fn
        if not hasattr(fn, "frame_expr"):
            return None
        exprs.append(fn.frame_expr.alias(f"c{len(exprs)}"))
        labels.append((FRAME, str(check.name)))

    ok = df.lazy().select(exprs).collect()  # lazy: shared sub-expressions run once
    parts: list[pl.DataFrame] = []

    def add(name: str, code: str, passed: np.ndarray[Any, Any]) -> None:
        rows = np.flatnonzero(~passed)
        if rows.size:
            parts.append(
                pl.DataFrame(
                    {"row": rows.astype(np.int64), "column": name, "code": code},
                    schema=FAILURES_SCHEMA,
                )
            )

    failing = ok.select(pl.all().not_().any()).row(0)
    for (name, code), column_name, any_fail in zip(labels, ok.columns, failing, strict=True):
        if any_fail:
            add(name, code, ok.get_column(column_name).to_numpy())
    memos: dict[str, dict[str, Any]] = {}
    for name, code, array in arrays:  # one memo per column: kernels share their work
        add(name, code, array(df.get_column(name), memos.setdefault(name, {})))
    if not parts:
        return pl.DataFrame(schema=FAILURES_SCHEMA)
    return pl.concat(parts).unique()
