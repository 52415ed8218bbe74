"""bound runs: the Airflow run that concluded each payments run, and vouchers spent once

Finance's answer used to be applied to the run an XCom named, which anyone
who may edit the DAG can rewrite. Each DAG run's payments run is now recorded
by the task that concluded it, with the manifest finance was shown; each
voucher the payments pages sign (who acts, for what) is spent once.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "airflow_runs",
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("airflow_run_id", sa.String(250), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("concluded_at", sa.DateTime(), nullable=False),
        sa.Column("shown_manifest_sha256", sa.String(64), nullable=True),
        sa.Column("shown_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("dag_id", "airflow_run_id", name=op.f("pk_airflow_runs")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name=op.f("fk_airflow_runs_run_id_runs")
        ),
    )
    op.create_table(
        "spent_vouchers",
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("user_name", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("spent_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_spent_vouchers")),
    )
    op.create_index("ix_bank_events_end_to_end_id", "bank_events", ["end_to_end_id"])


def downgrade() -> None:
    op.drop_index("ix_bank_events_end_to_end_id", table_name="bank_events")
    op.drop_table("spent_vouchers")
    op.drop_table("airflow_runs")
