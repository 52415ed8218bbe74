"""upload leases: who is sending a payment file, until when

A payment file's upload is claimed by one sender (a DAG task, whatever its
try, or one ``payments send`` process) for a limited time. A retry of the
same task carries on at once; another sender takes over only once the lease
has expired, so a worker that died mid-upload never leaves a file stranded,
and two live senders never upload one file twice. ``committing`` marks the
moment the complete ``.part`` is at the bank and about to be renamed.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payment_files") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(200), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("payment_files") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("lease_owner")
