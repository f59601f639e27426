"""Units carry their electronic identifier (mã định danh, Decision 20/2020/QĐ-TTg); portal
records whose unit nothing resolves wait in ``portal_unmapped`` until it is mapped.

- ``units.identifier``: unique, optional, letters, digits and dots (``000.00.12.H01``). The
  unique constraint is checked at the end of each statement (deferrable, initially immediate),
  so one CSV load may swap two units' identifiers.
- ``portal_unmapped``: one row per (MaHoSo, unknown identifier), the record minimised, with who
  posted it (key id, or the name and unit scope of a key-less caller) so that releasing it
  later applies that caller's subtree. Separate from ``portal_quarantine`` (malformed records,
  raw, for a human): these are well-formed records that wait for a mapping and are released
  by the worker, and their counts per identifier are shown to every admin.

Revision ID: 0012_unit_identifiers
Revises: 0011_audit_actor
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012_unit_identifiers"
down_revision: str | None = "0011_audit_actor"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("units", sa.Column("identifier", sa.String(64), nullable=True))
    op.create_unique_constraint(
        op.f("uq_units_identifier"),
        "units",
        ["identifier"],
        deferrable=True,
        initially="IMMEDIATE",
    )
    op.create_check_constraint(
        op.f("ck_units_identifier_format"),
        "units",
        "identifier ~ '^[A-Za-z0-9][A-Za-z0-9.]{0,63}$'",
    )

    op.create_table(
        "portal_unmapped",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("dossier_code", sa.String(128), nullable=False),
        sa.Column("identifier", sa.String(64), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("record", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("madonvi", sa.Text(), nullable=True),
        sa.Column("is_updating", sa.Boolean(), nullable=True),
        sa.Column("key_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("posted_by", sa.Text(), nullable=False),
        sa.Column("posted_within", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
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
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_portal_unmapped_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_unmapped")),
        sa.UniqueConstraint(
            "dossier_code",
            "identifier",
            name=op.f("uq_portal_unmapped_dossier_code_identifier"),
        ),
    )
    op.create_index("ix_portal_unmapped_identifier_id", "portal_unmapped", ["identifier", "id"])


def downgrade() -> None:
    op.drop_index("ix_portal_unmapped_identifier_id", table_name="portal_unmapped")
    op.drop_table("portal_unmapped")
    op.drop_constraint(op.f("ck_units_identifier_format"), "units", type_="check")
    op.drop_constraint(op.f("uq_units_identifier"), "units", type_="unique")
    op.drop_column("units", "identifier")
