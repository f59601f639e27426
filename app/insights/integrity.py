"""Data-integrity flags: rules that look for patterns worth a reviewer's look (closes minutes
after receipt, last-day closing, online dossiers for in-person procedures, late events…),
kept per unit and month, resolved by reviewers, and marked beside the rankings. They are
computed beside the scores and never change them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
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
from app.indicators.periods import Period, PeriodKind, periods_touched, running, window
from app.insights import repository
from app.insights.repository import Found
from app.insights.rules import RULE_CODES, Rules
from app.insights.schemas import IntegrityFlagOut
from app.scores import refresh
from app.units import repository as units_repository
from app.units.service import ensure_in_scope, require_unit


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
    month = running(settings, at)
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
    await require_unit(session, code)
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


async def open_flag_counts(session: AsyncSession, months: Sequence[str]) -> dict[str, int]:
    """Open flags per unit *subtree* for these months (each flag counts for its unit and every
    ancestor): the markers beside rankings."""
    return await repository.open_flag_counts(session, months)
