"""Ledger operations the pipeline calls: record, claim, move through states, release.

Every change appends to the hash-chained event log in the same transaction.
Times come in as arguments (the shell passes the clock).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import polars as pl
import pyarrow as pa
from sqlalchemy import Table, func, insert, select, text, true, update
from sqlalchemy.orm import Session

from payments.entitlement.decide import PRIOR_SCHEMA
from payments.entitlement.keys import KEY_VERSION
from payments.errors import PaymentsError, Refused, UnknownRun
from payments.identifiers.end_to_end import end_to_end_ids
from payments.ledger import events, states
from payments.ledger.models import (
    Base,
    BeneficiaryClaim,
    Hold,
    InputFile,
    Payment,
    PaymentFileRow,
    Run,
)
from payments.ledger.moves import move
from payments.ledger.staging import staged_rows
from payments.schemes import Scheme

CHUNK = 20_000
#: Rows fetched at a time when a query's answer is read in slices.
FETCH_ROWS = 200_000


@dataclass
class Recorded:
    inserted: int
    already_claimed: int
    held: int
    cents: int


class KeyVersionError(PaymentsError):
    """The ledger's runs of a scheme were keyed with another construction or secret."""


def check_key_version(session: Session, scheme_ids: Sequence[str]) -> None:
    """Every run of these schemes must have keyed beneficiaries as this code does.

    Keys are how "paid at most once" is enforced: a run keyed differently would
    find nobody already paid and pay everyone again. Runs recorded before key
    versions were recorded used version 1.
    """
    found = {
        int(json.loads(text_).get("key_version", 1))
        for (text_,) in session.execute(select(Run.parameters).where(Run.scheme_id.in_(scheme_ids)))
    }
    other = sorted(found - {KEY_VERSION})
    if other:
        raise KeyVersionError(
            f"the ledger holds runs of {', '.join(scheme_ids)} with beneficiary keys of version "
            f"{', '.join(map(str, other))}; this code makes version {KEY_VERSION}, which would "
            "find nobody already paid. Finish the scheme with the code that started it."
        )


def check_key_fingerprint(session: Session, scheme_ids: Sequence[str], key: str) -> None:
    """Every run of these schemes that recorded a secret's fingerprint recorded this one.

    A different secret finds nobody already paid, and one claimant filed by
    two funds is paid twice: refused before anything is computed or recorded.
    """
    found = {
        json.loads(text_).get("key_fingerprint")
        for (text_,) in session.execute(select(Run.parameters).where(Run.scheme_id.in_(scheme_ids)))
    } - {None, key}
    if found:
        raise KeyVersionError(
            f"the ledger's runs of {', '.join(scheme_ids)} were keyed with another "
            f"beneficiary-key secret (fingerprint {', '.join(sorted(found))}, this one {key}): "
            "set PAYMENTS_KEY_SECRET to the secret those runs used"
        )


def record_run(
    session: Session,
    *,
    run_id: str,
    scheme: Scheme,
    parameters: dict[str, Any],
    code_version: str,
    at: datetime,
    triggered_by: str | None = None,
    key_fingerprint: str | None = None,
) -> Run:
    """The run row (idempotent: a rerun of the same run id finds it).

    Refuses to record a run whose beneficiary keys would not match those the
    ledger already holds for the scheme (``KeyVersionError``): another
    construction, or (``key_fingerprint``) another secret.
    """
    schemes = [scheme.id, *scheme.spec.not_cumulable_with]
    check_key_version(session, schemes)
    parameters = {**parameters, "key_version": KEY_VERSION}
    if key_fingerprint:
        check_key_fingerprint(session, schemes, key_fingerprint)
        parameters["key_fingerprint"] = key_fingerprint
    run = session.get(Run, run_id)
    if run is not None and run.decision == "rejected":
        raise Refused(
            f"run {run_id} was rejected by {run.approved_by}: a decision is final; "
            "a new run needs new input files (or another scheme version)"
        )
    if run is None:
        run = Run(
            run_id=run_id,
            scheme_id=scheme.id,
            scheme_version=scheme.spec.version,
            scheme_sha256=hashlib.sha256(scheme.text.encode()).hexdigest(),
            parameters=events.canonical(parameters),
            code_version=code_version,
            started_at=at,
            triggered_by=triggered_by,
        )
        session.add(run)
        session.flush()
        events.append(
            session,
            "run_started",
            {"scheme": scheme.id, "parameters": parameters, "code_version": code_version},
            at=at,
            run_id=run_id,
        )
    return run


