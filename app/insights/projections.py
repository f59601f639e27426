"""Month-end projections: where each unit will land when the running month ends (score,
rank, and a range), kept daily and later set beside the actual result.

They score with the same engine as scores (:func:`app.indicators.scoring.score`), from the
dossiers counted so far and the submissions made so far.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.calendar.service import current_calendar
from app.core.errors import NotFound, Unprocessable
from app.core.language import DEFAULT, Language
from app.core.numbers import percent
from app.core.settings import Settings
from app.indicators.catalog import Catalog
from app.indicators.periods import Period, PeriodKind, running, window
from app.indicators.scoring import Counts, Score, score
from app.indicators.service import counts_for_period
from app.insights import repository
from app.insights.messages import text
from app.insights.models import ScoreProjection
from app.insights.ranking import cents, peers_above
from app.insights.schemas import (
    ActualOut,
    ComparedProjectionOut,
    OnTimeOutlookOut,
    ProjectionOut,
    ProjectionReportOut,
    TdgqRange,
)
from app.scores import rankings, refresh
from app.scores import repository as scores_repository
from app.units.service import require_unit

ON_TIME_METRIC = refresh.ON_TIME_METRIC
HISTORY_MONTHS = 3


async def _unit_info(session: AsyncSession, code: str) -> rankings.UnitInfo:
    await require_unit(session, code)
    return next(u for u in await rankings.unit_tree(session) if u.code == code)  # never deleted


def _half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True, slots=True)
class Outlook:
    """One unit subtree's dossiers at the projection instant (see repository.on_time_outlook)."""

    dossiers: int
    finished_on_time: int
    finished_late: int
    overdue: int
    safe: int
    coming_due: int
    received: int
    due_before: int
    on_time_before: int
    due_now: int
    on_time_now: int

    def share(self) -> tuple[Decimal | None, str]:
        if self.due_before:
            return Decimal(self.on_time_before) / self.due_before, "previous_months"
        if self.due_now:
            return Decimal(self.on_time_now) / self.due_now, "this_month_so_far"
        return None, "none"


def outlook_from(row: Row[Any]) -> Outlook:
    return Outlook(**{name: int(getattr(row, name)) for name in Outlook.__dataclass_fields__})


def expected_arrivals(received: int, elapsed: Decimal, remaining: Decimal) -> int:
    """Receipts still to come this month, at the pace of the working days gone so far."""
    if elapsed <= 0:
        return 0
    return _half_up(Decimal(received) * remaining / elapsed)


def projected_counts(
    outlook: Outlook, arrivals: int
) -> tuple[Counts, Counts, Counts, OnTimeOutlookOut]:
    """(point, low, high) 2.1 counts at month end, and the outlook as shown."""
    share, basis = outlook.share()
    # Without any record, half of those coming due: the middle of the range.
    expected = _half_up((share if share is not None else Decimal("0.5")) * outlook.coming_due)
    certain = outlook.finished_on_time + outlook.safe
    point = Counts(certain + expected + arrivals, outlook.dossiers + arrivals)
    low = Counts(certain, outlook.dossiers)
    high = Counts(certain + outlook.coming_due + arrivals, outlook.dossiers + arrivals)
    shown = OnTimeOutlookOut(
        dossiers=outlook.dossiers, finished_on_time=outlook.finished_on_time,
        finished_late=outlook.finished_late, overdue=outlook.overdue, safe=outlook.safe,
        coming_due=outlook.coming_due,
        on_time_share=percent(share),
        on_time_share_basis=basis,
        expected_on_time=expected, expected_arrivals=arrivals,
    )  # fmt: skip
    return point, low, high, shown


NO_DOSSIERS = Outlook(**dict.fromkeys(Outlook.__dataclass_fields__, 0))


@dataclass(frozen=True, slots=True)
class _Projected:
    unit: rankings.UnitInfo
    on_time: OnTimeOutlookOut
    tdgq: TdgqRange | None
    result: Score  # the point projection
    low: Decimal | None
    high: Decimal | None


