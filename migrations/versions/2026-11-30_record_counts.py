"""Keep the record-based counts per unit and month as dossiers are written (``record_counts``).

A refresh counted the record-based indicators (1.4, 3.3, 3.6, 4.1–4.5) with a pass over every
dossier received in its period, ten filtered counts per row: at national scale (3.4 M
dossiers a month) that pass alone cost 1.4 × a plain ``GROUP BY`` over the month, on every
refresh. The counts now follow the writes instead:

- ``dossiers.record_mask``: which of the ten conditions the dossier meets (bit ``i`` for the
  ``i``-th count, in ``RECORD_COUNTS`` order; NULL: it does not count — withdrawn before
  acceptance, no receipt time, or a procedure chiso does not know). ``chiso_record_mask``
  states the rules once, from the dossier's own columns, its facts' flags (0022) and its
  procedure's ``paper_result`` and ``has_fees``; the derivation writes it with the rest of the
  state. A change of facts queues the dossier (0022); a change of either procedure flag queues
  every dossier of the procedure, by a trigger on ``procedures`` (whoever writes it).
- ``record_counts``: rows of signed changes per unit and local month of receipt, appended by a
  statement-level trigger on ``dossiers`` from its transition tables (a new dossier adds, a
  deleted one takes away, an update moves the difference; one row per unit and month a
  statement changes, none when nothing counted changed). Appending never waits on another
  writer's row. ``TRUNCATE dossiers`` empties them. A refresh sums its period's rows and
  compacts them (``chiso_compact_record_counts``).
- ``record_count_zone``: the time zone the months are local to. A refresh under another
  ``CHISO_TIMEZONE`` (or with the row gone) rebuilds the counts from the dossiers
  (``chiso_rebuild_record_counts``), which writers wait for: the trigger reads the zone only
  once it holds its lock on ``record_counts``.

Revision ID: 0023_record_counts
Revises: 0022_dossier_record_facts
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023_record_counts"
down_revision: str | None = "0022_dossier_record_facts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The counts, in bit order (app.scores.models.RECORD_COUNTS names them alike).
COUNTS = (
    "received", "online", "charged", "paid_online", "paper_result", "electronic_result",
    "digitised", "reused", "linked_to_store", "population_data",
)  # fmt: skip
ZONE = "Asia/Ho_Chi_Minh"  # CHISO_TIMEZONE's default; a refresh under another one rebuilds


# Facts flags (0022): 1 a result with a file, 2 every fee 0, 4 a payment code stated, 8 paid
# online, 16 "digitised parts" stated, 32 … true, 64 a digitised paper, 128 a paper with a
# file, 256 a paper from the store, 512 population data.
def _has(flag: int) -> str:
    """SQL: the facts' flag ``flag`` is set (no facts: every flag off)."""
    return f"coalesce(facts, 0) & {flag} <> 0"


_AS_REQUIRED = f"(NOT paper_result OR {_has(1)})"  # an electronic result where a paper is due
_CHARGED = f"has_fees AND NOT {_has(2)}"
_PAID = f"CASE WHEN {_has(4)} THEN {_has(8)} ELSE coalesce(paid_online, false) END"
_REUSED = f"CASE WHEN {_has(16)} THEN {_has(32)} ELSE coalesce(has_digitized_parts, {_has(64)}) END"
_RULES = (  # bit 1 on: received (every other implies it)
    f"channel = 2 AND {_AS_REQUIRED}",
    _CHARGED,
    f"{_CHARGED} AND {_PAID}",
    "paper_result",
    f"paper_result AND {_has(1)}",
    f"{_has(128)} AND {_AS_REQUIRED}",
    _REUSED,
    f"{_has(256)} OR {_has(1)}",
    _has(512),
)
_BITS = "".join(f"| CASE WHEN {rule} THEN {2 << i} ELSE 0 END " for i, rule in enumerate(_RULES))
_MASK = f"""
    CREATE FUNCTION chiso_record_mask(
        counted boolean, received_at timestamptz, channel smallint, paid_online boolean,
        has_digitized_parts boolean, facts smallint, paper_result boolean, has_fees boolean
    ) RETURNS smallint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE WHEN counted AND received_at IS NOT NULL AND paper_result IS NOT NULL
            THEN CAST(1 {_BITS} AS smallint) END
    $$
"""


