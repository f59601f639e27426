"""Derived states are written for less: room on each page for updates that touch no indexed
column (HOT), and no foreign keys on ``dossiers``.

A derivation rewrites a dossier's row; when none of its indexed columns changed and its page
has room, PostgreSQL keeps the new version on the same page and writes none of the seven
indexes. A fill factor of 85 leaves that room on the pages written from now on (existing pages
keep theirs until the table is rewritten).

The foreign keys to ``units`` and ``procedures`` go, as the event history's did (0009): a
state's unit is its dossier's owner and its procedure one of its events', both checked by the
ingest statement before any event is stored; units and procedures are never deleted or
renamed (a commune that closes keeps its row, with ``valid_to``). Each check cost a lookup and
a row lock on ``units`` / ``procedures`` per derived dossier.

Revision ID: 0019_dossier_writes
Revises: 0018_indicator_admin_scope
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019_dossier_writes"
down_revision: str | None = "0018_indicator_admin_scope"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("fk_dossiers_unit_code_units", "dossiers", type_="foreignkey")
    op.drop_constraint("fk_dossiers_procedure_code_procedures", "dossiers", type_="foreignkey")
    op.execute("ALTER TABLE dossiers SET (fillfactor = 85)")


def downgrade() -> None:
    op.execute("ALTER TABLE dossiers RESET (fillfactor)")
    op.create_foreign_key(
        "fk_dossiers_procedure_code_procedures", "dossiers", "procedures",
        ["procedure_code"], ["code"], onupdate="CASCADE",
    )  # fmt: skip
    op.create_foreign_key(
        "fk_dossiers_unit_code_units", "dossiers", "units",
        ["unit_code"], ["code"], onupdate="CASCADE",
    )  # fmt: skip
