"""All SQL about scores: dossier-derived counts, snapshots, rankings, period states."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import Row, delete, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.sql import columns_of
from app.indicators.catalog import CatalogVersion
from app.indicators.repository import resolved_counts_ctes
from app.scores.columns import (
    ON_TIME_KIND,
    RECORDS,
    RECORDS_SUBMITTED,
    SUBMITTED,
    version_columns,
)
from app.scores.models import RECORD_COUNTS, PeriodState, RankingSnapshot, ScoreSnapshot
from app.units.repository import UNIT_PAIRS_CTE


async def mark_dirty(session: AsyncSession, periods: Sequence[str], kind: str) -> None:
    """Queue periods for a refresh; input for a closed period becomes a pending amendment."""
    if not periods:
        return
    await session.execute(
        text(
            """
            WITH p AS (SELECT DISTINCT unnest(CAST(:periods AS text[])) AS period),
            closed AS (
                SELECT p.period FROM p JOIN period_states s ON s.period = p.period
                WHERE s.status = 'closed'
            ),
            amended AS (
                INSERT INTO period_amendments (period, kind, count)
                SELECT period, :kind, 1 FROM closed RETURNING 1
            )
            INSERT INTO score_dirty_periods (period)
            SELECT period FROM p WHERE period NOT IN (SELECT period FROM closed)
            ON CONFLICT (period) DO NOTHING
            """
        ),
        {"periods": list(periods), "kind": kind},
    )


async def lock_period(session: AsyncSession, period: str) -> None:
    """One refresh of a period at a time (the worker and on-demand reads may race): held
    until the transaction ends."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('scores:' || :p))"), {"p": period}
    )


async def take_dirty(session: AsyncSession) -> list[str]:
    rows = await session.execute(text("DELETE FROM score_dirty_periods RETURNING period"))
    return sorted(r[0] for r in rows)


async def take_mark(session: AsyncSession, period: str) -> bool:
    """Remove one period's mark (a refresh is about to read its inputs); True if it had one."""
    taken = await session.scalar(
        text("DELETE FROM score_dirty_periods WHERE period = :p RETURNING true"), {"p": period}
    )
    return bool(taken)


async def mark_if_open(session: AsyncSession, period: str) -> None:
    """Queue a period computed before and still open for a refresh (a closed one keeps its
    published figures: no amendment either)."""
    await session.execute(
        text(
            "INSERT INTO score_dirty_periods (period) SELECT period FROM period_states "
            "WHERE period = :p AND status = 'open' ON CONFLICT (period) DO NOTHING"
        ),
        {"p": period},
    )


# A mark of a closed period waits for nothing: its input became a pending amendment (a mark
# made just before closing is dropped by the worker's next run).
_OPEN = (
    "NOT EXISTS (SELECT 1 FROM period_states s WHERE s.period = d.period AND s.status = 'closed')"
)


_PENDING = text(
    "SELECT d.period FROM score_dirty_periods d "  # noqa: S608 - constants
    f"WHERE d.period = ANY(CAST(:periods AS text[])) AND {_OPEN}"
)


async def pending(session: AsyncSession, periods: Sequence[str]) -> set[str]:
    """The periods among ``periods`` with input waiting for a refresh (a mark)."""
    rows = await session.execute(_PENDING, {"periods": list(periods)})
    return {name for (name,) in rows}


_RANKING_HEAD = text(
    "SELECT (SELECT etag FROM ranking_snapshots WHERE key = :key), "  # noqa: S608 - constants
    f"EXISTS (SELECT 1 FROM score_dirty_periods d WHERE d.period = :period AND {_OPEN})"
)


async def ranking_head(session: AsyncSession, key: str, period: str) -> tuple[str | None, bool]:
    """``(stored ETag or None, inputs pending)`` of a ranking: one round trip, two primary-key
    lookups (rankings are polled)."""
    row = (await session.execute(_RANKING_HEAD, {"key": key, "period": period})).one()
    return row[0], bool(row[1])


async def latest_scored_month(session: AsyncSession, up_to: str) -> str | None:
    """The latest month up to ``up_to`` with score snapshots in its current revision."""
    found: str | None = await session.scalar(
        text(
            """
            SELECT max(s.period) FROM period_states s
            WHERE s.period ~ '^\\d{4}-\\d{2}$' AND s.period <= :up_to
              AND EXISTS (SELECT 1 FROM score_snapshots x
                          WHERE x.period = s.period AND x.revision = s.revision)
            """
        ),
        {"up_to": up_to},
    )
    return found


async def state(session: AsyncSession, period: str) -> PeriodState:
    """The period's state row, created open on first use."""
    await session.execute(
        insert(PeriodState)
        .values(period=period)
        .on_conflict_do_nothing(index_elements=[PeriodState.period])
    )
    row = await session.get(PeriodState, period, populate_existing=True)
    assert row is not None
    return row


async def version(session: AsyncSession, period: str) -> tuple[int, int] | None:
    """``(revision, version)``: the cheap check behind the ETags of scores and rankings."""
    row = (
        await session.execute(
            select(PeriodState.revision, PeriodState.version).where(PeriodState.period == period)
        )
    ).first()
    return (row[0], row[1]) if row else None


