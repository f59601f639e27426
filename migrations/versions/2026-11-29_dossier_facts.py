"""The facts of a dossier that feed the index, kept from portal records (no personal data).

Revision ID: 0014_dossier_facts
Revises: 0013_learned_procedures
Create Date: 2026-11-29
"""

from collections.abc import Sequence

revision: str = "0014_dossier_facts"
down_revision: str | None = "0013_learned_procedures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
