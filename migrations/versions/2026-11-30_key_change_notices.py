"""Announce every change to an API key on the ``chiso_keys`` channel.

Each API process keeps the keys it resolved in memory (``app.core.auth.KeyCache``) and listens
on ``chiso_keys`` to forget a key the moment it changes. The announcement is made by the
database itself, so it holds for every way a key can change — a revocation through the API
or ``chiso keys revoke``, an operator's own ``UPDATE`` or ``DELETE`` in psql, a cascade — and,
like any ``NOTIFY``, it is sent when the changing transaction commits, never before. The
payload is the key's id; ``*`` (after a ``TRUNCATE``) means every key.

Revision ID: 0020_key_change_notices
Revises: 0019_dossier_writes
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020_key_change_notices"
down_revision: str | None = "0019_dossier_writes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION chiso_key_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'TRUNCATE' THEN
                PERFORM pg_notify('chiso_keys', '*');
            ELSE
                PERFORM pg_notify('chiso_keys', OLD.id::text);
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER api_keys_changed AFTER UPDATE OR DELETE ON api_keys "
        "FOR EACH ROW EXECUTE FUNCTION chiso_key_changed()"
    )
    op.execute(
        "CREATE TRIGGER api_keys_truncated AFTER TRUNCATE ON api_keys "
        "FOR EACH STATEMENT EXECUTE FUNCTION chiso_key_changed()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER api_keys_truncated ON api_keys")
    op.execute("DROP TRIGGER api_keys_changed ON api_keys")
    op.execute("DROP FUNCTION chiso_key_changed()")
