"""From a fund file's text rows to accepted and quarantined rows (pure, no I/O).

Every row ends in exactly one of the two tables, and the tie-out is checked
here: rows read = accepted + quarantined, or ``TieOutError``. Quarantined rows
keep every value exactly as sent, plus their file line, error codes and one
sentence per error. Accepted rows are converted to the contract's types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import numpy.typing as npt
import pandera.errors
import polars as pl
import pyarrow as pa

from payments.contract import Contract
from payments.errors import TieOutError
from payments.intake import InvalidRow
from payments.validation.fused import fused_failures
from payments.validation.rules import RULES, sentence
from payments.validation.schema import DATE, KEY_GROUP, ROW_HASH, Window, row_rules

#: Pandera's own check names, mapped to our rule codes.
PANDERA_CODES = {"not_nullable": "required"}


@dataclass
class RowValidation:
    accepted: pa.Table
    quarantine: pa.Table
    rows_read: int
    rule_counts: dict[str, int] = field(default_factory=dict)

    @property
    def accepted_rows(self) -> int:
        return int(self.accepted.num_rows)

    @property
    def quarantined_rows(self) -> int:
        return int(self.quarantine.num_rows)


def quarantine_schema(contract: Contract) -> pa.Schema:
    return pa.schema(
        [
            pa.field("line", pa.int64(), nullable=False),
            pa.field("error_codes", pa.list_(pa.string()), nullable=False),
            pa.field("error_messages", pa.list_(pa.string()), nullable=False),
            *contract.raw_schema(),
            pa.field("raw_line", pa.string()),
        ]
    )


def _failures(df: pl.DataFrame, schema: object) -> pl.DataFrame:
    """(row, column, code) of every failure, via Pandera's lazy validation."""
    try:
        schema.validate(df, lazy=True)  # type: ignore[attr-defined]
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        if not isinstance(cases, pl.DataFrame):
            cases = pl.from_pandas(cases)
        if cases.get_column("index").null_count():
            unplaced = cases.filter(pl.col("index").is_null()).head(3).to_dicts()
            raise TieOutError(f"validation failure without a row: {unplaced}") from None
        return cases.select(
            pl.col("index").cast(pl.Int64).alias("row"),
            pl.col("column").fill_null("(row)"),
            pl.col("check").replace(PANDERA_CODES).alias("code"),
        ).unique()
    return pl.DataFrame(schema={"row": pl.Int64, "column": pl.String, "code": pl.String})


def typed(accepted: pl.DataFrame, contract: Contract) -> pa.Table:
    """Accepted text rows in the contract's types (money as int64 cents)."""
    exprs = []
    for c in contract.columns:
        col = pl.col(c.name)
        if c.kind == "cents":
            col = col.cast(pl.Int64)
        elif c.kind == "date":
            col = col.str.to_date(DATE, cache=False)
        elif c.kind == "dates":
            col = col.str.split("|").list.eval(pl.element().str.to_date(DATE, cache=False))
        exprs.append(col.alias(c.name))
    # Arrow string views (no copy), then the contract types: one copy of the text,
    # where the default conversion made two.
    table = accepted.select(exprs).to_arrow(compat_level=pl.CompatLevel.newest())
    return table.cast(contract.accepted_schema())


def duplicate_helpers(df: pl.DataFrame, contract: Contract) -> list[pl.Series]:
    """The duplicate checks' helper columns: ``ROW_HASH`` and ``KEY_GROUP`` (see schema).

    Only rows whose key (household, month) repeats need either: hashing every
    column of every row, and grouping millions of rows by two strings, took
    two seconds nationally for the few that do.
    """
    key = list(contract.row_key)
    repeated = df.select(pl.struct(key).is_duplicated()).to_series()
    hashes = np.zeros(df.height, np.int64)
    groups = pl.Series(KEY_GROUP, [], pl.Int64).extend_constant(None, df.height)
    if repeated.any():
        rows = repeated.arg_true()
        subset = df[rows]
        whole = subset.select(pl.struct(pl.all()).hash(seed=0).reinterpret(signed=True))
        hashes[rows.to_numpy()] = whole.to_series().to_numpy()
        # Each repeated key numbered exactly (grouped on the values, not on a hash).
        numbered = (
            subset.select(key)
            .with_row_index("_i")
            .group_by(key, maintain_order=True)
            .agg("_i")
            .with_row_index("_g")
            .explode("_i")
        )
        place = rows.gather(numbered.get_column("_i")).cast(pl.Int64)
        groups = groups.scatter(place, numbered.get_column("_g").cast(pl.Int64))
    return [pl.Series(ROW_HASH, hashes), groups]


