"""Events whose time chiso had to infer (a portal record with a terminal status and no end
date) say so; such a time is fixed at first arrival: a re-sent record does not move it.

Revision ID: 0016_inferred_times
Revises: 0015_portal_sessions
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_inferred_times"
down_revision: str | None = "0015_portal_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "dossier_events",
        sa.Column("time_inferred", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("dossier_events", "time_inferred")
