"""The ledger's DDL as text, for sql/ledger.sql (readers who do not run Python)."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

from payments.ledger.models import Base


def ddl_text() -> str:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    parts = [
        "-- Payment ledger tables (PostgreSQL), generated from payments/ledger/models.py.",
        "-- Migrations: payments/ledger/migrations (Alembic). Views: sql/views.sql.",
        "",
    ]
    for table in Base.metadata.sorted_tables:
        create = str(CreateTable(table).compile(dialect=dialect)).strip()
        parts.append("\n".join(line.rstrip() for line in create.splitlines()) + ";\n")
        for index in table.indexes:
            parts.append(str(CreateIndex(index).compile(dialect=dialect)).strip() + ";\n")
    return "\n".join(parts)