def validate_rows(
    raw: pa.Table,
    lines: npt.NDArray[np.int64],
    *,
    contract: Contract,
    fund_code: str,
    window: Window,
    as_of: date,
    invalid_rows: list[InvalidRow] | None = None,
) -> RowValidation:
    """Split ``raw`` (text, contract columns) into accepted and quarantined rows.

    ``lines`` gives each raw row's file line; ``invalid_rows`` are lines the
    reader could not split, quarantined as they are.
    """
    invalid_rows = invalid_rows or []
    if len(lines) != raw.num_rows:
        raise TieOutError(f"{raw.num_rows} rows but {len(lines)} line numbers")
    df = pl.from_arrow(raw)
    assert isinstance(df, pl.DataFrame)
    df = df.with_columns(duplicate_helpers(df, contract))
    rules = row_rules(contract, fund_code=fund_code, window=window, as_of=as_of)
    fused = fused_failures(df, rules)  # the same answer as Pandera's, in one pass
    failures = fused if fused is not None else _failures(df, rules.schema())
    unknown = set(failures.get_column("code").unique().to_list()) - RULES.keys()
    if unknown:
        raise TieOutError(f"failures with no rule code: {sorted(unknown)}")

    per_row = _messages(failures)
    bad = per_row.get_column("row").to_numpy()
    is_bad = np.zeros(raw.num_rows, bool)
    is_bad[bad] = True
    accepted = typed(df.filter(pl.Series(~is_bad)), contract)
    q_rows = df[bad].with_columns(
        pl.Series("line", lines[bad], pl.Int64),
        per_row.get_column("error_codes"),
        per_row.get_column("error_messages"),
        pl.lit(None, pl.String).alias("raw_line"),
    )
    q_schema = quarantine_schema(contract)
    quarantine = (
        pl.concat([q_rows, _unsplit(invalid_rows, contract)], how="diagonal_relaxed")
        .sort("line")
        .select(q_schema.names)
        .to_arrow()
        .cast(q_schema)
    )
    rows_read = raw.num_rows + len(invalid_rows)
    if accepted.num_rows + quarantine.num_rows != rows_read:
        raise TieOutError(
            f"fund {fund_code}: read {rows_read}, accepted {accepted.num_rows} + "
            f"quarantined {quarantine.num_rows}"
        )
    counts = failures.unique(["row", "code"]).group_by("code").len().sort("code").iter_rows()
    rule_counts = {str(code): int(n) for code, n in counts}
    if invalid_rows:
        rule_counts["field_count"] = len(invalid_rows)
    return RowValidation(
        accepted=accepted, quarantine=quarantine, rows_read=rows_read, rule_counts=rule_counts
    )


def _messages(failures: pl.DataFrame) -> pl.DataFrame:
    """Each failing row's rule codes and sentences (``column: what is wrong``)."""
    return (
        failures.sort("row", "column", "code")
        .with_columns(
            pl.struct("column", "code")
            .map_elements(lambda s: f"{s['column']}: {sentence(s['code'])}", return_dtype=pl.String)
            .alias("message")
        )
        .group_by("row", maintain_order=True)
        .agg(pl.col("code").alias("error_codes"), pl.col("message").alias("error_messages"))
    )


def _unsplit(invalid_rows: list[InvalidRow], contract: Contract) -> pl.DataFrame:
    """Lines the reader could not split into the contract's columns, quarantined as read."""
    return pl.DataFrame(
        {
            "line": [r.line for r in invalid_rows],
            "error_codes": [["field_count"] for _ in invalid_rows],
            "error_messages": [
                [f"(row): {sentence('field_count')} ({r.fields} instead of {len(contract.names)})"]
                for r in invalid_rows
            ],
            "raw_line": [r.text for r in invalid_rows],
        },
        schema={
            "line": pl.Int64,
            "error_codes": pl.List(pl.String),
            "error_messages": pl.List(pl.String),
            "raw_line": pl.String,
        },
    )
