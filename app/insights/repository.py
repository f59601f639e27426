"""All SQL of the insights domain: one set-based statement per integrity rule, flag storage,
the open-dossier outlook behind projections, and stored projections."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, delete, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.dossiers.repository import in_time_sql, overdue_sql
from app.insights.models import IntegrityFlag, ScoreProjection
from app.units.models import Unit
from app.units.repository import UNIT_PAIRS_CTE, ancestors_cte, subtree_codes

CLEARED_BY = "recompute"
_FINISHED = "(9, 10)"  # processing finished, result returned: a real close, not a refusal


@dataclass(frozen=True, slots=True)
class Found:
    """What one rule found for one unit in one month."""

    unit_code: str
    rule: str
    dossiers: list[str]
    evidence: dict[str, Any]


# --- the rules: one statement each --------------------------------------------------------


async def quick_finishes(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    *,
    max_minutes: int,
    limit_units: Sequence[str],
    min_limit_days: float,
    min_dossiers: int,
) -> list[Row[Any]]:
    """Dossiers closed in the month within ``max_minutes`` of receipt, for day-limited
    procedures."""
    rows = await session.execute(
        text(
            f"""
            SELECT d.unit_code, array_agg(d.code ORDER BY d.code) AS dossiers,
                   jsonb_build_object(
                       'dossiers', count(*),
                       'fastest_minutes',
                       round(min(extract(epoch FROM d.end_at - d.received_at))::numeric / 60, 2)
                   ) AS evidence
            FROM dossiers d JOIN procedures p ON p.code = d.procedure_code
            WHERE d.counted AND d.end_status IN {_FINISHED}
              AND d.end_at >= :start AND d.end_at <= :end
              AND p.limit_unit = ANY(CAST(:limit_units AS text[]))
              AND p.limit_value >= :min_limit_days
              AND d.end_at >= d.received_at
              AND d.end_at - d.received_at <= make_interval(mins => CAST(:max_minutes AS int))
            GROUP BY d.unit_code HAVING count(*) >= :min_dossiers
            """  # noqa: S608
        ),
        {"start": start, "end": end, "limit_units": list(limit_units),
         "min_limit_days": min_limit_days, "max_minutes": max_minutes,
         "min_dossiers": min_dossiers},
    )  # fmt: skip
    return list(rows)


async def receipts_after_later_steps(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    *,
    tolerance_minutes: int,
    min_dossiers: int,
) -> list[Row[Any]]:
    """Dossiers received (as stated) in the month whose stated receipt is later than their
    first processing step by more than the tolerance (the dossier anomaly, measured)."""
    rows = await session.execute(
        text(
            """
            SELECT d.unit_code, array_agg(d.code ORDER BY d.code) AS dossiers,
                   jsonb_build_object(
                       'dossiers', count(*),
                       'largest_gap_minutes',
                       round(max(extract(epoch FROM d.received_at - s.first_step))::numeric / 60,
                             2)
                   ) AS evidence
            FROM dossiers d
            CROSS JOIN LATERAL (
                SELECT min(e.occurred_at) AS first_step FROM dossier_events e
                WHERE e.dossier_code = d.code AND e.status IN (4, 5, 6, 8, 9, 10)
            ) s
            WHERE d.received_at >= :start AND d.received_at <= :end
              AND d.anomalies @> CAST(:anomaly AS jsonb)
              AND d.received_at - s.first_step > make_interval(mins => CAST(:tolerance AS int))
            GROUP BY d.unit_code HAVING count(*) >= :min_dossiers
            """
        ),
        {"start": start, "end": end, "tolerance": tolerance_minutes,
         "anomaly": json.dumps([{"code": "receipt_after_later_steps"}]),
         "min_dossiers": min_dossiers},
    )  # fmt: skip
    return list(rows)


async def last_day_closes(
    session: AsyncSession,
    windows: Sequence[tuple[datetime, datetime, datetime]],
    *,
    even_share: float,
    factor: float,
    min_dossiers: int,
) -> list[Row[Any]]:
    """Units whose share of closes on the month's last working day exceeds ``factor`` × their
    norm. ``windows[0]`` is the month judged, the others its baseline; each is (start, end,
    start of the last working day). The norm is the baseline's closes on last days ÷ its
    closes, or ``even_share`` when the baseline has none."""
    rows = await session.execute(
        text(
            f"""
            WITH w AS (
                SELECT * FROM unnest(CAST(:idx AS int[]), CAST(:starts AS timestamptz[]),
                                     CAST(:ends AS timestamptz[]),
                                     CAST(:last_starts AS timestamptz[]))
                    AS w(i, start_at, end_at, last_start)
            ),
            per_window AS (
                SELECT d.unit_code, w.i, count(*) AS closes,
                       count(*) FILTER (WHERE d.end_at >= w.last_start) AS on_last_day,
                       array_agg(d.code ORDER BY d.code)
                           FILTER (WHERE d.end_at >= w.last_start) AS dossiers
                FROM dossiers d JOIN w ON d.end_at >= w.start_at AND d.end_at <= w.end_at
                WHERE d.counted AND d.end_status IN {_FINISHED}
                GROUP BY d.unit_code, w.i
            ),
            per_unit AS (
                SELECT unit_code,
                       coalesce(sum(closes) FILTER (WHERE i = 0), 0) AS closes,
                       coalesce(sum(on_last_day) FILTER (WHERE i = 0), 0) AS on_last_day,
                       coalesce(sum(closes) FILTER (WHERE i > 0), 0) AS prior_closes,
                       coalesce(sum(on_last_day) FILTER (WHERE i > 0), 0) AS prior_on_last_day,
                       max(dossiers) FILTER (WHERE i = 0) AS dossiers
                FROM per_window GROUP BY unit_code
            ),
            judged AS (
                SELECT *,
                       CASE WHEN prior_closes > 0
                            THEN prior_on_last_day::numeric / prior_closes
                            ELSE CAST(:even_share AS numeric) END AS norm,
                       prior_closes > 0 AS has_baseline,
                       on_last_day::numeric / nullif(closes, 0) AS share
                FROM per_unit
            )
            SELECT unit_code, dossiers,
                   jsonb_build_object(
                       'closes', closes, 'closes_on_last_day', on_last_day,
                       'share', round(share, 4), 'norm', round(norm, 4),
                       'norm_basis', CASE WHEN has_baseline THEN 'baseline' ELSE 'even_spread' END,
                       'baseline_closes', prior_closes,
                       'baseline_closes_on_last_day', prior_on_last_day
                   ) AS evidence
            FROM judged
            WHERE on_last_day >= :min_dossiers AND share > CAST(:factor AS numeric) * norm
            """  # noqa: S608
        ),
        {"idx": list(range(len(windows))), "starts": [w[0] for w in windows],
         "ends": [w[1] for w in windows], "last_starts": [w[2] for w in windows],
         "even_share": even_share, "factor": factor, "min_dossiers": min_dossiers},
    )  # fmt: skip
    return list(rows)


async def online_in_person_only(
    session: AsyncSession, start: datetime, end: datetime, *, min_dossiers: int
) -> list[Row[Any]]:
    """Dossiers received in the month through the online channel (2) for procedures that state
    they are served in person only (``online_allowed = false``)."""
    rows = await session.execute(
        text(
            """
            SELECT d.unit_code, array_agg(d.code ORDER BY d.code) AS dossiers,
                   jsonb_build_object(
                       'dossiers', count(*),
                       'procedures', to_jsonb(array_agg(DISTINCT d.procedure_code
                                                        ORDER BY d.procedure_code))
                   ) AS evidence
            FROM dossiers d JOIN procedures p ON p.code = d.procedure_code
            WHERE d.channel = 2 AND p.online_allowed = false
              AND coalesce(d.received_at, d.first_event_at) >= :start
              AND coalesce(d.received_at, d.first_event_at) <= :end
            GROUP BY d.unit_code HAVING count(*) >= :min_dossiers
            """
        ),
        {"start": start, "end": end, "min_dossiers": min_dossiers},
    )
    return list(rows)


async def late_events(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    *,
    max_delay_hours: int,
    sources: Sequence[str],
    min_dossiers: int,
) -> list[Row[Any]]:
    """Events that occurred in the month but were recorded more than ``max_delay_hours``
    later. Such an event was recorded at least that long after the month began, which the
    BRIN index on ``recorded_at`` uses to skip older events."""
    rows = await session.execute(
        text(
            """
            SELECT e.unit_code,
                   array_agg(DISTINCT e.dossier_code ORDER BY e.dossier_code) AS dossiers,
                   jsonb_build_object(
                       'events', count(*),
                       'longest_delay_hours',
                       round(max(extract(epoch FROM e.recorded_at - e.occurred_at))::numeric
                             / 3600, 2)
                   ) AS evidence
            FROM dossier_events e
            WHERE e.recorded_at > CAST(:start AS timestamptz)
                                  + make_interval(hours => CAST(:hours AS int))
              AND e.occurred_at >= :start AND e.occurred_at <= :end
              AND e.source = ANY(CAST(:sources AS text[]))
              AND e.recorded_at - e.occurred_at > make_interval(hours => CAST(:hours AS int))
            GROUP BY e.unit_code HAVING count(DISTINCT e.dossier_code) >= :min_dossiers
            """
        ),
        {"start": start, "end": end, "hours": max_delay_hours, "sources": list(sources),
         "min_dossiers": min_dossiers},
    )  # fmt: skip
    return list(rows)


# --- storing flags ---------------------------------------------------------------------------


async def replace_flags(
    session: AsyncSession, period: str, found: Sequence[Found], at: datetime
) -> None:
    """Make the period's flags what the rules found now (two statements).

    New findings open a flag; a flag a reviewer resolved stays resolved while its dossiers
    are the same ones (or fewer); a flag the rules no longer find is resolved as cleared.
    """
    keep_review = (
        "integrity_flags.status = 'resolved' AND integrity_flags.resolved_by <> :cleared "
        "AND excluded.dossier_codes <@ integrity_flags.dossier_codes"
    )
    params: dict[str, Any] = {
        "period": period,
        "at": at,
        "cleared": CLEARED_BY,
        "units": [f.unit_code for f in found],
        "rules": [f.rule for f in found],
        "dossiers": [json.dumps(f.dossiers) for f in found],
        "evidence": [json.dumps(f.evidence, default=str) for f in found],
    }
    if found:
        await session.execute(
            text(
                f"""
                INSERT INTO integrity_flags (unit_code, period, rule, status, dossier_codes,
                                             evidence, first_flagged_at, computed_at)
                SELECT f.unit_code, :period, f.rule, 'open',
                       ARRAY(SELECT jsonb_array_elements_text(CAST(f.dossiers AS jsonb))),
                       CAST(f.evidence AS jsonb), :at, :at
                FROM unnest(CAST(:units AS text[]), CAST(:rules AS text[]),
                            CAST(:dossiers AS text[]), CAST(:evidence AS text[]))
                    AS f(unit_code, rule, dossiers, evidence)
                ON CONFLICT (unit_code, period, rule) DO UPDATE SET
                    dossier_codes = excluded.dossier_codes,
                    evidence = excluded.evidence,
                    computed_at = excluded.computed_at,
                    status = CASE WHEN {keep_review} THEN 'resolved' ELSE 'open' END,
                    resolved_at = CASE WHEN {keep_review}
                                       THEN integrity_flags.resolved_at END,
                    resolved_by = CASE WHEN {keep_review}
                                       THEN integrity_flags.resolved_by END,
                    resolution_note = CASE WHEN {keep_review}
                                           THEN integrity_flags.resolution_note END
                """  # noqa: S608
            ),
            params,
        )
    await session.execute(
        text(
            """
            UPDATE integrity_flags
            SET status = 'resolved', resolved_at = :at, resolved_by = :cleared,
                resolution_note = 'no longer found by the rules', computed_at = :at
            WHERE period = :period AND status = 'open'
              AND NOT EXISTS (
                  SELECT 1 FROM unnest(CAST(:units AS text[]), CAST(:rules AS text[]))
                      AS f(unit_code, rule)
                  WHERE f.unit_code = integrity_flags.unit_code AND f.rule = integrity_flags.rule
              )
            """
        ),
        {k: params[k] for k in ("period", "at", "cleared", "units", "rules")},
    )


async def open_flag_counts(session: AsyncSession, months: Sequence[str]) -> dict[str, int]:
    """Open flags per unit *subtree* for these months: each flag counts for its unit and every
    ancestor (the walk starts from the flags, so the cost follows their number)."""
    rows = await session.execute(
        text(
            f"""
            WITH RECURSIVE flagged AS (
                SELECT unit_code, count(*) AS flags FROM integrity_flags
                WHERE status = 'open' AND period = ANY(CAST(:months AS text[]))
                GROUP BY unit_code
            ),{ancestors_cte("up", "SELECT unit_code FROM flagged")}
            SELECT up.ancestor AS code, sum(f.flags)::bigint AS flags
            FROM up JOIN flagged f ON f.unit_code = up.code
            GROUP BY up.ancestor
            """  # noqa: S608 - built from constants
        ),
        {"months": list(months)},
    )
    return {r.code: int(r.flags) for r in rows}


async def flags(
    session: AsyncSession,
    root: str,
    months: Sequence[str],
    *,
    status: str | None,
    after: tuple[str, str, str] | None,
    limit: int,
) -> list[Row[Any]]:
    """Flags of ``root``'s subtree for these months, keyset-ordered by (period, unit, rule)."""
    f = IntegrityFlag
    query = (
        select(
            f.unit_code, Unit.name.label("unit_name"), f.period, f.rule, f.status,
            f.dossier_codes, f.evidence, f.first_flagged_at, f.computed_at, f.resolved_at,
            f.resolved_by, f.resolution_note,
        )
        .join(Unit, Unit.code == f.unit_code)
        .where(f.unit_code.in_(subtree_codes(root)), f.period.in_(list(months)))
        .order_by(f.period, f.unit_code, f.rule)
        .limit(limit + 1)
    )  # fmt: skip
    if status is not None:
        query = query.where(f.status == status)
    if after is not None:
        query = query.where(tuple_(f.period, f.unit_code, f.rule) > tuple_(*after))
    return list(await session.execute(query))


