"""Insights rules: the what-if planner, month-end projections and data-integrity flags.

The planner and the projection read the same snapshots and counts as scores and rankings, and
score with the same engine (:func:`app.indicators.scoring.score`); integrity flags are computed
beside the scores and never change them.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.calendar.service import current_calendar
from app.calendar.workdays import WorkingCalendar
from app.core.auth import Principal
from app.core.errors import NotFound, Unprocessable
from app.core.settings import Settings
from app.indicators.catalog import Catalog, CatalogVersion, GradeBand
from app.indicators.periods import Period, PeriodKind, periods_touched, window
from app.indicators.scoring import Counts, Score, score
from app.indicators.service import counts_for_period
from app.insights import planner, repository
from app.insights.models import ScoreProjection
from app.insights.repository import Found
from app.insights.rules import RULE_CODES, Rules
from app.insights.schemas import (
    ActualOut,
    ComparedProjectionOut,
    ImprovementOut,
    IntegrityFlagOut,
    OnTimeOutlookOut,
    ProjectionOut,
    ProjectionReportOut,
    StandingOut,
    TargetOut,
    TdgqRange,
    WhatIfOut,
)
from app.scores import rankings, refresh
from app.scores import repository as scores_repository
from app.scores.models import ScoreSnapshot
from app.units import repository as units_repository
from app.units.service import ensure_in_scope

ON_TIME_METRIC = refresh.ON_TIME_METRIC
CENT = Decimal("0.01")
RATE = Decimal("0.0001")
HISTORY_MONTHS = 3

PLANNER_METHOD = (
    "Cheapest = fewest additional numerator units (dossiers, procedures, ratings…) in total. "
    "Each metric earns points linearly in its numerator until full marks (rate 1, its "
    "threshold, or a TTTT component's cap; TTTT as a whole is capped at its maximum), so "
    "taking metrics greedily by points per additional unit is optimal; whole units round the "
    "last unit of each metric up. Denominators stay as they are; other units' scores are held "
    "fixed for rank targets."
)
PROJECTION_METHOD = (
    "TDGQ at month end from the subtree's dossiers now: finished ones keep their outcome; open "
    "ones already overdue stay late; open ones due after the month (or with a stopped clock) "
    "stay in time; of those coming due before the month ends, the unit's on-time share of "
    "dossiers that came due over the previous 3 months (else this month so far) is expected "
    "in time (low: none, high: all). Receipts still to come are receipts so far × remaining ÷ "
    "elapsed working days, counted in time (left out of the low end). Other metrics use the "
    "submissions so far; ranks compare projected totals of the same level."
)

# --- what-if -------------------------------------------------------------------------------

# The three forms of a target, as one pattern for the OpenAPI schema and one per part for the
# messages; ASCII classes only, so Python and the schema's ECMA regexes read them alike.
_KIND = re.compile(r"([Gg][Rr][Aa][Dd][Ee]|[Rr][Aa][Nn][Kk]|[Ss][Cc][Oo][Rr][Ee]):(.*)", re.DOTALL)
_GRADE_VALUE = r" *[^\x00-\x20][^\x00-\x1f]*"
_RANK_VALUE = r" *[0-9]*[1-9][0-9]* *"
_SCORE_VALUE = r" *(?:100(?:\.00?)?|[0-9]{1,2}(?:\.[0-9]{1,2})?) *"
TARGET_PATTERN = (
    f"^(?:[Gg][Rr][Aa][Dd][Ee]:{_GRADE_VALUE}|[Rr][Aa][Nn][Kk]:{_RANK_VALUE}"
    f"|[Ss][Cc][Oo][Rr][Ee]:{_SCORE_VALUE})$"
)
TARGET_FORMS = "grade:Tốt, rank:10 or score:80"


def _bad_target(detail: str) -> Unprocessable:
    return Unprocessable(detail, errors=[{"parameter": "target", "detail": detail}])


@dataclass(frozen=True, slots=True)
class Target:
    kind: str  # grade | rank | score
    value: str
    rank: int = 0
    points: Decimal = Decimal(0)


def parse_target(text: str) -> Target:
    """``grade:Tốt`` (a grade band's Vietnamese or English name, or code), ``rank:10`` or
    ``score:80`` (0–100, at most two decimals); anything else is a 422 naming ``target``.
    Accepts exactly :data:`TARGET_PATTERN`."""
    match = _KIND.fullmatch(text)
    if match is None or not re.fullmatch(_GRADE_VALUE, match[2]):
        raise _bad_target(f"target {text!r} must look like {TARGET_FORMS}")
    kind, value = match[1].lower(), match[2].strip(" ")
    if kind == "rank":
        if not re.fullmatch(_RANK_VALUE, match[2]):
            raise _bad_target(f"rank target {value!r} must be a whole number from 1")
        return Target(kind, str(int(value)), rank=int(value))
    if kind == "score":
        if not re.fullmatch(_SCORE_VALUE, match[2]):
            raise _bad_target(
                f"score target {value!r} must be a number from 0 to 100 with at most 2 decimals"
            )
        points = Decimal(value).quantize(CENT)
        return Target(kind, f"{points}", points=points)
    return Target(kind, value)


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold().strip()


def grade_band(version: CatalogVersion, name: str) -> GradeBand:
    for band in version.grade_bands:
        if _fold(name) in (_fold(band.name_vi), _fold(band.name_en), _fold(band.code)):
            return band
    names = ", ".join(b.name_vi for b in version.grade_bands)
    raise _bad_target(f"unknown grade {name!r}; one of {names}")


def snapshot_counts(snap: ScoreSnapshot) -> dict[str, Counts]:
    """The counts a snapshot was scored from, keyed like the engine wants them."""
    counts: dict[str, Counts] = {}
    for metric in snap.metrics:
        parts = metric.get("components") or []
        for item in parts or [metric]:
            if item.get("numerator") is not None and item.get("denominator") is not None:
                counts[item["code"]] = Counts(int(item["numerator"]), int(item["denominator"]))
    return counts


async def _unit(session: AsyncSession, code: str) -> rankings.UnitInfo:
    unit = next((u for u in await rankings.unit_tree(session) if u.code == code), None)
    if unit is None:
        raise NotFound(f"No unit with code {code!r}.")
    return unit


def _peers_above(totals: list[Decimal], total: Decimal) -> int:
    return sum(1 for t in totals if t > total)


def _pct(numerator: int, denominator: int) -> str:
    rate = Decimal(numerator) * 100 / Decimal(denominator)
    return f"{rate.quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"


def _improvement(step: planner.Step) -> ImprovementOut:
    lever = step.lever
    c = lever.counts
    action = (
        f"{step.additional} more {lever.numerator_label} "
        f"(of {c.denominator} {lever.denominator_label}): "
        f"{_pct(c.numerator, c.denominator)} → {_pct(step.numerator_to, c.denominator)}"
    )
    return ImprovementOut(
        group_code=lever.group.code,
        metric_code=lever.metric.code,
        component_code=lever.component.code if lever.component else None,
        name=lever.name,
        action=action,
        additional=step.additional,
        numerator_from=c.numerator,
        numerator_to=step.numerator_to,
        denominator=c.denominator,
        rate_from=(Decimal(c.numerator) / c.denominator).quantize(RATE, ROUND_HALF_UP),
        rate_to=(Decimal(step.numerator_to) / c.denominator).quantize(RATE, ROUND_HALF_UP),
        points_gained=step.points.quantize(CENT, ROUND_HALF_UP),
        points_per_unit=lever.points_per_unit.quantize(RATE, ROUND_HALF_UP),
    )


async def what_if(
    session: AsyncSession,
    settings: Settings,
    catalog: Catalog,
    code: str,
    period: Period,
    target_text: str,
    at: datetime,
) -> WhatIfOut:
    target = parse_target(target_text)
    every = await rankings.unit_tree(session)
    unit = next((u for u in every if u.code == code), None)
    if unit is None:
        raise NotFound(f"No unit with code {code!r}.")
    await refresh.ensure_refreshed(session, settings, catalog, period, at)
    snaps = await scores_repository.snapshots(session, str(period))
    snap = next((s for s in snaps if s.unit_code == code), None)
    if snap is None:
        raise NotFound(f"Unit {code} has no score for {period} (it did not exist then).")
    version = catalog.version(snap.catalog_version)
    if version is None:
        raise NotFound(f"Catalog version {snap.catalog_version} is no longer shipped.")
    state = await scores_repository.state(session, str(period))
    levels = {u.code: u.level for u in every}
    others = sorted(
        (s.total for s in snaps
         if s.unit_code != code and s.total is not None and levels.get(s.unit_code) == unit.level),
        reverse=True,
    )  # fmt: skip
    counts = snapshot_counts(snap)
    current = score(version, counts)
    ranked_of = len(others) + 1
    standing = StandingOut(
        total=current.total,
        grade=current.grade.name_vi if current.grade else None,
        complete=current.complete,
        rank=1 + _peers_above(others, current.total) if current.total is not None else None,
        ranked_of=ranked_of if current.total is not None else len(others),
    )

    needed: Decimal | None
    if target.kind == "grade":
        band = grade_band(version, target.value)
        needed = band.min_points.quantize(CENT)
        label = f"grade {band.name_vi}"
        target = Target("grade", band.name_vi)
    elif target.kind == "rank":
        # Rank r needs at most r − 1 peers strictly above: a total equal to the r-th best other.
        needed = others[target.rank - 1] if target.rank <= len(others) else None
        label = f"rank {target.rank}"
    else:
        needed = target.points
        label = f"score {target.points}"

    def answer(reachable: bool, reached: bool, message: str, **extra: Any) -> WhatIfOut:
        values: dict[str, Any] = {
            "improvements": [], "additional_units": 0, "after": None,
            "best_possible_total": None, "missing_metrics": list(current.missing),
            "unmeasured": [], **extra,
        }  # fmt: skip
        return WhatIfOut(
            unit_code=code, name=unit.name, level=unit.level, period=str(period),
            status="closed" if state.status == "closed" else "open",
            catalog_version=version.version,
            target=TargetOut(kind=target.kind, value=target.value, label=label,
                             total_needed=needed),
            current=standing, reachable=reachable, already_reached=reached, message=message,
            method=PLANNER_METHOD, **values,
        )  # fmt: skip

    if current.total is None:
        return answer(False, False, f"Unreachable this period: {code} has no data for {period}.")
    missing = ", ".join(current.missing)
    if target.kind == "grade" and not current.complete:
        return answer(
            False, False, f"Unreachable this period: a score without data for {missing} "
            "gets no grade; submit them first."
        )  # fmt: skip
    if needed is None or current.total >= needed:
        if target.kind == "rank":
            message = (
                f"Already reached: ranked {standing.rank} of {ranked_of} with {current.total}."
            )
        else:
            message = (
                f"Already reached: the total {current.total} meets the {needed} needed for {label}."
            )
        return answer(True, True, message)

    result = planner.plan(version, counts, needed)
    best = planner.published(result.best_exact)
    if not result.reachable or result.result is None or result.result.total is None:
        message = (
            f"Unreachable this period: even full marks on every metric with data give {best}, "
            f"short of the {needed} needed for {label}."
        )
        if current.missing:
            message += f" No data for {missing}."
        return answer(False, False, message, best_possible_total=best,
                      unmeasured=list(result.unmeasured))  # fmt: skip
    after: Score = result.result
    assert after.total is not None
    improvements = [_improvement(s) for s in result.steps]
    message = (
        f"Reachable: {result.additional_units} more numerator units across "
        f"{len(improvements)} metric(s) raise the total from {current.total} to {after.total}, "
        f"meeting the {needed} needed for {label}."
    )
    return answer(
        True, False, message,
        improvements=improvements,
        additional_units=result.additional_units,
        after=StandingOut(
            total=after.total, grade=after.grade.name_vi if after.grade else None,
            complete=after.complete, rank=1 + _peers_above(others, after.total),
            ranked_of=ranked_of,
        ),
        best_possible_total=best,
        unmeasured=list(result.unmeasured),
    )  # fmt: skip


# --- month-end projection --------------------------------------------------------------------


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
        on_time_share=share.quantize(RATE, ROUND_HALF_UP) if share is not None else None,
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
    return _cents(result.metric(ON_TIME_METRIC).points)


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
            return None if points is None else 1 + _peers_above(others, points)

        out[code] = ProjectionOut(
            made_on=made_on, made_at=at.astimezone(UTC), on_time=f.on_time, tdgq=f.tdgq,
            total=total, total_low=f.low, total_high=f.high,
            grade=f.result.grade.name_vi if f.result.grade else None,
            completeness=f.result.completeness.quantize(RATE),
            rank=rank(total), rank_best=rank(f.high if total is not None else None),
            rank_worst=rank(f.low if total is not None else None),
            ranked_of=len(peers) if total is not None else None,
        )  # fmt: skip
    return out


def _cents(value: Decimal | None) -> Decimal:
    return (value or Decimal(0)).quantize(CENT, ROUND_HALF_UP)


def running_month(settings: Settings, at: datetime) -> Period:
    local = at.astimezone(ZoneInfo(settings.timezone)).date()
    return Period.containing(local, PeriodKind.month)


async def store_projections(
    session: AsyncSession, settings: Settings, catalog: Catalog, at: datetime
) -> int:
    """The daily job: project the running month for every unit and keep it (one row per unit
    and day; a second run the same day replaces the first). The caller commits."""
    period = running_month(settings, at)
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
            "completeness": p.completeness,
            "rank": p.rank,
            "rank_best": p.rank_best,
            "rank_worst": p.rank_worst,
            "ranked_of": p.ranked_of,
        }
        for code, p in made.items()
    ]
    made_on = next(iter(made.values())).made_on
    await repository.replace_projections(session, str(period), made_on, values)
    return len(values)


def _stored(row: ScoreProjection) -> ProjectionOut:
    return ProjectionOut(
        made_on=row.made_on, made_at=row.made_at,
        on_time=OnTimeOutlookOut.model_validate(row.on_time),
        tdgq=TdgqRange.model_validate(row.tdgq) if row.tdgq else None,
        total=row.total, total_low=row.total_low, total_high=row.total_high, grade=row.grade,
        completeness=row.completeness, rank=row.rank, rank_best=row.rank_best,
        rank_worst=row.rank_worst, ranked_of=row.ranked_of,
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
) -> ProjectionReportOut:
    if period.kind is not PeriodKind.month:
        detail = f"projections are made for months (e.g. 2026-03), not for {period}"
        raise Unprocessable(detail, errors=[{"parameter": "period", "detail": detail}])
    unit = await _unit(session, code)
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
                rank=snap.rank, ranked_of=snap.ranked_of,
                tdgq_points=_cents(Decimal(str(points))) if points is not None else None,
                tdgq_numerator=tdgq.get("numerator"), tdgq_denominator=tdgq.get("denominator"),
            )  # fmt: skip
    history = [
        _compared(_stored(row), actual)
        for row in await repository.projections(session, code, str(period))
    ]
    return ProjectionReportOut(
        unit_code=code, name=unit.name, level=unit.level, period=str(period), running=running,
        as_of=at.astimezone(UTC), projection=projection, actual=actual, history=history,
        method=PROJECTION_METHOD,
    )  # fmt: skip


# --- data-integrity flags --------------------------------------------------------------------


def last_working_day(calendar: WorkingCalendar, period: Period) -> date:
    day = period.last_day
    while not calendar.is_working_day(day) and day > period.first_day:
        day -= timedelta(days=1)
    return day


def working_days_in(calendar: WorkingCalendar, period: Period) -> int:
    days = (period.last_day - period.first_day).days + 1
    return sum(
        1 for i in range(days) if calendar.is_working_day(period.first_day + timedelta(days=i))
    )


def _found(rule: str, rows: list[Row[Any]], extra: dict[str, Any] | None = None) -> list[Found]:
    return [
        Found(r.unit_code, rule, list(r.dossiers), {**dict(r.evidence), **(extra or {})})
        for r in rows
    ]


async def find_flags(
    session: AsyncSession, settings: Settings, rules: Rules, period: Period
) -> list[Found]:
    """Run every enabled rule over one month (one statement each)."""
    tz = ZoneInfo(settings.timezone)
    start, end = window(period, tz)
    found: list[Found] = []
    rule = rules.quick_finish
    if rule.enabled:
        rows = await repository.quick_finishes(
            session, start, end, max_minutes=rule.max_minutes,
            limit_units=[u.value for u in rule.limit_units], min_limit_days=rule.min_limit_days,
            min_dossiers=rule.min_dossiers,
        )  # fmt: skip
        found += _found("quick_finish", rows)
    receipt = rules.receipt_after_later_steps
    if receipt.enabled:
        rows = await repository.receipts_after_later_steps(
            session, start, end, tolerance_minutes=receipt.tolerance_minutes,
            min_dossiers=receipt.min_dossiers,
        )  # fmt: skip
        found += _found("receipt_after_later_steps", rows)
    closes = rules.last_day_closes
    if closes.enabled:
        calendar = await current_calendar(session, settings)
        months = [period]
        for _ in range(closes.baseline_periods):
            months.append(months[-1].previous())
        windows = []
        for month in months:
            first, last = window(month, tz)
            windows.append((first, last, datetime.combine(last_working_day(calendar, month),
                                                          time(), tz)))  # fmt: skip
        rows = await repository.last_day_closes(
            session, windows, even_share=1 / max(1, working_days_in(calendar, period)),
            factor=closes.factor, min_dossiers=closes.min_dossiers,
        )  # fmt: skip
        last_day = last_working_day(calendar, period).isoformat()
        found += _found("last_day_closes", rows, {"last_working_day": last_day})
    online = rules.online_in_person_only
    if online.enabled:
        rows = await repository.online_in_person_only(
            session, start, end, min_dossiers=online.min_dossiers
        )
        found += _found("online_in_person_only", rows)
    late = rules.late_events
    if late.enabled:
        rows = await repository.late_events(
            session, start, end, max_delay_hours=late.max_delay_hours, sources=late.sources,
            min_dossiers=late.min_dossiers,
        )  # fmt: skip
        found += _found("late_events", rows)
    return found


async def check_period(
    session: AsyncSession, settings: Settings, rules: Rules, period: Period, at: datetime
) -> list[Found]:
    """Recompute a month's flags (idempotent) and have its rankings re-rendered with the
    markers. The caller commits."""
    found = await find_flags(session, settings, rules, period)
    await repository.replace_flags(session, str(period), found, at)
    await _rerender(session, period)
    return found


async def _rerender(session: AsyncSession, month: Period) -> None:
    # Only open periods: input for a closed one would be recorded as an amendment, and flags
    # are not input to scores.
    touched = periods_touched([(month.first_day, month.first_day)])
    closed = await repository.closed_periods(session, touched)
    await refresh.mark_changed(session, [p for p in touched if p not in closed], "integrity")


def checked_months(settings: Settings, at: datetime) -> list[Period]:
    """The daily run: the running month and the one before (late events still arrive)."""
    month = running_month(settings, at)
    return [month.previous(), month]


def flag_out(row: Any, rules: Rules) -> IntegrityFlagOut:
    config = getattr(rules, row.rule, None)
    threshold = (
        config.model_dump(mode="json", exclude={"title_vi", "title_en"})
        if config is not None
        else {}
    )
    return IntegrityFlagOut(
        unit_code=row.unit_code, unit_name=row.unit_name, period=row.period, rule=row.rule,
        title=rules.title(row.rule) if config else row.rule,
        title_vi=rules.title_vi(row.rule) if config else row.rule,
        status=row.status, threshold=threshold, evidence=dict(row.evidence),
        dossier_count=len(row.dossier_codes), dossiers=list(row.dossier_codes),
        first_flagged_at=row.first_flagged_at, computed_at=row.computed_at,
        resolved_at=row.resolved_at, resolved_by=row.resolved_by,
        resolution_note=row.resolution_note,
    )  # fmt: skip


async def integrity_flags(
    session: AsyncSession,
    principal: Principal,
    rules: Rules,
    code: str,
    period: Period,
    *,
    status: str | None,
    after: tuple[str, str, str] | None,
    limit: int,
) -> list[IntegrityFlagOut]:
    """Flags of the unit's subtree for the period's months (a key must cover the unit)."""
    if await units_repository.get(session, code) is None:
        raise NotFound(f"No unit with code {code!r}.")
    await ensure_in_scope(session, principal, code)
    months = [str(m) for m in period.months()]
    rows = await repository.flags(session, code, months, status=status, after=after, limit=limit)
    return [flag_out(r, rules) for r in rows]


async def resolve_flag(
    session: AsyncSession,
    rules: Rules,
    code: str,
    rule: str,
    period: Period,
    by: str,
    note: str,
    at: datetime,
) -> IntegrityFlagOut:
    """A reviewer closes a flag; it stays resolved while the rules find the same dossiers."""
    if rule not in RULE_CODES:
        raise NotFound(f"No integrity rule {rule!r}; one of {', '.join(RULE_CODES)}.")
    if period.kind is not PeriodKind.month:
        detail = "flags are kept per month (e.g. 2026-03)"
        raise Unprocessable(detail, errors=[{"pointer": "#/period", "detail": detail}])
    flag = await repository.resolve(session, code, str(period), rule, by, note, at)
    if flag is None:
        raise NotFound(f"Unit {code} has no {rule} flag for {period}.")
    await _rerender(session, period)
    unit = await units_repository.get(session, code)
    row = {**{c: getattr(flag, c) for c in (
        "unit_code", "period", "rule", "status", "dossier_codes", "evidence", "first_flagged_at",
        "computed_at", "resolved_at", "resolved_by", "resolution_note")},
        "unit_name": unit.name if unit else code}  # fmt: skip
    return flag_out(SimpleNamespace(**row), rules)