def record_input_files(session: Session, run_id: str, reports: Iterable[Any], at: datetime) -> None:
    for r in reports:
        exists = session.execute(
            select(InputFile.id).where(
                InputFile.run_id == run_id, InputFile.fund_code == r.fund_code
            )
        ).first()
        if exists:
            continue
        session.add(
            InputFile(
                run_id=run_id,
                fund_code=r.fund_code,
                file_name=r.file,
                sha256=r.sha256,
                status=r.status,
                file_error=r.file_error,
                rows_read=r.rows_read,
                accepted=r.accepted,
                quarantined=r.quarantined,
            )
        )
        events.append(
            session,
            "input_file",
            {"fund": r.fund_code, "status": r.status, "sha256": r.sha256, "rows": r.rows_read},
            at=at,
            run_id=run_id,
        )
    session.flush()


#: From this many rows, a PostgreSQL load rebuilds the key constraints instead of
#: maintaining them row by row (docs/decisions.md, "Ledger load").
BULK_ROWS = 200_000
_REBUILD_ORDER = {"p": 0, "u": 1, "f": 2}  # keys before the foreign keys that need them
#: Memory for the bulk load's own sorts and joins, and for building its indexes
#: (this transaction only: ``SET LOCAL``).
BULK_WORK_MEM = "256MB"
BULK_MAINTENANCE_MEM = "512MB"


@contextmanager
def _bulk_load(session: Session, rows: int, models: list[type[Base]]) -> Iterator[bool]:
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
    # Plain indexes too (the payments by file: every payment is filed as it is
    # loaded): maintained row by row they cost a national load ~9 s, built after ~1 s.
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


def copy_csv(frame: pl.DataFrame) -> bytes:
    """``frame`` as the CSV that PostgreSQL's ``COPY … (FORMAT csv)`` reads back exactly.

    Every text value is quoted (so an empty string stays an empty string and
    cannot be read as NULL, and no value can pass for the end-of-data marker);
    a null is an empty, unquoted field. polars' writer gives the same bytes as
    Arrow's CSV writer for these tables, three to five times faster (0.6 s
    instead of 2–3 s for the 2.8 million national payments, time the client
    took from the server on two cores).
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
        # so the server parses one slice as the client makes the next (they
        # took turns: ~1 s of the national payments' COPY).
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


def _claimed(session: Session, scheme_id: str, keys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(keys), CHUNK):
        part = list(keys[i : i + CHUNK])
        found.update(
            session.execute(
                select(BeneficiaryClaim.beneficiary_key).where(
                    BeneficiaryClaim.scheme_id == scheme_id,
                    BeneficiaryClaim.beneficiary_key.in_(part),
                )
            ).scalars()
        )
    return found


def _reissuable(
    session: Session, scheme_id: str, keys: Sequence[str]
) -> dict[str, tuple[int, int]]:
    """Keys whose claim is held by a payment that paid nothing: {key: (payment id, attempt)}.

    The money never left (finance rejected the run: cancelled), never reached
    the household (rejected) or came back (returned): a later run may pay it
    again, as the next attempt.
    """
    found: dict[str, tuple[int, int]] = {}
    for i in range(0, len(keys), CHUNK):
        part = list(keys[i : i + CHUNK])
        for key, pid, attempt in session.execute(
            select(BeneficiaryClaim.beneficiary_key, Payment.id, Payment.attempt)
            .join(Payment, Payment.id == BeneficiaryClaim.payment_id)
            .where(
                BeneficiaryClaim.scheme_id == scheme_id,
                BeneficiaryClaim.beneficiary_key.in_(part),
                Payment.state.in_([states.CANCELLED, states.REJECTED, states.RETURNED]),
            )
        ):
            found[str(key)] = (int(pid), int(attempt))
    return found


def key_order(column: str) -> pl.Expr:
    """A sort key that puts beneficiary keys (hex) in key order, nearly always.

    The first 15 hex digits as an integer: sorting 64-bit integers is ten times
    faster than sorting millions of 32-character strings. Keys sharing those
    60 bits (hardly ever) keep their incoming order (a stable sort, so the ids
    stay deterministic); the order is only a hint to the index builds, never
    a guarantee anything relies on.
    """
    return pl.col(column).str.slice(0, 15).str.to_integer(base=16, strict=False)


def _reserve_ids(session: Session, count: int) -> int:
    """The first of ``count`` consecutive payment ids, taken from the table's sequence.

    Only called inside ``_bulk_load``, whose ``ALTER TABLE`` holds the payments
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