def _sums(sign: str, mask: str) -> list[str]:
    """The ten counts of rows with ``mask``, each row weighing ``sign``."""
    return [f"sum({sign} * ({mask} >> {bit} & 1))" for bit in range(len(COUNTS))]


def _any_nonzero(sums: list[str]) -> str:
    return " OR ".join(f"{s} <> 0" for s in sums)


_COLUMNS = ", ".join(COUNTS)
# The rows of ``table`` that count, each weighing ``sign``, in their local month of receipt.
_ROWS = (
    "SELECT {sign} AS sign, x.unit_code, x.record_mask AS mask, "
    "CAST(date_trunc('month', x.received_at AT TIME ZONE zone) AS date) AS month "
    "FROM {table} x WHERE x.record_mask IS NOT NULL"
)
_APPEND = (
    f"INSERT INTO record_counts (unit_code, month, {_COLUMNS}) "  # noqa: S608 - constants
    f"SELECT unit_code, month, {', '.join(_sums('sign', 'mask'))} FROM ({{rows}}) c "
    f"GROUP BY unit_code, month HAVING {_any_nonzero(_sums('sign', 'mask'))}"
)
_ADDED = _ROWS.format(sign=1, table="added")
_GONE = _ROWS.format(sign=-1, table="gone")
_CHANGED = f"""
    CREATE FUNCTION chiso_record_counts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        zone text;
    BEGIN
        -- Before the zone is read: a rebuild (EXCLUSIVE) under way is waited for, and one
        -- that starts later waits for this transaction.
        LOCK TABLE record_counts IN ROW EXCLUSIVE MODE;
        SELECT z.timezone INTO zone FROM record_count_zone z;
        IF zone IS NULL THEN  -- no counts kept: the next refresh rebuilds them
            RETURN NULL;
        END IF;
        IF TG_OP = 'INSERT' THEN
            {_APPEND.format(rows=_ADDED)};
        ELSIF TG_OP = 'UPDATE' THEN
            {_APPEND.format(rows=f"{_ADDED} UNION ALL {_GONE}")};
        ELSE
            {_APPEND.format(rows=_GONE)};
        END IF;
        RETURN NULL;
    END
    $$
"""  # noqa: S608 - constants
_REBUILD = f"""
    CREATE FUNCTION chiso_rebuild_record_counts(zone text) RETURNS void
    LANGUAGE plpgsql AS $$
    BEGIN
        LOCK TABLE record_counts IN EXCLUSIVE MODE;
        DELETE FROM record_count_zone;
        INSERT INTO record_count_zone (timezone) VALUES (zone);
        DELETE FROM record_counts;
        INSERT INTO record_counts (unit_code, month, {_COLUMNS})
        SELECT unit_code, month, {", ".join(_sums("1", "mask"))}
        FROM ({_ROWS.format(sign=1, table="dossiers")}) c
        GROUP BY unit_code, month;
    END
    $$
"""  # noqa: S608 - constants
# One row per unit and month for the months [from_month, to_month] (their rows' sums; none
# where they sum to nothing). Rows appended meanwhile are not in the statement's snapshot: kept.
_TOTALS = [f"sum({name})" for name in COUNTS]
_COMPACT = f"""
    CREATE FUNCTION chiso_compact_record_counts(from_month date, to_month date) RETURNS void
    LANGUAGE sql AS $$
        WITH gone AS (
            DELETE FROM record_counts WHERE month >= from_month AND month <= to_month
            RETURNING unit_code, month, {_COLUMNS}
        )
        INSERT INTO record_counts (unit_code, month, {_COLUMNS})
        SELECT unit_code, month, {", ".join(_TOTALS)}
        FROM gone GROUP BY unit_code, month
        HAVING {_any_nonzero(_TOTALS)}
    $$
"""  # noqa: S608 - constants


