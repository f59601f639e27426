"""Keep indicator 2.1's counts per unit and month as dossiers are written (``on_time_steps``).

A refresh counted 2.1 (dossiers handled in the month, and of those the ones finished early or
on time or still pending and within time at its end) with a pass over every dossier alive in
the month: at national scale (3.4 M dossiers a month) that pass cost about what a plain
``GROUP BY`` over the month costs, on every refresh. Like the record-based counts (0023) they
now follow the writes:

- A dossier counts in 2.1 (counted, with a receipt and a due time) in every local month from
  the one it was received in to the one it ended in (every month since, while it is open):
  that is the denominator. It is in a month's numerator while it is pending at the month's
  end and within time — which, once its clock runs past the due time or it gets more
  supplement requests than ``CHISO_MAX_SUPPLEMENT_REQUESTS``, it never is again — and in the
  month it ended in when it ended early or on time. So each dossier's membership is a few
  runs of consecutive months.
- ``on_time_steps``: rows of signed *steps* per unit and local month. A run of months is a
  step up in its first month and a step down in the month after its last; a month's counts
  are the sums of the unit's steps in that month and every one before it. The statement-level
  trigger on ``dossiers`` (0023's, now ``chiso_kept_counts_changed``) appends them with the
  record-based counts, from the same transition tables: a new dossier adds its steps, a
  deleted one takes them away, an update moves the difference (nothing when the runs did not
  move). A refresh compacts its months (``chiso_compact_kept_counts``).
- ``kept_count_basis`` (was ``record_count_zone``): the time zone the months are local to and
  the supplement-request limit the numerator was kept under. A refresh under another
  ``CHISO_TIMEZONE`` or ``CHISO_MAX_SUPPLEMENT_REQUESTS`` (or with the row gone) rebuilds both
  tables from the dossiers (``chiso_rebuild_kept_counts``); writers wait for the rebuild.

Revision ID: 0024_on_time_steps
Revises: 0023_record_counts
Create Date: 2026-11-30
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0024_on_time_steps"
down_revision: str | None = "0023_record_counts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAX_SUPP = 1  # CHISO_MAX_SUPPLEMENT_REQUESTS' default; a refresh under another one rebuilds


def _record_counts_migration() -> ModuleType:
    """Migration 0023, whose record-count statements this one keeps (and restores on the way
    down)."""
    path = Path(__file__).with_name("2026-11-30_record_counts.py")
    spec = importlib.util.spec_from_file_location("chiso_migration_0023", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_0023 = _record_counts_migration()


def _month(instant: str) -> str:
    """SQL: the first day of ``instant``'s month, local to the kept zone."""
    return f"CAST(date_trunc('month', ({instant}) AT TIME ZONE zone) AS date)"


# The steps of ``table``'s rows, each weighing ``sign``. Per dossier: received in month r, ended
# in month e (NULL: open), ``stop`` the first month whose end finds it pending but past due
# (NULL: none, as when its clock stopped in time) or its end month, whichever comes first.
# - denominator: +1 in r, -1 after e;
# - numerator while pending and within time: +1 in r, -1 in ``stop`` (none past the limit of
#   supplement requests, or when ``stop`` is not after r);
# - numerator in its end month: +1 in e, -1 after it, when it ended early or on time.
# A dossier that ended before the month it was received in counts in none.
_STEP_ROWS = f"""
    SELECT y.unit_code, s.month, {{sign}} * s.denominator AS denominator,
           {{sign}} * s.numerator AS numerator
    FROM (
        SELECT x.unit_code, x.r, x.e, x.stop, CAST(x.e + interval '1 month' AS date) AS after_e,
               CASE WHEN x.supplement_requests <= max_supp AND (x.stop IS NULL OR x.stop > x.r)
                    THEN 1 ELSE 0 END AS pending,
               CASE WHEN x.outcome IN ('early', 'on_time') THEN 1 ELSE 0 END AS finished
        FROM (
            SELECT d.unit_code, d.supplement_requests, d.outcome, m.r, m.e,
                   least(m.e, CASE WHEN d.clock_stopped_at <= d.due_at THEN NULL
                                   ELSE {_month("d.due_at + interval '1 microsecond'")}
                              END) AS stop
            FROM {{table}} d
            CROSS JOIN LATERAL (
                SELECT {_month("d.received_at")} AS r, {_month("d.end_at")} AS e
            ) m
            WHERE d.counted AND d.due_at IS NOT NULL AND d.received_at IS NOT NULL
        ) x
        WHERE x.e IS NULL OR x.e >= x.r
    ) y
    CROSS JOIN LATERAL (VALUES (y.r, 1, y.pending), (y.stop, 0, -y.pending),
                               (y.e, 0, y.finished), (y.after_e, -1, -y.finished))
        AS s (month, denominator, numerator)
    WHERE s.month IS NOT NULL
"""  # noqa: S608 - constants
_NONZERO = "sum(denominator) <> 0 OR sum(numerator) <> 0"
_APPEND_STEPS = (
    "INSERT INTO on_time_steps (unit_code, month, denominator, numerator) "  # noqa: S608
    "SELECT unit_code, month, sum(denominator), sum(numerator) FROM ({rows}) c "
    f"GROUP BY unit_code, month HAVING {_NONZERO}"
)
_ADDED_STEPS = _STEP_ROWS.format(sign=1, table="added")
_GONE_STEPS = _STEP_ROWS.format(sign=-1, table="gone")