def _load_with_ids(
    session: Session, scheme_id: str, rows: pl.DataFrame, moving: Sequence[str]
) -> None:
    """Payments, claims and holds of a bulk load, each by one COPY, ids given here.

    Knowing the ids, the claims and holds come from the frame in hand rather
    than from queries over millions of just-written payments, and the claims
    arrive in key order (both columns' keys merged), so rebuilding their
    primary key reads an already sorted table: about half the time of an
    unsorted one nationally.
    """
    first = _reserve_ids(session, rows.height)
    rows = rows.with_columns(pl.int_range(first, first + rows.height, dtype=pl.Int64).alias("id"))
    # The claims are made here while the server takes the payments' COPY
    # (a second of polars work that left the server idle).
    with ThreadPoolExecutor(max_workers=1) as pool:
        claims = pool.submit(_claims_in_key_order, rows, scheme_id, moving)
        insert_frame(session, Payment, rows.select("id", *rows.columns[:-1]))
        insert_frame(session, BeneficiaryClaim, claims.result())
    holds = rows.filter(pl.col("state") == states.HELD).select(
        pl.col("id").alias("payment_id"), pl.col("reason").fill_null("").alias("reasons")
    )
    insert_frame(session, Hold, holds)


#: The decisions' columns a run's payments are recorded from.
RECORDED_COLUMNS = (
    "status",
    "claimant_key",
    "spouse_key",
    "fund_code",
    "household_id",
    "rule_id",
    "base_cents",
    "child_cents",
    "entitled_cents",
    "reason",
)


@dataclass
class Pending:
    """Decisions resolved against the ledger, not yet inserted.

    The run's payment files are written between the two halves of recording
    (:func:`prepare_decisions`, :func:`insert_pending`): the files need each
    payment's attempt, which the ledger decides, and the payments go into the
    ledger already placed in their file. Placing them afterwards rewrote every
    row of the national run (a non-HOT update of 2.8 M rows, two minutes on
    PostgreSQL); placed at insert, finance's approval only flips their state.
    """

    run_id: str
    scheme_id: str
    rows: pl.DataFrame
    reissue: dict[str, tuple[int, int]]
    result: Recorded
    #: Payable claimant keys another run claimed first (kept for a replay).
    elsewhere: list[str]
    #: This run's re-issues: claimant key → attempt.
    attempts: dict[str, int]
    #: End-to-end ids of this run's payments already in the ledger with no file
    #: yet (released holds this run adopted): placed by a staged update.
    unfiled: list[str]


