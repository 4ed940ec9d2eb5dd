"""Training runs: who runs them (host, pid), their heartbeat, and the 'interrupted' status.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

A run whose process was killed (kill -9) stayed 'running' forever; the next start now finds it by host + pid
(same machine) or by an old heartbeat (another machine), and marks it 'interrupted'. Written by hand to match
storage.models.TrainingRun; batch mode rebuilds the table on SQLite to change the CHECK constraint.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = "status IN ('running', 'succeeded', 'failed')"
NEW = "status IN ('running', 'succeeded', 'failed', 'interrupted')"


def _table_0002(*extra: sa.Column, check: str) -> sa.Table:
    """training_runs as 0001 made it (plus ``extra``): batch mode copies from it instead of reflecting the live
    table, so ``alembic upgrade head --sql`` works on SQLite too."""
    return sa.Table(
        "training_runs", sa.MetaData(),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("base_model", sa.String(length=255), nullable=False),
        sa.Column("adapter_path", sa.String(length=1024), nullable=True),
        sa.Column("data_hash", sa.String(length=128), nullable=True),
        sa.Column("n_examples", sa.Integer(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("gpu_hourly_usd", sa.Float(), nullable=True),
        sa.Column("usd_brl", sa.Float(), nullable=True),
        sa.Column("usd_brl_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("cost_brl", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        *extra,
        sa.CheckConstraint(check, name="ck_training_runs_status"),
        sa.PrimaryKeyConstraint("id", name="pk_training_runs"),
        sa.Index("ix_training_runs_started_at", "started_at"),
    )


def _liveness_columns() -> list[sa.Column]:
    return [sa.Column("host", sa.String(length=255), nullable=True), sa.Column("pid", sa.Integer(), nullable=True),
            sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True)]


def upgrade() -> None:
    with op.batch_alter_table("training_runs", copy_from=_table_0002(check=OLD)) as batch:
        batch.add_column(sa.Column("host", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch.drop_constraint(op.f("ck_training_runs_status"), type_="check")
        batch.create_check_constraint("status", NEW)


def downgrade() -> None:
    op.execute("UPDATE training_runs SET status = 'failed' WHERE status = 'interrupted'")
    with op.batch_alter_table("training_runs", copy_from=_table_0002(*_liveness_columns(), check=NEW)) as batch:
        batch.drop_constraint(op.f("ck_training_runs_status"), type_="check")
        batch.create_check_constraint("status", OLD)
        batch.drop_column("heartbeat_at")
        batch.drop_column("pid")
        batch.drop_column("host")
