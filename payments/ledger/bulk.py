"""Loading millions of rows into the ledger: COPY, and keys rebuilt rather than maintained.

PostgreSQL only above :data:`BULK_ROWS` rows; SQLite and small loads insert
plainly. Everything happens in the caller's transaction, so a violated key
still rolls the whole load back.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, cast

import polars as pl
from sqlalchemy import Table, text
from sqlalchemy.orm import Session

from payments.ledger import states
from payments.ledger.claims import (
    CHUNK,
)
from payments.ledger.models import (
    Base,
    BeneficiaryClaim,
    Hold,
    Payment,
)

#: From this many rows, a PostgreSQL load rebuilds the key constraints instead of
#: maintaining them row by row (docs/decisions.md, "Ledger load").
BULK_ROWS = 200_000

_REBUILD_ORDER = {"p": 0, "u": 1, "f": 2}  # keys before the foreign keys that need them

#: Memory for the bulk load's own sorts and joins, and for building its indexes
#: (this transaction only: ``SET LOCAL``).
BULK_WORK_MEM = "256MB"

BULK_MAINTENANCE_MEM = "512MB"


@contextmanager
def bulk_load(session: Session, rows: int, models: list[type[Base]]) -> Iterator[bool]:
    """Load ``rows`` into ``models``' tables with their keys and indexes rebuilt, not maintained.

    Inserting millions of random keys into B-trees one by one (with a small
    buffer pool) cost minutes; building each index once after the load, by
    sorting, costs seconds. The constraints are dropped and re-created *inside
    the caller's transaction*: other writers wait on the table lock, and
    re-creating a unique or primary key validates every row, so a duplicate
    claim still fails the whole transaction. Same names, same definitions
    (read back from ``pg_constraint``). Foreign keys of other tables that
    reference these ones (holds → payments) go and come back with them, and are
    validated again. Small loads and SQLite skip all this.
    """
    if rows < BULK_ROWS or session.get_bind().dialect.name != "postgresql":
        yield False
        return
    session.flush()
    saved = _constraints(session, models)
    indexes = _plain_indexes(session, models)
    for name, _ in indexes:
        session.execute(text(f'DROP INDEX "{name}"'))
    for table, name, _, _ in sorted(saved, key=lambda c: -_REBUILD_ORDER[c[2]]):
        session.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
    # Sorts and hash joins of millions of keys (claims derived in key order, the
    # foreign keys' validation) spilled to disk with the default 4 MB.
    session.execute(text(f"SET LOCAL work_mem = '{BULK_WORK_MEM}'"))
    yield True
    session.execute(text(f"SET LOCAL maintenance_work_mem = '{BULK_MAINTENANCE_MEM}'"))
    for table, name, _, definition in sorted(saved, key=lambda c: _REBUILD_ORDER[c[2]]):
        session.execute(text(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'))
    for _, definition in indexes:
        session.execute(text(definition))


def _constraints(session: Session, models: list[type[Base]]) -> list[tuple[str, str, str, str]]:
    """Keys of the models' tables, and foreign keys that reference them: (table, name,
    kind, definition), as PostgreSQL reads them back (``pg_get_constraintdef``)."""
    saved: list[tuple[str, str, str, str]] = []
    for model in models:
        table = cast(Table, model.__table__).name
        for owner, name, kind, definition in session.execute(
            text(
                "SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid) "
                "FROM pg_constraint WHERE (conrelid = CAST(:t AS regclass) "
                "AND contype IN ('p', 'u', 'f')) OR (confrelid = CAST(:t AS regclass) "
                "AND contype = 'f') ORDER BY conrelid::regclass::text, conname"
            ),
            {"t": table},
        ):
            constraint = (str(owner), str(name), str(kind), str(definition))
            if constraint not in saved:
                saved.append(constraint)
    return saved


def _plain_indexes(session: Session, models: list[type[Base]]) -> list[tuple[str, str]]:
    """Indexes of the models' tables that no constraint owns (payments by file: every
    payment is filed as it is loaded): (name, definition)."""
    indexes: list[tuple[str, str]] = []
    for model in models:
        table = cast(Table, model.__table__).name
        indexes += [
            (str(name), str(definition))
            for name, definition in session.execute(
                text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = "
                    "current_schema() AND tablename = :t AND indexname NOT IN "
                    "(SELECT conname FROM pg_constraint WHERE conrelid = CAST(:t AS regclass)) "
                    "ORDER BY indexname"
                ),
                {"t": table},
            )
        ]
    return indexes


def copy_csv(frame: pl.DataFrame) -> bytes:
    """``frame`` as the CSV that PostgreSQL's ``COPY … (FORMAT csv)`` reads back exactly.

    Every text value is quoted (so an empty string stays an empty string and
    cannot be read as NULL, and no value can pass for the end-of-data marker);
    a null is an empty, unquoted field. polars' writer gives the same bytes as
    Arrow's CSV writer for these tables, faster: the client's time is time the
    server waits.
    """
    sink = io.BytesIO()
    frame.write_csv(sink, include_header=False, quote_style="non_numeric")
    return sink.getvalue()


def insert_frame(session: Session, model: type[Base], frame: pl.DataFrame) -> None:
    """Insert a whole frame at once: PostgreSQL COPY of polars-written CSV, else executemany.

    Millions of rows never become Python dicts: on PostgreSQL the frame is
    written as CSV by polars' writer (``copy_csv``) and streamed to COPY; on SQLite the
    driver's executemany takes the rows as tuples. Same transaction as the
    session, so a constraint violation rolls everything back.
    """
    if frame.is_empty():
        return
    session.flush()
    table = cast(Table, model.__table__)
    names = ", ".join(frame.columns)
    raw: Any = session.connection().connection.driver_connection
    if session.get_bind().dialect.name == "postgresql":
        # Queued: a thread of psycopg's sends while polars writes the next slice,
        # so the server parses one slice as the client makes the next.
        from psycopg.copy import QueuedLibpqWriter

        with (
            raw.cursor() as cursor,
            cursor.copy(
                f"COPY {table.name} ({names}) FROM STDIN WITH (FORMAT csv)",
                writer=QueuedLibpqWriter(cursor),
            ) as copy,
        ):
            for part in frame.iter_slices(250_000):  # bounded memory, whatever the run's size
                copy.write(copy_csv(part))
        return
    marks = ", ".join("?" for _ in frame.columns)
    cursor = raw.cursor()
    try:
        for part in frame.iter_slices(CHUNK * 5):
            cursor.executemany(
                f"INSERT INTO {table.name} ({names}) VALUES ({marks})", part.iter_rows()
            )
    finally:
        cursor.close()


def key_order(column: str) -> pl.Expr:
    """A sort key that puts beneficiary keys (hex) in key order, nearly always.

    The first 15 hex digits as an integer: sorting 64-bit integers is much
    faster than sorting millions of 32-character strings. Keys sharing those
    60 bits (hardly ever) keep their incoming order (a stable sort, so the ids
    stay deterministic); the order is only a hint to the index builds, never
    a guarantee anything relies on.
    """
    return pl.col(column).str.slice(0, 15).str.to_integer(base=16, strict=False)


def _reserve_ids(session: Session, count: int) -> int:
    """The first of ``count`` consecutive payment ids, taken from the table's sequence.

    Only called inside ``bulk_load``, whose ``ALTER TABLE`` holds the payments
    table's exclusive lock until commit: no other writer can insert (and so
    draw an id) until then. Even so, an id taken twice could not go through:
    re-creating the payments' primary key at the end of the load checks every
    id, and the transaction fails whole.
    """
    sequence = session.execute(
        text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": Payment.__tablename__}
    ).scalar_one()
    first = int(session.execute(text("SELECT nextval(:s)"), {"s": sequence}).scalar_one())
    session.execute(text("SELECT setval(:s, :last)"), {"s": sequence, "last": first + count - 1})
    return first


def _claims_in_key_order(rows: pl.DataFrame, scheme_id: str, moving: Sequence[str]) -> pl.DataFrame:
    """Every claimant and spouse key of ``rows`` with its payment id, in key order.

    Keys being moved by a re-issue are left out (their claims are updated).
    """
    skip = pl.Series(list(moving), dtype=pl.String).implode()

    def side(column: str) -> pl.DataFrame:
        """One column's claims (claimant or spouse keys), in key order."""
        part = (
            rows.lazy()
            .select(pl.col(column).alias("beneficiary_key"), pl.col("id").alias("payment_id"))
            .filter(
                pl.col("beneficiary_key").is_not_null() & ~pl.col("beneficiary_key").is_in(skip)
            )
            .with_columns(key_order("beneficiary_key").alias("_order"))
            .collect()
        )
        if part.get_column("_order").is_sorted():
            return part
        return part.sort("_order", maintain_order=True)

    # Each column's keys sorted apart (two columns of a few million rows), then
    # the two runs merged.
    return (
        side("beneficiary_key")
        .merge_sorted(side("spouse_key"), key="_order")
        .select(pl.lit(scheme_id).alias("scheme_id"), "beneficiary_key", "payment_id")
    )


def load_with_ids(
    session: Session, scheme_id: str, rows: pl.DataFrame, moving: Sequence[str]
) -> None:
    """Payments, claims and holds of a bulk load, each by one COPY, ids given here.

    Knowing the ids, the claims and holds come from the frame in hand rather
    than from queries over millions of just-written payments, and the claims
    arrive in key order (both columns' keys merged), so rebuilding their
    primary key reads an already sorted table.
    """
    first = _reserve_ids(session, rows.height)
    rows = rows.with_columns(pl.int_range(first, first + rows.height, dtype=pl.Int64).alias("id"))
    # The claims are made here while the server takes the payments' COPY,
    # so that the server is not left idle meanwhile.
    with ThreadPoolExecutor(max_workers=1) as pool:
        claims = pool.submit(_claims_in_key_order, rows, scheme_id, moving)
        insert_frame(session, Payment, rows.select("id", *rows.columns[:-1]))
        insert_frame(session, BeneficiaryClaim, claims.result())
    holds = rows.filter(pl.col("state") == states.HELD).select(
        pl.col("id").alias("payment_id"), pl.col("reason").fill_null("").alias("reasons")
    )
    insert_frame(session, Hold, holds)
