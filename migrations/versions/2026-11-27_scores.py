"""Scores: period states and revisions, score and ranking snapshots, dirty periods, amendments.

Revision ID: 0006_scores
Revises: 0005_portal_sync
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006_scores"
down_revision: str | None = "0005_portal_sync"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "period_amendments",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_period_amendments")),
    )
    op.create_index("ix_period_amendments_period", "period_amendments", ["period"], unique=False)
    op.create_table(
        "period_states",
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=8), server_default="open", nullable=False),
        sa.Column("revision", sa.Integer(), server_default="1", nullable=False),
        sa.Column("version", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("period", name=op.f("pk_period_states")),
    )
    op.create_table(
        "ranking_snapshots",
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("etag", sa.String(length=64), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column(
            "computed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_ranking_snapshots")),
    )
    op.create_index("ix_ranking_snapshots_period", "ranking_snapshots", ["period"], unique=False)
    op.create_table(
        "score_dirty_periods",
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column(
            "marked_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("period", name=op.f("pk_score_dirty_periods")),
    )
    op.create_table(
        "score_snapshots",
        sa.Column("unit_code", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("catalog_version", sa.String(length=64), nullable=False),
        sa.Column("total", sa.Numeric(precision=6, scale=2), nullable=True),
        sa.Column("grade", sa.String(length=32), nullable=True),
        sa.Column("completeness", sa.Numeric(precision=5, scale=4), nullable=False),
        sa.Column("groups", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("metrics", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("ranked_of", sa.Integer(), nullable=True),
        sa.Column(
            "computed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["unit_code"],
            ["units.code"],
            name=op.f("fk_score_snapshots_unit_code_units"),
            onupdate="CASCADE",
        ),
        sa.PrimaryKeyConstraint("unit_code", "period", "revision", name=op.f("pk_score_snapshots")),
    )
    op.create_index(
        "ix_score_snapshots_period_revision",
        "score_snapshots",
        ["period", "revision"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_score_snapshots_period_revision", table_name="score_snapshots")
    op.drop_table("score_snapshots")
    op.drop_table("score_dirty_periods")
    op.drop_index("ix_ranking_snapshots_period", table_name="ranking_snapshots")
    op.drop_table("ranking_snapshots")
    op.drop_table("period_states")
    op.drop_index("ix_period_amendments_period", table_name="period_amendments")
    op.drop_table("period_amendments")
