"""Scorecards and history: a unit's stored score for a period, line by line with what it lost,
beside the official one; and its totals, grades and ranks over periods, for charts."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound
from app.core.http_cache import etag_for
from app.core.numbers import percent, rate, rounded
from app.indicators.catalog import Catalog, Component, Rule, Source
from app.indicators.periods import Period
from app.scores import repository
from app.scores.models import ScoreSnapshot
from app.scores.rankings import ranking_key
from app.scores.schemas import (
    GroupLine,
    History,
    HistoryPoint,
    MetricLine,
    Official,
    Scorecard,
    ValueLine,
)
from app.units.models import Unit
from app.units.service import require_unit

# The format of scorecards and histories: part of their ETags, so that a client holding one
# rendered before points and rates became numbers is sent the new shape, not a 304.
FORMAT = 2


def _dec(value: Any) -> Decimal | None:
    """Points as published: two decimals, half-up."""
    return rounded(value) if value is not None else None


def full_marks_rate(metric_rule: Rule, threshold: Decimal | None) -> Decimal | None:
    """The rate (a percentage) from which a metric earns its maximum."""
    if metric_rule is Rule.linear:
        return percent(1)
    if metric_rule is Rule.threshold:
        return percent(threshold)
    return None


def _component_full_marks(component: Component) -> Decimal | None:
    """The rate from which a composite's term is full: cap ÷ coefficient when capped (B: 80)."""
    if component.cap is None or component.cap >= component.coefficient:
        return percent(1)
    return percent(component.cap / component.coefficient)


def _metric_line(
    data: dict[str, Any],
    *,
    code: str,
    indicator: str | None,
    source: Source,
    name: str,
    max_points: Decimal,
    full_marks: Decimal | None,
) -> MetricLine:
    """One scorecard line from a snapshot's stored metric (or component) figures."""
    points = _dec(data.get("points"))
    numerator, denominator = data.get("numerator"), data.get("denominator")
    scored_from = data.get("scored_from") or (
        "records" if source is Source.records else "submitted"
    )
    return MetricLine(
        scored_from=scored_from,
        overridden=scored_from == "admin",
        computed=_value_line(data.get("computed")),
        submitted=_value_line(data.get("submitted")),
        code=code,
        indicator=indicator,
        source=source,
        name=name,
        points=points,
        max_points=max_points,
        lost=max_points - points if points is not None else None,
        numerator=numerator,
        denominator=denominator,
        rate=rate(numerator, denominator),
        full_marks_rate=full_marks,
        missing=points is None,
    )


async def _bridged_changes(
    session: AsyncSession, level: str, code: str, period: Period
) -> tuple[int | None, Decimal | None]:
    """The unit's rank and score changes as its national ranking states them."""
    stored = await repository.ranking(session, ranking_key("computed", level, None, str(period)))
    if stored is None:
        return None, None
    item = next((i for i in orjson.loads(stored.body)["items"] if i["unit_code"] == code), None)
    if item is None:
        return None, None
    change = item["score_change"]
    return item["rank_change"], _dec(change) if change is not None else None


def _value_line(data: dict[str, Any] | None) -> ValueLine | None:
    if not data:
        return None
    numerator, denominator = data["numerator"], data["denominator"]
    return ValueLine(
        numerator=numerator,
        denominator=denominator,
        rate=rate(numerator, denominator),
        points=_dec(data.get("points")),
    )


async def _snapshot(session: AsyncSession, code: str, period: Period) -> tuple[ScoreSnapshot, Unit]:
    unit = await require_unit(session, code)
    found = await repository.snapshots(session, str(period), unit_code=code)
    if not found:
        raise NotFound(f"Unit {code} has no score for {period} (it did not exist then).")
    return found[0], unit


async def scorecard_etag(session: AsyncSession, code: str, period: Period) -> str:
    """Changes with the period's refreshes, with its inputs pending or not, and with the
    format of the answer."""
    current = await repository.versions(session, [str(period)])
    return etag_for("scorecard", FORMAT, code, period, *[tuple(s) for s in current])