async def versions(session: AsyncSession, periods: Sequence[str]) -> list[Any]:
    """``(period, revision, version, pending)`` of each of ``periods`` (revision and version
    null if never computed; pending: input waits for a refresh), in one statement: what the
    ETags of scorecards and histories are made of."""
    rows = await session.execute(
        text(
            """
            SELECT p.period, s.revision, s.version,
                   (d.period IS NOT NULL AND s.status IS DISTINCT FROM 'closed') AS pending
            FROM unnest(CAST(:periods AS text[])) AS p(period)
            LEFT JOIN period_states s ON s.period = p.period
            LEFT JOIN score_dirty_periods d ON d.period = p.period
            ORDER BY p.period
            """
        ),
        {"periods": list(periods)},
    )
    return list(rows)


async def existing_state(session: AsyncSession, period: str) -> PeriodState | None:
    """The period's state row if it has one (a read: nothing is created)."""
    return await session.get(PeriodState, period, populate_existing=True)


async def bump(session: AsyncSession, period: str, at: datetime) -> None:
    await session.execute(
        update(PeriodState)
        .where(PeriodState.period == period)
        .values(version=PeriodState.version + 1, refreshed_at=at)
    )


_UNITS_WITH_ANCESTORS = text(
    f"""
    WITH RECURSIVE{UNIT_PAIRS_CTE}
    SELECT u.code, u.name, u.level, u.valid_from, u.valid_to,
           coalesce(array_agg(p.ancestor ORDER BY p.depth) FILTER (WHERE p.depth > 0), '{{}}')
               AS ancestors
    FROM units u JOIN unit_pairs p ON p.code = u.code
    GROUP BY u.code ORDER BY u.code
    """  # noqa: S608 - built from constants
)


async def units_with_ancestors(session: AsyncSession) -> list[Row[Any]]:
    """Every unit with its validity and ancestors (nearest first)."""
    rows = await session.execute(_UNITS_WITH_ANCESTORS)
    return list(rows)


_ON_TIME = text(
    f"""
    WITH RECURSIVE per_unit AS (
        SELECT s.unit_code, m.month, sum(s.denominator) AS denominator,
               sum(s.numerator) AS numerator
        FROM unnest(CAST(:months AS date[])) AS m (month)
        JOIN on_time_steps s ON s.month <= m.month
        GROUP BY s.unit_code, m.month
        HAVING sum(s.denominator) <> 0
    ),{UNIT_PAIRS_CTE}
    SELECT t.ancestor AS unit_code, sum(p.numerator)::bigint AS numerator,
           sum(p.denominator)::bigint AS denominator
    FROM unit_pairs t JOIN per_unit p ON p.unit_code = t.code
    GROUP BY t.ancestor, p.month
    """  # noqa: S608 - built from constants
)
_ON_TIME_COLUMNS = text(
    "SELECT coalesce(array_agg(unit_code), '{}') AS unit_code, "  # noqa: S608 - constants
    "coalesce(array_agg(numerator), '{}') AS numerator, "
    "coalesce(array_agg(denominator), '{}') AS denominator "
    f"FROM ({_ON_TIME.text}) q"
)


async def on_time_columns(session: AsyncSession, months: Sequence[date]) -> dict[str, list[Any]]:
    """Indicator 2.1 per unit *subtree* for each local month of ``months`` (their first days),
    one array per column (unit_code, numerator, denominator; a unit once per month it counts
    in, no row object per unit).

    Dossiers received or processed in a month count in its denominator; the numerator holds
    those finished in it early or on time plus those still pending at its end and within
    time. The counts are the steps the database keeps per unit and month as dossiers are
    written (``on_time_steps``, made ready by a refresh), summed up to each month per unit,
    then rolled up the unit tree — neither the dossiers nor their events are read.
    """
    async with _planned(session):  # as record_columns: no JIT for the tree's estimates
        row = (await session.execute(_ON_TIME_COLUMNS, {"months": list(months)})).one()
    return {"unit_code": row[0], "numerator": row[1], "denominator": row[2]}


# What the record-based conditions read of a dossier's facts, kept on the dossier as flags
# (``dossiers.record_facts``, set by the database from ``dossier_facts``: see migration 0022;
# NULL: no facts were kept, as when no record said).
RECORD_FACTS = {
    "result_with_file": 1,  # results_with_file > 0
    "fees_all_zero": 2,  # fees_all_zero
    "payment_stated": 4,  # payment_code IS NOT NULL
    "payment_online": 8,  # payment_code IN ('1', '2')
    "digitised_parts_stated": 16,  # has_digitised_parts IS NOT NULL
    "digitised_parts": 32,  # has_digitised_parts
    "paper_digitised": 64,  # papers_digitised > 0
    "paper_with_file": 128,  # papers_with_file > 0
    "paper_from_store": 256,  # papers_from_national_store > 0
    # VNeID, a paper from the store, or the national population database among DSKetNoiCSDL's
    # MaCSDL: "CSDLQGDC" as real one-stop systems send it, "1" as the portal numbers it.
    "population_data": 512,
}

_SUMS_SQL = ", ".join(f"sum(p.{name})::bigint AS {name}" for name in RECORD_COUNTS)
_RECORD_COUNTS = text(
    f"""
    WITH RECURSIVE per_unit AS (
        SELECT unit_code, {", ".join(f"sum({n}) AS {n}" for n in RECORD_COUNTS)}
        FROM record_counts
        WHERE month >= :first AND month <= :last
        GROUP BY unit_code
        HAVING sum(received) <> 0
    ),{UNIT_PAIRS_CTE}
    SELECT t.ancestor AS unit_code, {_SUMS_SQL}
    FROM unit_pairs t JOIN per_unit p ON p.unit_code = t.code
    GROUP BY t.ancestor
    """  # noqa: S608 - built from the constants above
)
_RECORD_COLUMNS = text(
    "SELECT coalesce(array_agg(unit_code), '{}') AS unit_code, "  # noqa: S608 - constants
    + ", ".join(f"coalesce(array_agg({name}), '{{}}') AS {name}" for name in RECORD_COUNTS)
    + f" FROM ({_RECORD_COUNTS.text}) q"
)


