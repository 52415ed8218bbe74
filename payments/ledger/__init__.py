"""The payment ledger: what was decided, approved, written, sent and answered, once.

``models`` holds the tables (SQLAlchemy 2), ``states`` the payment state
machine, ``events`` the append-only hash-chained event log, ``store`` the
operations the pipeline calls, ``migrate`` the Alembic entry points. SQLite is
the embedded default, PostgreSQL production; the same tests run on both.
"""
