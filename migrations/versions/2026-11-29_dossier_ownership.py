"""Every dossier has one owner; event ids are unique per dossier; states say what they cover.

- ``dossier_owners``: the unit a dossier belongs to, fixed when it is first seen (from its
  derived state, else its earliest event), and the key that created it. Writes and reads of a
  dossier are checked against it, whatever unit an event names.
- ``dossier_events.event_id`` is unique per dossier (it was global: one unit's id silently
  swallowed another's event); each event records the key that posted it.
- ``dossiers.derived_through``: the newest event id the derived state covers, so a periodic
  check finds any dossier whose state lags its history (``derivation_checks`` keeps its
  watermark).

Revision ID: 0010_dossier_ownership
Revises: 0009_dossier_backlog
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010_dossier_ownership"
down_revision: str | None = "0009_dossier_backlog"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dossier_owners",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("unit_code", sa.String(length=64), nullable=False),
        sa.Column("key_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_dossier_owners")),
    )
    # Owners of existing dossiers: their derived unit, else their earliest event's.
    op.execute(
        """
        INSERT INTO dossier_owners (code, unit_code)
        SELECT code, unit_code FROM dossiers
        ON CONFLICT (code) DO NOTHING
        """
    )
    op.execute(
        """
        INSERT INTO dossier_owners (code, unit_code)
        SELECT DISTINCT ON (dossier_code) dossier_code, unit_code FROM dossier_events
        ORDER BY dossier_code, occurred_at, id
        ON CONFLICT (code) DO NOTHING
        """
    )

    op.add_column(
        "dossier_events", sa.Column("key_id", postgresql.UUID(as_uuid=True), nullable=True)
    )
    op.drop_constraint("uq_dossier_events_event_id", "dossier_events", type_="unique")
    op.create_unique_constraint(
        op.f("uq_dossier_events_dossier_code_event_id"),
        "dossier_events",
        ["dossier_code", "event_id"],
    )

    op.add_column("dossiers", sa.Column("derived_through", sa.BigInteger(), nullable=True))
    op.execute(
        """
        UPDATE dossiers d SET derived_through = e.last_id
        FROM (SELECT dossier_code, max(id) AS last_id FROM dossier_events GROUP BY dossier_code) e
        WHERE e.dossier_code = d.code
        """
    )

    op.create_table(
        "derivation_checks",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("checked_through", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("requeued", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_derivation_checks")),
    )


def downgrade() -> None:
    op.drop_table("derivation_checks")
    op.drop_column("dossiers", "derived_through")
    op.drop_constraint(
        op.f("uq_dossier_events_dossier_code_event_id"), "dossier_events", type_="unique"
    )
    # Ids that now repeat across dossiers cannot be globally unique again: keep the first.
    op.execute(
        """
        DELETE FROM dossier_events e USING dossier_events f
        WHERE e.event_id = f.event_id AND e.id > f.id
        """
    )
    op.create_unique_constraint("uq_dossier_events_event_id", "dossier_events", ["event_id"])
    op.drop_column("dossier_events", "key_id")
    op.drop_table("dossier_owners")