_CHANGED = f"""
    CREATE FUNCTION chiso_kept_counts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        zone text;
        max_supp integer;
    BEGIN
        -- Before the basis is read: a rebuild (EXCLUSIVE on record_counts) under way is
        -- waited for, and one that starts later waits for this transaction.
        LOCK TABLE record_counts IN ROW EXCLUSIVE MODE;
        SELECT b.timezone, b.max_supplement_requests INTO zone, max_supp FROM kept_count_basis b;
        IF zone IS NULL THEN  -- no counts kept: the next refresh rebuilds them
            RETURN NULL;
        END IF;
        IF TG_OP = 'INSERT' THEN
            {_0023._APPEND.format(rows=_0023._ADDED)};
            {_APPEND_STEPS.format(rows=_ADDED_STEPS)};
        ELSIF TG_OP = 'UPDATE' THEN
            {_0023._APPEND.format(rows=f"{_0023._ADDED} UNION ALL {_0023._GONE}")};
            {_APPEND_STEPS.format(rows=f"{_ADDED_STEPS} UNION ALL {_GONE_STEPS}")};
        ELSE
            {_0023._APPEND.format(rows=_0023._GONE)};
            {_APPEND_STEPS.format(rows=_GONE_STEPS)};
        END IF;
        RETURN NULL;
    END
    $$
"""  # noqa: S608 - constants
_REBUILD = f"""
    CREATE FUNCTION chiso_rebuild_kept_counts(zone text, max_supp integer) RETURNS void
    LANGUAGE plpgsql AS $$
    BEGIN
        LOCK TABLE record_counts IN EXCLUSIVE MODE;
        DELETE FROM kept_count_basis;
        INSERT INTO kept_count_basis (timezone, max_supplement_requests) VALUES (zone, max_supp);
        DELETE FROM record_counts;
        INSERT INTO record_counts (unit_code, month, {_0023._COLUMNS})
        SELECT unit_code, month, {", ".join(_0023._sums("1", "mask"))}
        FROM ({_0023._ROWS.format(sign=1, table="dossiers")}) c
        GROUP BY unit_code, month;
        DELETE FROM on_time_steps;
        {_APPEND_STEPS.format(rows=_STEP_ROWS.format(sign=1, table="dossiers"))};
    END
    $$
"""  # noqa: S608 - constants


def _compacted(table: str, columns: Sequence[str]) -> str:
    """SQL: ``table``'s units and months in [from_month, to_month] that have more than one row,
    each made one row of their sums (none where they sum to nothing). A unit and month with
    one row already is left alone — most of a year's, when a year is refreshed — so a
    compaction writes only what writers appended since the last. Rows appended meanwhile are
    not in the statement's snapshot: kept."""
    names = ", ".join(columns)
    sums = [f"sum({c})" for c in columns]
    return f"""
        WITH split AS (
            SELECT unit_code, month FROM {table}
            WHERE month >= from_month AND month <= to_month
            GROUP BY unit_code, month HAVING count(*) > 1
        ),
        gone AS (
            DELETE FROM {table} t USING split s
            WHERE t.month >= from_month AND t.month <= to_month
              AND t.unit_code = s.unit_code AND t.month = s.month
            RETURNING t.unit_code, t.month, {", ".join(f"t.{c}" for c in columns)}
        )
        INSERT INTO {table} (unit_code, month, {names})
        SELECT unit_code, month, {", ".join(sums)} FROM gone GROUP BY unit_code, month
        HAVING {" OR ".join(f"{x} <> 0" for x in sums)}
    """  # noqa: S608 - constants


