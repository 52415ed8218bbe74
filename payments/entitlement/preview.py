"""The budget preview finance reads before approving: totals by fund, rule, status, hold.

All amounts are integer cents; every total is the sum of the lines above it
(the tie-out is checked in ``decide``).
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pyarrow as pa

from payments.statuses import DECISIONS, Decision


def budget_preview(decisions: pa.Table | pl.DataFrame) -> dict[str, Any]:
    """National totals, per fund, per rule and per hold reason, as plain JSON-able data."""
    wanted = [
        "scheme_id",
        "fund_code",
        "status",
        "rule_id",
        "children",
        "base_cents",
        "child_cents",
        "entitled_cents",
        "payable_cents",
        "hold_reasons",
    ]
    df = (
        decisions.select(wanted)
        if isinstance(decisions, pl.DataFrame)
        else pl.from_arrow(decisions.select(wanted))  # only what the preview reads
    )
    assert isinstance(df, pl.DataFrame)
    scheme = df.get_column("scheme_id")[0] if df.height else None
    cells = _cells(df)
    codes = [str(c) for c in df.get_column("fund_code").unique(maintain_order=True).to_list()]
    return {
        "scheme_id": scheme,
        "national": _totals(cells, codes),
        "by_rule": _by_rule(df),
        "by_hold_reason": _by_hold_reason(df),
        "by_fund": {code: _totals(cells, [code]) for code in codes},
    }


Cell = dict[str, Any]


def _cells(df: pl.DataFrame) -> dict[tuple[str, str], Cell]:
    """One pass: every (fund, status) cell; funds and the nation are sums of cells."""
    return {
        (str(row["fund_code"]), str(row["status"])): row
        for row in df.group_by("fund_code", "status")
        .agg(
            pl.len().alias("households"),
            pl.col("children").sum(),
            pl.col("entitled_cents").sum(),
            pl.col("payable_cents").sum(),
        )
        .iter_rows(named=True)
    }


def _totals(cells: dict[tuple[str, str], Cell], funds: list[str]) -> dict[str, Any]:
    """Households, children and cents by status over ``funds``, and what is payable."""
    mine = [cell for (fund, _), cell in cells.items() if fund in funds]
    out: dict[str, Any] = {"households": sum(int(c["households"]) for c in mine)}
    for status in DECISIONS:
        part = [cells[(f, status)] for f in funds if (f, status) in cells]
        out[status] = {
            "households": sum(int(c["households"]) for c in part),
            "children": sum(int(c["children"]) for c in part),
            "entitled_cents": sum(int(c["entitled_cents"]) for c in part),
        }
    out["payable_cents"] = sum(int(c["payable_cents"]) for c in mine)
    return out


def _by_rule(df: pl.DataFrame) -> dict[str, Any]:
    """The payable households by the rule that entitles them: base and children's parts."""
    payable = df.filter(pl.col("status") == Decision.PAYABLE)
    return {
        str(row["rule_id"]): {
            "households": row["households"],
            "children": row["children"],
            "base_cents": row["base_cents"],
            "child_cents": row["child_cents"],
            "payable_cents": row["payable_cents"],
        }
        for row in payable.group_by("rule_id")
        .agg(
            pl.len().alias("households"),
            pl.col("children").sum(),
            pl.col("base_cents").sum(),
            pl.col("child_cents").sum(),
            pl.col("payable_cents").sum(),
        )
        .sort("rule_id")
        .iter_rows(named=True)
    }


def _by_hold_reason(df: pl.DataFrame) -> dict[str, Any]:
    """The held households and their cents by reason (a household may have several)."""
    held = df.filter(pl.col("status") == Decision.HELD).explode("hold_reasons")
    return {
        str(row["hold_reasons"]): {"households": row["households"], "cents": row["cents"]}
        for row in held.group_by("hold_reasons")
        .agg(pl.len().alias("households"), pl.col("entitled_cents").sum().alias("cents"))
        .sort("hold_reasons")
        .iter_rows(named=True)
    }


def preview_rows(preview: dict[str, Any]) -> pa.Table:
    """The per-fund preview as a flat table (one row per fund and status) for CSV."""
    rows = []
    for fund, t in preview["by_fund"].items():
        for status in DECISIONS:
            rows.append(
                {
                    "scheme_id": preview["scheme_id"],
                    "fund_code": fund,
                    "status": status,
                    "households": t[status]["households"],
                    "children": t[status]["children"],
                    "entitled_cents": t[status]["entitled_cents"],
                }
            )
    return pa.Table.from_pylist(
        rows,
        schema=pa.schema(
            [
                ("scheme_id", pa.string()),
                ("fund_code", pa.string()),
                ("status", pa.string()),
                ("households", pa.int64()),
                ("children", pa.int64()),
                ("entitled_cents", pa.int64()),
            ]
        ),
    )
