"""A dossier whose receipt time chiso placed itself is not counted: derive those again.

A portal record without NgayTiepNhan has its receipt placed by chiso (at NgayNopHoSo, else at
the record's arrival; the event is marked ``time_inferred``). The portal counts no record
without NgayTiepNhan, in any indicator; chiso counted such a dossier in the month the record
arrived. The derivation now leaves it out (``counted`` false), and this queues every dossier
with an inferred time for the worker to derive again: its state, and the counts the database
keeps from it (migrations 0023, 0024), follow.

Revision ID: 0025_inferred_receipts
Revises: 0024_on_time_steps
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0025_inferred_receipts"
down_revision: str | None = "0024_on_time_steps"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "INSERT INTO dossier_backlog (dossier_code) "
        "SELECT DISTINCT dossier_code FROM dossier_events WHERE time_inferred "
        "ORDER BY dossier_code ON CONFLICT (dossier_code) DO NOTHING"
    )


def downgrade() -> None:
    """Nothing to undo: the states are derived again by whichever code runs."""
