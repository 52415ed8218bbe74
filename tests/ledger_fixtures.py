"""Ledger databases for tests: a SQLite file and a fresh PostgreSQL database.

PostgreSQL: a new database per test session on 127.0.0.1:5432 (trust auth),
dropped at the end; never an existing one. Without a reachable server the
PostgreSQL variants are skipped locally with the reason shown, but fail when
PAYMENTS_REQUIRE_POSTGRES is set (CI sets it).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from payments.ledger.migrate import create_database_sql, engine_for, upgrade

PG_ADMIN = os.environ.get(
    "PAYMENTS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _pg_available() -> str | None:
    try:
        engine = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with engine.connect() as c:
            c.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return f"PostgreSQL not reachable at {PG_ADMIN}: {exc.__class__.__name__}"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    reason = _pg_available()
    if reason:
        if os.environ.get("PAYMENTS_REQUIRE_POSTGRES"):
            pytest.fail(reason + " (PAYMENTS_REQUIRE_POSTGRES is set)")
        pytest.skip(reason)
    name = f"payments_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(create_database_sql(name)))
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with admin.connect() as c:
            c.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty ledger on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    else:
        base: str = request.getfixturevalue("pg_url")
        # one schema-less database per test: recreate the tables inside a fresh database
        name = f"t_{uuid.uuid4().hex[:12]}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(create_database_sql(name)))
        admin.dispose()
        url = base.rsplit("/", 1)[0] + "/" + name
        request.addfinalizer(lambda: _drop(name))
    upgrade(url)
    engine = engine_for(url)
    yield engine
    engine.dispose()


def _drop(name: str) -> None:
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": name},
        )
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()