async def rebuild_kept_counts_if_basis_differs(
    session: AsyncSession, timezone: str, max_supplement_requests: int
) -> bool:
    """Make sure ``record_counts`` and ``on_time_steps`` are kept under ``timezone`` and
    ``max_supplement_requests``: both rebuilt from the dossiers when kept under another
    (``CHISO_TIMEZONE`` or ``CHISO_MAX_SUPPLEMENT_REQUESTS`` changed) or under none (the basis
    emptied). True when they were rebuilt. Writers of dossiers wait for a rebuild."""
    basis = {"zone": timezone, "max_supp": max_supplement_requests}
    kept = await session.execute(
        text(
            "SELECT 1 FROM kept_count_basis "
            "WHERE timezone = :zone AND max_supplement_requests = :max_supp"
        ),
        basis,
    )
    if kept.first() is not None:
        return False
    await session.execute(text("SELECT chiso_rebuild_kept_counts(:zone, :max_supp)"), basis)
    return True


async def compact_kept_counts(session: AsyncSession, first: date, last: date) -> None:
    """Compact the kept counts (record-based and 2.1's) of the local months ``first`` to
    ``last`` (their first days) to one row per unit and month — every statement that writes
    dossiers appends rows of changes — unless another refresh is compacting them."""
    await session.execute(
        text(
            "SELECT chiso_compact_kept_counts(:first, :last) "
            "WHERE pg_try_advisory_xact_lock(hashtext('chiso:kept-counts'))"
        ),
        {"first": first, "last": last},
    )


async def record_columns(session: AsyncSession, first: date, last: date) -> dict[str, list[Any]]:
    """The record-based indicators' counts per unit *subtree* for dossiers received in the
    local months ``first`` to ``last`` (their first days), one array per column: the units'
    kept counts summed (``record_counts``), then rolled up the unit tree."""
    # Planned without JIT: the tree's recursive CTE makes the estimates millions of rows for a
    # few thousand, and compiling them cost 0.5 s at national scale, 50 × the statement itself.
    async with _planned(session):
        row = (await session.execute(_RECORD_COLUMNS, {"first": first, "last": last})).one()
    return dict(row._mapping)


async def snapshots(
    session: AsyncSession,
    period: str,
    revision: int | None = None,
    unit_code: str | None = None,
) -> list[ScoreSnapshot]:
    """Snapshots of the period's current revision (or the one asked for), of every unit or of
    one (a primary-key lookup: scorecards are polled)."""
    if revision is None:
        current = await version(session, period)
        if current is None:
            return []
        revision = current[0]
    query = select(ScoreSnapshot).where(
        ScoreSnapshot.period == period, ScoreSnapshot.revision == revision
    )
    if unit_code is not None:
        query = query.where(ScoreSnapshot.unit_code == unit_code)
    return list((await session.scalars(query)).all())


_SAVE_RANKINGS = text(
    """
    INSERT INTO ranking_snapshots (key, period, etag, body, computed_at)
    SELECT * FROM unnest(CAST(:key AS text[]), CAST(:period AS text[]), CAST(:etag AS text[]),
                         CAST(:body AS bytea[]), CAST(:computed_at AS timestamptz[]))
    ON CONFLICT (key) DO UPDATE
    SET etag = excluded.etag, body = excluded.body, computed_at = excluded.computed_at
    """
)


async def peer_rows(session: AsyncSession, period: str) -> list[Row[Any]]:
    """What rankings compare with of the period's current snapshots: ``(unit_code, total,
    grade, completeness, groups, catalog_version)`` (not the metrics)."""
    rows = await session.execute(
        text(
            "SELECT x.unit_code, x.total, x.grade, x.completeness, x.groups, x.catalog_version "
            "FROM score_snapshots x JOIN period_states s "
            "ON s.period = x.period AND s.revision = x.revision WHERE x.period = :p"
        ),
        {"p": period},
    )
    return list(rows)


async def save_rankings(session: AsyncSession, rankings: Sequence[dict[str, Any]]) -> None:
    if not rankings:
        return
    await session.execute(
        _SAVE_RANKINGS, columns_of(rankings, ("key", "period", "etag", "body", "computed_at"))
    )


async def ranking(session: AsyncSession, key: str) -> RankingSnapshot | None:
    return await session.get(RankingSnapshot, key)


async def rankings_of(session: AsyncSession, period: str) -> list[Row[str, str, bytes, datetime]]:
    """Every stored ranking of a period: ``(key, period, body, computed_at)``."""
    rows = await session.execute(
        select(
            RankingSnapshot.key,
            RankingSnapshot.period,
            RankingSnapshot.body,
            RankingSnapshot.computed_at,
        ).where(RankingSnapshot.period == period)
    )
    return list(rows.all())


async def official(
    session: AsyncSession, periods: Sequence[str], unit_code: str | None = None
) -> list[Row[Any]]:
    rows = await session.execute(
        text(
            "SELECT o.unit_code, o.period, o.total, o.score_delta, o.group_scores, u.name, "
            "u.level FROM official_scores o JOIN units u ON u.code = o.unit_code "
            "WHERE o.period = ANY(CAST(:periods AS text[])) "
            "AND (CAST(:unit AS text) IS NULL OR o.unit_code = :unit)"
        ),
        {"periods": list(periods), "unit": unit_code},
    )
    return list(rows)


