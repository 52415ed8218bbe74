"""Alembic entry points: bring a ledger database to the current schema."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

#: How a PostgreSQL ledger database is created (deploy/init-databases.sh, the
#: bench, the tests): byte-order collation. Every text the ledger sorts or
#: indexes is an ASCII identifier (keys, end-to-end ids, scheme ids): byte order
#: is what their order means, is the same on every server whatever its locale,
#: and lets PostgreSQL compare with memcmp and abbreviated keys, where a libc
#: locale (even C.UTF-8) calls strcoll for every comparison of the index
#: builds. The ledger holds no names, so nothing depends on a
#: language's collation.
DATABASE_OPTIONS = "TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
FAST_COLLATIONS = ("C", "POSIX")


def create_database_sql(name: str, owner: str | None = None) -> str:
    """``CREATE DATABASE`` of a ledger database, with the ledger's options."""
    return (
        f'CREATE DATABASE "{name}"'
        + (f' OWNER "{owner}"' if owner else "")
        + " "
        + DATABASE_OPTIONS
    )


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("payments.ledger") / "migrations")
    )
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)
    if url.startswith("postgresql"):
        engine = create_engine(url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                collation = database_collation(conn)
        finally:
            engine.dispose()
        if collation not in FAST_COLLATIONS:
            log.warning(
                "ledger database collation is %s, not C: national loads build their "
                "indexes slower (create it with: %s)",
                collation,
                DATABASE_OPTIONS,
            )


def database_collation(conn: Any) -> str:
    """The collation of the connected PostgreSQL database."""
    return str(
        conn.execute(
            text("SELECT datcollate FROM pg_database WHERE datname = current_database()")
        ).scalar_one()
    )


def engine_for(url: str) -> Engine:
    """An engine for the ledger URL; SQLite files get their folder created."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return create_engine(url, poolclass=NullPool)
    return create_engine(url, pool_pre_ping=True)
