"""The working calendar in force: package holidays + shipped overrides + operator overrides.

Every process builds it from the same settings; operator overrides live in PostgreSQL, so a
change made through one API process is seen by all others and by the worker at their next
request or job (one small query, cached by content).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.calendar import repository
from app.calendar.data import load_shipped_overrides, shipped_override_entries
from app.calendar.models import CalendarDay
from app.calendar.schemas import CalendarDayOut, CalendarOut, DayOut, OverrideIn, OverrideOut
from app.calendar.workdays import (
    DayKind,
    FractionalDayRule,
    OfficeHours,
    WorkingCalendar,
)
from app.core.errors import NotFound, Unprocessable
from app.core.outbox import add_job
from app.core.settings import Settings, parse_office_hours

MAX_RANGE_DAYS = 731
# The dossiers' job (app/dossiers/jobs.py) that re-derives the open dossiers a changed day may
# move, recorded in the outbox by name: the calendar lies below the dossiers.
RECOMPUTE_JOB = "recompute_open_dossiers"


@lru_cache(maxsize=8)
def _build(
    timezone: str,
    office_hours: str,
    cutoff: str | None,
    rule: str,
    operator: frozenset[tuple[date, str]],
) -> WorkingCalendar:
    overrides = {**load_shipped_overrides(), **{d: DayKind(k) for d, k in operator}}
    from datetime import time

    return WorkingCalendar(
        tz=ZoneInfo(timezone),
        office_hours=OfficeHours(parse_office_hours(office_hours)),
        intake_cutoff=time.fromisoformat(cutoff) if cutoff else None,
        overrides=overrides,
        fractional_day_rule=FractionalDayRule(rule),
    )


def build_calendar(settings: Settings, operator: dict[date, str] | None = None) -> WorkingCalendar:
    return _build(
        settings.timezone,
        settings.office_hours,
        settings.intake_cutoff.isoformat() if settings.intake_cutoff else None,
        settings.fractional_day_rule,
        frozenset((operator or {}).items()),
    )


async def current_calendar(session: AsyncSession, settings: Settings) -> WorkingCalendar:
    operator = {o.day: o.kind for o in await repository.all_overrides(session)}
    return build_calendar(settings, operator)


class _Sources:
    """Why a date is what it is: operator overrides, shipped overrides, the package's holidays."""

    def __init__(self, operator: dict[date, CalendarDay], first_year: int, last_year: int) -> None:
        self.operator = operator
        self.shipped = {o.date: o for o in shipped_override_entries()}
        self.holidays = holidays.country_holidays(
            "VN", years=range(first_year, last_year + 1), language="vi"
        )

    def day(self, calendar: WorkingCalendar, day: date) -> CalendarDayOut:
        if day in self.operator:
            override = self.operator[day]
            source, name, ref = "operator_override", override.reason, override.reference
        elif day in self.shipped:
            shipped = self.shipped[day]
            source, name, ref = "shipped_override", shipped.reason, shipped.reference
        elif day in self.holidays:
            source, name, ref = "public_holiday", str(self.holidays.get(day)), None
        else:
            source, name, ref = ("weekday" if day.weekday() < 5 else "weekend"), None, None
        return CalendarDayOut(
            date=day, weekday=day.isoweekday(), working=calendar.is_working_day(day),
            source=source, name=name, reference=ref,
        )  # fmt: skip


def _office_hours(calendar: WorkingCalendar) -> list[str]:
    return [f"{a:%H:%M}-{b:%H:%M}" for a, b in calendar.office_hours.intervals]


def _cutoff(calendar: WorkingCalendar) -> str | None:
    return f"{calendar.intake_cutoff:%H:%M}" if calendar.intake_cutoff else None


async def calendar_between(
    session: AsyncSession, settings: Settings, start: date, end: date
) -> CalendarOut:
    if end < start:
        raise Unprocessable("`to` must not be before `from`",
                            errors=[{"parameter": "to", "detail": "before from"}])  # fmt: skip
    if (end - start).days >= MAX_RANGE_DAYS:
        raise Unprocessable(f"at most {MAX_RANGE_DAYS} days per request",
                            errors=[{"parameter": "to", "detail": "range too long"}])  # fmt: skip
    operator = {o.day: o for o in await repository.all_overrides(session)}
    calendar = build_calendar(settings, {d: o.kind for d, o in operator.items()})
    sources = _Sources(operator, start.year, end.year)
    items: list[CalendarDayOut] = []
    day = start
    while day <= end:
        items.append(sources.day(calendar, day))
        day += timedelta(days=1)
    return CalendarOut(
        office_hours=_office_hours(calendar), intake_cutoff=_cutoff(calendar), items=items
    )


async def calendar_day(session: AsyncSession, settings: Settings, day: date) -> DayOut:
    """One date: working or not, why, and the office hours it keeps."""
    operator = {o.day: o for o in await repository.all_overrides(session)}
    calendar = build_calendar(settings, {d: o.kind for d, o in operator.items()})
    sources = _Sources(operator, day.year, day.year)
    described = sources.day(calendar, day)
    holiday = sources.holidays.get(day)
    hours = _office_hours(calendar) if described.working else []
    opening = closing = None
    if described.working:
        zone = calendar.tz
        first, last = calendar.office_hours.intervals[0][0], calendar.office_hours.intervals[-1][1]
        opening = datetime.combine(day, first, tzinfo=zone)
        closing = datetime.combine(day, last, tzinfo=zone)
    return DayOut(
        **described.model_dump(),
        public_holiday=str(holiday) if holiday is not None else None,
        office_hours=hours,
        opens_at=opening,
        closes_at=closing,
        intake_cutoff=_cutoff(calendar) if described.working else None,
    )


async def set_override(session: AsyncSession, day: date, data: OverrideIn, by: str) -> OverrideOut:
    """Store an operator override and schedule the recomputation of affected open dossiers."""
    before = await repository.get(session, day)
    row = await repository.upsert(session, day, data.kind.value, data.reason, data.reference, by)
    add_job(session, RECOMPUTE_JOB, day.isoformat())
    await audit.record(
        session, by, "calendar.override.set", day.isoformat(), before=before, after=data
    )
    return OverrideOut(
        date=row.day, kind=DayKind(row.kind), reason=row.reason, reference=row.reference,
        updated_by=row.updated_by, updated_at=row.updated_at,
    )  # fmt: skip


async def remove_override(session: AsyncSession, day: date, by: str = "cli") -> None:
    before = await repository.get(session, day)
    if not await repository.remove(session, day):
        raise NotFound(f"No operator override on {day.isoformat()}.")
    add_job(session, RECOMPUTE_JOB, day.isoformat())
    await audit.record(session, by, "calendar.override.remove", day.isoformat(), before=before)
