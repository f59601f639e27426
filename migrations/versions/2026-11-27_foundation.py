"""Foundation: units, procedures, API keys.

Revision ID: 0001_foundation
Revises:
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_foundation"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "units",
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("parent_code", sa.String(64), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("successor_code", sa.String(64), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_units")),
        sa.ForeignKeyConstraint(
            ["parent_code"],
            ["units.code"],
            onupdate="CASCADE",
            name=op.f("fk_units_parent_code_units"),
        ),
        sa.ForeignKeyConstraint(
            ["successor_code"],
            ["units.code"],
            onupdate="CASCADE",
            name=op.f("fk_units_successor_code_units"),
        ),
        sa.CheckConstraint(
            "level IN ('ministry','province','department','district','commune','desk')",
            name=op.f("ck_units_level_known"),
        ),
        sa.CheckConstraint(
            "valid_to IS NULL OR valid_from IS NULL OR valid_to >= valid_from",
            name=op.f("ck_units_validity_ordered"),
        ),
        sa.CheckConstraint(
            "parent_code IS NULL OR parent_code <> code", name=op.f("ck_units_not_own_parent")
        ),
    )
    op.create_index("ix_units_parent_code_code", "units", ["parent_code", "code"])
    op.create_index("ix_units_level_code", "units", ["level", "code"])

    op.create_table(
        "procedures",
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("field_code", sa.String(64), nullable=True),
        sa.Column("limit_value", sa.Numeric(8, 2), nullable=False),
        sa.Column("limit_unit", sa.String(16), nullable=False),
        sa.Column("has_fees", sa.Boolean(), nullable=False),
        sa.Column("full_online", sa.Boolean(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_procedures")),
        sa.CheckConstraint("limit_value > 0", name=op.f("ck_procedures_limit_positive")),
        sa.CheckConstraint(
            "limit_unit IN ('working_days','working_hours','calendar_days','months')",
            name=op.f("ck_procedures_limit_unit_known"),
        ),
    )
    op.create_index("ix_procedures_field_code_code", "procedures", ["field_code", "code"])

    op.create_table(
        "api_keys",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("unit_code", sa.String(64), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
        sa.ForeignKeyConstraint(
            ["unit_code"],
            ["units.code"],
            onupdate="CASCADE",
            name=op.f("fk_api_keys_unit_code_units"),
        ),
    )


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_index("ix_procedures_field_code_code", table_name="procedures")
    op.drop_table("procedures")
    op.drop_index("ix_units_level_code", table_name="units")
    op.drop_index("ix_units_parent_code_code", table_name="units")
    op.drop_table("units")