def prepare_decisions(
    session: Session,
    *,
    run_id: str,
    scheme: Scheme,
    decisions: pa.Table | pl.DataFrame,
    at: datetime,
) -> Pending:
    """Look the decisions up in the ledger: who is already claimed, who is re-issued.

    Released holds this run finds payable are adopted (moved into this run)
    here. Nothing is inserted until :func:`insert_pending`.
    """
    wanted = list(RECORDED_COLUMNS)
    # Only the columns recorded are converted from Arrow (the decisions carry forty).
    frame = (
        decisions.select(wanted)
        if isinstance(decisions, pl.DataFrame)
        else pl.DataFrame(decisions.select(wanted))
    )
    df = frame.filter(pl.col("status").is_in(["payable", "held"]))
    _adopt_released(session, run_id, scheme.id, df, at)
    reissue: dict[str, tuple[int, int]] = {}
    taken: set[str] = set()
    first_claims = (
        session.execute(
            select(BeneficiaryClaim.beneficiary_key)
            .where(BeneficiaryClaim.scheme_id == scheme.id)
            .limit(1)
        ).first()
        is None
    )
    if not first_claims:  # the scheme's first run has nobody to look up
        keys = (
            df.get_column("claimant_key").to_list()
            + df.get_column("spouse_key").drop_nulls().to_list()
        )
        reissue = _reissuable(session, scheme.id, keys)
        taken = _claimed(session, scheme.id, keys) - reissue.keys()
    df = df.with_columns(
        pl.col("claimant_key")
        .replace_strict(
            {k: a + 1 for k, (_, a) in reissue.items()}, default=1, return_dtype=pl.Int64
        )
        .alias("attempt")
    )
    df = df.with_columns(
        end_to_end_ids(
            scheme.id, pl.col("fund_code"), pl.col("household_id"), pl.col("attempt")
        ).alias("e2e")
    )
    fresh = df.filter(
        ~pl.col("claimant_key").is_in(pl.Series(sorted(taken)).implode())
        & ~pl.col("spouse_key").is_in(pl.Series(sorted(taken)).implode()).fill_null(False)
    )
    rows = fresh.select(
        pl.lit(scheme.id).alias("scheme_id"),
        pl.col("claimant_key").alias("beneficiary_key"),
        "spouse_key",
        pl.lit(run_id).alias("run_id"),
        "fund_code",
        "household_id",
        "rule_id",
        "base_cents",
        "child_cents",
        pl.col("entitled_cents").alias("amount_cents"),
        pl.col("e2e").alias("end_to_end_id"),
        pl.when(pl.col("status") == "held")
        .then(pl.lit(states.HELD))
        .otherwise(pl.lit(states.COMPUTED))
        .alias("state"),
        "reason",
        "attempt",
    )
    held = rows.filter(pl.col("state") == states.HELD).height
    cents = int(rows.get_column("amount_cents").sum())
    result = Recorded(
        inserted=rows.height, already_claimed=df.height - rows.height, held=held, cents=cents
    )
    # This run's live payments once the rows are in: those the ledger already
    # holds for it (a rerun, adopted holds) and the new ones not held.
    live_keys: list[pl.Series] = [
        rows.filter(pl.col("state") != states.HELD).get_column("beneficiary_key")
    ]
    attempts = {
        str(k): int(a)
        for k, a in rows.filter((pl.col("state") != states.HELD) & (pl.col("attempt") > 1))
        .select("beneficiary_key", "attempt")
        .iter_rows()
    }
    unfiled: list[str] = []
    existing = session.execute(
        select(
            Payment.beneficiary_key,
            Payment.attempt,
            Payment.end_to_end_id,
            Payment.payment_file_id,
        )
        .where(Payment.run_id == run_id, Payment.state.not_in([states.HELD, states.CANCELLED]))
        .execution_options(yield_per=FETCH_ROWS)
    )
    for part in existing.partitions():
        live_keys.append(pl.Series([k for k, _, _, _ in part], dtype=pl.String))
        for key, attempt, e2e, file_id in part:
            if attempt > 1:
                attempts[str(key)] = int(attempt)
            if file_id is None:
                unfiled.append(str(e2e))
    recorded = pl.concat(live_keys).implode()
    elsewhere = (
        frame.filter((pl.col("status") == "payable") & ~pl.col("claimant_key").is_in(recorded))
        .get_column("claimant_key")
        .unique()
        .sort()
        .to_list()
    )
    return Pending(
        run_id=run_id,
        scheme_id=scheme.id,
        rows=rows,
        reissue=reissue,
        result=result,
        elsewhere=elsewhere,
        attempts=attempts,
        unfiled=unfiled,
    )


