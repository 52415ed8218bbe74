"""bank reports: each report the bank sent, by SHA-256, applied or quarantined

A report counts as seen once the ledger holds it, in the same transaction that
applied it (or, for one that cannot be read, that quarantined it with the
reason). Before, "seen" was a copy in the storage root made before applying:
one unreadable report made the others fetched with it disappear for good.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bank_reports",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_bank_reports")),
        sa.CheckConstraint(
            "outcome IN ('applied', 'quarantined')", name=op.f("ck_bank_reports_outcome_known")
        ),
    )


def downgrade() -> None:
    op.drop_table("bank_reports")