def _tdgq(result: Score) -> Decimal:
    return cents(result.metric(ON_TIME_METRIC).points)


async def compute_projections(
    session: AsyncSession, settings: Settings, catalog: Catalog, period: Period, at: datetime
) -> dict[str, ProjectionOut]:
    """Month-end projections of every unit alive in the month, as of ``at`` (inside it)."""
    version = catalog.for_period(period)
    if version is None:
        raise NotFound(f"No indicator catalog version is in force on {period.first_day}.")
    tz = ZoneInfo(settings.timezone)
    start, end = window(period, tz)
    history = period
    for _ in range(HISTORY_MONTHS):
        history = history.previous()
    history_start, _ = window(history, tz)
    calendar = await current_calendar(session, settings)
    rows = await repository.on_time_outlook(
        session, start=start, end=end, at=at, history_start=history_start,
        max_supp=settings.max_supplement_requests,
    )  # fmt: skip
    outlooks = {r.unit_code: outlook_from(r) for r in rows}
    elapsed = calendar.working_days_between(start, at)
    remaining = calendar.working_days_between(at, end)
    alive = [u for u in await rankings.unit_tree(session) if u.valid_during(period)]
    submitted = await counts_for_period(session, [u.code for u in alive], period)

    made_on = calendar.local_date(at)
    figures: dict[str, _Projected] = {}
    for unit in alive:
        counts: dict[str, Counts | None] = dict(submitted.get(unit.code, {}))
        outlook = outlooks.get(unit.code)
        tdgq: TdgqRange | None = None
        if outlook is not None and outlook.dossiers:
            arrivals = expected_arrivals(outlook.received, elapsed, remaining)
            point, low, high, shown = projected_counts(outlook, arrivals)
            results = [score(version, {**counts, ON_TIME_METRIC: c}) for c in (point, low, high)]
            tdgq = TdgqRange(
                numerator=point.numerator, denominator=point.denominator,
                points=_tdgq(results[0]), low=_tdgq(results[1]), high=_tdgq(results[2]),
            )  # fmt: skip
        else:
            shown = projected_counts(NO_DOSSIERS, 0)[3]
            results = [score(version, counts)] * 3
        figures[unit.code] = _Projected(
            unit, shown, tdgq, results[0], results[1].total, results[2].total
        )

    by_level: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for code, f in figures.items():
        if f.result.total is not None:
            by_level[f.unit.level][code] = f.result.total
    out: dict[str, ProjectionOut] = {}
    for code, f in figures.items():
        total = f.result.total
        peers = by_level[f.unit.level]
        others = [t for c, t in peers.items() if c != code]

        def rank(points: Decimal | None, others: list[Decimal] = others) -> int | None:
            return None if points is None else 1 + peers_above(others, points)

        out[code] = ProjectionOut(
            made_on=made_on, made_at=at.astimezone(UTC), on_time=f.on_time, tdgq=f.tdgq,
            total=total, total_low=f.low, total_high=f.high,
            grade=f.result.grade.name_vi if f.result.grade else None,
            completeness=percent(f.result.completeness),
            rank=rank(total), rank_best=rank(f.high if total is not None else None),
            rank_worst=rank(f.low if total is not None else None),
            of=len(peers) if total is not None else None,
        )  # fmt: skip
    return out


async def store_projections(
    session: AsyncSession, settings: Settings, catalog: Catalog, at: datetime
) -> int:
    """The daily job: project the running month for every unit and keep it (one row per unit
    and day; a second run the same day replaces the first). The caller commits."""
    period = running(settings, at)
    version = catalog.for_period(period)
    if version is None:
        return 0
    made = await compute_projections(session, settings, catalog, period, at)
    if not made:
        return 0
    values = [
        {
            "unit_code": code,
            "period": str(period),
            "made_on": p.made_on,
            "made_at": p.made_at,
            "catalog_version": version.version,
            "on_time": p.on_time.model_dump(mode="json"),
            "tdgq": p.tdgq.model_dump(mode="json") if p.tdgq else None,
            "total": p.total,
            "total_low": p.total_low,
            "total_high": p.total_high,
            "grade": p.grade,
            "completeness": p.completeness / 100,  # kept as a fraction, like snapshots
            "rank": p.rank,
            "rank_best": p.rank_best,
            "rank_worst": p.rank_worst,
            "ranked_of": p.of,
        }
        for code, p in made.items()
    ]
    made_on = next(iter(made.values())).made_on
    await repository.replace_projections(session, str(period), made_on, values)
    return len(values)


