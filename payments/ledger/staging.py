"""Many keys handed to the database as a table, never as a list of bound values.

SQLite refuses a statement with more than 32,766 bound values (its compiled
default; some builds allow more), PostgreSQL more than 65,535. A run's payments
are counted in millions, so an operation over "these payments" (the ones a
payment file holds, the lines of a bank report) stages their keys in a
temporary table and joins on it: each statement's size stays fixed whatever the
run's size. The table lives in the session's transaction and connection only,
and is dropped when the block ends.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, text
from sqlalchemy.orm import Session

#: Rows per INSERT on SQLite: bounded memory, and far below any bind limit
#: (one executemany binds one row at a time).
ROWS_PER_INSERT = 50_000


@contextmanager
def staged_rows(
    session: Session,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    integer: Sequence[str] = (),
    key: Sequence[str] = (),
) -> Iterator[Table]:
    """A temporary table holding ``rows`` (text columns, ``integer`` ones as integers).

    ``key``: columns indexed for the joins (a plain index: duplicates are the
    caller's to find). On PostgreSQL the rows go by COPY; on SQLite by
    executemany in slices of ``ROWS_PER_INSERT``.
    """
    name = f"stage_{uuid.uuid4().hex[:12]}"
    table = Table(
        name,
        MetaData(),
        *(Column(c, Integer if c in integer else String, nullable=True) for c in columns),
        prefixes=["TEMPORARY"],
    )
    connection = session.connection()
    table.create(connection)
    try:
        _fill(session, table, columns, rows)
        for column in key:
            session.execute(text(f"CREATE INDEX {name}_{column} ON {name} ({column})"))
        session.execute(text(f"ANALYZE {name}"))
        yield table
    except BaseException:
        # A failed transaction takes the table with it on rollback; dropping
        # may fail here (PostgreSQL refuses statements in an aborted transaction).
        with suppress(Exception):
            table.drop(connection)
        raise
    table.drop(connection)


def _fill(
    session: Session, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    if session.get_bind().dialect.name == "postgresql":
        raw: Any = session.connection().connection.driver_connection  # psycopg.Connection
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return
    raw_sqlite: Any = session.connection().connection.driver_connection  # sqlite3.Connection
    marks = ", ".join("?" for _ in columns)
    statement = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})"
    cursor = raw_sqlite.cursor()
    try:
        iterator = iter(rows)
        while part := list(itertools.islice(iterator, ROWS_PER_INSERT)):
            cursor.executemany(statement, part)
    finally:
        cursor.close()
