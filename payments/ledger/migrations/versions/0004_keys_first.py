"""keys first: the claims' primary key and the payments' unique key lead with the beneficiary key

Same guarantees (the same columns are unique), columns in another order: the
national load rebuilds these indexes, and with the scheme (one value for the
whole load) first PostgreSQL compared full strings throughout the sort.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

from payments.ledger.views import VIEWS

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _keys(claims: list[str], payments: list[str], old_unique: str, new_unique: str) -> None:
    # The views read the payments table: SQLite rebuilds the table, so drop
    # them first and create them again after.
    for name in reversed(list(VIEWS)):
        op.execute(f"DROP VIEW {name}")
    with op.batch_alter_table("beneficiary_claims", recreate="auto") as batch:
        batch.drop_constraint("pk_beneficiary_claims", type_="primary")
        batch.create_primary_key("pk_beneficiary_claims", claims)
    with op.batch_alter_table("payments", recreate="auto") as batch:
        batch.drop_constraint(old_unique, type_="unique")
        batch.create_unique_constraint(new_unique, payments)
    for sql in VIEWS.values():
        op.execute(sql)


def upgrade() -> None:
    _keys(
        ["beneficiary_key", "scheme_id"],
        ["beneficiary_key", "scheme_id", "attempt"],
        "uq_payments_scheme_id",
        "uq_payments_beneficiary_key",
    )


def downgrade() -> None:
    _keys(
        ["scheme_id", "beneficiary_key"],
        ["scheme_id", "beneficiary_key", "attempt"],
        "uq_payments_beneficiary_key",
        "uq_payments_scheme_id",
    )