async def history(
    session: AsyncSession, unit_code: str, periods: Sequence[str]
) -> list[ScoreSnapshot]:
    rows = await session.scalars(
        select(ScoreSnapshot)
        .join(
            PeriodState,
            (PeriodState.period == ScoreSnapshot.period)
            & (PeriodState.revision == ScoreSnapshot.revision),
        )
        .where(ScoreSnapshot.unit_code == unit_code, ScoreSnapshot.period.in_(list(periods)))
        .order_by(ScoreSnapshot.period)
    )
    return list(rows.all())


async def amendments(session: AsyncSession, period: str) -> int:
    count = await session.scalar(
        text("SELECT coalesce(sum(count), 0) FROM period_amendments WHERE period = :p"),
        {"p": period},
    )
    return int(count or 0)


async def close(session: AsyncSession, period: str, by: str, at: datetime) -> None:
    await session.execute(
        update(PeriodState)
        .where(PeriodState.period == period)
        .values(status="closed", closed_at=at, closed_by=by)
    )


async def open_months(session: AsyncSession) -> list[str]:
    """The months whose state is open (quarters and years are never closed on a schedule)."""
    rows = await session.execute(
        text(
            "SELECT period FROM period_states WHERE status = 'open' AND period ~ '^\\d{4}-\\d{2}$'"
        )
    )
    return [name for (name,) in rows]


async def reopen(session: AsyncSession, period: str) -> None:
    """A new revision: the closed one stays as it was published."""
    await session.execute(
        update(PeriodState)
        .where(PeriodState.period == period)
        .values(status="open", revision=PeriodState.revision + 1, closed_at=None, closed_by=None)
    )
    await session.execute(text("DELETE FROM period_amendments WHERE period = :p"), {"p": period})


# --- every unit's score in one statement -----------------------------------------------------

_EXACT = "numeric(1000, 36)"


def _json_float(value: str) -> str:
    """SQL: a numeric as the JSON text the snapshots hold for ``float(value)``: ``2.0``,
    ``1.3333333333333333`` (the shortest text that reads back as the same float, as Python
    writes it), ``null`` for NULL."""
    f = f"CAST({value} AS float8)"
    return (
        f"CASE WHEN {value} IS NULL THEN 'null' "
        f"WHEN {f} = trunc({f}) THEN CAST(CAST({f} AS numeric(40, 1)) AS text) "
        f"ELSE CAST({f} AS text) END"
    )


def _json_cents(value: str) -> str:
    """SQL: a numeric of at most two decimals as the JSON text of ``float(value)``: its digits
    without trailing zeros (``2.3``), ``2.0`` when whole, ``null`` for NULL (what
    :func:`_json_float` gives, without the trip through ``float8``)."""
    return (
        f"CASE WHEN {value} IS NULL THEN 'null' "
        f"WHEN {value} = trunc({value}) THEN CAST(CAST({value} AS numeric(40, 1)) AS text) "
        f"ELSE CAST(trim_scale({value}) AS text) END"
    )


def _json_int(value: str) -> str:
    return f"coalesce(CAST({value} AS text), 'null')"


def _near_half_cent(value: str) -> str:
    """SQL: ``value`` lies within 1e-20 of a half-cent (where rounding could go either way)."""
    return f"coalesce(abs({value} * 100 - floor({value} * 100) - 0.5) < 1e-20, false)"


def _long(value: str) -> str:
    """SQL: ``value`` has more than 20 decimals. Sums of terms with at most 20 decimals (and
    below 1,000) are exact in Decimal's 28 digits too: only longer terms can make Decimal's
    sums round where ``numeric``'s do not."""
    scaled = f"{value} * 100000000000000000000"
    return f"coalesce({scaled} <> trunc({scaled}), false)"


# Each record-based metric's counts (app.scores.records.RULES) over the unit's row ``p``.
RECORD_RULES_SQL: dict[str, tuple[str, str]] = {
    "DOSSIER_SYNC": ("p.received", "p.reported"),
    "FULL_ONLINE_RATE": ("p.online", "p.reported"),
    "ONLINE_PAYMENT.A": ("p.paid_online", "p.charged"),
    "ORIGINAL_RESULT_AVAILABLE": ("p.electronic_result", "p.paper_result"),
    "SO_HOA_GIAY_TO_GIAI_QUYET": ("p.digitised", "p.received"),
    "REUSED_DIGITIZED_DATA": ("p.reused", "p.received"),
    "SYNCED_WITH_DVCQG_PERSONAL_STORAGE": ("p.linked_to_store", "p.received"),
    "CITIZEN_DATA_CONNECTED_DOSSIER": ("p.population_data", "p.received"),
    "DOSSIER_RECEIVING_SATISFACTION": ("p.rs_n", "p.rs_d"),
}
_SYNC, _SATISFACTION = "DOSSIER_SYNC", "DOSSIER_RECEIVING_SATISFACTION"


def _numeric_columns(prefix: str, names: Sequence[str]) -> str:
    return ", ".join(f"CAST(:{prefix}{n} AS numeric[])" for n in names)


_SCORING: dict[tuple[CatalogVersion, bool, bool, bool], Any] = {}
# For the set-based statements of a refresh: no JIT (the estimates of arrays and CTEs are
# guesses; compiling would cost more than running), room to hash and sort in memory, hash
# joins rather than sorts for merge joins, and floats written as the shortest text that reads
# back as the same float (as Python writes them). Re-ranking snapshots just written also turns
# nested loops off: their stale statistics pick quadratic ones.
_SETTINGS = {
    "jit": "off",
    "work_mem": "64MB",
    "enable_mergejoin": "off",
    "extra_float_digits": "1",
}


