"""The working calendar of 2026 and 2027, pinned day by day, with deadlines worked out by hand.

Most of these days come from the `holidays` package, the rest from app/calendar/overrides.yaml.
A new release of the package (a re-lock) that moves any of them turns these tests red before
it can move a deadline. Each day's source is in docs/TIMELINESS.md ("The days of 2026 and
2027"). Office hours are the defaults, 07:30–11:30 and 13:00–17:00, in Asia/Ho_Chi_Minh.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from app.calendar.data import load_shipped_overrides
from app.calendar.workdays import VIETNAM_TZ, LimitUnit, WorkingCalendar

CAL = WorkingCalendar(overrides=load_shipped_overrides())
DAYS, HOURS = LimitUnit.WORKING_DAYS, LimitUnit.WORKING_HOURS
CALENDAR_DAYS = LimitUnit.CALENDAR_DAYS


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=VIETNAM_TZ)


def days_off_on_weekdays(year: int) -> list[date]:
    every = (date(year, 1, 1) + timedelta(days=n) for n in range(366))
    return [d for d in every if d.year == year and d.weekday() < 5 and not CAL.is_working_day(d)]


def worked_weekend_days(year: int) -> list[date]:
    every = (date(year, 1, 1) + timedelta(days=n) for n in range(366))
    return [d for d in every if d.year == year and d.weekday() >= 5 and CAL.is_working_day(d)]


def test_every_weekday_off_and_every_weekend_day_worked_in_2026() -> None:
    assert days_off_on_weekdays(2026) == [
        date(2026, 1, 1),  # Thu, New Year's Day
        date(2026, 1, 2),  # Fri, swapped with Sat 10 Jan (dispatch 12729/VPCP-KGVX)
        *(date(2026, 2, d) for d in range(16, 21)),  # Mon–Fri, Tết Bính Ngọ
        date(2026, 4, 27),  # Mon, Hùng Kings' day (Sun 26 Apr) given in lieu
        date(2026, 4, 30),  # Thu, Reunification Day
        date(2026, 5, 1),  # Fri, Labour Day
        date(2026, 8, 31),  # Mon, swapped with Sat 22 Aug
        date(2026, 9, 1),  # Tue, National Day
        date(2026, 9, 2),  # Wed, National Day
        date(2026, 11, 24),  # Tue, Vietnam Culture Day
    ]
    assert worked_weekend_days(2026) == [date(2026, 1, 10), date(2026, 8, 22)]


def test_every_weekday_off_and_every_weekend_day_worked_in_2027() -> None:
    assert days_off_on_weekdays(2027) == [
        date(2027, 1, 1),  # Fri, New Year's Day
        date(2027, 2, 4),  # Thu, Tết Đinh Mùi: 4–10 Feb with the weekend of 6–7 Feb
        date(2027, 2, 5),  # Fri
        date(2027, 2, 8),  # Mon
        date(2027, 2, 9),  # Tue
        date(2027, 2, 10),  # Wed
        date(2027, 4, 16),  # Fri, Hùng Kings' day
        date(2027, 4, 30),  # Fri, Reunification Day
        date(2027, 5, 3),  # Mon, Labour Day (Sat 1 May) given in lieu
        date(2027, 9, 2),  # Thu, National Day
        date(2027, 9, 3),  # Fri, National Day's second day
        date(2027, 11, 24),  # Wed, Vietnam Culture Day
    ]
    assert worked_weekend_days(2027) == []


@pytest.mark.parametrize(
    ("month", "working_days"),
    [
        # Weekdays of the month, minus its weekdays off, plus its worked Saturdays.
        ((2026, 1), 22 - 2 + 1),  # 1, 2 Jan off; Sat 10 Jan worked
        ((2026, 2), 20 - 5),  # Tết, 16–20 Feb
        ((2026, 4), 22 - 2),  # 27 and 30 Apr
        ((2026, 5), 21 - 1),  # 1 May
        ((2026, 8), 21 - 1 + 1),  # Mon 31 Aug off, Sat 22 Aug worked
        ((2026, 9), 22 - 2),  # 1, 2 Sep
        ((2026, 11), 21 - 1),  # 24 Nov
        ((2027, 2), 20 - 5),  # Tết, 4, 5, 8, 9, 10 Feb
    ],
)
def test_working_days_per_month(month: tuple[int, int], working_days: int) -> None:
    year, number = month
    start = at(year, number, 1)
    end = at(year + number // 12, number % 12 + 1, 1)
    assert CAL.working_days_between(start, end) == Decimal(working_days)


def test_five_working_days_from_friday_13_february_2026_end_after_tet() -> None:
    # Received Fri 13 Feb (not counted); 14–22 Feb off. Days 1–5 = Mon 23 … Fri 27 Feb.
    assert CAL.due_at(at(2026, 2, 13, 10), Decimal(5), DAYS) == at(2026, 2, 27, 17)
    # Received on Tết's eve (a day off): counted from Mon 23 Feb, so day 1 = Tue 24 Feb.
    assert CAL.due_at(at(2026, 2, 16, 9), Decimal(1), DAYS) == at(2026, 2, 24, 17)


def test_working_hours_and_half_days_across_tet_2026() -> None:
    # 4 h from Fri 13 Feb 15:00: 2 h that afternoon, 2 h on Mon 23 Feb from 07:30.
    assert CAL.due_at(at(2026, 2, 13, 15), Decimal(4), HOURS) == at(2026, 2, 23, 9, 30)
    # Half a day is 4 office hours from the receipt instant (the default rule).
    assert CAL.due_at(at(2026, 2, 13, 15), Decimal("0.5"), DAYS) == at(2026, 2, 23, 9, 30)
    # Office time from Fri 13 Feb 17:00 to Mon 23 Feb 07:30: none.
    assert CAL.working_time_between(at(2026, 2, 13, 17), at(2026, 2, 23, 7, 30)) == timedelta(0)


def test_calendar_days_landing_in_tet_roll_to_the_next_working_day() -> None:
    # Mon 9 Feb + 5 days = Sat 14 Feb, a day off, as are the days up to Sun 22 Feb.
    assert CAL.due_at(at(2026, 2, 9, 10), Decimal(5), CALENDAR_DAYS) == at(2026, 2, 23, 17)


def test_three_working_days_across_tet_2027() -> None:
    # Received Wed 3 Feb 2027; 4–10 Feb off. Day 1 = Thu 11, day 2 = Fri 12, day 3 = Mon 15.
    assert CAL.due_at(at(2027, 2, 3, 9), Decimal(3), DAYS) == at(2027, 2, 15, 17)
    assert CAL.working_days_between(at(2027, 2, 3, 17), at(2027, 2, 11, 17)) == Decimal(1)


def test_hung_kings_day_in_lieu_and_the_30_april_break_of_2026() -> None:
    # Received Thu 23 Apr: day 1 = Fri 24, Mon 27 off (in lieu), day 2 = Tue 28 Apr.
    assert CAL.due_at(at(2026, 4, 23, 14), Decimal(2), DAYS) == at(2026, 4, 28, 17)
    # Ten days from Thu 23 Apr: Fri 24, Tue 28, Wed 29, then 30 Apr – 3 May off, Mon 4 …
    # Fri 8 May (days 4–8), Mon 11 and Tue 12 May (days 9, 10).
    assert CAL.due_at(at(2026, 4, 23, 14), Decimal(10), DAYS) == at(2026, 5, 12, 17)
    assert CAL.working_time_between(at(2026, 4, 24, 17), at(2026, 4, 28, 7, 30)) == timedelta(0)


def test_saturday_22_august_2026_is_worked_for_monday_31_august() -> None:
    # Received Fri 21 Aug: day 1 = Sat 22 Aug (worked), day 2 = Mon 24 Aug.
    assert CAL.due_at(at(2026, 8, 21, 10), Decimal(1), DAYS) == at(2026, 8, 22, 17)
    assert CAL.due_at(at(2026, 8, 21, 10), Decimal(2), DAYS) == at(2026, 8, 24, 17)
    # Overdue from Fri 21 Aug 17:00 to Mon 24 Aug 17:00: Saturday's and Monday's 8 h.
    assert CAL.working_days_between(at(2026, 8, 21, 17), at(2026, 8, 24, 17)) == Decimal(2)
    # 4 working hours from Fri 21 Aug 15:00: 2 h on Friday, 2 h on Saturday morning.
    assert CAL.due_at(at(2026, 8, 21, 15), Decimal(4), HOURS) == at(2026, 8, 22, 9, 30)


def test_the_national_day_break_of_2026_runs_from_31_august_to_2_september() -> None:
    # Received Fri 28 Aug: 29 Aug – 2 Sep off. Day 1 = Thu 3 Sep, day 2 = Fri 4 Sep.
    assert CAL.due_at(at(2026, 8, 28, 10), Decimal(2), DAYS) == at(2026, 9, 4, 17)
    # Fifteen days from Wed 19 Aug: Thu 20, Fri 21, Sat 22, Mon 24 … Fri 28 (days 1–8),
    # Thu 3, Fri 4 Sep (9, 10), Mon 7 … Fri 11 Sep (11–15).
    assert CAL.due_at(at(2026, 8, 19, 10), Decimal(15), DAYS) == at(2026, 9, 11, 17)


def test_vietnam_culture_day_24_november_2026_is_a_day_off() -> None:
    # Received Mon 23 Nov: Tue 24 off, day 1 = Wed 25 Nov.
    assert CAL.due_at(at(2026, 11, 23, 9), Decimal(1), DAYS) == at(2026, 11, 25, 17)
    # A receipt on the day itself counts from Wed 25 Nov: day 1 = Thu 26 Nov.
    assert CAL.due_at(at(2026, 11, 24, 9), Decimal(1), DAYS) == at(2026, 11, 26, 17)