def insert_pending(
    session: Session, pending: Pending, *, placement: pl.DataFrame | None = None, at: datetime
) -> Recorded:
    """Insert what :func:`prepare_decisions` resolved, each payment placed in its file.

    ``placement``: ``end_to_end_id`` → ``payment_file_id`` of the run's
    payment files (recorded by :func:`record_payment_files`); None when the
    run writes no file. The claims table's primary key is the guarantee: if
    another writer claimed a key since the lookup, the insert fails and the
    transaction rolls back whole.
    """
    run_id, scheme_id, rows, reissue = (
        pending.run_id,
        pending.scheme_id,
        pending.rows,
        pending.reissue,
    )
    if placement is not None:
        rows = rows.join(
            placement.select("end_to_end_id", "payment_file_id"),
            on="end_to_end_id",
            how="left",
            maintain_order="left",
        )
    # Payments go in the decisions' order (fund, then household), not sorted by
    # key: their end-to-end ids, whose unique key is the costliest to build
    # (all start with the scheme's code, so PostgreSQL cannot sort them on
    # abbreviated keys), then come nearly sorted, while random beneficiary keys
    # sort well on abbreviated keys; and the client sorts no column (the figures
    # are in docs/history/2026-11-optimisation-rounds.md).
    session.flush()
    before = session.execute(select(func.coalesce(func.max(Payment.id), 0))).scalar_one()
    new = (Payment.run_id == run_id) & (Payment.id > before)
    moving = sorted(reissue)
    with (
        staged_rows(
            session,
            ["beneficiary_key", "payment_id"],
            ((k, reissue[k][0]) for k in moving),
            integer=["payment_id"],
            key=["beneficiary_key"],
        ) as moved,
        _bulk_load(session, rows.height, [Payment, BeneficiaryClaim]) as bulk,
    ):
        if bulk:
            _load_with_ids(session, scheme_id, rows, moving)
        else:
            insert_frame(session, Payment, rows)
            # Claims are derived in the database from the rows just inserted (no
            # round trip of ids). The claims' primary key is still the guarantee:
            # a key claimed since we looked fails the whole transaction.
            for column in (Payment.beneficiary_key, Payment.spouse_key):
                source = (
                    select(Payment.scheme_id, column, Payment.id)
                    .where(
                        new,
                        column.is_not(None),
                        column.not_in(select(moved.c.beneficiary_key)) if moving else true(),
                    )
                    .order_by(column)  # a maintained index fills page after page in key order
                )
                session.execute(
                    insert(BeneficiaryClaim).from_select(
                        ["scheme_id", "beneficiary_key", "payment_id"], source
                    )
                )
            session.execute(
                insert(Hold).from_select(
                    ["payment_id", "reasons"],
                    select(Payment.id, func.coalesce(Payment.reason, "")).where(
                        new, Payment.state == states.HELD
                    ),
                )
            )
        # A re-issue moves the household's claims to the new payment: one live
        # claim per (scheme, key) still, so nobody is paid twice.
        if moving:
            claim = cast(Table, BeneficiaryClaim.__table__)
            for key_column in (Payment.beneficiary_key, Payment.spouse_key):
                new_payment = select(Payment.id).where(new, key_column == claim.c.beneficiary_key)
                session.execute(
                    update(claim)
                    .where(
                        claim.c.scheme_id == scheme_id,
                        select(moved.c.beneficiary_key)
                        .where(
                            moved.c.beneficiary_key == claim.c.beneficiary_key,
                            moved.c.payment_id == claim.c.payment_id,
                        )
                        .exists(),
                        new_payment.exists(),
                    )
                    .values(payment_id=new_payment.scalar_subquery())
                )
    if placement is not None and pending.unfiled:
        wanted = pl.Series(pending.unfiled, dtype=pl.String).implode()
        file_payments(
            session,
            run_id,
            placement.filter(pl.col("end_to_end_id").is_in(wanted)),
        )
    events.append(session, "decisions_recorded", pending.result.__dict__, at=at, run_id=run_id)
    session.flush()
    return pending.result


def record_decisions(
    session: Session,
    *,
    run_id: str,
    scheme: Scheme,
    decisions: pa.Table | pl.DataFrame,
    end_to_end: pa.Array | None = None,
    at: datetime,
) -> Recorded:
    """Record payable and held households, in no file; those already claimed are skipped.

    :func:`prepare_decisions` then :func:`insert_pending` with no placement
    (the pipeline writes the files between the two).
    """
    pending = prepare_decisions(session, run_id=run_id, scheme=scheme, decisions=decisions, at=at)
    return insert_pending(session, pending, at=at)