async def scorecard(
    session: AsyncSession, catalog: Catalog, code: str, period: Period
) -> Scorecard:
    snap, unit = await _snapshot(session, code, period)
    version = catalog.version(snap.catalog_version)
    if version is None:
        raise NotFound(f"Catalog version {snap.catalog_version} is no longer shipped.")
    state = await repository.state(session, str(period))
    pending = await repository.pending(session, [str(period)])
    metrics = {m["code"]: m for m in snap.metrics}
    groups: list[GroupLine] = []
    shortfalls: list[MetricLine] = []
    for group, metric in version.metrics():
        data = metrics.get(metric.code, {})
        line = _metric_line(
            data,
            code=metric.code,
            indicator=metric.indicator,
            source=metric.source,
            name=metric.name_vi,
            max_points=metric.max_points,
            full_marks=full_marks_rate(metric.rule, metric.threshold),
        )
        parts = {c.get("code"): c for c in data.get("components", [])}
        line.components = [
            _metric_line(
                parts.get(component.code, {}),
                code=component.code,
                indicator=component.indicator,
                source=component.source,
                name=component.name_vi,
                max_points=component.max_term,
                full_marks=_component_full_marks(component),
            )
            for component in metric.components
        ]
        if not groups or groups[-1].code != group.code:
            groups.append(
                GroupLine(
                    code=group.code,
                    name=group.name_vi,
                    points=_dec(snap.groups.get(group.code)),
                    max_points=group.max_points,
                    lost=None,
                    metrics=[],
                )
            )
        groups[-1].metrics.append(line)
        if line.missing or (line.lost or 0) > 0:
            shortfalls.append(line)
    for group_line in groups:
        group_line.lost = (
            group_line.max_points - group_line.points if group_line.points is not None else None
        )
    shortfalls.sort(key=lambda m: (-(m.lost if m.lost is not None else m.max_points), m.code))

    official_rows = await repository.official(session, [str(period)], unit_code=code)
    official = None
    if official_rows:
        row = official_rows[0]
        official_groups = {k: Decimal(str(v)) for k, v in row.group_scores.items()}
        official = Official(
            total=Decimal(row.total),
            groups=official_groups,
            total_difference=snap.total - Decimal(row.total) if snap.total is not None else None,
            group_differences={
                g: (_dec(snap.groups.get(g)) - v)  # type: ignore[operator]
                if snap.groups.get(g) is not None
                else None
                for g, v in official_groups.items()
            },
        )
    previous = next(
        iter(await repository.snapshots(session, str(period.previous()), unit_code=code)), None
    )
    comparable = (
        previous is not None
        and previous.catalog_version == snap.catalog_version
        and previous.total is not None
        and snap.total is not None
        and previous.rank is not None
        and snap.rank is not None
    )
    rank_change = previous.rank - snap.rank if comparable else None  # type: ignore[operator, union-attr]
    score_change = snap.total - previous.total if comparable else None  # type: ignore[operator, union-attr]
    if previous is not None and previous.catalog_version != snap.catalog_version:
        # A version change: the national ranking measured the change against the previous
        # period rescored with this period's rules (see refresh._bridge); same figures here.
        rank_change, score_change = await _bridged_changes(session, unit.level, code, period)
    return Scorecard(
        unit_code=code,
        name=unit.name,
        level=unit.level,
        period=str(period),
        revision=snap.revision,
        status=state.status,
        computed_at=snap.computed_at,
        inputs_pending=str(period) in pending,
        catalog_version=snap.catalog_version,
        total=snap.total,
        grade=snap.grade,
        complete=snap.completeness == 1,
        completeness=percent(snap.completeness),
        rank=snap.rank,
        of=snap.ranked_of,
        rank_change=rank_change,
        score_change=score_change,
        groups=groups,
        shortfalls=shortfalls,
        official=official,
        pending_amendments=await repository.amendments(session, str(period)),
    )


async def history_etag(session: AsyncSession, code: str, periods: Sequence[Period]) -> str:
    states = await repository.versions(session, [str(p) for p in periods])
    return etag_for("history", FORMAT, code, *[tuple(s) for s in states])


async def history(
    session: AsyncSession, code: str, periods: Sequence[Period], granularity: str
) -> History:
    await require_unit(session, code)
    names = [str(p) for p in periods]
    snaps = {s.period: s for s in await repository.history(session, code, names)}
    pending = await repository.pending(session, names)
    points = []
    for name in names:
        snap = snaps.get(name)
        points.append(
            HistoryPoint(
                period=name,
                total=snap.total if snap else None,
                grade=snap.grade if snap else None,
                rank=snap.rank if snap else None,
                of=snap.ranked_of if snap else None,
                groups={g: _dec(v) for g, v in snap.groups.items()} if snap else None,
                computed_at=snap.computed_at if snap else None,
                inputs_pending=name in pending,
            )
        )
    return History(
        unit_code=code, granularity=granularity, inputs_pending=bool(pending), items=points
    )
