"""Dossier timelines: events, derived dossier state, operator calendar overrides, job outbox.

Revision ID: 0002_dossiers
Revises: 0001_foundation
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_dossiers"
down_revision: str | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calendar_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('workday','holiday')", name=op.f("ck_calendar_days_kind_known")
        ),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_calendar_days")),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("function", sa.String(length=100), nullable=False),
        sa.Column("args", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_table(
        "dossier_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("dossier_code", sa.String(length=64), nullable=False),
        sa.Column("unit_code", sa.String(length=64), nullable=False),
        sa.Column("procedure_code", sa.String(length=64), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.SmallInteger(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("supplement_supplied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("supplement_new_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fee_paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("apology_issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("apology_new_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("applicant_kind", sa.SmallInteger(), nullable=True),
        sa.Column("paid_online", sa.Boolean(), nullable=True),
        sa.Column("has_digitized_parts", sa.Boolean(), nullable=True),
        sa.Column("source", sa.String(length=16), server_default="api", nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("channel BETWEEN 1 AND 3", name=op.f("ck_dossier_events_channel_known")),
        sa.CheckConstraint("status BETWEEN 1 AND 10", name=op.f("ck_dossier_events_status_known")),
        sa.ForeignKeyConstraint(
            ["procedure_code"],
            ["procedures.code"],
            name=op.f("fk_dossier_events_procedure_code_procedures"),
            onupdate="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["unit_code"],
            ["units.code"],
            name=op.f("fk_dossier_events_unit_code_units"),
            onupdate="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dossier_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_dossier_events_event_id")),
    )
    op.create_index(
        "ix_dossier_events_dossier_code_occurred_at",
        "dossier_events",
        ["dossier_code", "occurred_at"],
        unique=False,
    )
    op.create_table(
        "dossiers",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("unit_code", sa.String(length=64), nullable=False),
        sa.Column("procedure_code", sa.String(length=64), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("channel", sa.SmallInteger(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("base_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_status", sa.SmallInteger(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("counted", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("clock_stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("supplement_requests", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("paused_seconds", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "pauses",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("apology_issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("apology_new_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "anomalies",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("applicant_kind", sa.SmallInteger(), nullable=True),
        sa.Column("paid_online", sa.Boolean(), nullable=True),
        sa.Column("has_digitized_parts", sa.Boolean(), nullable=True),
        sa.Column("first_event_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["procedure_code"],
            ["procedures.code"],
            name=op.f("fk_dossiers_procedure_code_procedures"),
            onupdate="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["unit_code"],
            ["units.code"],
            name=op.f("fk_dossiers_unit_code_units"),
            onupdate="CASCADE",
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_dossiers")),
    )
    op.create_index(
        "ix_dossiers_open_unit_code_due_at",
        "dossiers",
        ["unit_code", "due_at"],
        unique=False,
        postgresql_where=sa.text("end_at IS NULL AND counted"),
    )
    op.create_index("ix_dossiers_unit_code_code", "dossiers", ["unit_code", "code"], unique=False)
    op.create_index(
        "ix_dossiers_unit_code_end_at", "dossiers", ["unit_code", "end_at"], unique=False
    )
    op.create_index(
        "ix_dossiers_unit_code_received_at", "dossiers", ["unit_code", "received_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_dossiers_unit_code_received_at", table_name="dossiers")
    op.drop_index("ix_dossiers_unit_code_end_at", table_name="dossiers")
    op.drop_index("ix_dossiers_unit_code_code", table_name="dossiers")
    op.drop_index(
        "ix_dossiers_open_unit_code_due_at",
        table_name="dossiers",
        postgresql_where=sa.text("end_at IS NULL AND counted"),
    )
    op.drop_table("dossiers")
    op.drop_index("ix_dossier_events_dossier_code_occurred_at", table_name="dossier_events")
    op.drop_table("dossier_events")
    op.drop_table("outbox")
    op.drop_table("calendar_days")
