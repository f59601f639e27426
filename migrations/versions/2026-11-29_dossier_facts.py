"""The facts of a dossier that feed the index, kept from portal records (no personal data).

Revision ID: 0014_dossier_facts
Revises: 0013_learned_procedures
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014_dossier_facts"
down_revision: str | None = "0013_learned_procedures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # One row per dossier, the latest record's facts (NULL: no record said). No foreign key to
    # dossier_owners: facts arrive in the same transaction as the events, keyed by the code.
    op.create_table(
        "dossier_facts",
        sa.Column("dossier_code", sa.String(length=64), nullable=False),
        sa.Column("papers_total", sa.Integer(), nullable=True),
        sa.Column("papers_with_file", sa.Integer(), nullable=True),
        sa.Column("papers_digitised", sa.Integer(), nullable=True),
        sa.Column("papers_reused", sa.Integer(), nullable=True),
        sa.Column("papers_from_national_store", sa.Integer(), nullable=True),
        sa.Column("fees_count", sa.Integer(), nullable=True),
        sa.Column("fees_total", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("fees_all_zero", sa.Boolean(), nullable=True),
        sa.Column("results_total", sa.Integer(), nullable=True),
        sa.Column("results_with_file", sa.Integer(), nullable=True),
        sa.Column("databases", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("vneid_verified", sa.Boolean(), nullable=True),
        sa.Column("has_digitised_parts", sa.Boolean(), nullable=True),
        sa.Column("submitted_where", sa.String(length=255), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("payment_code", sa.String(length=64), nullable=True),
        sa.Column("result_return", sa.String(length=64), nullable=True),
        sa.Column("applicant_kind", sa.SmallInteger(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("dossier_code", name=op.f("pk_dossier_facts")),
    )


def downgrade() -> None:
    op.drop_table("dossier_facts")
