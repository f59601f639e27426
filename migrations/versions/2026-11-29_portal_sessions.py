"""Sessions of the national portal's protocol (login, then service calls).

A one-stop system logs in with an API key as its password and then names the session in every
call. Only a SHA-256 digest of the session's token is kept, with the key it stands for (a
session dies with its key: every use joins ``api_keys`` and refuses a revoked one), the
username the system logged in with, and when it expires.

Revision ID: 0015_portal_sessions
Revises: 0014_dossier_facts
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015_portal_sessions"
down_revision: str | None = "0014_dossier_facts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "portal_sessions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("key_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_sessions")),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["api_keys.id"],
            name=op.f("fk_portal_sessions_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("token_hash", name=op.f("uq_portal_sessions_token_hash")),
        sa.CheckConstraint(
            "expires_at > created_at", name=op.f("ck_portal_sessions_expires_after_creation")
        ),
    )
    # A login sweeps its key's expired sessions.
    op.create_index(
        "ix_portal_sessions_key_id_expires_at", "portal_sessions", ["key_id", "expires_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_portal_sessions_key_id_expires_at", table_name="portal_sessions")
    op.drop_table("portal_sessions")
