"""Ingestion stores events and queues their dossiers; the worker derives state from the queue.

The history's foreign keys go: the ingest statement itself checks every event's unit and
procedure (and answers per item), units and procedures are never deleted or renamed, and the
checks cost a third of each insert.

Revision ID: 0009_dossier_backlog
Revises: 0008_audit
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_dossier_backlog"
down_revision: str | None = "0008_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dossier_backlog",
        sa.Column("dossier_code", sa.String(length=64), nullable=False),
        sa.Column(
            "queued_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("dossier_code", name=op.f("pk_dossier_backlog")),
    )
    op.create_index(op.f("ix_dossier_backlog_queued_at"), "dossier_backlog", ["queued_at"])
    op.drop_constraint(
        "fk_dossier_events_procedure_code_procedures", "dossier_events", type_="foreignkey"
    )
    op.drop_constraint("fk_dossier_events_unit_code_units", "dossier_events", type_="foreignkey")


def downgrade() -> None:
    # Events queued but not derived yet are derived at once by the old synchronous path's
    # first write to each dossier; nothing is lost by dropping the queue.
    op.create_foreign_key(
        "fk_dossier_events_unit_code_units", "dossier_events", "units",
        ["unit_code"], ["code"], onupdate="CASCADE",
    )  # fmt: skip
    op.create_foreign_key(
        "fk_dossier_events_procedure_code_procedures", "dossier_events", "procedures",
        ["procedure_code"], ["code"], onupdate="CASCADE",
    )  # fmt: skip
    op.drop_index(op.f("ix_dossier_backlog_queued_at"), table_name="dossier_backlog")
    op.drop_table("dossier_backlog")
