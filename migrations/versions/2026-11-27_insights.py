"""Insights: integrity flags, month-end projections, and procedures' ``online_allowed``.

Revision ID: 0007_insights
Revises: 0006_scores
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_insights"
down_revision: str | None = "0006_scores"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL = not stated; false = the procedure is served in person only (an online dossier for
    # it is an integrity flag); true = online submission allowed.
    op.add_column("procedures", sa.Column("online_allowed", sa.Boolean(), nullable=True))
    # The late-events rule reads events recorded since a period began; recorded_at follows
    # insertion order, so a BRIN index prunes almost everything at a tiny write cost.
    op.create_index(
        "ix_dossier_events_recorded_at_brin",
        "dossier_events",
        ["recorded_at"],
        unique=False,
        postgresql_using="brin",
    )
    op.create_table(
        "integrity_flags",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("unit_code", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("rule", sa.String(length=48), nullable=False),
        sa.Column("status", sa.String(length=8), server_default="open", nullable=False),
        sa.Column("dossier_codes", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("evidence", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "first_flagged_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "computed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.Text(), nullable=True),
        sa.Column("resolution_note", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('open','resolved')", name=op.f("ck_integrity_flags_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["unit_code"],
            ["units.code"],
            name=op.f("fk_integrity_flags_unit_code_units"),
            onupdate="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integrity_flags")),
        sa.UniqueConstraint(
            "unit_code", "period", "rule", name=op.f("uq_integrity_flags_unit_code_period_rule")
        ),
    )
    op.create_index(
        "ix_integrity_flags_period_status", "integrity_flags", ["period", "status"], unique=False
    )
    op.create_table(
        "score_projections",
        sa.Column("unit_code", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("made_on", sa.Date(), nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("catalog_version", sa.String(length=64), nullable=False),
        sa.Column("on_time", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("tdgq", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("total", sa.Numeric(precision=6, scale=2), nullable=True),
        sa.Column("total_low", sa.Numeric(precision=6, scale=2), nullable=True),
        sa.Column("total_high", sa.Numeric(precision=6, scale=2), nullable=True),
        sa.Column("grade", sa.String(length=32), nullable=True),
        sa.Column("completeness", sa.Numeric(precision=5, scale=4), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("rank_best", sa.Integer(), nullable=True),
        sa.Column("rank_worst", sa.Integer(), nullable=True),
        sa.Column("ranked_of", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["unit_code"],
            ["units.code"],
            name=op.f("fk_score_projections_unit_code_units"),
            onupdate="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "unit_code", "period", "made_on", name=op.f("pk_score_projections")
        ),
    )
    op.create_index(
        "ix_score_projections_period_made_on",
        "score_projections",
        ["period", "made_on"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_score_projections_period_made_on", table_name="score_projections")
    op.drop_table("score_projections")
    op.drop_index("ix_integrity_flags_period_status", table_name="integrity_flags")
    op.drop_table("integrity_flags")
    op.drop_index("ix_dossier_events_recorded_at_brin", table_name="dossier_events")
    op.drop_column("procedures", "online_allowed")
