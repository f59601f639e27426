"""Keep on each dossier the index facts its record-based counts read (``record_facts``).

The record-based indicators (1.4, 3.3, 3.6, 4.1–4.5) count the month's dossiers by conditions
on their facts (``dossier_facts``: papers, fees, results, payment, connected databases). Read
by a join, every refresh hashed the whole facts table — every month's, not just the one
counted — which cost twice the pass over the month's dossiers itself and grows with the
history. Each dossier's derived state now carries what those conditions need as one
``smallint`` of flags, computed by ``chiso_record_facts`` (one definition, in the database):

- the derivation writes them with the rest of the state, from the facts kept;
- a statement writing or deleting facts (a portal record, a desk's event, an operator's
  ``UPDATE``) queues the dossiers it touches for derivation (``dossier_backlog``), as a new
  event does: their flags follow, and the periods they count in are rescored.

NULL flags: no facts were kept for the dossier (as the join gave NULL facts).

Bits: 1 a result with a file; 2 every fee stated as 0; 4 a payment code stated; 8 paid
online (code 1 or 2); 16 "has digitised parts" stated; 32 … as true; 64 a digitised paper;
128 a paper with a file; 256 a paper from the national store; 512 data from the population
database (VNeID, a paper from the store, or MaCSDL 1 / CSDLQGDC among the databases).

Revision ID: 0022_dossier_record_facts
Revises: 0021_snapshot_metrics_json
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022_dossier_record_facts"
down_revision: str | None = "0021_snapshot_metrics_json"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FLAGS = """
    CREATE FUNCTION chiso_record_facts(f dossier_facts) RETURNS smallint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CAST(
              CASE WHEN coalesce(f.results_with_file, 0) > 0 THEN 1 ELSE 0 END
            | CASE WHEN f.fees_all_zero THEN 2 ELSE 0 END
            | CASE WHEN f.payment_code IS NOT NULL THEN 4 ELSE 0 END
            | CASE WHEN f.payment_code IN ('1', '2') THEN 8 ELSE 0 END
            | CASE WHEN f.has_digitised_parts IS NOT NULL THEN 16 ELSE 0 END
            | CASE WHEN f.has_digitised_parts THEN 32 ELSE 0 END
            | CASE WHEN coalesce(f.papers_digitised, 0) > 0 THEN 64 ELSE 0 END
            | CASE WHEN coalesce(f.papers_with_file, 0) > 0 THEN 128 ELSE 0 END
            | CASE WHEN coalesce(f.papers_from_national_store, 0) > 0 THEN 256 ELSE 0 END
            | CASE WHEN f.vneid_verified
                        OR coalesce(f.papers_from_national_store, 0) > 0
                        OR coalesce(f.databases && ARRAY['1', 'CSDLQGDC'], false)
                   THEN 512 ELSE 0 END
        AS smallint)
    $$
"""

# DO NOTHING waits for a worker's claim on the row (its uncommitted delete) to end, then queues
# the dossier again: the facts never land behind a derivation that could not see them. A row
# the same transaction queued (the events' own) is left as it is: no second row version.
_QUEUE = """
    CREATE FUNCTION chiso_facts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            INSERT INTO dossier_backlog (dossier_code)
            SELECT dossier_code FROM gone ORDER BY dossier_code
            ON CONFLICT (dossier_code) DO NOTHING;
        ELSE
            INSERT INTO dossier_backlog (dossier_code)
            SELECT dossier_code FROM stated ORDER BY dossier_code
            ON CONFLICT (dossier_code) DO NOTHING;
        END IF;
        RETURN NULL;
    END
    $$
"""


def upgrade() -> None:
    op.execute("ALTER TABLE dossiers ADD COLUMN record_facts smallint")
    op.execute(_FLAGS)
    op.execute(
        "UPDATE dossiers d SET record_facts = chiso_record_facts(f) "
        "FROM dossier_facts f WHERE f.dossier_code = d.code"
    )
    op.execute(_QUEUE)
    op.execute(
        "CREATE TRIGGER dossier_facts_inserted AFTER INSERT ON dossier_facts "
        "REFERENCING NEW TABLE AS stated "
        "FOR EACH STATEMENT EXECUTE FUNCTION chiso_facts_changed()"
    )
    op.execute(
        "CREATE TRIGGER dossier_facts_updated AFTER UPDATE ON dossier_facts "
        "REFERENCING NEW TABLE AS stated "
        "FOR EACH STATEMENT EXECUTE FUNCTION chiso_facts_changed()"
    )
    op.execute(
        "CREATE TRIGGER dossier_facts_deleted AFTER DELETE ON dossier_facts "
        "REFERENCING OLD TABLE AS gone "
        "FOR EACH STATEMENT EXECUTE FUNCTION chiso_facts_changed()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER dossier_facts_deleted ON dossier_facts")
    op.execute("DROP TRIGGER dossier_facts_updated ON dossier_facts")
    op.execute("DROP TRIGGER dossier_facts_inserted ON dossier_facts")
    op.execute("DROP FUNCTION chiso_facts_changed()")
    op.execute("DROP FUNCTION chiso_record_facts(dossier_facts)")
    op.execute("ALTER TABLE dossiers DROP COLUMN record_facts")
