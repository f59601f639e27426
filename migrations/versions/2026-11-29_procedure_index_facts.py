"""Two facts about a procedure that the record-based indicators need (docs/INDEX.md): whether it
must return a paper result (3.3, 4.1, 4.2 then ask for an electronic result) and whether its
applicants are citizens (4.5's procedures). Both default to true, the common case; an operator
states otherwise per procedure.

Revision ID: 0017_procedure_index_facts
Revises: 0016_inferred_times
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_procedure_index_facts"
down_revision: str | None = "0016_inferred_times"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "procedures",
        sa.Column("paper_result", sa.Boolean(), server_default=sa.text("true"), nullable=False),
    )
    op.add_column(
        "procedures",
        sa.Column("for_citizens", sa.Boolean(), server_default=sa.text("true"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("procedures", "for_citizens")
    op.drop_column("procedures", "paper_result")