# A change of what the counts read of a procedure queues every one of its dossiers for
# derivation (their masks follow), whoever makes it: the API, the CLI, an operator's UPDATE.
_PROCEDURE = """
    CREATE FUNCTION chiso_procedure_counting_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO dossier_backlog (dossier_code)
        SELECT d.code FROM gone o JOIN added n ON n.code = o.code
        JOIN dossiers d ON d.procedure_code = n.code
        WHERE (o.paper_result, o.has_fees) IS DISTINCT FROM (n.paper_result, n.has_fees)
        ORDER BY d.code
        ON CONFLICT (dossier_code) DO UPDATE SET queued_at = dossier_backlog.queued_at;
        RETURN NULL;
    END
    $$
"""
# Emptying the dossiers empties their counts (TRUNCATE fires no row or transition trigger).
_EMPTIED = """
    CREATE FUNCTION chiso_record_counts_emptied() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM record_counts;
        RETURN NULL;
    END
    $$
"""


def upgrade() -> None:
    op.execute(_MASK)
    op.execute("ALTER TABLE dossiers ADD COLUMN record_mask smallint")
    op.execute(
        "UPDATE dossiers d SET record_mask = chiso_record_mask(d.counted, d.received_at, "
        "d.channel, d.paid_online, d.has_digitized_parts, d.record_facts, p.paper_result, "
        "p.has_fees) FROM procedures p WHERE p.code = d.procedure_code"
    )
    op.execute(
        # No primary key: appended, read by month, compacted; a key would be one more index
        # write per row for every writer.
        "CREATE TABLE record_counts ("
        "unit_code varchar(64) NOT NULL, month date NOT NULL, "
        + ", ".join(f"{name} integer NOT NULL" for name in COUNTS)
        + ")"
    )
    op.execute("CREATE INDEX ix_record_counts_month ON record_counts (month)")
    op.execute("CREATE TABLE record_count_zone (timezone varchar(64) PRIMARY KEY)")
    op.execute(_REBUILD)
    op.execute(_COMPACT)
    op.execute(_CHANGED)
    for event, tables in (
        ("INSERT", "NEW TABLE AS added"),
        ("UPDATE", "OLD TABLE AS gone NEW TABLE AS added"),
        ("DELETE", "OLD TABLE AS gone"),
    ):
        op.execute(
            f"CREATE TRIGGER dossiers_record_counts_{event.lower()} AFTER {event} ON dossiers "
            f"REFERENCING {tables} FOR EACH STATEMENT "
            "EXECUTE FUNCTION chiso_record_counts_changed()"
        )
    op.execute(_EMPTIED)
    op.execute(
        "CREATE TRIGGER dossiers_record_counts_truncate AFTER TRUNCATE ON dossiers "
        "FOR EACH STATEMENT EXECUTE FUNCTION chiso_record_counts_emptied()"
    )
    op.execute(_PROCEDURE)
    op.execute(
        "CREATE TRIGGER procedures_counting_changed AFTER UPDATE ON procedures "
        "REFERENCING OLD TABLE AS gone NEW TABLE AS added FOR EACH STATEMENT "
        "EXECUTE FUNCTION chiso_procedure_counting_changed()"
    )
    op.execute(f"SELECT chiso_rebuild_record_counts('{ZONE}')")


def downgrade() -> None:
    for event in ("insert", "update", "delete", "truncate"):
        op.execute(f"DROP TRIGGER dossiers_record_counts_{event} ON dossiers")
    op.execute("DROP TRIGGER procedures_counting_changed ON procedures")
    op.execute("DROP FUNCTION chiso_procedure_counting_changed()")
    op.execute("DROP FUNCTION chiso_record_counts_emptied()")
    op.execute("DROP FUNCTION chiso_record_counts_changed()")
    op.execute("DROP FUNCTION chiso_compact_record_counts(date, date)")
    op.execute("DROP FUNCTION chiso_rebuild_record_counts(text)")
    op.execute("DROP TABLE record_count_zone")
    op.execute("DROP TABLE record_counts")
    op.execute("ALTER TABLE dossiers DROP COLUMN record_mask")
    op.execute(
        "DROP FUNCTION chiso_record_mask(boolean, timestamptz, smallint, boolean, boolean, "
        "smallint, boolean, boolean)"
    )