def file_payments(session: Session, run_id: str, placement: pl.DataFrame) -> int:
    """Place payments of ``run_id`` not yet in a file into theirs: ``end_to_end_id`` → file id.

    Staged and joined (never a list of bound values). Used for the few
    payments that entered the ledger before their file was written (released
    holds a run adopts), and for runs whose files were recorded only at
    approval (concluded by an earlier version).
    """
    if placement.is_empty():
        return 0
    with staged_rows(
        session,
        ["end_to_end_id", "payment_file_id"],
        placement.select("end_to_end_id", "payment_file_id").iter_rows(),
        integer=["payment_file_id"],
        key=["end_to_end_id"],
    ) as placed:
        target = (
            (Payment.run_id == run_id)
            & Payment.payment_file_id.is_(None)
            & (Payment.end_to_end_id == placed.c.end_to_end_id)
        )
        count = session.execute(
            select(func.count()).select_from(Payment).where(target)
        ).scalar_one()
        session.execute(
            update(Payment)
            .where(target)
            .values(payment_file_id=placed.c.payment_file_id)
            .execution_options(synchronize_session=False)
        )
    return int(count)


def _released(scheme_id: str) -> Any:
    """Payments finance released from a hold and that no file carries yet (a subquery of ids)."""
    return (
        select(Payment.id)
        .join(Hold, Hold.payment_id == Payment.id)
        .where(
            Payment.scheme_id == scheme_id,
            Payment.state == states.COMPUTED,
            Payment.payment_file_id.is_(None),
            Hold.released_at.is_not(None),
        )
    )


def released_keys(session: Session, scheme_id: str) -> list[str]:
    """Claimant keys of released holds: the next run pays them, without holding them again.

    As many as finance released by hand, one review at a time.
    """
    return list(
        session.execute(
            select(Payment.beneficiary_key).where(Payment.id.in_(_released(scheme_id)))
        ).scalars()
    )


def _adopt_released(
    session: Session, run_id: str, scheme_id: str, payable: pl.DataFrame, at: datetime
) -> int:
    """Released payments this run finds payable move into this run, at today's amounts."""
    released = list(
        session.execute(select(Payment).where(Payment.id.in_(_released(scheme_id)))).scalars()
    )
    if not released:
        return 0
    keys = pl.Series([p.beneficiary_key for p in released], dtype=pl.String).implode()
    now_payable = {
        r["claimant_key"]: r
        for r in payable.filter(
            (pl.col("status") == "payable") & pl.col("claimant_key").is_in(keys)
        ).iter_rows(named=True)
    }
    moved: dict[str, int] = {}
    for payment in released:
        decision = now_payable.get(payment.beneficiary_key)
        if decision is None:
            continue
        moved[payment.run_id] = moved.get(payment.run_id, 0) + 1
        payment.run_id = run_id
        payment.base_cents = decision["base_cents"]
        payment.child_cents = decision["child_cents"]
        payment.amount_cents = decision["entitled_cents"]
    if moved:
        events.append(
            session,
            "released_payments_adopted",
            {"payments": sum(moved.values()), "from_runs": moved},
            at=at,
            run_id=run_id,
        )
    session.flush()
    return sum(moved.values())


def prior_payments(
    session: Session, scheme_ids: Sequence[str], *, exclude_run: str | None = None
) -> pa.Table:
    """Keys already claimed under these schemes (for ``decide``'s ``prior``).

    ``exclude_run``: claims made by that run are not "prior" to it, so rerunning
    a run reproduces its own decisions and files instead of finding itself paid.
    Read in slices straight into Arrow columns (millions of claims nationally).
    """
    query = (
        select(BeneficiaryClaim.beneficiary_key, BeneficiaryClaim.scheme_id, Payment.base_cents)
        .join(Payment, Payment.id == BeneficiaryClaim.payment_id)
        .where(
            BeneficiaryClaim.scheme_id.in_(list(scheme_ids)),
            Payment.state.not_in([states.CANCELLED, states.REJECTED, states.RETURNED]),
            Payment.run_id != (exclude_run or ""),
        )
    )
    if scheme_ids:
        query = query.where(Payment.id.not_in(_released(scheme_ids[0])))
    result = session.execute(query.execution_options(yield_per=FETCH_ROWS))
    batches = [
        pa.RecordBatch.from_arrays(
            [
                pa.array(column, type=field.type)
                for column, field in zip(zip(*rows, strict=True), PRIOR_SCHEMA, strict=True)
            ],
            schema=PRIOR_SCHEMA,
        )
        for rows in result.partitions()
    ]
    return pa.Table.from_batches(batches, schema=PRIOR_SCHEMA)