def _stored(row: ScoreProjection) -> ProjectionOut:
    on_time = dict(row.on_time)
    share = on_time.get("on_time_share")
    if isinstance(share, str):  # stored before shares were percentages: a fraction, as text
        on_time["on_time_share"] = percent(Decimal(share))
    return ProjectionOut(
        made_on=row.made_on, made_at=row.made_at,
        on_time=OnTimeOutlookOut.model_validate(on_time),
        tdgq=TdgqRange.model_validate(row.tdgq) if row.tdgq else None,
        total=row.total, total_low=row.total_low, total_high=row.total_high, grade=row.grade,
        completeness=percent(row.completeness), rank=row.rank, rank_best=row.rank_best,
        rank_worst=row.rank_worst, of=row.ranked_of,
    )  # fmt: skip


def _compared(projection: ProjectionOut, actual: ActualOut | None) -> ComparedProjectionOut:
    error = within = rank_error = None
    if actual is not None and actual.total is not None and projection.total is not None:
        error = actual.total - projection.total
        if projection.total_low is not None and projection.total_high is not None:
            within = projection.total_low <= actual.total <= projection.total_high
    if actual is not None and actual.rank is not None and projection.rank is not None:
        rank_error = actual.rank - projection.rank
    return ComparedProjectionOut(
        **projection.model_dump(), total_error=error, within_range=within, rank_error=rank_error
    )


async def projection_report(
    session: AsyncSession,
    settings: Settings,
    catalog: Catalog,
    code: str,
    period: Period,
    at: datetime,
    lang: Language = DEFAULT,
) -> ProjectionReportOut:
    if period.kind is not PeriodKind.month:
        detail = f"projections are made for months (e.g. 2026-03), not for {period}"
        raise Unprocessable(detail, errors=[{"parameter": "period", "detail": detail}])
    unit = await _unit_info(session, code)
    today = at.astimezone(ZoneInfo(settings.timezone)).date()
    if period.first_day > today:
        detail = f"period {period} has not started yet"
        raise Unprocessable(detail, errors=[{"parameter": "period", "detail": detail}])
    if not unit.valid_during(period):
        raise NotFound(f"Unit {code} did not exist during {period}.")
    running = period.last_day >= today
    projection: ProjectionOut | None = None
    actual: ActualOut | None = None
    if running:
        projection = (await compute_projections(session, settings, catalog, period, at))[code]
    else:
        await refresh.ensure_refreshed(session, settings, catalog, period, at)
        snap = next(
            (s for s in await scores_repository.snapshots(session, str(period))
             if s.unit_code == code), None,
        )  # fmt: skip
        if snap is not None:
            tdgq = next((m for m in snap.metrics if m["code"] == ON_TIME_METRIC), {})
            points = tdgq.get("points")
            actual = ActualOut(
                total=snap.total, grade=snap.grade, complete=snap.completeness == 1,
                rank=snap.rank, of=snap.ranked_of,
                tdgq_points=cents(Decimal(str(points))) if points is not None else None,
                tdgq_numerator=tdgq.get("numerator"), tdgq_denominator=tdgq.get("denominator"),
            )  # fmt: skip
    history = [
        _compared(_stored(row), actual)
        for row in await repository.projections(session, code, str(period))
    ]
    return ProjectionReportOut(
        unit_code=code, name=unit.name, level=unit.level, period=str(period), running=running,
        as_of=at.astimezone(UTC), projection=projection, actual=actual, history=history,
        method=text(lang, "projection.method"),
    )  # fmt: skip
