"""Whether a submitted indicator value was made with the admin scope: for a metric the records
feed, only such a submission (the provincial office entering the portal's own figure) overrides
the computed value; a unit's own is kept and shown but does not score.

Revision ID: 0018_indicator_admin_scope
Revises: 0017_procedure_index_facts
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_indicator_admin_scope"
down_revision: str | None = "0017_procedure_index_facts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "indicator_values",
        sa.Column("admin_scope", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("indicator_values", "admin_scope")