def approve_run(
    session: Session, run_id: str, *, by: str, at: datetime, manifest_sha256: str | None = None
) -> int:
    """Finance's approval: the run's computed payments that are in a file go ``in_file``.

    The caller has checked who decides (:mod:`payments.four_eyes`); the
    ledger refuses a run already decided. Recorded as two steps (approved,
    then in its file) in one update of a state only: on PostgreSQL that
    rewrites each row in its own page (a HOT update, no index touched; see
    migration 0006), about 20 s for the national run's 2.8 M payments where
    a second column changed cost minutes. A hold released after the files
    were written is in no file: it stays ``computed`` for the next run.
    Returns the payments filed.
    """
    run = session.get(Run, run_id)
    if run is None:
        raise UnknownRun(f"run {run_id} is not in the ledger")
    if run.decision is not None:
        raise Refused(f"run {run_id} was already {run.decision}: a decision is final")
    where = (
        (Payment.run_id == run_id)
        & (Payment.state == states.COMPUTED)
        & Payment.payment_file_id.is_not(None)
    )
    count = session.execute(select(func.count()).select_from(Payment).where(where)).scalar_one()
    run.approved_by, run.approved_at, run.decision = by, at, "approved"
    payload: dict[str, Any] = {"by": by, "payments": count}
    if manifest_sha256:
        payload["manifest_sha256"] = manifest_sha256
    events.append(session, "run_approved", payload, at=at, run_id=run_id)
    session.flush()
    return move(
        session, where, states.IN_FILE, at=at, actor=by, run_id=run_id, via=[states.APPROVED]
    )


def record_payment_files(
    session: Session, run_id: str, manifest: dict[str, Any], at: datetime
) -> dict[str, int]:
    """The run's payment files as written (not yet approved, not sent): msg id → file row id.

    Idempotent: a rerun writing the same files finds their rows.
    """
    ids: dict[str, int] = {}
    added = 0
    for f in manifest["files"]:
        found = session.execute(
            select(PaymentFileRow.id).where(PaymentFileRow.msg_id == f["msg_id"])
        ).scalar()
        if found is not None:
            ids[f["msg_id"]] = int(found)
            continue
        row = PaymentFileRow(
            run_id=run_id,
            fund_code=f["fund_code"],
            msg_id=f["msg_id"],
            path=f["path"],
            sha256=f["sha256"],
            bytes=f["bytes"],
            nb_of_txs=f["nb_of_txs"],
            ctrl_sum_cents=f["ctrl_sum_cents"],
            execution_date=datetime.fromisoformat(manifest["execution_date"]).date(),
        )
        session.add(row)
        session.flush()
        ids[f["msg_id"]] = row.id
        added += 1
    if added:
        events.append(
            session,
            "payment_files",
            {
                "files": added,
                "manifest_sha256": hashlib.sha256(
                    json.dumps(manifest, sort_keys=True).encode()
                ).hexdigest(),
            },
            at=at,
            run_id=run_id,
        )
    return ids


def placement(transactions: pl.DataFrame, file_ids: dict[str, int]) -> pl.DataFrame:
    """Each transaction's file row: ``end_to_end_id`` → ``payment_file_id``.

    ``transactions``: the batch's end-to-end id → msg id list (``transactions.parquet``).
    """
    ids = pl.DataFrame(
        {"msg_id": list(file_ids), "payment_file_id": list(file_ids.values())},
        schema={"msg_id": pl.String, "payment_file_id": pl.Int64},
    )
    frame = transactions.select("end_to_end_id", "msg_id")
    return frame.join(ids, on="msg_id", how="inner", maintain_order="left").select(
        "end_to_end_id", "payment_file_id"
    )


def count_by_state(session: Session, scheme_id: str) -> dict[str, int]:
    rows = session.execute(
        select(Payment.state, func.count())
        .where(Payment.scheme_id == scheme_id)
        .group_by(Payment.state)
    )
    return {str(state): int(n) for state, n in rows}
