"""Keep a score snapshot's metrics as ``json`` text, compressed with LZ4 where available.

A refresh writes every unit's snapshot at once (national scale: every commune, department and
province, about 7,400 rows a month). Each one's metrics are a few kilobytes of JSON that
only ever travel whole: written by the scoring statement, read back as they are. As ``jsonb``
PostgreSQL parsed every one into its binary form and compressed it with ``pglz``, which cost
more than computing the scores. As ``json`` the text is checked and kept; LZ4 compresses it
several times faster than ``pglz``. A server built without LZ4 keeps its default (``pglz``).

Revision ID: 0021_snapshot_metrics_json
Revises: 0020_key_change_notices
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021_snapshot_metrics_json"
down_revision: str | None = "0020_key_change_notices"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LZ4 = """
    DO $$
    BEGIN
        IF EXISTS (SELECT FROM pg_settings
                   WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)) THEN
            ALTER TABLE score_snapshots ALTER COLUMN metrics SET COMPRESSION {method};
        END IF;
    END
    $$
"""


def upgrade() -> None:
    op.execute("ALTER TABLE score_snapshots ALTER COLUMN metrics TYPE json USING metrics::json")
    op.execute(_LZ4.format(method="lz4"))


def downgrade() -> None:
    op.execute(_LZ4.format(method="pglz"))
    op.execute("ALTER TABLE score_snapshots ALTER COLUMN metrics TYPE jsonb USING metrics::jsonb")
