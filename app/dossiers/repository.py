"""All SQL about dossiers. Batch paths are set-based: a few statements per batch, not per row."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from operator import attrgetter, itemgetter
from typing import Any, NamedTuple, cast

import asyncpg
import orjson
from sqlalchemy import ColumnElement, Row, Select, TextClause, and_, func, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.calendar.workdays import LimitUnit
from app.dossiers.facts_repository import upsert_sql
from app.dossiers.models import Dossier
from app.dossiers.schemas import DossierEventIn
from app.dossiers.timeline import DossierState, EventRecord, Limit
from app.units.models import Unit
from app.units.repository import UNIT_PAIRS_CTE, subtree_codes

# The row aliases the SQL fragments below name (``d.due_at``, ``u.name``).
_D = Dossier.__table__.alias("d")
_U = Unit.__table__.alias("u")

EVENT_COLUMNS = (
    "event_id", "dossier_code", "unit_code", "procedure_code", "status", "occurred_at",
    "channel", "due_at", "received_at", "note", "supplement_supplied_at",
    "supplement_new_due_at", "fee_paid_at", "apology_issued_at", "apology_new_due_at",
    "applicant_kind", "paid_online", "has_digitized_parts",
)  # fmt: skip
_EVENT_TYPES = {
    "status": "smallint", "channel": "smallint", "applicant_kind": "smallint",
    "paid_online": "boolean", "has_digitized_parts": "boolean", "note": "text",
    "event_id": "text", "dossier_code": "text", "unit_code": "text", "procedure_code": "text",
}  # fmt: skip
# An event on its way to the store: its number in the batch's valid events (``ord``, from 0),
# its EVENT_COLUMNS values in that order, and whether chiso inferred its time.
EventRow = tuple[Any, ...]
_VALUES_OF = attrgetter(*EVENT_COLUMNS)


def _column_type(column: str) -> str:
    return _EVENT_TYPES.get(column, "timestamptz")


def row_of(ord: int, event: DossierEventIn, time_inferred: bool = False) -> EventRow:
    """The row :func:`store_events` and :func:`stage_events` take for ``event``."""
    return (ord, *_VALUES_OF(event), time_inferred)


# What makes two postings of one event "the same event": every field it carries.
_CONTENT_COLUMNS = tuple(c for c in EVENT_COLUMNS if c not in ("event_id", "dossier_code"))


class Checked(NamedTuple):
    """One posted event (``ord``: its number in the statement's input) as the ingest statement
    saw it.

    ``owned``: the dossier has an owner (false: another transaction created it meanwhile,
    retry); ``written`` says the event was inserted (``inserted``) or replaced a portal-derived
    version; otherwise ``same`` tells a duplicate from a conflict and ``stored_at`` when the
    version that stays was recorded.
    """

    ord: int
    unit_known: bool
    procedure_known: bool
    in_scope: bool
    new_dossier: bool
    prefix_ok: bool
    owned: bool
    owner_in_scope: bool
    first: bool
    written: bool
    inserted: bool
    same: bool | None
    stored_at: datetime | None


class _CheckedRecord(asyncpg.Record):  # type: ignore[misc]
    """:class:`Checked` as asyncpg reads it: no object built per row of a 10,000-row answer."""


for _number, _name in enumerate(Checked._fields):
    setattr(_CheckedRecord, _name, property(itemgetter(_number)))


# Batches travel by COPY into this table, private to the connection: created by the first
# batch a connection carries (behind PgBouncer in transaction mode, by the first on each
# server connection), emptied by every commit. Its name carries a digest of its columns, so a
# server connection that outlives a deployment never hands a new release an old shape.
_STAGED_COLUMNS = ("ord", *EVENT_COLUMNS, "time_inferred")
_STAGED_DDL = ", ".join(
    ["ord integer", *(f"{c} {_column_type(c)}" for c in EVENT_COLUMNS), "time_inferred boolean"]
)
STAGED = "chiso_staged_events_" + hashlib.sha256(_STAGED_DDL.encode()).hexdigest()[:8]
# One round trip in the simple protocol. Every statement of the transaction runs without JIT:
# the store statement's estimates (a recursive unit tree, CTEs) can run past jit_above_cost,
# and compiling it cost seconds where running it costs milliseconds.
_PREPARE_STAGING = "; ".join(
    (
        f"CREATE TEMP TABLE IF NOT EXISTS {STAGED} ({_STAGED_DDL}) ON COMMIT DELETE ROWS",
        f"DELETE FROM {STAGED}",  # noqa: S608 - a constant name
        "SET LOCAL jit = off",
    )
)
# Per staged event, the memory the store statement may hash its checks in (``work_mem``, for
# this transaction only), within PostgreSQL's own ceiling of just under 2 GB.
_WORK_MEM_PER_EVENT_KB = 24
_WORK_MEM_KB = (4096, 2_000_000)


def _prepare_staging(events: int) -> str:
    """The staging table emptied for ``events`` rows, and the transaction's settings for the
    store statement.

    ``work_mem`` grows with the batch so that the checks stay hashed. A code that starts with
    a unit (``{identifier}-{yyMMdd}-{seq}``: every portal record's, and a batch client's
    following the documented form) takes the prefix check, a look-up among the units placed
    in the tree. The planner hashes it only when its estimate, which grows with the staged
    batch (about 10 kB per event), fits ``work_mem``; at the default 4 MB it read the units
    once per event instead (~250 of ~340 ms for 1,000 portal records). The memory used is
    that of the rows the batch names, not this ceiling."""
    low, high = _WORK_MEM_KB
    kilobytes = min(max(low, events * _WORK_MEM_PER_EVENT_KB), high)
    return f"{_PREPARE_STAGING}; SET LOCAL work_mem = '{kilobytes}kB'"


def _content(alias: str, other: str | None = None) -> str:
    """The event's content as a row; with ``other``, an inferred time is no difference when
    both versions inferred it (it is kept as first inferred)."""
    values = []
    for column in _CONTENT_COLUMNS:
        if column == "occurred_at" and other is not None:
            values.append(
                f"CASE WHEN {alias}.time_inferred AND {other}.time_inferred "
                f"THEN NULL ELSE {alias}.occurred_at END"
            )
        else:
            values.append(f"{alias}.{column}")
    return "ROW(" + ", ".join(values) + ")"


def _columns_row(columns: Sequence[str], alias: str | None = None) -> str:
    return "ROW(" + ", ".join(f"{alias}.{c}" if alias else c for c in columns) + ")"


def _store_statement(source: str) -> TextClause:
    """Check, take ownership, insert and queue a whole batch in one statement.

    The events come from ``source``: ``single`` (one event, a parameter per column;
    ``single+facts`` with the facts it states in ``:facts``, upserted in the same statement
    once it is accepted), ``unnest`` (one array parameter per column) or ``staged`` (the rows
    :func:`stage_events` copied, or those of them named by ``:only``; ``staged+once`` when
    no event is posted twice in them). Each comes with its
    ``ord``, which the answer carries back. Locks are taken in one order by every writer
    (owners, events and queue rows sorted by dossier code), so overlapping batches wait for
    each other instead of deadlocking.

    Its plan does not hang on estimates: the CTEs' row counts are guesses (a batch of 10,000
    may be planned as 5 rows), so no CTE is joined to another, where a guess could pick a
    nested loop over thousands of rows (the events meet their dossiers, and the units placed
    in the tree the prefixes' units, both by equality). Lookups in a set are hashed subplans
    (``IN``), what depends on an earlier posting of the same dossier or event is a window, and
    the stored versions are read by index, one probe per event the statement did not write.

    What the checks read costs what the events name, not what the tables hold: an owner probe
    per dossier, two probes per distinct code prefix, one per procedure named, and one per
    step up the tree from each unit named; no table is scanned.
    """
    names = ", ".join(EVENT_COLUMNS)
    if source.startswith("single"):
        values = ", ".join(f"CAST(:{c} AS {_column_type(c)}) AS {c}" for c in EVENT_COLUMNS)
        raw = f"SELECT {values}, CAST(:time_inferred AS boolean) AS time_inferred, 0 AS ord"
    elif source == "unnest":
        arrays = ", ".join(f"CAST(:{c} AS {_column_type(c)}[])" for c in EVENT_COLUMNS)
        inputs = f"{arrays}, CAST(:time_inferred AS boolean[]), CAST(:ord AS integer[])"
        raw = f"SELECT * FROM unnest({inputs}) AS r({names}, time_inferred, ord)"  # noqa: S608
    else:
        raw = (
            f"SELECT * FROM {STAGED} s WHERE CAST(:only AS integer[]) IS NULL "  # noqa: S608
            "OR s.ord = ANY(CAST(:only AS integer[]))"
        )
    scope = "CAST(:scope_root AS text)"
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in _CONTENT_COLUMNS if c != "occurred_at")
    # The content without the time, for two postings whose time chiso inferred (see _content).
    rest = [c for c in _CONTENT_COLUMNS if c != "occurred_at"]
    eligible = "owner IS NULL AND unit_known AND procedure_known AND in_scope AND prefix_ok"
    # One event is its dossier's only event and its own first posting: the single statement
    # spells out none of what sorts, groups or compares a batch's postings. Each of those is
    # a node PostgreSQL builds and tears down at every execution, and for one event the
    # executor's setup of the batch's plan cost more than running it (perf, 2026-11-30).
    single = source.startswith("single")
    distinct = "" if single else "DISTINCT "
    # Nor, when no event is posted twice (``+once``, which the caller knows), what finds and
    # compares an event's earlier postings: each posting is its own first.
    once = single or source.endswith("+once")

    def among(value: str | tuple[str, str], columns: str | tuple[str, str], rest: str) -> str:
        """``value IN (SELECT columns rest)``. For one event, ``= ANY`` of an array of the few
        rows: PostgreSQL hashes an ``IN`` list at every execution, which costs one event more
        than looking through two or three values. (Pairs of codes compare as text.)"""
        if isinstance(value, tuple) and isinstance(columns, tuple):
            if not single:
                return f"({', '.join(value)}) IN (SELECT {', '.join(columns)} {rest})"
            pair = ", ".join(f"CAST({v} AS text)" for v in value)
            listed = ", ".join(f"CAST({c} AS text)" for c in columns)
            return f"ROW({pair}) = ANY(ARRAY(SELECT ROW({listed}) {rest}))"
        if not single:
            return f"{value} IN (SELECT {columns} {rest})"
        return f"{value} = ANY(ARRAY(SELECT {columns} {rest}))"

    def said(columns: Sequence[str], alias: str | None = None) -> str:
        """What an event says, as the text of a record (hashable, unlike a record)."""
        return f"CAST({_columns_row(columns, alias)} AS text)"

    unit_known = among("r.unit_code", "unit", "FROM lineage")
    procedure_known = among("r.procedure_code", "code", "FROM named_procedures")
    unit_in_scope = among("r.unit_code", "unit", "FROM scoped")
    prefix = "split_part(r.dossier_code, '-', 1)"
    prefix_names_a_unit = among(prefix, "prefix", "FROM prefixes WHERE unit IS NOT NULL")
    unit_under_prefix = among(("r.unit_code", prefix), ("unit", "prefix"), "FROM under_prefix")
    claimed = among("p.dossier_code", "code", "FROM claims")
    owner_in_scope = among("p.owner", "unit", "FROM scoped")
    event = ("f.dossier_code", "f.event_id")
    # An event of a dossier claimed now was inserted (a plain insert: see stored_new); one of
    # a dossier owned before was written if the upsert returned it.
    upsert_wrote = among(event, ("dossier_code", "event_id"), "FROM stored_old")
    upsert_inserted = among(event, ("dossier_code", "event_id"), "FROM stored_old WHERE inserted")
    later_posting = f"""WHEN a.valid AND NOT a.first
                    THEN CASE WHEN a.time_inferred AND a.first_inferred
                              THEN (a.first_ord, {said(rest, "a")})
                                   IN (SELECT ord, {said(rest)} FROM judged WHERE valid)
                              ELSE (a.first_ord, {said(_CONTENT_COLUMNS, "a")})
                                   IN (SELECT ord, {said(_CONTENT_COLUMNS)} FROM judged WHERE valid)
                         END"""  # noqa: S608 - column names are constants

    return text(
        f"""
        WITH RECURSIVE
        raw AS ({raw}),
        codes AS (
            -- Each dossier once, with its owner when it has one: one index probe per dossier.
            SELECT c.dossier_code,
                   (SELECT o.unit_code FROM dossier_owners o WHERE o.code = c.dossier_code)
                   AS owner
            FROM (SELECT {distinct}dossier_code FROM raw) c
        ),
        -- The unit each prefix of a code names (by electronic identifier first, else by code):
        -- two index probes per distinct prefix, never a scan of the units.
        prefixes AS (
            SELECT p.prefix,
                   coalesce((SELECT u.code FROM units u WHERE u.identifier = p.prefix),
                            (SELECT u.code FROM units u WHERE u.code = p.prefix)) AS unit
            FROM (SELECT {distinct}split_part(dossier_code, '-', 1) AS prefix FROM raw) p
        ),
        -- Each unit the checks must place in the tree (named by an event, or owning one's
        -- dossier), with all its ancestors (itself included): an index probe per step.
        lineage(unit, ancestor) AS (
            SELECT u.code, u.code FROM units u
            WHERE u.code = ANY(ARRAY(SELECT unit_code FROM raw
                                     UNION SELECT owner FROM codes WHERE owner IS NOT NULL))
            UNION
            SELECT l.unit, p.parent_code FROM lineage l
            -- LIMIT: a probe by primary key per row, never a join over every unit.
            CROSS JOIN LATERAL (
                SELECT u.parent_code FROM units u WHERE u.code = l.ancestor LIMIT 1
            ) p
            WHERE p.parent_code IS NOT NULL
        ),
        -- Those units that lie in the key's subtree.
        scoped AS (SELECT unit FROM lineage WHERE ancestor = {scope}),
        -- The procedures named that exist: probes by primary key.
        named_procedures AS (
            SELECT p.code FROM procedures p
            WHERE p.code = ANY(ARRAY(SELECT {distinct}procedure_code FROM raw))
        ),
        -- (unit, prefix) for each unit placed in the tree under the unit a prefix names.
        under_prefix AS (
            SELECT l.unit, p.prefix FROM lineage l JOIN prefixes p ON p.unit = l.ancestor
        ),
        prechecked AS (
            SELECT r.*, c.owner,
                   -- Every existing unit named by an event heads its own lineage.
                   {unit_known} AS unit_known,
                   {procedure_known} AS procedure_known,
                   ({scope} IS NULL OR {unit_in_scope}) AS in_scope,
                   -- A code that starts with a unit's code belongs to that unit's subtree.
                   CASE WHEN CAST(:prefix_required AS boolean)
                             OR {prefix_names_a_unit}
                        THEN coalesce({unit_under_prefix}, false)
                        ELSE true
                   END AS prefix_ok
            FROM raw r JOIN codes c ON c.dossier_code = r.dossier_code
        ),
        claims AS (
            INSERT INTO dossier_owners (code, unit_code, key_id)
            SELECT code, unit_code, CAST(:key_id AS uuid) FROM (
                SELECT {"" if single else "DISTINCT ON (dossier_code) "}dossier_code AS code,
                       unit_code
                FROM prechecked WHERE {eligible}
                {"" if single else "ORDER BY dossier_code, ord"}
            ) first_of_each {"" if single else "ORDER BY code"}
            ON CONFLICT (code) DO NOTHING
            RETURNING code
        ),
        judged AS (
            SELECT c.*, {_FIRST_OF_ONE if once else _FIRST_OF_BATCH}
            FROM (
                SELECT *, unit_known AND procedure_known AND in_scope AND owned
                          AND owner_in_scope AND (NOT new_dossier OR prefix_ok) AS valid
                FROM (
                    SELECT p.*, p.owner IS NOT NULL OR p.claimed AS owned,
                           CASE WHEN p.owner IS NOT NULL
                                THEN {scope} IS NULL OR {owner_in_scope}
                                -- Claimed now for an eligible event's unit: in the subtree.
                                ELSE p.claimed OR {scope} IS NULL
                           END AS owner_in_scope
                    FROM (
                        -- Looked up once per event, whatever reads it.
                        SELECT p.*, p.owner IS NULL AS new_dossier,
                               p.owner IS NULL AND {claimed} AS claimed
                        FROM prechecked p
                    ) p
                ) o
            ) c
            {"" if once else _FIRST_POSTING}
        ),
        -- The events of dossiers this statement claimed: none can be stored yet (every stored
        -- event's dossier has an owner, claimed by the statement that stored the first one,
        -- and a concurrent claim of the same dossier waits for this one), so a plain insert.
        -- Every claimed dossier gets one (its first eligible event is valid), and each of
        -- them is inserted: nothing to return.
        stored_new AS (
            INSERT INTO dossier_events ({names}, source, key_id, time_inferred)
            SELECT {names}, CAST(:source AS text), CAST(:key_id AS uuid), j.time_inferred
            FROM judged j WHERE j.valid AND j.ord = j.first_ord AND j.new_dossier
            {"" if single else "ORDER BY j.dossier_code, j.event_id"}
        ),
        stored_old AS (
            INSERT INTO dossier_events ({names}, source, key_id, time_inferred)
            SELECT {names}, CAST(:source AS text), CAST(:key_id AS uuid), j.time_inferred
            FROM judged j WHERE j.valid AND j.ord = j.first_ord AND NOT j.new_dossier
            {"" if single else "ORDER BY j.dossier_code, j.event_id"}
            ON CONFLICT (dossier_code, event_id) DO UPDATE SET {updates},
                -- A time inferred again is kept as first inferred: re-sending moves nothing.
                occurred_at = CASE WHEN dossier_events.time_inferred AND EXCLUDED.time_inferred
                                   THEN dossier_events.occurred_at
                                   ELSE EXCLUDED.occurred_at END,
                time_inferred = EXCLUDED.time_inferred,
                key_id = EXCLUDED.key_id, recorded_at = now()
            -- Only chiso's own ids (read off a portal snapshot) take a re-sent snapshot's values.
            WHERE CAST(:replaceable AS boolean) AND dossier_events.source <> 'api'
              AND {_content("dossier_events", "EXCLUDED")}
                  IS DISTINCT FROM {_content("EXCLUDED", "dossier_events")}
            RETURNING dossier_code, event_id, (xmax = 0) AS inserted
        ),
        queued AS (
            -- The dossiers an event was written for: those claimed now, and those owned before
            -- that the upsert wrote to (for one event, one or the other).
            -- DO UPDATE, not DO NOTHING: it waits for a worker's claim on the row to end, then
            -- queues the dossier again, so an event never lands behind a derivation that
            -- could not see it.
            INSERT INTO dossier_backlog (dossier_code)
            SELECT code FROM claims
            UNION {"ALL " if single else ""}SELECT dossier_code FROM stored_old
            {"" if single else "ORDER BY 1"}
            ON CONFLICT (dossier_code) DO UPDATE SET queued_at = dossier_backlog.queued_at
        ),
        answered AS (
            SELECT f.*,
                   f.first AND (f.new_dossier OR {upsert_wrote}) AS written,
                   f.first AND (f.new_dossier OR {upsert_inserted}) AS inserted
            FROM (SELECT *, valid AND ord = first_ord AS first FROM judged) f
        )
        {", result AS (" if source == "single+facts" else ""}
        SELECT a.ord, a.unit_known, a.procedure_known, a.in_scope, a.new_dossier, a.prefix_ok,
               a.owned, a.owner_in_scope, a.first, a.written, a.inserted,
               -- A later posting in the batch is the same event if it says the same as the
               -- first (a record's text stands for it: hashed, looked up only for these).
               CASE {"" if once else later_posting}
                    WHEN e.id IS NOT NULL
                    THEN {_content("a", "e")} IS NOT DISTINCT FROM {_content("e", "a")}
               END AS same,
               e.recorded_at
        FROM answered a
        -- The version stored before this statement, looked up only for valid events it did
        -- not write (duplicates, conflicts): one index probe each, never a scan of the
        -- history (LIMIT keeps the planner from turning the probes into a join).
        LEFT JOIN LATERAL (
            SELECT * FROM dossier_events e
            WHERE a.valid AND NOT a.written
              AND e.dossier_code = a.dossier_code AND e.event_id = a.event_id
            LIMIT 1
        ) e ON true
        {_single_tail(source) if single else "ORDER BY a.ord"}
        """  # noqa: S608 - column names are constants
    )


# A valid event's first valid posting in the batch is the one stored; one event is its own.
_FIRST_OF_BATCH = (
    "first_value(ord) OVER w AS first_ord, first_value(time_inferred) OVER w AS first_inferred"
)
_FIRST_POSTING = "WINDOW w AS (PARTITION BY dossier_code, event_id, valid ORDER BY ord)"
_FIRST_OF_ONE = "ord AS first_ord, time_inferred AS first_inferred"


def _single_tail(source: str) -> str:
    """The end of the single event's statement: with facts (``single+facts``), the facts it
    states are kept once it is accepted (stored, updated, or a duplicate), as
    :func:`upsert_facts` keeps a batch's. Without, no statement on ``dossier_facts`` at all:
    its triggers (migration 0022) run once per statement, even one that writes no row."""
    if source == "single":
        return ""
    accepted = "EXISTS (SELECT 1 FROM result WHERE written OR same)"
    return f"""
        ),
        facts AS ({upsert_sql("CAST(:facts AS json)", accepted)})
        SELECT * FROM result
        """  # noqa: S608 - column names are constants


# Built once: constructing a text() parses its bind parameters with a regex, which on a
# statement this long costs more CPU than the rest of a single-event request.
_STORE = _store_statement("unnest")
# The staged statement runs on the driver's connection (its 10,000 answer rows are read as
# asyncpg records), with positional parameters in this order.
_STAGED_PARAMS = ("only", "source", "scope_root", "key_id", "prefix_required", "replaceable")


def _positional(sql: str, names: Sequence[str]) -> str:
    for number, name in enumerate(names, 1):
        sql = re.sub(rf"(?<![:\w]):{name}\b", f"${number}", sql)
    assert not re.search(r"(?<![:\w]):[a-z_]+\b", sql), "every parameter numbered"
    return sql


_STORE_STAGED = _positional(_store_statement("staged").text, _STAGED_PARAMS)
_STORE_STAGED_ONCE = _positional(_store_statement("staged+once").text, _STAGED_PARAMS)
# A single event's statement runs on a connection of its own (``app.core.direct``), prepared
# once per connection, in autocommit: one round trip.
_SINGLE_PARAMS = (
    *EVENT_COLUMNS, "time_inferred", "source", "scope_root", "key_id", "prefix_required",
    "replaceable",
)  # fmt: skip
_STORE_SINGLE = _positional(_store_statement("single").text, _SINGLE_PARAMS)
_STORE_SINGLE_FACTS = _positional(_store_statement("single+facts").text, (*_SINGLE_PARAMS, "facts"))


@dataclass(frozen=True, slots=True)
class StoreRules:
    """Whose batch it is and how it may be stored (the parameters of every pass)."""

    source: str
    scope_root: str | None
    key_id: str | None
    prefix_required: bool
    replaceable: bool

    def params(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "scope_root": self.scope_root,
            "key_id": self.key_id,
            "prefix_required": self.prefix_required,
            "replaceable": self.replaceable,
        }


async def store_events(
    session: AsyncSession, rows: Sequence[EventRow], rules: StoreRules
) -> list[Checked]:
    """Check, claim, insert and queue ``rows`` (:func:`row_of`) in one statement, the values
    travelling as arrays (a single event: one round trip); one :class:`Checked` per row, in
    ``ord`` order.

    A dossier seen for the first time is owned by the unit of its first valid event (whose
    code, when it starts with a unit's code or identifier, must lie in that unit's subtree);
    events for a dossier whose owner lies outside
    ``scope_root``'s subtree are refused whatever unit they name. New events are inserted
    unless their (dossier, event_id) exists, and their dossiers queued for derivation.
    """
    if not rows:
        return []
    columns = [list(column) for column in zip(*rows, strict=True)]
    params: dict[str, Any] = dict(zip(_STAGED_COLUMNS, columns, strict=True))
    params["status"] = [int(s) for s in params["status"]]
    params["channel"] = [int(c) for c in params["channel"]]
    params.update(rules.params())
    result = await session.execute(_STORE, params)
    return [Checked._make(row) for row in result]


async def store_one(
    db: asyncpg.Connection, row: EventRow, rules: StoreRules, facts: str | None
) -> Checked:
    """:func:`store_events` for one event (:func:`row_of`), in one statement on a connection
    in autocommit (its own transaction), the index facts it states (``facts``: JSON rows, see
    :func:`app.dossiers.facts_repository.facts_json`) kept in the same statement."""
    values = list(row[1:])  # EVENT_COLUMNS, then time_inferred
    values[4] = int(values[4])  # status
    values[6] = int(values[6])  # channel
    params = [
        *values, rules.source, rules.scope_root, rules.key_id, rules.prefix_required,
        rules.replaceable,
    ]  # fmt: skip
    if facts is None:
        record = await db.fetchrow(_STORE_SINGLE, *params, record_class=_CheckedRecord)
    else:
        record = await db.fetchrow(_STORE_SINGLE_FACTS, *params, facts, record_class=_CheckedRecord)
    return cast(Checked, record)  # the same fields, read by name


async def stage_events(session: AsyncSession, rows: Sequence[EventRow]) -> None:
    """COPY ``rows`` (:func:`row_of`, numbered from 0) into this transaction's staging table:
    what :func:`store_staged` stores."""
    driver = await _driver(session)
    await driver.execute(_prepare_staging(len(rows)))
    await driver.copy_records_to_table(STAGED, records=rows, columns=_STAGED_COLUMNS)


async def store_staged(
    session: AsyncSession, only: Sequence[int] | None, rules: StoreRules, *, once: bool = False
) -> list[Checked]:
    """:func:`store_events` for the staged rows (``only``: those of these ords); ``once``
    when no two of them are the same event (dossier code and event id)."""
    driver = await _driver(session)
    params = {**rules.params(), "only": list(only) if only is not None else None}
    records = await driver.fetch(
        _STORE_STAGED_ONCE if once else _STORE_STAGED,
        *(params[name] for name in _STAGED_PARAMS),
        record_class=_CheckedRecord,
    )
    return cast(list[Checked], records)  # the same fields, read by name


async def _driver(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under ``session``, inside the session's transaction."""
    connection = await session.connection()
    driver: asyncpg.Connection = (await connection.get_raw_connection()).driver_connection
    if not driver.is_in_transaction():
        await connection.execute(text("SELECT 1"))  # SQLAlchemy's driver begins lazily
    return driver


async def take_backlog(session: AsyncSession, limit: int) -> list[str]:
    """Claim up to ``limit`` queued dossiers, oldest first; others' claims are skipped.

    The claim is the deletion: committed with the derived states, or rolled back (and so
    still queued) if the derivation fails.
    """
    rows = await session.execute(
        text(
            """
            DELETE FROM dossier_backlog WHERE dossier_code IN (
                SELECT dossier_code FROM dossier_backlog ORDER BY queued_at
                LIMIT :limit FOR UPDATE SKIP LOCKED
            ) RETURNING dossier_code
            """
        ),
        {"limit": limit},
    )
    return sorted(r[0] for r in rows)


async def requeue_lagging(session: AsyncSession, margin_seconds: int = 300) -> tuple[int, int]:
    """Queue every dossier whose derived state misses one of its events stored since the last
    check; returns (how many were queued, the new watermark).

    A dossier still queued is being handled; one whose state covers its newest event is fine.
    Anything else lost its queue row somehow and is queued again. The watermark only passes
    events older than ``margin_seconds``, so a transaction that committed late is still seen.
    """
    row = await session.execute(
        text(
            """
            WITH mark AS (
                INSERT INTO derivation_checks (name) VALUES ('states')
                ON CONFLICT (name) DO UPDATE SET name = derivation_checks.name
                RETURNING checked_through
            ),
            recent AS (
                SELECT e.dossier_code, max(e.id) AS last_id FROM dossier_events e
                WHERE e.id > (SELECT checked_through FROM mark) GROUP BY e.dossier_code
            ),
            requeued AS (
                INSERT INTO dossier_backlog (dossier_code)
                SELECT r.dossier_code FROM recent r LEFT JOIN dossiers d ON d.code = r.dossier_code
                WHERE (d.derived_through IS NULL OR d.derived_through < r.last_id)
                  AND NOT EXISTS (SELECT 1 FROM dossier_backlog b
                                  WHERE b.dossier_code = r.dossier_code)
                ORDER BY r.dossier_code
                ON CONFLICT (dossier_code) DO NOTHING
                RETURNING dossier_code
            ),
            watermark AS (
                SELECT coalesce(max(e.id), (SELECT checked_through FROM mark)) AS through
                FROM dossier_events e
                WHERE e.id > (SELECT checked_through FROM mark)
                  AND e.recorded_at < now() - make_interval(secs => :margin)
            ),
            saved AS (
                UPDATE derivation_checks SET checked_through = (SELECT through FROM watermark),
                       checked_at = now(), requeued = (SELECT count(*) FROM requeued)
                WHERE name = 'states'
            )
            SELECT (SELECT count(*) FROM requeued), (SELECT through FROM watermark)
            """
        ),
        {"margin": margin_seconds},
    )
    found, through = row.one()
    return int(found), int(through)


async def take_queued(session: AsyncSession, codes: Sequence[str]) -> None:
    """Claim these dossiers (waiting for another claim on them to finish)."""
    await session.execute(
        text("DELETE FROM dossier_backlog WHERE dossier_code = ANY(CAST(:codes AS text[]))"),
        {"codes": sorted(codes)},
    )


async def lock_existing(session: AsyncSession, codes: Sequence[str]) -> None:
    """Lock the dossier rows of ``codes`` that exist, in code order.

    Every derivation (queued, inline, or after a calendar change) holds these row locks while
    it reads the history and writes the state, so two of them never interleave. A dossier
    without a row yet is derived only through its queue row (the worker's claim, or the
    inline derivation's own), which already keeps a second derivation out until the first
    commits; :func:`save_states` inserts its row.
    """
    await session.execute(
        text(
            "SELECT code FROM dossiers WHERE code = ANY(CAST(:codes AS text[])) "
            "ORDER BY code FOR UPDATE"
        ),
        {"codes": sorted(codes)},
    )


# EventRecord's fields in order: each history row builds one positionally.
_HISTORY_COLUMNS = ", ".join(f"e.{f}" for f in EventRecord.__dataclass_fields__)
# One index probe per dossier (the LATERAL subquery's ORDER BY keeps PostgreSQL from turning
# the probes into a join over the whole history), in ``codes`` order, each history by time.
_HISTORIES = f"""
    SELECT c.code, o.unit_code, {_HISTORY_COLUMNS}
    FROM unnest($1::text[]) WITH ORDINALITY AS c(code, n)
    LEFT JOIN LATERAL (
        SELECT o.unit_code FROM dossier_owners o WHERE o.code = c.code LIMIT 1
    ) o ON true
    CROSS JOIN LATERAL (
        SELECT * FROM dossier_events e WHERE e.dossier_code = c.code ORDER BY e.occurred_at
    ) e
    ORDER BY c.n
"""  # noqa: S608 - column names are constants


async def without_jit(session: AsyncSession) -> None:
    """This transaction's statements run without JIT: a chunk's statements can be costed past
    ``jit_above_cost`` (thousands of codes), and compiling costs far more than running them."""
    await (await _driver(session)).execute("SET LOCAL jit = off")


async def histories(
    session: AsyncSession, codes: Sequence[str]
) -> tuple[dict[str, list[EventRecord]], dict[str, str]]:
    """The stored events of ``codes`` (those with any), and the owners of those dossiers.

    Read as plain asyncpg records (no row objects): a chunk of 2,000 dossiers is ~15,000 rows.
    """
    driver = await _driver(session)
    by_code: dict[str, list[EventRecord]] = {}
    owners: dict[str, str] = {}
    event = EventRecord
    history: list[EventRecord] = []
    current = None
    rows = await driver.fetch(_HISTORIES, list(codes))
    rows.reverse()
    while rows:  # each record let go once its event is built: one copy of the chunk at a time
        code, owner, *values = rows.pop()
        if code != current:
            current = code
            history = by_code[code] = []
            if owner is not None:
                owners[code] = owner
        history.append(event(*values))
    return by_code, owners


async def owner_of(session: AsyncSession, code: str) -> str | None:
    """The unit a dossier belongs to (None: no such dossier)."""
    result = await session.execute(
        text("SELECT unit_code FROM dossier_owners WHERE code = :code"), {"code": code}
    )
    return result.scalar_one_or_none()


async def basics(session: AsyncSession, codes: Sequence[str]) -> dict[str, tuple[str, str, int]]:
    """Owner, procedure and channel of known dossiers (their latest event's procedure and
    channel): what a progress item needs to become an event of its dossier."""
    rows = await session.execute(
        text(
            """
            SELECT DISTINCT ON (e.dossier_code) e.dossier_code, o.unit_code, e.procedure_code,
                   e.channel
            FROM dossier_events e JOIN dossier_owners o ON o.code = e.dossier_code
            WHERE e.dossier_code = ANY(CAST(:codes AS text[]))
            ORDER BY e.dossier_code, e.occurred_at DESC, e.id DESC
            """
        ),
        {"codes": sorted(set(codes))},
    )
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


async def limits(session: AsyncSession, procedure_codes: set[str]) -> dict[str, Limit]:
    rows = await session.execute(
        text(
            "SELECT code, limit_value, limit_unit FROM procedures "
            # A procedure learned from records has no limit yet: its appointment rules.
            "WHERE code = ANY(CAST(:codes AS text[])) AND limit_value IS NOT NULL"
        ),
        {"codes": sorted(procedure_codes)},
    )
    return {r.code: Limit(Decimal(r.limit_value), LimitUnit(r.limit_unit)) for r in rows}


_STATE_COLUMNS: dict[str, str] = {
    "code": "text", "unit_code": "text", "procedure_code": "text", "status": "smallint",
    "channel": "smallint", "received_at": "timestamptz", "base_due_at": "timestamptz",
    "due_at": "timestamptz", "end_at": "timestamptz", "end_status": "smallint",
    "outcome": "text", "counted": "boolean", "clock_stopped_at": "timestamptz",
    "overdue_at": "timestamptz",
    "supplement_requests": "smallint", "paused_seconds": "bigint", "pauses": "jsonb",
    "apology_issued_at": "timestamptz", "apology_new_due_at": "timestamptz",
    "anomalies": "jsonb", "applicant_kind": "smallint", "paid_online": "boolean",
    "has_digitized_parts": "boolean", "first_event_at": "timestamptz",
    "last_event_at": "timestamptz", "event_count": "integer", "derived_through": "bigint",
}  # fmt: skip


def state_values(state: DossierState) -> dict[str, Any]:
    """The ``dossiers`` columns of ``state`` (``pauses`` and ``anomalies`` as lists)."""
    return {
        "code": state.code,
        "unit_code": state.unit_code,
        "procedure_code": state.procedure_code,
        "status": state.status,
        "channel": state.channel,
        "received_at": state.received_at,
        "base_due_at": state.base_due_at,
        "due_at": state.due_at,
        "end_at": state.end_at,
        "end_status": state.end_status,
        "outcome": state.outcome.value if state.outcome else None,
        "counted": state.counted,
        "clock_stopped_at": state.clock_stopped_at,
        "overdue_at": state.overdue_at,
        "supplement_requests": state.supplement_requests,
        "paused_seconds": int(state.paused.total_seconds()),
        "pauses": [p.as_json() for p in state.pauses],
        "apology_issued_at": state.apology_issued_at,
        "apology_new_due_at": state.apology_new_due_at,
        "anomalies": state.anomalies,
        "applicant_kind": state.applicant_kind,
        "paid_online": state.paid_online,
        "has_digitized_parts": state.has_digitized_parts,
        "first_event_at": state.first_event_at,
        "last_event_at": state.last_event_at,
        "event_count": state.event_count,
        "derived_through": state.derived_through,
    }


def _save_states_statement() -> str:
    """Insert new dossiers' states and update those that changed; a state equal to the stored
    one is not written at all (no new row version, no index entry, no WAL).

    The states travel as one JSON array of objects (27 array parameters cost asyncpg a type
    check per element), read by one ``json_to_recordset``. The flags the record-based counts
    read (``record_facts``) come from the facts kept, by the database's ``chiso_record_facts``
    (migration 0022): a change of facts queues the dossier, so they follow it here. Which of
    those counts the dossier falls in (``record_mask``) follows from them, its own columns and
    its procedure's ``paper_result`` and ``has_fees`` (``chiso_record_mask``, migration 0023;
    a change of either flag queues the procedure's dossiers); the database keeps the counts
    per unit and month from the rows this statement writes (``record_counts``).
    """
    names = list(_STATE_COLUMNS)
    record = ", ".join(f"{c} {t}" for c, t in _STATE_COLUMNS.items())
    written = [c for c in names if c != "code"] + ["record_facts", "record_mask"]
    assignments = ", ".join(f"{c} = EXCLUDED.{c}" for c in written)
    # A moved deadline starts a new flag cycle: the sweep may flag (and notify) it again.
    resets = (
        "overdue_since = CASE WHEN d.overdue_at IS DISTINCT FROM EXCLUDED.overdue_at "
        "THEN NULL ELSE d.overdue_since END, "
        "due_soon_since = CASE WHEN d.due_at IS DISTINCT FROM EXCLUDED.due_at "
        "THEN NULL ELSE d.due_soon_since END"
    )
    stored = ", ".join(f"d.{c}" for c in written)
    derived = ", ".join(f"EXCLUDED.{c}" for c in written)
    flags = "CASE WHEN f.dossier_code IS NOT NULL THEN chiso_record_facts(f) END"
    mask = (
        "chiso_record_mask(v.counted, v.received_at, v.channel, v.paid_online, "
        f"v.has_digitized_parts, {flags}, p.paper_result, p.has_fees)"
    )
    return (
        f"INSERT INTO dossiers AS d ({', '.join(names)}, record_facts, record_mask, "  # noqa: S608
        f"updated_at) SELECT {', '.join(f'v.{c}' for c in names)}, {flags}, {mask}, now() "
        f"FROM json_to_recordset($1::json) AS v({record}) "
        "LEFT JOIN dossier_facts f ON f.dossier_code = v.code "
        "LEFT JOIN procedures p ON p.code = v.procedure_code ORDER BY v.code "
        f"ON CONFLICT (code) DO UPDATE SET {resets}, {assignments}, updated_at = now() "
        f"WHERE ({stored}) IS DISTINCT FROM ({derived})"
    )


_SAVE_STATES = _save_states_statement()


async def save_states(session: AsyncSession, states: Sequence[DossierState]) -> int:
    """Write derived states in one statement: new dossiers inserted, changed states updated,
    unchanged ones left alone. The rows that exist are locked already (:func:`lock_existing`).
    Returns how many rows were written."""
    if not states:
        return 0
    rows = orjson.dumps([state_values(s) for s in states]).decode()
    status = await (await _driver(session)).execute(_SAVE_STATES, rows)
    return int(status.rsplit(" ", 1)[-1])


# --- the overdue rule --------------------------------------------------------------------
# :func:`app.dossiers.timeline.standing` states it in Python; every statement that asks it,
# here and in the scores and insights repositories, builds it with these two functions.


def _pending(d: str, at: str, rewind: bool) -> str:
    if rewind:
        return (
            f"{d}.counted AND {d}.due_at IS NOT NULL AND {d}.received_at <= {at} "
            f"AND ({d}.end_at IS NULL OR {d}.end_at > {at})"
        )
    # As stored: the very predicate of the partial index the open lists read.
    return f"{d}.end_at IS NULL AND {d}.counted AND {d}.due_at IS NOT NULL"


def _past_due(d: str, at: str, max_supp: str, rewind: bool) -> str:
    stopped = (
        f"CASE WHEN {d}.clock_stopped_at <= {at} THEN {d}.clock_stopped_at END"
        if rewind
        else f"{d}.clock_stopped_at"
    )
    return f"(coalesce({stopped}, {at}) > {d}.due_at OR {d}.supplement_requests > {max_supp})"


def overdue_sql(
    d: str = "d", *, at: str = ":now", max_supp: str = ":max_supp", rewind: bool = False
) -> str:
    """SQL: the dossier row ``d`` is overdue at instant ``at`` (an SQL expression: a bound
    parameter such as ``:now``, or a column).

    Pending (counted, with a due time, not finished) and either measured past its due time
    — at ``at``, or where its clock stopped — or with more supplement requests than
    ``max_supp`` allows. ``rewind=False`` reads the state as stored ("now" for lists, counts and
    digests); ``rewind=True`` reads it back at ``at`` (a period's end, a projection's instant): a
    dossier received later does not count yet, one that ended later was still pending, a clock
    that stopped later was still running. Either way it is ``timeline.standing(..., rewind=)``
    saying ``overdue``.
    """
    return f"({_pending(d, at, rewind)} AND {_past_due(d, at, max_supp, rewind)})"


def in_time_sql(
    d: str = "d", *, at: str = ":now", max_supp: str = ":max_supp", rewind: bool = False
) -> str:
    """SQL: the dossier row ``d`` is pending and not overdue at ``at`` (see :func:`overdue_sql`):
    ``timeline.standing`` saying ``in_time``."""
    return f"({_pending(d, at, rewind)} AND NOT {_past_due(d, at, max_supp, rewind)})"


# --- reads -------------------------------------------------------------------------------

_DOSSIER_COLUMNS = (
    "code", "unit_code", "procedure_code", "status", "channel", "received_at", "due_at",
    "end_at", "outcome", "counted", "clock_stopped_at", "supplement_requests", "paused_seconds",
    "pauses", "apology_issued_at", "apology_new_due_at", "anomalies", "last_event_at",
)  # fmt: skip
_DOSSIER_FIELDS = ", ".join(f"d.{c}" for c in _DOSSIER_COLUMNS)
STATE_FILTERS = {
    "pending": "d.end_at IS NULL AND d.counted",
    "overdue": overdue_sql(),
    "in_time": in_time_sql(),
    "finished": "d.end_at IS NOT NULL",
    "early": "d.outcome = 'early'",
    "on_time": "d.outcome = 'on_time'",
    "late": "d.outcome = 'late'",
    "not_counted": "NOT d.counted",
}


def _dossier_fields() -> list[ColumnElement[Any]]:
    return [_D.c[c] for c in _DOSSIER_COLUMNS]


async def get(session: AsyncSession, code: str) -> tuple[Row[Any] | None, bool]:
    """The stored state (None before the first derivation) and whether events are queued."""
    result = await session.execute(
        text(
            f"SELECT q.queued, {_DOSSIER_FIELDS} FROM "  # noqa: S608
            "(SELECT EXISTS (SELECT 1 FROM dossier_backlog WHERE dossier_code = :code) AS queued)"
            " q LEFT JOIN dossiers d ON d.code = :code"
        ),
        {"code": code},
    )
    row = result.one()
    return (row if row.code is not None else None), bool(row.queued)


async def events_of(
    session: AsyncSession, code: str, after: tuple[str, int] | None, limit: int
) -> list[Row[Any]]:
    where = "dossier_code = :code"
    params: dict[str, Any] = {"code": code, "limit": limit + 1}
    if after is not None:
        where += " AND (occurred_at, id) > (CAST(:after_at AS timestamptz), :after_id)"
        params.update(after_at=datetime.fromisoformat(after[0]), after_id=after[1])
    rows = await session.execute(
        text(
            "SELECT id, event_id, status, occurred_at, recorded_at, channel, unit_code, "  # noqa: S608
            "procedure_code, due_at, received_at, note, supplement_supplied_at, "
            "supplement_new_due_at, fee_paid_at, apology_issued_at, apology_new_due_at, source, "
            "CAST(key_id AS text) AS key_id "
            f"FROM dossier_events WHERE {where} ORDER BY occurred_at, id LIMIT :limit"
        ),
        params,
    )
    return list(rows)


@dataclass(frozen=True, slots=True)
class DossierFilter:
    """What a dossier list is narrowed to: a subtree, a state, a procedure, due and receipt
    times (``*_from`` inclusive, ``*_before`` / ``*_until`` exclusive)."""

    root: str | None = None
    state: str | None = None
    procedure: str | None = None
    due_before: datetime | None = None
    due_after: datetime | None = None
    received_from: datetime | None = None
    received_until: datetime | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        d = _D
        if self.root is not None:
            query = query.where(d.c.unit_code.in_(subtree_codes(self.root)))
        if self.state is not None:
            query = query.where(text(STATE_FILTERS[self.state]))
        if self.procedure is not None:
            query = query.where(d.c.procedure_code == self.procedure)
        if self.due_before is not None:
            query = query.where(d.c.due_at < self.due_before)
        if self.due_after is not None:
            query = query.where(d.c.due_at >= self.due_after)
        if self.received_from is not None:
            query = query.where(d.c.received_at >= self.received_from)
        if self.received_until is not None:
            query = query.where(d.c.received_at < self.received_until)
        return query


async def list_dossiers(
    session: AsyncSession,
    narrowed: DossierFilter,
    *,
    now: datetime,
    max_supp: int,
    after: str | None,
    limit: int,
) -> list[Row[Any]]:
    d = _D
    query = select(*_dossier_fields()).select_from(d).order_by(d.c.code).limit(limit + 1)
    query = narrowed.apply(query)
    if after is not None:
        query = query.where(d.c.code > after)
    return list(await session.execute(query, {"now": now, "max_supp": max_supp}))


async def count_dossiers(
    session: AsyncSession, narrowed: DossierFilter, *, now: datetime, max_supp: int
) -> int:
    """How many dossiers the list holds in all its pages."""
    query = narrowed.apply(select(func.count()).select_from(_D))
    return int((await session.execute(query, {"now": now, "max_supp": max_supp})).scalar_one())


async def overdue(
    session: AsyncSession,
    *,
    root: str,
    now: datetime,
    max_supp: int,
    after: Sequence[str] | None,
    limit: int | None,
) -> list[Row[Any]]:
    """Open overdue dossiers of ``root``'s subtree, most overdue first (keyset on due, code)."""
    query = overdue_statement(root, after, limit)
    return list(await session.execute(query, {"now": now, "max_supp": max_supp}))


def overdue_statement(
    root: str, after: Sequence[str] | None = None, limit: int | None = None
) -> Select[Any]:
    """The overdue list's statement (it reads the partial index of open, counted dossiers);
    ``:now`` and ``:max_supp`` are bound when it runs."""
    d, u = _D, _U
    query = (
        select(
            d.c.code, d.c.unit_code, u.c.name.label("unit_name"), d.c.procedure_code,
            d.c.received_at, d.c.due_at, d.c.clock_stopped_at, d.c.apology_issued_at,
            d.c.apology_new_due_at,
        )
        .select_from(d.join(u, u.c.code == d.c.unit_code))
        .where(d.c.unit_code.in_(subtree_codes(root)), text(overdue_sql()))
        .order_by(d.c.due_at, d.c.code)
    )  # fmt: skip
    if after is not None:
        query = query.where(_after_due(after))
    return query if limit is None else query.limit(limit + 1)


def _after_due(after: Sequence[str]) -> ColumnElement[bool]:
    """Past the (due time as ISO text, code) a deadline-ordered page ended on."""
    return tuple_(_D.c.due_at, _D.c.code) > tuple_(datetime.fromisoformat(after[0]), after[1])


async def overdue_counts(
    session: AsyncSession, *, root: str, now: datetime, max_supp: int
) -> list[Row[Any]]:
    d = _D
    query = (
        select(
            d.c.unit_code,
            func.count().label("overdue"),
            func.count().filter(d.c.apology_issued_at.is_(None)).label("without_apology"),
        )
        .where(d.c.unit_code.in_(subtree_codes(root)), text(overdue_sql()))
        .group_by(d.c.unit_code)
        .order_by(d.c.unit_code)
    )
    return list(await session.execute(query, {"now": now, "max_supp": max_supp}))


async def due_soon(
    session: AsyncSession,
    *,
    root: str,
    now: datetime,
    until: datetime,
    after: Sequence[str] | None,
    limit: int,
) -> list[Row[Any]]:
    d = _D
    query = (
        select(*_dossier_fields())
        .select_from(d)
        .where(
            d.c.unit_code.in_(subtree_codes(root)),
            text(
                "d.end_at IS NULL AND d.counted AND d.clock_stopped_at IS NULL "
                "AND d.due_at >= :now AND d.due_at <= :until"
            ),
        )
        .order_by(d.c.due_at, d.c.code)
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(_after_due(after))
    return list(await session.execute(query, {"now": now, "until": until}))


async def open_codes_from(
    session: AsyncSession, day: date, after: str | None, limit: int
) -> list[str]:
    """Open dossiers whose deadline arithmetic may cross ``day`` (received on or before it and
    not yet due before it, or with a stopped clock)."""
    rows = await session.execute(
        text(
            """
            SELECT code FROM dossiers
            WHERE end_at IS NULL AND received_at < CAST(:day AS date) + 2
              AND (due_at IS NULL OR due_at >= CAST(:day AS date) - 2
                   OR clock_stopped_at IS NOT NULL OR jsonb_array_length(pauses) > 0)
              AND (CAST(:after AS text) IS NULL OR code > :after)
            ORDER BY code LIMIT :limit
            """
        ),
        {"day": day, "after": after, "limit": limit},
    )
    return [r[0] for r in rows]


# --- the sweep ---------------------------------------------------------------------------


async def flag_newly_overdue(session: AsyncSession, now: datetime) -> list[Row[Any]]:
    """Mark open dossiers that turned overdue since the last sweep; returns them.

    Reads only the partial index of open, unflagged dossiers up to ``now``: the cost follows
    the number of dossiers changing state, not the size of the table.
    """
    rows = await session.execute(
        text(
            """
            UPDATE dossiers d SET overdue_since = :now
            WHERE d.end_at IS NULL AND d.overdue_since IS NULL AND d.overdue_at <= :now
            RETURNING d.code, d.unit_code, d.procedure_code, d.due_at, d.overdue_at
            """
        ),
        {"now": now},
    )
    return list(rows)


async def flag_newly_due_soon(
    session: AsyncSession, now: datetime, until: datetime
) -> list[Row[Any]]:
    rows = await session.execute(
        text(
            """
            UPDATE dossiers d SET due_soon_since = :now
            WHERE d.end_at IS NULL AND d.due_soon_since IS NULL AND d.counted
              AND d.clock_stopped_at IS NULL AND d.due_at > :now AND d.due_at <= :until
            RETURNING d.code, d.unit_code, d.procedure_code, d.due_at
            """
        ),
        {"now": now, "until": until},
    )
    return list(rows)


async def digest_counts(
    session: AsyncSession, roots: Sequence[str], now: datetime, until: datetime, max_supp: int
) -> list[Row[Any]]:
    """Per root unit, over its whole subtree: open, overdue (with and without an apology
    letter) and due-soon dossiers — one statement for every root."""
    rows = await session.execute(
        text(
            f"""
            WITH RECURSIVE{UNIT_PAIRS_CTE},
            tree AS (
                SELECT ancestor AS root, code FROM unit_pairs
                WHERE ancestor = ANY(CAST(:roots AS text[]))
            )
            SELECT t.root AS unit_code,
                   count(d.code) AS open,
                   count(d.code) FILTER (WHERE {overdue_sql()}) AS overdue,
                   count(d.code) FILTER (WHERE {overdue_sql()} AND d.apology_issued_at IS NULL)
                       AS overdue_without_apology,
                   count(d.code) FILTER (WHERE d.clock_stopped_at IS NULL
                       AND d.due_at > :now AND d.due_at <= :until) AS due_soon
            FROM tree t
            LEFT JOIN dossiers d ON d.unit_code = t.code AND d.end_at IS NULL AND d.counted
            GROUP BY t.root ORDER BY t.root
            """  # noqa: S608
        ),
        {"roots": list(roots), "now": now, "until": until, "max_supp": max_supp},
    )
    return list(rows)


async def overdue_counts_at(
    session: AsyncSession, *, root: str, at: datetime, max_supp: int
) -> list[Row[Any]]:
    """Per unit of ``root``'s subtree: dossiers pending and overdue at instant ``at``, and
    those without an apology letter. Aggregate only (no dossier is named): public data."""
    d, u = _D, _U
    s = subtree_codes(root).subquery("s")
    overdue_then = and_(d.c.unit_code == s.c.code, text(overdue_sql(at=":at", rewind=True)))
    query = (
        select(
            s.c.code.label("unit_code"), u.c.name.label("unit_name"), u.c.level,
            func.count(d.c.code).label("overdue"),
            func.count(d.c.code)
            .filter(text("d.apology_issued_at IS NULL OR d.apology_issued_at > :at"))
            .label("without_apology"),
        )
        .select_from(s.join(u, u.c.code == s.c.code).outerjoin(d, overdue_then))
        .group_by(s.c.code, u.c.name, u.c.level)
        .order_by(text("overdue DESC"), s.c.code)
    )  # fmt: skip
    return list(await session.execute(query, {"at": at, "max_supp": max_supp}))
