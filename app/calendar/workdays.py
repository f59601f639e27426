"""Pure working-day calendar: office hours, VN public holidays plus overrides, and due dates.

No database, files or network at call time; public holidays come from the ``holidays`` package.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from calendar import monthrange
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple
from zoneinfo import ZoneInfo

import holidays

VIETNAM_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

_NO_TIME = timedelta(0)
_MICROSECOND = timedelta(microseconds=1)
_MICROSECONDS_PER_HOUR = Decimal(3_600_000_000)
_HUNDREDTHS = Decimal("0.01")


class DayKind(StrEnum):
    """What an override makes of a date, whatever the weekday and the holiday list say."""

    WORKDAY = "workday"
    HOLIDAY = "holiday"


class LimitUnit(StrEnum):
    """Unit in which a procedure's processing limit is stated."""

    WORKING_DAYS = "working_days"
    WORKING_HOURS = "working_hours"
    CALENDAR_DAYS = "calendar_days"
    MONTHS = "months"


class FractionalDayRule(StrEnum):
    """How a fractional working-day limit (0.5, 1.5 days) is counted; provinces differ."""

    # The whole limit becomes L × hours_per_day of office time from the receipt instant.
    HOURS_FROM_RECEIPT = "hours_from_receipt"
    # Counted like whole days: L × hours_per_day from the next working day's opening.
    FROM_NEXT_DAY = "from_next_day"


def _since_midnight(t: time) -> timedelta:
    return timedelta(hours=t.hour, minutes=t.minute, seconds=t.second, microseconds=t.microsecond)


def _require_naive_time(t: time, what: str) -> None:
    # Office hours are local wall-clock times of the calendar's own zone.
    if t.tzinfo is not None:
        raise ValueError(f"{what} must be a local wall-clock time without tzinfo, got {t!r}")