@asynccontextmanager
async def _planned(session: AsyncSession, **more: str) -> AsyncIterator[None]:
    """The settings above (and ``more``) for the statements run inside, reset afterwards (the
    rest of the transaction plans as usual)."""
    settings = {**_SETTINGS, **more}
    for name, value in settings.items():
        await session.execute(text(f"SET LOCAL {name} = '{value}'"))
    yield
    for name in settings:
        await session.execute(text(f"RESET {name}"))


async def score_units(
    session: AsyncSession,
    version: CatalogVersion,
    params: dict[str, Any],
    *,
    store: bool,
    own_from_arrays: bool = False,
    detail: bool = False,
) -> list[Row[Any]]:
    """Every unit's score (see :func:`_columnar_sql`): ``(unit_code, total, grade,
    completeness, exact_completeness, groups, tie)``; with ``store``, the period's snapshots
    are written too (the caller deleted the revision's old ones). One statement, planned as
    :data:`_SETTINGS` says."""
    key = (version, store, own_from_arrays, detail)  # the version's figures, not just its id
    if key not in _SCORING:
        _SCORING[key] = text(_columnar_sql(version, store, own_from_arrays, detail))
    async with _planned(session):
        rows = await session.execute(_SCORING[key], params)
    return list(rows)


async def delete_snapshots(session: AsyncSession, period: str, revision: int) -> None:
    await session.execute(
        delete(ScoreSnapshot).where(
            ScoreSnapshot.period == period, ScoreSnapshot.revision == revision
        )
    )


async def update_snapshots(
    session: AsyncSession,
    period: str,
    revision: int,
    values: Sequence[dict[str, Any]],
    *,
    rerank: bool,
) -> None:
    """Replace the figures of some units' snapshots (only the rows whose figures change are
    written: primary-key probes), then, with ``rerank`` (a total moved), rank the period's
    units anew (only the rows whose ranks change are written)."""
    if not values:
        return
    names = ("unit_code", "total", "grade", "completeness", "groups", "metrics")
    params = columns_of(values, names)
    for name in ("groups", "metrics"):
        params[name] = [orjson.dumps(v).decode() for v in params[name]]
    async with _planned(session):
        await session.execute(
            text(
                """
                UPDATE score_snapshots s
                SET total = v.total, grade = v.grade, completeness = v.completeness,
                    groups = v.groups::jsonb, metrics = v.metrics::json
                FROM unnest(CAST(:unit_code AS text[]), CAST(:total AS numeric[]),
                            CAST(:grade AS text[]), CAST(:completeness AS numeric[]),
                            CAST(:groups AS text[]), CAST(:metrics AS text[]))
                    AS v(unit_code, total, grade, completeness, groups, metrics)
                WHERE s.period = :period AND s.revision = :revision
                  AND s.unit_code = v.unit_code
                  AND (s.total, s.grade, s.completeness, s.groups, s.metrics::jsonb)
                      IS DISTINCT FROM (v.total, v.grade, v.completeness, v.groups::jsonb,
                                        v.metrics::jsonb)
                """
            ),
            {**params, "period": period, "revision": revision},
        )
    if rerank:
        async with _planned(session, enable_nestloop="off"):
            await _rerank(session, period, revision)


async def _rerank(session: AsyncSession, period: str, revision: int) -> None:
    await session.execute(
        text(
            """
            UPDATE score_snapshots s SET rank = r.rank, ranked_of = r.ranked_of
            FROM (
                SELECT x.unit_code,
                       CASE WHEN x.total IS NOT NULL THEN rank() OVER (
                           PARTITION BY u.level ORDER BY x.total DESC NULLS LAST) END AS rank,
                       count(x.total) OVER (PARTITION BY u.level) AS ranked_of
                FROM score_snapshots x JOIN units u ON u.code = x.unit_code
                WHERE x.period = :period AND x.revision = :revision
            ) r
            WHERE s.period = :period AND s.revision = :revision AND s.unit_code = r.unit_code
              AND (s.rank, s.ranked_of) IS DISTINCT FROM (r.rank, r.ranked_of)
            """
        ),
        {"period": period, "revision": revision},
    )


# --- the columnar form: one row per unit, one column per counted code ------------------------
#
# From the period's counts to each counted code's points, each metric's, each group's, each
# unit's total, completeness, grade and rank among the units of its level, and the stored
# snapshot's JSON: what app.indicators.scoring.score and app.scores.records compute unit by
# unit, for every unit at once. The version's codes are columns of one row per unit (not rows
# of a unit × code grid: no joins, sorts or aggregates over a grid; each figure is one
# expression of its unit's row). The statement is generated for a catalog version (its figures
# are constants of the text) and kept per version.
#
# Points are ``numeric`` with 36 decimals (the Decimal engine keeps 40 significant digits):
# both give the same figures to the stored precision. ``tie`` marks the units whose sums lie
# within 1e-20 of a half-cent and hold a term of more than 20 decimals, the one case where
# Decimal's 28-digit running sums may round the other way: the caller rescores those with the
# Decimal engine.
#
# Layer 4 (each code's points) is MATERIALIZED: the layers above name each code's points many
# times (the metric's points, its rounding, its JSON, the near-tie tests), and PostgreSQL,
# which inlines a CTE named once, would otherwise compute the whole expression at every
# mention. Computed once per unit: 0.99 → 0.62 s for 7,356 units (small scale).


