"""finance and audit views

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

from payments.ledger.views import VIEWS

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for sql in VIEWS.values():
        op.execute(sql)


def downgrade() -> None:
    for name in reversed(list(VIEWS)):
        op.execute(f"DROP VIEW {name}")
