"""Index versions: every search index built, and which one serves.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Written by hand to match storage.models.IndexVersion; constraint names follow storage.models.NAMING_CONVENTION.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "index_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("embedding_model", sa.String(length=1024), nullable=False),
        sa.Column("content_hash", sa.String(length=128), nullable=False),
        sa.Column("n_chunks", sa.Integer(), nullable=False),
        sa.Column("n_questions", sa.Integer(), nullable=False),
        sa.Column("n_embedded", sa.Integer(), nullable=False),
        sa.Column("build_s", sa.Float(), nullable=False),
        sa.Column("is_current", sa.Boolean(), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_index_versions")),
        sa.UniqueConstraint("version", name=op.f("uq_index_versions_version")),
    )
    op.create_index(op.f("ix_index_versions_created_at"), "index_versions", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_index_versions_created_at"), table_name="index_versions")
    op.drop_table("index_versions")
