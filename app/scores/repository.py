"""All SQL about scores: dossier-derived counts, snapshots, rankings, period states."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Row, delete, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.sql import columns_of, unnest_arrays
from app.dossiers.repository import in_time_sql
from app.scores.models import PeriodState, RankingSnapshot, ScoreSnapshot
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


async def on_time_counts(
    session: AsyncSession, start: datetime, end: datetime, max_supp: int
) -> list[Row[Any]]:
    """Indicator 2.1 per unit *subtree* for one window: (unit_code, numerator, denominator).

    Dossiers received or processed in the window count in the denominator; the numerator
    holds those finished in it early or on time plus those still pending at its end and
    within time. Dossiers are grouped by their own unit first (one pass over the window's
    dossiers), then rolled up the unit tree — the tree, not the dossiers, is walked.
    """
    rows = await session.execute(
        text(
            f"""
            WITH RECURSIVE per_unit AS (
                SELECT d.unit_code,
                       count(*) AS denominator,
                       count(*) FILTER (WHERE
                           (d.end_at <= :end AND d.outcome IN ('early', 'on_time'))
                           OR {in_time_sql(at=":end", rewind=True)}
                       ) AS numerator
                FROM dossiers d
                WHERE d.counted AND d.due_at IS NOT NULL
                  AND d.received_at <= :end AND (d.end_at IS NULL OR d.end_at >= :start)
                GROUP BY d.unit_code
            ),{UNIT_PAIRS_CTE}
            SELECT t.ancestor AS unit_code, sum(p.numerator)::bigint AS numerator,
                   sum(p.denominator)::bigint AS denominator
            FROM unit_pairs t JOIN per_unit p ON p.unit_code = t.code
            GROUP BY t.ancestor
            """  # noqa: S608 - built from the overdue rule's fragment
        ),
        {"start": start, "end": end, "max_supp": max_supp},
    )
    return list(rows)


# MaCSDL of the national population database in DSKetNoiCSDL: "CSDLQGDC" as real one-stop
# systems send it, "1" as the portal's own numbering (and the simulator) has it.
POPULATION_DATABASE_CODES = ("1", "CSDLQGDC")

# The conditions the record-based indicators count, over ``dossiers d`` joined to its procedure
# ``p`` and its facts ``f`` (NULL facts: no record said; an event-fed dossier has only the
# dossier's own columns). docs/INDEX.md, "Computed from the records", states each rule.
_ELECTRONIC_RESULT = "coalesce(f.results_with_file, 0) > 0"
_RESULT_AS_REQUIRED = f"(NOT p.paper_result OR {_ELECTRONIC_RESULT})"
_CHARGED = "(p.has_fees AND f.fees_all_zero IS NOT TRUE)"
# DuocThanhToanTrucTuyen 1 (national portal) or 2 (the province's gateway); any other code is
# not paid online. Without the code, what the dossier's events said.
_PAID_ONLINE = (
    "CASE WHEN f.payment_code IS NOT NULL THEN f.payment_code IN ('1', '2') "
    "ELSE coalesce(d.paid_online, false) END"
)
_DIGITISED_PARTS = (
    "coalesce(f.has_digitised_parts, d.has_digitized_parts, coalesce(f.papers_digitised, 0) > 0)"
)
_FROM_STORE = "coalesce(f.papers_from_national_store, 0) > 0"
_POPULATION_DATA = (
    f"(f.vneid_verified IS TRUE OR {_FROM_STORE} "
    "OR coalesce(f.databases && CAST(:population AS text[]), false))"
)
RECORD_COUNTS = {
    "received": "true",
    "online": f"d.channel = 2 AND {_RESULT_AS_REQUIRED}",
    "charged": _CHARGED,
    "paid_online": f"{_CHARGED} AND {_PAID_ONLINE}",
    "paper_result": "p.paper_result",
    "electronic_result": f"p.paper_result AND {_ELECTRONIC_RESULT}",
    "digitised": f"coalesce(f.papers_with_file, 0) > 0 AND {_RESULT_AS_REQUIRED}",
    "reused": _DIGITISED_PARTS,
    "linked_to_store": f"({_FROM_STORE} OR {_ELECTRONIC_RESULT})",
    "population_data": _POPULATION_DATA,
}
_COUNTS_SQL = ",\n".join(
    f"count(*) FILTER (WHERE {rule}) AS {name}" for name, rule in RECORD_COUNTS.items()
)
_SUMS_SQL = ", ".join(f"sum(p.{name})::bigint AS {name}" for name in RECORD_COUNTS)
_RECORD_COUNTS = text(
    f"""
    WITH RECURSIVE per_unit AS (
        SELECT d.unit_code, {_COUNTS_SQL}
        FROM dossiers d
        JOIN procedures p ON p.code = d.procedure_code
        LEFT JOIN dossier_facts f ON f.dossier_code = d.code
        WHERE d.counted AND d.received_at >= :start AND d.received_at <= :end
        GROUP BY d.unit_code
    ),{UNIT_PAIRS_CTE}
    SELECT t.ancestor AS unit_code, {_SUMS_SQL}
    FROM unit_pairs t JOIN per_unit p ON p.unit_code = t.code
    GROUP BY t.ancestor
    """  # noqa: S608 - built from the constants above
)


async def record_counts(session: AsyncSession, start: datetime, end: datetime) -> list[Row[Any]]:
    """The record-based indicators' counts per unit *subtree* for dossiers received in
    ``[start, end]``: one pass over the window's dossiers grouped by their own unit, then
    rolled up the unit tree (the tree, not the dossiers, is walked). Withdrawn before
    acceptance and without a receipt time: not counted (``d.counted``)."""
    rows = await session.execute(
        _RECORD_COUNTS,
        {"start": start, "end": end, "population": list(POPULATION_DATABASE_CODES)},
    )
    return list(rows)


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


_SNAPSHOT_COLUMNS: dict[str, str] = {
    "unit_code": "text", "period": "text", "revision": "integer", "catalog_version": "text",
    "total": "numeric", "grade": "text", "completeness": "numeric", "groups": "jsonb",
    "metrics": "jsonb", "rank": "integer", "ranked_of": "integer", "computed_at": "timestamptz",
}  # fmt: skip
_INSERT_SNAPSHOTS = text(
    f"INSERT INTO score_snapshots ({', '.join(_SNAPSHOT_COLUMNS)}) "  # noqa: S608 - constants
    "SELECT "
    + ", ".join(f"{c}::jsonb" if t == "jsonb" else c for c, t in _SNAPSHOT_COLUMNS.items())
    + f" FROM unnest({unnest_arrays(_SNAPSHOT_COLUMNS)}) AS v({', '.join(_SNAPSHOT_COLUMNS)})"
)
_SAVE_RANKINGS = text(
    """
    INSERT INTO ranking_snapshots (key, period, etag, body, computed_at)
    SELECT * FROM unnest(CAST(:key AS text[]), CAST(:period AS text[]), CAST(:etag AS text[]),
                         CAST(:body AS bytea[]), CAST(:computed_at AS timestamptz[]))
    ON CONFLICT (key) DO UPDATE
    SET etag = excluded.etag, body = excluded.body, computed_at = excluded.computed_at
    """
)


async def replace_snapshots(
    session: AsyncSession, period: str, revision: int, values: Sequence[dict[str, Any]]
) -> None:
    """Every unit's snapshot of a period's revision, in one ``INSERT … FROM unnest``: an ORM
    multi-row insert compiled 50,000 bind parameters for 4,000 units (most of a refresh)."""
    await session.execute(
        delete(ScoreSnapshot).where(
            ScoreSnapshot.period == period, ScoreSnapshot.revision == revision
        )
    )
    if not values:
        return
    params = columns_of(values, _SNAPSHOT_COLUMNS)
    for name in ("groups", "metrics"):
        params[name] = [orjson.dumps(v).decode() for v in params[name]]
    await session.execute(_INSERT_SNAPSHOTS, params)


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