_COMPACT = f"""
    CREATE FUNCTION chiso_compact_kept_counts(from_month date, to_month date) RETURNS void
    LANGUAGE sql AS $$
        {_compacted("record_counts", _0023.COUNTS)};
        {_compacted("on_time_steps", ("denominator", "numerator"))};
    $$
"""
# Emptying the dossiers empties what is kept of them (TRUNCATE fires no transition trigger).
_EMPTIED = """
    CREATE FUNCTION chiso_kept_counts_emptied() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM record_counts;
        DELETE FROM on_time_steps;
        RETURN NULL;
    END
    $$
"""
_EVENTS = (
    ("INSERT", "NEW TABLE AS added"),
    ("UPDATE", "OLD TABLE AS gone NEW TABLE AS added"),
    ("DELETE", "OLD TABLE AS gone"),
)


def _triggers(prefix: str, changed: str, emptied: str) -> None:
    for event, tables in _EVENTS:
        op.execute(
            f"CREATE TRIGGER {prefix}_{event.lower()} AFTER {event} ON dossiers "
            f"REFERENCING {tables} FOR EACH STATEMENT EXECUTE FUNCTION {changed}()"
        )
    op.execute(
        f"CREATE TRIGGER {prefix}_truncate AFTER TRUNCATE ON dossiers "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {emptied}()"
    )


def _drop_triggers(prefix: str) -> None:
    for event in ("insert", "update", "delete", "truncate"):
        op.execute(f"DROP TRIGGER {prefix}_{event} ON dossiers")


def upgrade() -> None:
    # Read by month; no primary key, as record_counts (appended by every writer, compacted).
    op.execute(
        "CREATE TABLE on_time_steps (unit_code varchar(64) NOT NULL, month date NOT NULL, "
        "denominator integer NOT NULL, numerator integer NOT NULL)"
    )
    op.execute("CREATE INDEX ix_on_time_steps_month ON on_time_steps (month)")
    op.execute(
        "CREATE TABLE kept_count_basis (timezone varchar(64) NOT NULL, "
        "max_supplement_requests integer NOT NULL, "
        "PRIMARY KEY (timezone, max_supplement_requests))"
    )
    _drop_triggers("dossiers_record_counts")
    op.execute("DROP FUNCTION chiso_record_counts_changed()")
    op.execute("DROP FUNCTION chiso_record_counts_emptied()")
    op.execute("DROP FUNCTION chiso_rebuild_record_counts(text)")
    op.execute("DROP FUNCTION chiso_compact_record_counts(date, date)")
    op.execute(_REBUILD)
    op.execute(_COMPACT)
    op.execute(_CHANGED)
    op.execute(_EMPTIED)
    _triggers("dossiers_kept_counts", "chiso_kept_counts_changed", "chiso_kept_counts_emptied")
    # Under the zone the counts were kept in (none: the next refresh rebuilds them).
    op.execute(
        f"SELECT chiso_rebuild_kept_counts(timezone, {MAX_SUPP}) "  # noqa: S608 - a constant
        "FROM record_count_zone"
    )
    op.execute("DROP TABLE record_count_zone")


def downgrade() -> None:
    op.execute("CREATE TABLE record_count_zone (timezone varchar(64) PRIMARY KEY)")
    op.execute("INSERT INTO record_count_zone SELECT timezone FROM kept_count_basis")
    _drop_triggers("dossiers_kept_counts")
    op.execute("DROP FUNCTION chiso_kept_counts_changed()")
    op.execute("DROP FUNCTION chiso_kept_counts_emptied()")
    op.execute("DROP FUNCTION chiso_compact_kept_counts(date, date)")
    op.execute("DROP FUNCTION chiso_rebuild_kept_counts(text, integer)")
    op.execute(_0023._REBUILD)
    op.execute(_0023._COMPACT)
    op.execute(_0023._CHANGED)
    op.execute(_0023._EMPTIED)
    _triggers(
        "dossiers_record_counts", "chiso_record_counts_changed", "chiso_record_counts_emptied"
    )
    op.execute("DROP TABLE kept_count_basis")
    op.execute("DROP TABLE on_time_steps")