async def resolve(
    session: AsyncSession, unit_code: str, period: str, rule: str, by: str, note: str, at: datetime
) -> IntegrityFlag | None:
    flag = await session.scalar(
        select(IntegrityFlag).where(
            IntegrityFlag.unit_code == unit_code,
            IntegrityFlag.period == period,
            IntegrityFlag.rule == rule,
        )
    )
    if flag is None:
        return None
    flag.status = "resolved"
    flag.resolved_at = at
    flag.resolved_by = by
    flag.resolution_note = note
    await session.flush()
    return flag


# --- projections -----------------------------------------------------------------------------


async def on_time_outlook(
    session: AsyncSession,
    *,
    start: datetime,
    end: datetime,
    at: datetime,
    history_start: datetime,
    max_supp: int,
) -> list[Row[Any]]:
    """Per unit *subtree*, at instant ``at`` inside the month [start, end]: the dossiers that
    count in the month so far, split by what can still happen to them before its end, and the
    on-time record of dossiers that came due before ``at`` (previous months, this month)."""
    open_ = "(d.end_at IS NULL OR d.end_at > :at)"
    # Read back at ``at``: a clock that stopped after it was still running then.
    overdue = overdue_sql(at=":at", rewind=True)
    in_time = in_time_sql(at=":at", rewind=True)
    stopped = "coalesce(d.clock_stopped_at <= :at, false)"
    on_time = "(d.outcome IN ('early', 'on_time') AND d.end_at <= :at)"
    rows = await session.execute(
        text(
            f"""
            WITH RECURSIVE per_unit AS (
                SELECT d.unit_code,
                       count(*) AS dossiers,
                       count(*) FILTER (WHERE NOT {open_} AND d.outcome IN ('early', 'on_time'))
                           AS finished_on_time,
                       count(*) FILTER (WHERE NOT {open_}
                           AND d.outcome IS DISTINCT FROM 'early'
                           AND d.outcome IS DISTINCT FROM 'on_time') AS finished_late,
                       count(*) FILTER (WHERE {overdue}) AS overdue,
                       count(*) FILTER (WHERE {in_time}
                           AND ({stopped} OR d.due_at > :end)) AS safe,
                       count(*) FILTER (WHERE {in_time}
                           AND NOT {stopped} AND d.due_at <= :end) AS coming_due,
                       count(*) FILTER (WHERE d.received_at >= :start) AS received
                FROM dossiers d
                WHERE d.counted AND d.due_at IS NOT NULL AND d.received_at <= :at
                  AND (d.end_at IS NULL OR d.end_at >= :start)
                GROUP BY d.unit_code
            ),
            record AS (
                -- Dossiers that came due: finished by then, or not. A clock still stopped
                -- says nothing yet about the unit's speed.
                SELECT d.unit_code,
                       count(*) FILTER (WHERE d.due_at < :start) AS due_before,
                       count(*) FILTER (WHERE d.due_at < :start AND {on_time}) AS on_time_before,
                       count(*) FILTER (WHERE d.due_at >= :start) AS due_now,
                       count(*) FILTER (WHERE d.due_at >= :start AND {on_time}) AS on_time_now
                FROM dossiers d
                WHERE d.counted AND d.due_at >= :history_start AND d.due_at < :at
                  AND NOT (d.end_at IS NULL AND d.clock_stopped_at IS NOT NULL)
                GROUP BY d.unit_code
            ),
            facts AS (
                SELECT unit_code, dossiers, finished_on_time, finished_late, overdue, safe,
                       coming_due, received, 0 AS due_before, 0 AS on_time_before,
                       0 AS due_now, 0 AS on_time_now
                FROM per_unit
                UNION ALL
                SELECT unit_code, 0, 0, 0, 0, 0, 0, 0, due_before, on_time_before, due_now,
                       on_time_now
                FROM record
            ),{UNIT_PAIRS_CTE}
            SELECT t.ancestor AS unit_code,
                   sum(f.dossiers)::bigint AS dossiers,
                   sum(f.finished_on_time)::bigint AS finished_on_time,
                   sum(f.finished_late)::bigint AS finished_late,
                   sum(f.overdue)::bigint AS overdue,
                   sum(f.safe)::bigint AS safe,
                   sum(f.coming_due)::bigint AS coming_due,
                   sum(f.received)::bigint AS received,
                   sum(f.due_before)::bigint AS due_before,
                   sum(f.on_time_before)::bigint AS on_time_before,
                   sum(f.due_now)::bigint AS due_now,
                   sum(f.on_time_now)::bigint AS on_time_now
            FROM unit_pairs t JOIN facts f ON f.unit_code = t.code
            GROUP BY t.ancestor
            """  # noqa: S608
        ),
        {"start": start, "end": end, "at": at, "history_start": history_start,
         "max_supp": max_supp},
    )  # fmt: skip
    return list(rows)


async def replace_projections(
    session: AsyncSession, period: str, made_on: date, values: Sequence[dict[str, Any]]
) -> None:
    """Idempotent per day: a second run on the same day replaces that day's projections."""
    await session.execute(
        delete(ScoreProjection).where(
            ScoreProjection.period == period, ScoreProjection.made_on == made_on
        )
    )
    for first in range(0, len(values), 2000):
        await session.execute(insert(ScoreProjection).values(list(values[first : first + 2000])))


async def projections(session: AsyncSession, unit_code: str, period: str) -> list[ScoreProjection]:
    rows = await session.scalars(
        select(ScoreProjection)
        .where(ScoreProjection.unit_code == unit_code, ScoreProjection.period == period)
        .order_by(ScoreProjection.made_on)
    )
    return list(rows.all())


async def closed_periods(session: AsyncSession, periods: Sequence[str]) -> set[str]:
    rows = await session.execute(
        text(
            "SELECT period FROM period_states WHERE status = 'closed' "
            "AND period = ANY(CAST(:periods AS text[]))"
        ),
        {"periods": list(periods)},
    )
    return {r[0] for r in rows}
