"""The audit log says how its actor authenticated, and which unit each change is about.

- ``actor`` becomes ``actor_name`` beside a new ``actor_kind`` (admin_token, api_key, cli,
  system): a key named "admin" can no longer pass for the admin token, and a key's entries
  always carry its id. Entries written before cannot be told apart: those with a key id are
  ``api_key``, the others ``unrecorded`` (their name is kept as it was written).
- ``unit_code``: the unit a change is about (null: national), so an admin key bound to a unit
  reads the entries of its subtree only. Filled for old entries from what they name: a unit
  upsert's target, a key's unit, an indicator value's unit.

Revision ID: 0011_audit_actor
Revises: 0010_dossier_ownership
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_audit_actor"
down_revision: str | None = "0010_dossier_ownership"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("audit_log", "actor", new_column_name="actor_name")
    op.add_column("audit_log", sa.Column("actor_kind", sa.String(16), nullable=True))
    op.add_column("audit_log", sa.Column("unit_code", sa.String(64), nullable=True))
    op.execute(
        """
        UPDATE audit_log SET
            actor_kind = CASE WHEN actor_key_id IS NULL THEN 'unrecorded' ELSE 'api_key' END,
            unit_code = CASE
                WHEN action = 'unit.upsert' THEN target
                WHEN action LIKE 'api\\_key.%' THEN after ->> 'unit_code'
                WHEN action = 'indicator.revision' THEN split_part(target, ':', 1)
            END
        """
    )
    op.alter_column("audit_log", "actor_kind", nullable=False)
    op.create_check_constraint(
        op.f("ck_audit_log_actor_kind_known"),
        "audit_log",
        "actor_kind IN ('admin_token','api_key','cli','system','unrecorded')",
    )
    op.create_check_constraint(
        op.f("ck_audit_log_key_id_iff_key"),
        "audit_log",
        "(actor_kind = 'api_key') = (actor_key_id IS NOT NULL)",
    )
    op.create_index("ix_audit_log_unit_code_id", "audit_log", ["unit_code", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_unit_code_id", table_name="audit_log")
    op.drop_constraint(op.f("ck_audit_log_key_id_iff_key"), "audit_log", type_="check")
    op.drop_constraint(op.f("ck_audit_log_actor_kind_known"), "audit_log", type_="check")
    # The old single column named the admin token "admin".
    op.execute("UPDATE audit_log SET actor_name = 'admin' WHERE actor_kind = 'admin_token'")
    op.drop_column("audit_log", "unit_code")
    op.drop_column("audit_log", "actor_kind")
    op.alter_column("audit_log", "actor_name", new_column_name="actor")
