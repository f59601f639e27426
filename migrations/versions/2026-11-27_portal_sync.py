"""Portal sync: sources' cursors, quarantine, official results; the sweep's dossier marks.

Revision ID: 0005_portal_sync
Revises: 0004_webhooks
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_portal_sync"
down_revision: str | None = "0004_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "portal_sync_state",
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("records_synced", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("pages_synced", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_portal_sync_state")),
    )
    op.create_table(
        "portal_quarantine",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("record_hash", sa.String(64), nullable=False),
        sa.Column("dossier_code", sa.String(128), nullable=True),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("errors", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "first_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "last_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("times_seen", sa.Integer(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_quarantine")),
        sa.UniqueConstraint(
            "source", "record_hash", name=op.f("uq_portal_quarantine_source_record_hash")
        ),
    )
    op.create_table(
        "official_scores",
        sa.Column("unit_code", sa.String(64), nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("time_type", sa.String(8), nullable=False),
        sa.Column("total", sa.Numeric(6, 2), nullable=False),
        sa.Column("score_delta", sa.Numeric(6, 2), nullable=True),
        sa.Column("group_scores", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column(
            "fetched_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["unit_code"],
            ["units.code"],
            onupdate="CASCADE",
            name=op.f("fk_official_scores_unit_code_units"),
        ),
        sa.PrimaryKeyConstraint("unit_code", "period", name=op.f("pk_official_scores")),
    )
    op.add_column("dossiers", sa.Column("overdue_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("dossiers", sa.Column("overdue_since", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "dossiers", sa.Column("due_soon_since", sa.DateTime(timezone=True), nullable=True)
    )
    # Open dossiers already stored get their overdue instant from their deadline; the
    # supplement rule is applied the next time each is re-derived.
    op.execute(
        "UPDATE dossiers SET overdue_at = due_at WHERE end_at IS NULL AND counted "
        "AND due_at IS NOT NULL AND (clock_stopped_at IS NULL OR clock_stopped_at > due_at)"
    )
    op.create_index(
        "ix_dossiers_sweep_overdue_at",
        "dossiers",
        ["overdue_at"],
        postgresql_where=sa.text("end_at IS NULL AND overdue_since IS NULL"),
    )
    op.create_index(
        "ix_dossiers_sweep_due_at",
        "dossiers",
        ["due_at"],
        postgresql_where=sa.text("end_at IS NULL AND due_soon_since IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_dossiers_sweep_due_at", table_name="dossiers")
    op.drop_index("ix_dossiers_sweep_overdue_at", table_name="dossiers")
    op.drop_column("dossiers", "due_soon_since")
    op.drop_column("dossiers", "overdue_since")
    op.drop_column("dossiers", "overdue_at")
    op.drop_table("official_scores")
    op.drop_table("portal_quarantine")
    op.drop_table("portal_sync_state")
