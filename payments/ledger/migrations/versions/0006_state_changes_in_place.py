"""state changes in place: the payments' state in no index, room left in each page

Approving the national run rewrote 2.8 M payments twice on PostgreSQL: each
new row version went to another page and into every index (four of them,
random keys among them), about two minutes a pass on two cores. With the
state out of ``ix_payments_filed`` and half of each page left free, a change of
state is a heap-only-tuple update: the new version lands in the same page and
no index changes (~20 s for the same 2.8 M rows). Payments are now placed in
their file when they are recorded, so approval changes nothing but the state.

The fill factor applies to pages written from now on; ``VACUUM FULL payments``
rewrites an existing ledger's pages with it.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

FILED = sa.text("payment_file_id IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_payments_filed", table_name="payments")
    op.create_index(
        "ix_payments_filed",
        "payments",
        ["payment_file_id"],
        postgresql_where=FILED,
        sqlite_where=FILED,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE payments SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE payments RESET (fillfactor)")
    op.drop_index("ix_payments_filed", table_name="payments")
    op.create_index(
        "ix_payments_filed",
        "payments",
        ["payment_file_id", "state"],
        postgresql_where=FILED,
        sqlite_where=FILED,
    )