@dataclass(frozen=True, slots=True)
class OfficeHours:
    """The office intervals of a working day, local wall-clock time, in order."""

    intervals: Sequence[tuple[time, time]] = (
        (time(7, 30), time(11, 30)),
        (time(13, 0), time(17, 0)),
    )

    def __post_init__(self) -> None:
        intervals = tuple((start, end) for start, end in self.intervals)
        if not intervals:
            raise ValueError("office hours need at least one interval")
        previous_end: time | None = None
        for start, end in intervals:
            _require_naive_time(start, "office interval start")
            _require_naive_time(end, "office interval end")
            if start >= end:
                raise ValueError(f"office interval {start}–{end} must end after it starts")
            if previous_end is not None and start < previous_end:
                raise ValueError(f"office interval {start}–{end} overlaps or precedes the last one")
            previous_end = end
        object.__setattr__(self, "intervals", intervals)

    @property
    def opening(self) -> time:
        return self.intervals[0][0]

    @property
    def closing(self) -> time:
        return self.intervals[-1][1]

    @property
    def working_time_per_day(self) -> timedelta:
        return sum(
            (_since_midnight(end) - _since_midnight(start) for start, end in self.intervals),
            _NO_TIME,
        )

    @property
    def hours_per_day(self) -> Decimal:
        return Decimal(self.working_time_per_day // _MICROSECOND) / _MICROSECONDS_PER_HOUR


class _YearDays(NamedTuple):
    ordinals: tuple[int, ...]  # working days of one year as date ordinals, ascending
    members: frozenset[int]


@dataclass(frozen=True, eq=False)
class WorkingCalendar:
    """Working days (Mon–Fri, minus VN public holidays, then overrides) and office-time arithmetic.

    Every instant in or out is timezone-aware; results are in ``tz``. Office time is measured in
    local wall-clock time, which is exact for Asia/Ho_Chi_Minh (no daylight saving).
    Years are computed on first use and cached; pass ``years`` to compute them up front.
    """

    tz: ZoneInfo = VIETNAM_TZ
    office_hours: OfficeHours = field(default_factory=OfficeHours)
    intake_cutoff: time | None = None
    overrides: Mapping[date, DayKind] = field(default_factory=dict)
    fractional_day_rule: FractionalDayRule = FractionalDayRule.HOURS_FROM_RECEIPT
    years: Iterable[int] = ()
    _spans: tuple[tuple[timedelta, timedelta], ...] = field(init=False, repr=False)
    _day_length: timedelta = field(init=False, repr=False)
    _year_days: dict[int, _YearDays] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        if self.intake_cutoff is not None:
            _require_naive_time(self.intake_cutoff, "intake cut-off")
        overrides: dict[date, DayKind] = {}
        for day, kind in self.overrides.items():
            # A datetime key would silently never match the dates looked up here.
            if isinstance(day, datetime) or not isinstance(day, date):
                raise ValueError(f"override keys must be dates, got {day!r}")
            overrides[day] = DayKind(kind)
        object.__setattr__(self, "overrides", MappingProxyType(overrides))
        object.__setattr__(self, "fractional_day_rule", FractionalDayRule(self.fractional_day_rule))
        spans = tuple(
            (_since_midnight(start), _since_midnight(end))
            for start, end in self.office_hours.intervals
        )
        object.__setattr__(self, "_spans", spans)
        object.__setattr__(self, "_day_length", self.office_hours.working_time_per_day)
        years = tuple(self.years)
        object.__setattr__(self, "years", years)
        for year in years:
            self._working_days_of(year)

    # ----- days -----------------------------------------------------------------------------

    def is_working_day(self, d: date) -> bool:
        # An instant is judged by its date in the calendar's zone, not in its own.
        day = self._local(d, "d").date() if isinstance(d, datetime) else d
        return day.toordinal() in self._working_days_of(day.year).members

    def _working_days_of(self, year: int) -> _YearDays:
        cached = self._year_days.get(year)
        if cached is None:
            cached = self._compute_year(year)
            self._year_days[year] = cached
        return cached

    def _compute_year(self, year: int) -> _YearDays:
        public_holidays = {d for d in holidays.country_holidays("VN", years=year) if d.year == year}
        ordinals: list[int] = []
        for ordinal in range(date(year, 1, 1).toordinal(), date(year, 12, 31).toordinal() + 1):
            day = date.fromordinal(ordinal)
            kind = self.overrides.get(day)
            if kind is None:
                working = day.weekday() < 5 and day not in public_holidays
            else:
                working = kind == DayKind.WORKDAY
            if working:
                ordinals.append(ordinal)
        return _YearDays(tuple(ordinals), frozenset(ordinals))

    def _nth_working_day_after(self, day: date, n: int) -> date:
        """The n-th working day strictly after ``day`` (n ≥ 1), by index jumps, not a day walk."""
        year = day.year
        ordinals = self._working_days_of(year).ordinals
        index = bisect_right(ordinals, day.toordinal()) + n - 1
        while index >= len(ordinals):
            index -= len(ordinals)
            year += 1
            ordinals = self._working_days_of(year).ordinals
        return date.fromordinal(ordinals[index])

    def _working_days_in(self, first: date, stop: date) -> int:
        """Number of working days in [first, stop)."""
        if stop <= first:
            return 0
        lo, hi = first.toordinal(), stop.toordinal()
        return sum(
            bisect_left(ordinals, hi) - bisect_left(ordinals, lo)
            for ordinals in (
                self._working_days_of(year).ordinals for year in range(first.year, stop.year + 1)
            )
        )

    # ----- office time within one day -------------------------------------------------------

    def _worked_before(self, offset: timedelta) -> timedelta:
        """Office time of a working day elapsed before ``offset`` past midnight."""
        return sum(
            (min(max(offset - start, _NO_TIME), end - start) for start, end in self._spans),
            _NO_TIME,
        )

    def _reading(self, day: date, worked: timedelta) -> datetime:
        """Earliest local instant of ``day`` by which ``worked`` (0 < worked ≤ a day) has elapsed.

        Landing exactly on an interval's end returns that end (11:30, 17:00), not the next opening.
        """
        done = _NO_TIME
        for start, end in self._spans:
            if worked <= done + (end - start):
                return datetime.combine(day, time()) + start + (worked - done)
            done += end - start
        raise ValueError(f"{worked} exceeds one day of office time")

    def _opening_of(self, day: date) -> datetime:
        return datetime.combine(day, self.office_hours.opening)

    def _closing_of(self, day: date) -> datetime:
        return datetime.combine(day, self.office_hours.closing)

    # ----- instants -------------------------------------------------------------------------

    @staticmethod
    def _require_aware(instant: datetime, name: str) -> None:
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware, got naive {instant!r}")

    def _local(self, instant: datetime, name: str) -> datetime:
        self._require_aware(instant, name)
        return instant.astimezone(self.tz).replace(tzinfo=None)

    def local_date(self, instant: datetime) -> date:
        """The calendar date of ``instant`` in the calendar's time zone."""
        return self._local(instant, "instant").date()

    def local_month(self, instant: datetime) -> date:
        """The first day of ``instant``'s month in the calendar's time zone (what
        ``local_date(instant).replace(day=1)`` gives, in half the time: the derivation asks it
        twice per dossier)."""
        self._require_aware(instant, "instant")
        local = instant.astimezone(self.tz)
        return date(local.year, local.month, 1)

    def _aware(self, local: datetime) -> datetime:
        return local.replace(tzinfo=self.tz)

    @staticmethod
    def _offset(local: datetime) -> timedelta:
        return local - datetime.combine(local.date(), time())

    def working_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Office time on working days within [a, b); zero when b ≤ a."""
        start, end = self._local(a, "a"), self._local(b, "b")
        if end <= start:
            return _NO_TIME
        first, last = start.date(), end.date()
        if first == last:
            if not self.is_working_day(first):
                return _NO_TIME
            return self._worked_before(self._offset(end)) - self._worked_before(self._offset(start))
        total = self._working_days_in(first + timedelta(days=1), last) * self._day_length
        if self.is_working_day(first):
            total += self._day_length - self._worked_before(self._offset(start))
        if self.is_working_day(last):
            total += self._worked_before(self._offset(end))
        return total

    def working_days_between(self, a: datetime, b: datetime) -> Decimal:
        """Office time in [a, b) in working days to 0.01, e.g. how far a dossier is overdue."""
        worked = self.working_time_between(a, b) // _MICROSECOND
        days = Decimal(worked) / Decimal(self._day_length // _MICROSECOND)
        return days.quantize(_HUNDREDTHS, rounding=ROUND_HALF_UP)

    def add_working_time(self, start: datetime, amount: timedelta) -> datetime:
        """Earliest instant t ≥ start with ``working_time_between(start, t) == amount``."""
        local = self._local(start, "start")
        if amount < _NO_TIME:
            raise ValueError(f"amount of working time must not be negative, got {amount}")
        return self._aware(self._add(local, amount))

    def _add(self, local: datetime, amount: timedelta) -> datetime:
        if amount == _NO_TIME:
            return local
        day = local.date()
        if self.is_working_day(day):
            used = self._worked_before(self._offset(local))
            left_today = self._day_length - used
            if amount <= left_today:
                return self._reading(day, used + amount)
            amount -= left_today
        full_days, rest = divmod(amount, self._day_length)
        if rest == _NO_TIME:
            return self._closing_of(self._nth_working_day_after(day, full_days))
        return self._reading(self._nth_working_day_after(day, full_days + 1), rest)

    def next_opening(self, instant: datetime) -> datetime:
        """Start of the first office interval at or after ``instant``."""
        local = self._local(instant, "instant")
        day = local.date()
        if self.is_working_day(day):
            offset = self._offset(local)
            for start, _ in self._spans:
                if start >= offset:
                    return self._aware(datetime.combine(day, time()) + start)
        return self._aware(self._opening_of(self._nth_working_day_after(day, 1)))

    # ----- deadlines ------------------------------------------------------------------------

    def due_at(
        self, received_at: datetime, limit_value: Decimal, limit_unit: LimitUnit
    ) -> datetime:
        """Due instant of a dossier received at ``received_at`` under a procedure's limit.

        Civil Code counting: the receipt day is not counted and a period ends at the close of
        office hours of its last day, rolled to the next working day. A receipt after the intake
        cut-off or on a non-working day counts as received on the next working day.
        """
        local = self._local(received_at, "received_at")
        limit = Decimal(limit_value)
        unit = LimitUnit(limit_unit)
        if not limit.is_finite() or limit < 0:
            raise ValueError(f"limit must be a finite non-negative number, got {limit_value}")
        whole = limit == limit.to_integral_value()

        receipt_day = local.date()
        clock_start = local
        late = self.intake_cutoff is not None and local.time() > self.intake_cutoff
        if late or not self.is_working_day(receipt_day):
            receipt_day = self._nth_working_day_after(receipt_day, 1)
            clock_start = self._opening_of(receipt_day)

        if unit is LimitUnit.WORKING_HOURS:
            return self._aware(self._add(clock_start, self._hours(limit)))
        if unit is LimitUnit.WORKING_DAYS:
            if whole:
                days = int(limit)
                if days == 0:  # same-day procedures: by the close of the receipt day
                    return self._aware(self._closing_of(receipt_day))
                return self._aware(self._closing_of(self._nth_working_day_after(receipt_day, days)))
            amount = self._days(limit)
            if self.fractional_day_rule is FractionalDayRule.FROM_NEXT_DAY:
                clock_start = self._opening_of(self._nth_working_day_after(receipt_day, 1))
            return self._aware(self._add(clock_start, amount))
        if not whole:
            raise ValueError(f"a limit in {unit} must be a whole number, got {limit_value}")
        if unit is LimitUnit.CALENDAR_DAYS:
            return self._close_on_or_after(receipt_day + timedelta(days=int(limit)))
        return self._close_on_or_after(_add_months(receipt_day, int(limit)))

    def _close_on_or_after(self, day: date) -> datetime:
        if not self.is_working_day(day):
            day = self._nth_working_day_after(day, 1)
        return self._aware(self._closing_of(day))

    def _hours(self, hours: Decimal) -> timedelta:
        micros = (hours * _MICROSECONDS_PER_HOUR).to_integral_value(rounding=ROUND_HALF_UP)
        return timedelta(microseconds=int(micros))

    def _days(self, days: Decimal) -> timedelta:
        micros = (days * Decimal(self._day_length // _MICROSECOND)).to_integral_value(
            rounding=ROUND_HALF_UP
        )
        return timedelta(microseconds=int(micros))


def _add_months(day: date, months: int) -> date:
    """Same day of the month ``months`` later, clamped to the month's end (Civil Code art. 148)."""
    years, month_index = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month_index + 1
    return date(year, month, min(day.day, monthrange(year, month)[1]))
