"""Service index: indicator catalog versions, submissions, scores, rankings.

The catalog itself is data shipped with the code (app/indicators/catalog/*.yaml); this revision
creates the submitted indicator values, one row per revision.

Revision ID: 0003_service_index
Revises: 0002_dossiers
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_service_index"
down_revision: str | None = "0002_dossiers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "indicator_values",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("unit_code", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("period_kind", sa.String(length=8), nullable=False),
        sa.Column("metric_code", sa.String(length=64), nullable=False),
        sa.Column("numerator", sa.BigInteger(), nullable=False),
        sa.Column("denominator", sa.BigInteger(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("submitted_by", sa.Text(), nullable=False),
        sa.Column(
            "submitted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("key_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.CheckConstraint(
            "numerator >= 0", name=op.f("ck_indicator_values_numerator_not_negative")
        ),
        sa.CheckConstraint(
            "denominator >= 0", name=op.f("ck_indicator_values_denominator_not_negative")
        ),
        sa.CheckConstraint("revision >= 1", name=op.f("ck_indicator_values_revision_positive")),
        sa.CheckConstraint(
            "CASE period_kind"
            " WHEN 'month' THEN period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'"
            " WHEN 'quarter' THEN period ~ '^[0-9]{4}-Q[1-4]$'"
            " WHEN 'year' THEN period ~ '^[0-9]{4}$'"
            " ELSE false END",
            name=op.f("ck_indicator_values_period_matches_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_indicator_values_key_id_api_keys")
        ),
        sa.ForeignKeyConstraint(
            ["unit_code"],
            ["units.code"],
            name=op.f("fk_indicator_values_unit_code_units"),
            onupdate="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_indicator_values")),
    )
    # Uniqueness and the "latest revision per unit, period and metric" lookup in one index.
    op.create_index(
        "uq_indicator_values_unit_code_period_metric_code_revision",
        "indicator_values",
        ["unit_code", "period", "metric_code", sa.text("revision DESC")],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index(
        "uq_indicator_values_unit_code_period_metric_code_revision", table_name="indicator_values"
    )
    op.drop_table("indicator_values")
