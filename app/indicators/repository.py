"""All SQL about indicator values. A batch is stored in one statement, not row by row."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Row, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.indicators.periods import Period
from app.units.repository import subtree_codes

_NAMES = (
    "id", "unit_code", "period", "period_kind", "metric_code", "numerator", "denominator",
    "revision", "submitted_by", "submitted_at", "key_id", "admin_scope",
)  # fmt: skip
_COLUMNS = ", ".join(_NAMES)


def _prefixed(alias: str) -> str:
    return ", ".join(f"{alias}.{name}" for name in _NAMES)


async def unit_validity(
    session: AsyncSession, codes: set[str]
) -> dict[str, tuple[date | None, date | None]]:
    """``{code: (valid_from, valid_to)}`` of the units among ``codes`` that exist."""
    if not codes:
        return {}
    rows = await session.execute(
        text(
            "SELECT code, valid_from, valid_to FROM units WHERE code = ANY(CAST(:codes AS text[]))"
        ),
        {"codes": sorted(codes)},
    )
    return {r.code: (r.valid_from, r.valid_to) for r in rows}


async def codes_within(session: AsyncSession, codes: set[str], root: str) -> set[str]:
    """The codes among ``codes`` that are ``root`` or lie below it."""
    if not codes:
        return set()
    subtree = subtree_codes(root).subquery()
    rows = await session.scalars(select(subtree.c.code).where(subtree.c.code.in_(sorted(codes))))
    return set(rows)


async def store_revisions(
    session: AsyncSession,
    values: Sequence[tuple[str, Period, str, int, int]],
    *,
    submitted_by: str,
    key_id: uuid.UUID | None,
    admin_scope: bool = False,
) -> list[Row[Any]]:
    """Add the next revision of every value that differs from its latest revision.

    ``values`` are ``(unit_code, period, metric_code, numerator, denominator)``, at most one per
    (unit, period, metric). Returns one row per value, in order: ``unchanged`` when it equals the
    latest revision (that revision's columns are returned), the stored row's columns otherwise,
    or ``id IS NULL`` when a concurrent transaction took the revision number first — the caller
    runs those again (a new statement sees the other transaction's row and numbers after it).
    """
    if not values:
        return []
    rows = await session.execute(
        text(
            f"""
            WITH incoming AS (
                SELECT * FROM unnest(
                    CAST(:ord AS integer[]), CAST(:unit_code AS text[]), CAST(:period AS text[]),
                    CAST(:period_kind AS text[]), CAST(:metric_code AS text[]),
                    CAST(:numerator AS bigint[]), CAST(:denominator AS bigint[])
                ) AS t(ord, unit_code, period, period_kind, metric_code, numerator, denominator)
            ),
            latest AS (
                SELECT DISTINCT ON (v.unit_code, v.period, v.metric_code) v.*
                FROM indicator_values v
                JOIN incoming i USING (unit_code, period, metric_code)
                ORDER BY v.unit_code, v.period, v.metric_code, v.revision DESC
            ),
            candidates AS (
                SELECT i.*, COALESCE(l.revision, 0) + 1 AS next_revision,
                       (l.numerator, l.denominator) IS NOT DISTINCT FROM
                       (i.numerator, i.denominator)
                       -- the admin confirming a unit's value makes it an override: a revision
                       AND (l.admin_scope OR NOT CAST(:admin_scope AS boolean)) AS unchanged
                FROM incoming i LEFT JOIN latest l USING (unit_code, period, metric_code)
            ),
            stored AS (
                INSERT INTO indicator_values (unit_code, period, period_kind, metric_code,
                                              numerator, denominator, revision, submitted_by,
                                              key_id, admin_scope)
                SELECT unit_code, period, period_kind, metric_code, numerator, denominator,
                       next_revision, CAST(:submitted_by AS text), CAST(:key_id AS uuid),
                       CAST(:admin_scope AS boolean)
                FROM candidates WHERE NOT unchanged
                ORDER BY unit_code, period, metric_code
                ON CONFLICT (unit_code, period, metric_code, revision) DO NOTHING
                RETURNING {_COLUMNS}
            )
            SELECT c.ord, true AS unchanged, {_prefixed("l")}
            FROM candidates c JOIN latest l USING (unit_code, period, metric_code)
            WHERE c.unchanged
            UNION ALL
            SELECT c.ord, false, {_prefixed("s")}
            FROM candidates c LEFT JOIN stored s USING (unit_code, period, metric_code)
            WHERE NOT c.unchanged
            ORDER BY ord
            """  # noqa: S608  (only the fixed column list is interpolated)
        ),
        {
            "ord": list(range(len(values))),
            "unit_code": [v[0] for v in values],
            "period": [str(v[1]) for v in values],
            "period_kind": [v[1].kind.value for v in values],
            "metric_code": [v[2] for v in values],
            "numerator": [v[3] for v in values],
            "denominator": [v[4] for v in values],
            "submitted_by": submitted_by,
            "key_id": key_id,
            "admin_scope": admin_scope,
        },
    )
    return list(rows)


async def list_values(
    session: AsyncSession,
    unit_code: str,
    *,
    period: str | None,
    metric_code: str | None,
    history: bool,
    after: tuple[str, str, int] | None,
    limit: int,
) -> list[Row[Any]]:
    """A unit's values ordered by period, metric and newest revision first; ``limit + 1`` rows.

    Without ``history`` only the latest revision of each (period, metric) is returned.
    """
    filters = "unit_code = :unit_code"
    if period is not None:
        filters += " AND period = :period"
    if metric_code is not None:
        filters += " AND metric_code = :metric_code"
    source = f"SELECT {_COLUMNS} FROM indicator_values WHERE {filters}"  # noqa: S608
    if not history:
        source = (
            f"SELECT DISTINCT ON (period, metric_code) {_COLUMNS} "  # noqa: S608
            f"FROM indicator_values WHERE {filters} "
            "ORDER BY period, metric_code, revision DESC"
        )
    keyset = ""
    if after is not None:
        keyset = (
            "WHERE (period, metric_code) > (:after_period, :after_metric) "
            "OR ((period, metric_code) = (:after_period, :after_metric) "
            "AND revision < :after_revision)"
        )
    rows = await session.execute(
        text(
            f"SELECT * FROM ({source}) v {keyset} "  # noqa: S608
            "ORDER BY period, metric_code, revision DESC LIMIT :limit"
        ),
        {
            "unit_code": unit_code,
            "period": period,
            "metric_code": metric_code,
            "after_period": after[0] if after else None,
            "after_metric": after[1] if after else None,
            "after_revision": after[2] if after else None,
            "limit": limit + 1,
        },
    )
    return list(rows)


async def latest_counts(
    session: AsyncSession,
    unit_codes: Sequence[str],
    periods: Sequence[str],
    *,
    admin_scope_only: bool = False,
) -> list[Row[Any]]:
    """``(unit_code, period, metric_code, numerator, denominator)`` of the latest revisions
    (of those made with the admin scope, with ``admin_scope_only``)."""
    if not unit_codes or not periods:
        return []
    rows = await session.execute(
        text(
            """
            SELECT DISTINCT ON (unit_code, period, metric_code)
                   unit_code, period, metric_code, numerator, denominator
            FROM indicator_values
            WHERE unit_code = ANY(CAST(:units AS text[]))
              AND period = ANY(CAST(:periods AS text[]))
              AND (admin_scope OR NOT CAST(:admin_only AS boolean))
            ORDER BY unit_code, period, metric_code, revision DESC
            """
        ),
        {
            "units": sorted(set(unit_codes)),
            "periods": sorted(set(periods)),
            "admin_only": admin_scope_only,
        },
    )
    return list(rows)


def resolved_counts_ctes() -> str:
    """CTEs ending in ``resolved(unit_code, code, admin, numerator, denominator)``: for every
    unit of ``:units``, the counts :func:`app.indicators.service.counts_for_period` gives for a
    period, in SQL — of the latest revisions (``admin`` false) and of the latest admin-scope
    revisions (``admin`` true). ``:part_period``/``:part_parent``/``:part_depth`` list the
    period (depth 0), its parts (1) and theirs (2), each with the period it is part of.

    A direct submission for a period wins; otherwise its parts are summed, each resolved the
    same way (a year from its quarters, a quarter from its own submission or its months)."""
    return """
    iv_parts AS (
        SELECT * FROM unnest(CAST(:part_period AS text[]), CAST(:part_parent AS text[]),
                             CAST(:part_depth AS integer[])) AS p(period, parent, depth)
    ),
    iv_latest AS (
        SELECT DISTINCT ON (v.unit_code, v.period, v.metric_code, s.admin)
               v.unit_code, v.period, v.metric_code AS code, s.admin,
               v.numerator::numeric AS numerator, v.denominator::numeric AS denominator
        FROM indicator_values v CROSS JOIN (VALUES (false), (true)) AS s(admin)
        WHERE v.unit_code = ANY(CAST(:units AS text[]))
          AND v.period = ANY(CAST(:part_period AS text[]))
          AND (v.admin_scope OR NOT s.admin)
        ORDER BY v.unit_code, v.period, v.metric_code, s.admin, v.revision DESC
    ),
    iv_at AS (SELECT l.*, p.parent, p.depth FROM iv_latest l JOIN iv_parts p USING (period)),
    iv_sum2 AS (
        SELECT unit_code, code, admin, parent AS period,
               sum(numerator) AS numerator, sum(denominator) AS denominator
        FROM iv_at WHERE depth = 2 GROUP BY unit_code, code, admin, parent
    ),
    iv_res1 AS (
        SELECT coalesce(x.unit_code, y.unit_code) AS unit_code, coalesce(x.code, y.code) AS code,
               coalesce(x.admin, y.admin) AS admin,
               CASE WHEN x.unit_code IS NOT NULL THEN x.numerator ELSE y.numerator END
                   AS numerator,
               CASE WHEN x.unit_code IS NOT NULL THEN x.denominator ELSE y.denominator END
                   AS denominator
        FROM (SELECT * FROM iv_at WHERE depth = 1) x
        FULL JOIN iv_sum2 y ON x.unit_code = y.unit_code AND x.code = y.code
                           AND x.admin = y.admin AND x.period = y.period
    ),
    iv_sum1 AS (
        SELECT unit_code, code, admin,
               sum(numerator) AS numerator, sum(denominator) AS denominator
        FROM iv_res1 GROUP BY unit_code, code, admin
    ),
    resolved AS (
        SELECT coalesce(x.unit_code, y.unit_code) AS unit_code, coalesce(x.code, y.code) AS code,
               coalesce(x.admin, y.admin) AS admin,
               CASE WHEN x.unit_code IS NOT NULL THEN x.numerator ELSE y.numerator END
                   AS numerator,
               CASE WHEN x.unit_code IS NOT NULL THEN x.denominator ELSE y.denominator END
                   AS denominator
        FROM (SELECT * FROM iv_at WHERE depth = 0) x
        FULL JOIN iv_sum1 y ON x.unit_code = y.unit_code AND x.code = y.code
                           AND x.admin = y.admin
    )"""


def period_parts(period: Period) -> dict[str, list[Any]]:
    """The parameters of :func:`resolved_counts_ctes` for ``period``."""
    found: dict[str, list[Any]] = {"part_period": [], "part_parent": [], "part_depth": []}

    def walk(part: Period, parent: Period | None, depth: int) -> None:
        found["part_period"].append(str(part))
        found["part_parent"].append(str(parent) if parent is not None else None)
        found["part_depth"].append(depth)
        for inner in part.parts():
            walk(inner, part, depth + 1)

    walk(period, None, 0)
    return found
