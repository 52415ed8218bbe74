"""payment attempts: a rejected or returned payment can be re-issued once more

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from payments.ledger.views import VIEWS

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The views read the payments table: SQLite rebuilds the table, so drop
    # them first and create them again after.
    for name in reversed(list(VIEWS)):
        op.execute(f"DROP VIEW {name}")
    with op.batch_alter_table("payments", recreate="auto") as batch:
        batch.add_column(sa.Column("attempt", sa.Integer(), nullable=False, server_default="1"))
        batch.drop_constraint("uq_payments_scheme_id", type_="unique")
        batch.create_unique_constraint(
            "uq_payments_scheme_id", ["scheme_id", "beneficiary_key", "attempt"]
        )
    for sql in VIEWS.values():
        op.execute(sql)


def downgrade() -> None:
    for name in reversed(list(VIEWS)):
        op.execute(f"DROP VIEW {name}")
    with op.batch_alter_table("payments", recreate="auto") as batch:
        batch.drop_constraint("uq_payments_scheme_id", type_="unique")
        batch.create_unique_constraint("uq_payments_scheme_id", ["scheme_id", "beneficiary_key"])
        batch.drop_column("attempt")
    for sql in VIEWS.values():
        op.execute(sql)