def _lit(value: Any) -> str:
    return f"CAST('{value}' AS numeric)"


def _q(name: str) -> str:
    """A code as part of a column name (``ONLINE_PAYMENT.A`` → ``online_payment_a``)."""
    return name.lower().replace(".", "_")


def _columnar_sql(version: CatalogVersion, store: bool, own_from_arrays: bool, detail: bool) -> str:
    cols = version_columns(version)
    codes = list(
        zip(
            cols["c_code"], cols["c_metric"], cols["c_component"], cols["c_max"],
            cols["c_threshold"], cols["c_cap"], cols["c_empty"], cols["c_kind"], strict=True,
        )
    )  # fmt: skip
    fed = [c[0] for c in codes if c[7] in (RECORDS, RECORDS_SUBMITTED)]
    kind = {c[0]: c[7] for c in codes}
    parts = [code for code in (_SYNC, _SATISFACTION) if fed and code in kind]
    admin_codes = sorted(set(fed) | set(parts))
    records = list(RECORD_COUNTS)

    if own_from_arrays:
        resolved = """
    resolved AS (
        SELECT * FROM unnest(CAST(:sub_unit AS text[]), CAST(:sub_code AS text[]),
                             CAST(:sub_admin AS boolean[]), CAST(:sub_n AS numeric[]),
                             CAST(:sub_d AS numeric[]))
            AS s(unit_code, code, admin, numerator, denominator)
    )"""
    else:
        resolved = resolved_counts_ctes()
    pivot = []
    for code in kind:
        q = _q(code)
        pivot.append(f"max(numerator) FILTER (WHERE NOT admin AND code = '{code}') AS own_n_{q}")
        pivot.append(f"max(denominator) FILTER (WHERE NOT admin AND code = '{code}') AS own_d_{q}")
    for code in admin_codes:
        q = _q(code)
        pivot.append(f"max(numerator) FILTER (WHERE admin AND code = '{code}') AS adm_n_{q}")
        pivot.append(f"max(denominator) FILTER (WHERE admin AND code = '{code}') AS adm_d_{q}")

    # Layer 2: what the record-based rules read.
    layer2: list[str] = []
    if fed:
        sync, sat = _q(_SYNC), _q(_SATISFACTION)
        sync_total = (
            f"CASE WHEN adm_d_{sync} IS NOT NULL THEN adm_d_{sync} ELSE own_d_{sync} END"
            if _SYNC in parts
            else "NULL::numeric"
        )
        if _SATISFACTION in parts:
            cn = f"CASE WHEN adm_d_{sat} IS NOT NULL THEN adm_n_{sat} ELSE own_n_{sat} END"
            cd = f"CASE WHEN adm_d_{sat} IS NOT NULL THEN adm_d_{sat} ELSE own_d_{sat} END"
        else:
            cn = cd = "NULL::numeric"
        layer2 = [
            f"greatest(received, coalesce({sync_total}, 0)) AS reported",
            f"{cn} AS cn",
            f"{cd} AS cd",
        ]
    rs = """CASE WHEN cd IS NULL THEN NULL
                    WHEN dossiers = 0 OR cd = 0 THEN greatest(0,
                        CASE WHEN dossiers <> 0 THEN dossiers ELSE cd END
                        - (CASE WHEN dossiers <> 0 THEN dossiers - timely ELSE 0 END)
                        - (CASE WHEN cd <> 0 THEN cn ELSE 0 END))
                    ELSE greatest(0, dossiers * cd
                        - ((dossiers - timely) * cd + cn * dossiers)) END AS rs_n,
               CASE WHEN cd IS NULL THEN NULL
                    WHEN dossiers = 0 OR cd = 0
                        THEN CASE WHEN dossiers <> 0 THEN dossiers ELSE cd END
                    ELSE dossiers * cd END AS rs_d"""

    # Layer 3: each code's scored counts (and the candidates of a record-fed one).
    layer3: list[str] = []
    for code, _, _, _, _, _, _, k in codes:
        q = _q(code)
        if k in (RECORDS, RECORDS_SUBMITTED):
            rule_n, rule_d = (part.replace("p.", "") for part in RECORD_RULES_SQL[code])
            layer3 += [f"{rule_n} AS com_n_{q}", f"{rule_d} AS com_d_{q}"]
            if k == RECORDS:
                layer3 += [
                    f"CASE WHEN adm_d_{q} IS NOT NULL THEN adm_n_{q} ELSE {rule_n} END AS n_{q}",
                    f"CASE WHEN adm_d_{q} IS NOT NULL THEN adm_d_{q} ELSE {rule_d} END AS d_{q}",
                ]
            else:
                layer3 += [f"{rule_n} AS n_{q}", f"{rule_d} AS d_{q}"]
        elif k == ON_TIME_KIND:
            layer3 += [
                f"CASE WHEN has_ot THEN ot_n ELSE own_n_{q} END AS n_{q}",
                f"CASE WHEN has_ot THEN ot_d ELSE own_d_{q} END AS d_{q}",
            ]
        else:
            assert k == SUBMITTED
            layer3 += [f"own_n_{q} AS n_{q}", f"own_d_{q} AS d_{q}"]

    def points(code: str, n: str, d: str) -> str:
        _, _, _, maxv, threshold, cap, empty, _ = next(c for c in codes if c[0] == code)
        top = maxv if cap is None else min(cap, maxv)
        on_empty = {"missing": "NULL", "full": _lit(top)}.get(empty, "0")
        ratio = f"CAST({_lit(maxv)} * {n} AS {_EXACT}) / {d}"
        if threshold is not None:
            ratio = f"{ratio} / {_lit(threshold)}"
        bounds = ", ".join(_lit(b) for b in ([cap] if cap is not None else []) + [maxv])
        return (
            f"CASE WHEN {d} IS NULL THEN NULL WHEN {d} = 0 THEN {on_empty} "
            f"ELSE least({bounds}, {ratio}) END"
        )

    def candidate(code: str, n: str, d: str, name: str) -> str:
        """A candidate's JSON (layer 5), its rounded points computed once in layer 4."""
        layer4.append(f"round({points(code, n, d)}, 2) AS {name}")
        return (
            f"""CASE WHEN {d} IS NULL THEN 'null' ELSE concat('{{"numerator":', {n}, """
            f"""',"denominator":', {d}, ',"points":', {_json_cents(name)}, '}}') END"""
        )

    # Layer 4: points, and each candidate's rounded points; layer 5 writes the JSON of each
    # code's own part from them (each figure computed once, however often the JSON names it).
    layer4: list[str] = []
    origins: list[str] = []
    for code, *_, k in codes:
        q = _q(code)
        layer4.append(f"{points(code, f'n_{q}', f'd_{q}')} AS p_{q}")
        if k == RECORDS:
            origin = (
                f"""concat(',"scored_from":"', CASE WHEN adm_d_{q} IS NOT NULL THEN 'admin' """
                f"""ELSE 'records' END, '","computed":', """
                f"{candidate(code, f'com_n_{q}', f'com_d_{q}', f'cp_com_{q}')}, "
                f"""',"submitted":', {candidate(code, f"own_n_{q}", f"own_d_{q}", f"cp_own_{q}")}"""
                f""", ',"admin":', {candidate(code, f"adm_n_{q}", f"adm_d_{q}", f"cp_adm_{q}")})"""
            )
        elif k == RECORDS_SUBMITTED:
            shown_n = f"CASE WHEN adm_d_{q} IS NOT NULL THEN adm_n_{q} ELSE own_n_{q} END"
            shown_d = f"CASE WHEN adm_d_{q} IS NOT NULL THEN adm_d_{q} ELSE own_d_{q} END"
            origin = (
                f"""concat(',"scored_from":"records","computed":', """
                f"{candidate(code, f'com_n_{q}', f'com_d_{q}', f'cp_com_{q}')}, "
                f"""',"submitted":', {candidate(code, shown_n, shown_d, f"cp_shown_{q}")}, """
                """',"admin":', 'null')"""
            )
        elif k == ON_TIME_KIND:
            origin = """',"scored_from":"records"'"""
        else:
            origin = """',"scored_from":"submitted"'"""
        origins.append(f"{origin} AS o_{q}")

    # Layer 5: metrics (points, JSON), their long terms and near-ties.
    layer5: list[str] = []
    metric_json: list[str] = []
    groups: dict[str, list[str]] = {}
    for m_code, m_group, m_max, m_json, composite in zip(
        cols["m_code"], cols["m_group"], cols["m_max"], cols["m_max_json"],
        cols["m_composite"], strict=True,
    ):  # fmt: skip
        mq = _q(m_code)
        groups.setdefault(m_group, []).append(m_code)
        if composite:
            parts_of = [c[0] for c in codes if c[1] == m_code]
            ps = [f"p_{_q(c)}" for c in parts_of]
            layer5.append(
                f"CASE WHEN {' OR '.join(f'{p} IS NULL' for p in ps)} THEN NULL "
                f"ELSE least({_lit(m_max)}, {' + '.join(ps)}) END AS mp_{mq}"
            )
            layer5.append(f"({' OR '.join(_long(p) for p in ps)}) AS ml_{mq}")
            components = ", ',', ".join(
                f"""concat('{{"code":"{c}","points":', {_json_float(f"p_{_q(c)}")}, """
                f"""',"numerator":', {_json_int(f"n_{_q(c)}")}, """
                f"""',"denominator":', {_json_int(f"d_{_q(c)}")}, o_{_q(c)}, '}}')"""
                for c in parts_of
            )
            numerator = denominator = "'null'"
            origin = """',"scored_from":"submitted"'"""
        else:
            layer5.append(f"p_{mq} AS mp_{mq}")
            layer5.append(f"{_long(f'p_{mq}')} AS ml_{mq}")
            components = ""
            numerator, denominator = _json_int(f"n_{mq}"), _json_int(f"d_{mq}")
            origin = f"o_{mq}"
        metric_json.append(
            f"""concat('{{"code":"{m_code}","points":', {_json_cents(f"r_{mq}")}, """
            f"""',"max_points":', '{m_json}', ',"numerator":', {numerator}, """
            f"""',"denominator":', {denominator}, ',"components":[', {components or "''"}, """
            f"""']', {origin}, '}}')"""
        )

    # Layer 6: groups and the unit.
    layer6: list[str] = []
    ties: list[str] = []
    for m_code, composite in zip(cols["m_code"], cols["m_composite"], strict=True):
        if composite:
            ties.append(f"(ml_{_q(m_code)} AND {_near_half_cent(f'mp_{_q(m_code)}')})")
    exacts, covers, longs = [], [], []
    for g, members in groups.items():
        gq = _q(g)
        mps = [f"mp_{_q(m)}" for m in members]
        maxes = dict(zip(cols["m_code"], cols["m_max"], strict=True))
        exact = (
            f"CASE WHEN {' AND '.join(f'{p} IS NULL' for p in mps)} THEN NULL "
            f"ELSE {' + '.join(f'coalesce({p}, 0)' for p in mps)} END"
        )
        layer6.append(f"{exact} AS g_{gq}")
        layer6 += [f"round(mp_{_q(m)}, 2) AS r_{_q(m)}" for m in members]
        covers.append(
            " + ".join(f"CASE WHEN {p} IS NULL THEN 0 ELSE {_lit(maxes[m])} END"
                       for p, m in zip(mps, members, strict=True))
        )  # fmt: skip
        longs.append(f"({' OR '.join(f'ml_{_q(m)}' for m in members)})")
        exacts.append(f"g_{gq}")
    layer6.append(f"({' + '.join(covers)}) AS covered")
    layer6.append(f"({' OR '.join(longs)}) AS long")
    group_ties = [
        f"(({' OR '.join(f'ml_{_q(m)}' for m in members)}) AND {_near_half_cent(f'g_{_q(g)}')})"
        for g, members in groups.items()
    ]
    total_max = cols["total_max"]
    exact_total = (
        f"CASE WHEN {' AND '.join(f'{e} IS NULL' for e in exacts)} THEN NULL "
        f"ELSE {' + '.join(f'coalesce({e}, 0)' for e in exacts)} END"
    )
    group_json = ", ',', ".join(f"""'"{g}":', {_json_cents(f"rg_{_q(g)}")}""" for g in groups)
    bands = " ".join(
        f"WHEN total >= {_lit(b_min)} THEN (CAST(:b_name AS text[]))[{i}]"
        for i, b_min in enumerate(cols["b_min"], start=1)
    )
    sql = f"""
    WITH units AS (
        SELECT * FROM unnest(CAST(:units AS text[]), CAST(:levels AS text[]))
            AS u(unit_code, level)
    ),
    {resolved},
    sub AS (
        SELECT unit_code AS s_unit, {", ".join(pivot)} FROM resolved GROUP BY unit_code
    ),
    ot AS (
        SELECT unit_code, sum(n) AS n, sum(d) AS d
        FROM unnest(CAST(:ot_unit AS text[]), CAST(:ot_n AS numeric[]),
                    CAST(:ot_d AS numeric[])) AS t(unit_code, n, d)
        GROUP BY unit_code
    ),
    rc AS (
        SELECT * FROM unnest(CAST(:rc_unit_code AS text[]), {_numeric_columns("rc_", records)})
            AS r(unit_code, {", ".join(records)})
    ),
    l1 AS (
        SELECT u.unit_code, u.level, s.*,
               t.unit_code IS NOT NULL AS has_ot, t.n AS ot_n, t.d AS ot_d,
               coalesce(t.d, 0) AS dossiers, coalesce(t.n, 0) AS timely,
               {", ".join(f"coalesce(r.{n}, 0) AS {n}" for n in records)}
        FROM units u
        LEFT JOIN sub s ON s.s_unit = u.unit_code
        LEFT JOIN ot t ON t.unit_code = u.unit_code
        LEFT JOIN rc r ON r.unit_code = u.unit_code
    ),
    l2 AS (SELECT l1.* {"".join(", " + c for c in layer2)} FROM l1),
    l2b AS (SELECT l2.* {", " + rs if fed else ""} FROM l2),
    l3 AS (SELECT l2b.*, {", ".join(layer3)} FROM l2b),
    l4 AS MATERIALIZED (SELECT l3.*, {", ".join(layer4)} FROM l3),
    l5 AS (SELECT l4.*, {", ".join(origins + layer5)} FROM l4),
    l6 AS (SELECT l5.*, {", ".join(layer6)} FROM l5),
    l7 AS (
        SELECT l6.*, {exact_total} AS exact, {", ".join(f"round({e}, 2) AS r{e}" for e in exacts)},
               {" OR ".join(ties + group_ties) or "false"} AS inner_tie
        FROM l6
    ),
    totals AS (
        SELECT unit_code, level, CASE WHEN covered > 0 THEN round(exact, 2) END AS total,
               covered, covered / {_lit(total_max)} AS completeness,
               inner_tie OR (long AND {_near_half_cent("exact")})
                   OR (covered * 10000 / {_lit(total_max)}) % 1 = 0.5 AS tie,
               CAST(concat('{{', {group_json}, '}}') AS jsonb) AS groups,
               CAST(concat('[', {", ',', ".join(metric_json)}, ']') AS json) AS metrics
        FROM l7
    ),
    final AS (
        SELECT unit_code, total,
               CASE WHEN total IS NOT NULL AND covered = {_lit(total_max)} THEN
                   CASE {bands} END END AS grade,
               round(completeness, 4) AS completeness, completeness AS exact_completeness,
               groups, metrics, tie,
               CASE WHEN total IS NOT NULL THEN
                   rank() OVER (PARTITION BY level ORDER BY total DESC NULLS LAST) END AS rank,
               count(total) OVER (PARTITION BY level) AS ranked_of
        FROM totals
    )"""  # noqa: S608 - built from the catalog's codes and figures
    if store:
        sql += """,
    stored AS (
        INSERT INTO score_snapshots (unit_code, period, revision, catalog_version, total, grade,
                                     completeness, groups, metrics, rank, ranked_of,
                                     computed_at)
        SELECT unit_code, :period, :revision, :catalog_version, total, grade, completeness,
               groups, metrics, rank, ranked_of, :at
        FROM final
    )"""
    columns = "unit_code, total, grade, completeness, exact_completeness, groups, tie"
    if detail:
        columns += ", metrics, rank, ranked_of"
    return f"{sql}\n    SELECT {columns} FROM final"  # noqa: S608 - constants
