"""Procedures learned from portal records (unverified until an operator sets their limits).

A record may name a procedure chiso's catalog lacks; ingestion learns it (name and field as the
record gives them) instead of refusing the record. Such a procedure has no limit until an
operator vouches for it, so its dossiers' deadline is the appointment the record carries.

Revision ID: 0013_learned_procedures
Revises: 0012_unit_identifiers
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_learned_procedures"
down_revision: str | None = "0012_unit_identifiers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "procedures",
        sa.Column("verified", sa.Boolean(), server_default=sa.true(), nullable=False),
    )
    op.add_column("procedures", sa.Column("learned_at", sa.DateTime(timezone=True)))
    op.add_column("procedures", sa.Column("field_name", sa.Text()))
    op.alter_column("procedures", "limit_value", existing_type=sa.Numeric(8, 2), nullable=True)
    op.alter_column("procedures", "limit_unit", existing_type=sa.String(16), nullable=True)
    # Only a learned procedure may lack a limit, and a limit is a value with its unit.
    op.create_check_constraint(
        op.f("ck_procedures_limit_stated"),
        "procedures",
        "verified = false OR limit_value IS NOT NULL",
    )
    op.create_check_constraint(
        op.f("ck_procedures_limit_complete"),
        "procedures",
        "(limit_value IS NULL) = (limit_unit IS NULL)",
    )
    # Operators list the (few) procedures waiting for their limits.
    op.create_index(
        "ix_procedures_unverified_code",
        "procedures",
        ["code"],
        postgresql_where=sa.text("NOT verified"),
    )


def downgrade() -> None:
    bind = op.get_bind()
    missing = bind.execute(
        sa.text("SELECT count(*) FROM procedures WHERE limit_value IS NULL")
    ).scalar_one()
    if missing:
        # Dossiers reference these procedures: deleting them is not an option, and a made-up
        # limit would silently change deadlines.
        raise RuntimeError(
            f"{missing} learned procedure(s) have no limit; set their limits "
            "(PUT /v1/procedures/{code}) before downgrading"
        )
    op.drop_index("ix_procedures_unverified_code", table_name="procedures")
    op.drop_constraint(op.f("ck_procedures_limit_complete"), "procedures", type_="check")
    op.drop_constraint(op.f("ck_procedures_limit_stated"), "procedures", type_="check")
    op.alter_column("procedures", "limit_unit", existing_type=sa.String(16), nullable=False)
    op.alter_column("procedures", "limit_value", existing_type=sa.Numeric(8, 2), nullable=False)
    op.drop_column("procedures", "field_name")
    op.drop_column("procedures", "learned_at")
    op.drop_column("procedures", "verified")
