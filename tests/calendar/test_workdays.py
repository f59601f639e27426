"""Worked-by-hand deadlines on the real 2025–2026 Vietnamese calendar, plus override data checks.

Office hours are the defaults, 07:30–11:30 and 13:00–17:00 (8 h a day), in Asia/Ho_Chi_Minh.
"""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest

from app.calendar.data import (
    OverrideDataError,
    load_shipped_overrides,
    parse_overrides,
    shipped_override_entries,
)
from app.calendar.workdays import (
    VIETNAM_TZ,
    DayKind,
    FractionalDayRule,
    LimitUnit,
    OfficeHours,
    WorkingCalendar,
)


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=VIETNAM_TZ)


CAL = WorkingCalendar(overrides=load_shipped_overrides())
PACKAGE_ONLY = WorkingCalendar()
DAYS = LimitUnit.WORKING_DAYS


def test_tet_2026_closes_the_offices_from_16_to_20_february() -> None:
    # 14–22 Feb 2026 off: Sat 14, Sun 15, then the five weekdays, then Sat 21, Sun 22.
    off = [date(2026, 2, d) for d in range(14, 23)]
    assert not any(CAL.is_working_day(d) for d in off)
    assert CAL.is_working_day(date(2026, 2, 13))
    assert CAL.is_working_day(date(2026, 2, 23))


def test_three_working_days_across_tet_2026() -> None:
    # Received Thu 12 Feb, not counted. Day 1 = Fri 13 Feb; 14–22 Feb off;
    # day 2 = Mon 23 Feb; day 3 = Tue 24 Feb → close of office hours.
    assert CAL.due_at(at(2026, 2, 12, 10), Decimal(3), DAYS) == at(2026, 2, 24, 17)


def test_working_days_across_30_april_and_1_may_2026() -> None:
    # Received Wed 29 Apr. Thu 30 Apr and Fri 1 May are holidays, then the weekend:
    # day 1 = Mon 4 May, day 2 = Tue 5 May.
    assert CAL.due_at(at(2026, 4, 29, 9), Decimal(2), DAYS) == at(2026, 5, 5, 17)
    # Received Fri 24 Apr. Mon 27 Apr is Hùng Kings' day (26 Apr is a Sunday, observed Monday):
    # day 1 = Tue 28, day 2 = Wed 29, 30 Apr–3 May off, day 3 = Mon 4 May.
    assert CAL.due_at(at(2026, 4, 24, 9), Decimal(3), DAYS) == at(2026, 5, 4, 17)


def test_dispatch_12729_gives_friday_2_january_2026_off() -> None:
    # Received Wed 31 Dec 2025. Thu 1 Jan is New Year's Day, Fri 2 Jan off by the dispatch,
    # then the weekend: day 1 = Mon 5 Jan, day 2 = Tue 6 Jan.
    assert CAL.due_at(at(2025, 12, 31, 10), Decimal(2), DAYS) == at(2026, 1, 6, 17)
    # The holidays package alone still counts Fri 2 Jan (day 1) → Mon 5 Jan (day 2).
    assert PACKAGE_ONLY.due_at(at(2025, 12, 31, 10), Decimal(2), DAYS) == at(2026, 1, 5, 17)


def test_saturday_10_january_2026_is_a_working_day() -> None:
    # Received Thu 8 Jan: day 1 = Fri 9 Jan, day 2 = Sat 10 Jan (worked by the swap).
    assert CAL.is_working_day(date(2026, 1, 10))
    assert CAL.due_at(at(2026, 1, 8, 10), Decimal(2), DAYS) == at(2026, 1, 10, 17)
    # Without the override day 2 would be Mon 12 Jan.
    assert PACKAGE_ONLY.due_at(at(2026, 1, 8, 10), Decimal(2), DAYS) == at(2026, 1, 12, 17)


def test_worked_saturdays_of_shipped_swaps() -> None:
    # The package lists the day off of each swap but not the Saturday worked in exchange.
    assert not PACKAGE_ONLY.is_working_day(date(2025, 4, 26))
    assert CAL.is_working_day(date(2025, 4, 26))
    assert not CAL.is_working_day(date(2025, 5, 2))
    assert CAL.is_working_day(date(2026, 8, 22))


def test_half_day_limit_counted_from_the_receipt_instant() -> None:
    # Thu 12 Mar 2026 10:00 + 4 h: 10:00–11:30 is 1.5 h, 13:00 + 2.5 h = 15:30 the same day.
    cal = WorkingCalendar(fractional_day_rule=FractionalDayRule.HOURS_FROM_RECEIPT)
    assert cal.due_at(at(2026, 3, 12, 10), Decimal("0.5"), DAYS) == at(2026, 3, 12, 15, 30)
    # 1.5 days = 12 h: 5.5 h left on Thu, 6.5 h on Fri = 4 h morning + 13:00–15:30.
    assert cal.due_at(at(2026, 3, 12, 10), Decimal("1.5"), DAYS) == at(2026, 3, 13, 15, 30)


def test_half_day_limit_counted_from_the_next_working_day() -> None:
    # The receipt day is not counted: Fri 13 Mar 07:30 + 4 h = 11:30.
    cal = WorkingCalendar(fractional_day_rule=FractionalDayRule.FROM_NEXT_DAY)
    assert cal.due_at(at(2026, 3, 12, 10), Decimal("0.5"), DAYS) == at(2026, 3, 13, 11, 30)
    # 1.5 days = all of Fri 13 Mar, then Mon 16 Mar 07:30 + 4 h = 11:30.
    assert cal.due_at(at(2026, 3, 12, 10), Decimal("1.5"), DAYS) == at(2026, 3, 16, 11, 30)


def test_working_hours_run_over_the_weekend() -> None:
    # Fri 13 Mar 2026 15:00: 2 h to 17:00, then 2 h from Mon 16 Mar 07:30 → 09:30.
    hours = LimitUnit.WORKING_HOURS
    assert CAL.due_at(at(2026, 3, 13, 15), Decimal(4), hours) == at(2026, 3, 16, 9, 30)
    # Fri 24 Apr 2026 15:00: Mon 27 Apr is Hùng Kings' day → Tue 28 Apr 09:30.
    assert CAL.due_at(at(2026, 4, 24, 15), Decimal(4), hours) == at(2026, 4, 28, 9, 30)
    # Before opening the clock starts at 07:30: 07:30 + 4 h ends exactly at 11:30.
    assert CAL.due_at(at(2026, 3, 12, 6), Decimal(4), hours) == at(2026, 3, 12, 11, 30)


def test_calendar_days_roll_over_30_april_and_1_may() -> None:
    # Mon 20 Apr 2026 + 10 days = Thu 30 Apr (holiday); Fri 1 May holiday, weekend → Mon 4 May.
    assert CAL.due_at(at(2026, 4, 20, 10), Decimal(10), LimitUnit.CALENDAR_DAYS) == at(
        2026, 5, 4, 17
    )
    # Mon 20 Apr + 3 days = Thu 23 Apr, a working day: its close.
    assert CAL.due_at(at(2026, 4, 20, 10), Decimal(3), LimitUnit.CALENDAR_DAYS) == at(
        2026, 4, 23, 17
    )


def test_months_roll_over_holidays_and_clamp_to_month_end() -> None:
    months = LimitUnit.MONTHS
    # Mon 30 Mar 2026 + 1 month = Thu 30 Apr (holiday), 1 May holiday, weekend → Mon 4 May.
    assert CAL.due_at(at(2026, 3, 30, 10), Decimal(1), months) == at(2026, 5, 4, 17)
    # Fri 30 Jan 2026 + 1 month: no 30 Feb → Sat 28 Feb → next working day Mon 2 Mar.
    assert CAL.due_at(at(2026, 1, 30, 10), Decimal(1), months) == at(2026, 3, 2, 17)
    # Tue 10 Mar 2026 + 2 months = Sun 10 May → Mon 11 May.
    assert CAL.due_at(at(2026, 3, 10, 10), Decimal(2), months) == at(2026, 5, 11, 17)


def test_intake_cut_off_moves_the_receipt_to_the_next_working_day() -> None:
    cal = WorkingCalendar(intake_cutoff=time(15, 0))
    # Thu 12 Mar 2026 15:30 is after 15:00: received Fri 13, so day 1 = Mon 16 Mar.
    assert cal.due_at(at(2026, 3, 12, 15, 30), Decimal(1), DAYS) == at(2026, 3, 16, 17)
    # Exactly 15:00 is still the same day: day 1 = Fri 13 Mar.
    assert cal.due_at(at(2026, 3, 12, 15), Decimal(1), DAYS) == at(2026, 3, 13, 17)
    # Without a cut-off a 15:30 receipt is a Thursday receipt.
    assert PACKAGE_ONLY.due_at(at(2026, 3, 12, 15, 30), Decimal(1), DAYS) == at(2026, 3, 13, 17)
    # Hour limits start at the next working day's opening: Fri 07:30 + 4 h = 11:30.
    late_hours = cal.due_at(at(2026, 3, 12, 15, 30), Decimal(4), LimitUnit.WORKING_HOURS)
    assert late_hours == at(2026, 3, 13, 11, 30)


def test_receipt_on_a_non_working_day_counts_from_the_next_working_day() -> None:
    # Sat 14 Mar 2026 (online receipt) counts as received Mon 16; day 1 = Tue 17 Mar.
    assert CAL.due_at(at(2026, 3, 14, 10), Decimal(1), DAYS) == at(2026, 3, 17, 17)
    # Hours start at Mon 16 Mar 07:30: + 2 h = 09:30.
    hours = LimitUnit.WORKING_HOURS
    assert CAL.due_at(at(2026, 3, 14, 10), Decimal(2), hours) == at(2026, 3, 16, 9, 30)


def test_working_time_between_skips_lunch_and_the_weekend() -> None:
    # Thu 12 Mar 2026 11:00–14:00: 11:00–11:30 and 13:00–14:00 → 1 h 30.
    lunch = CAL.working_time_between(at(2026, 3, 12, 11), at(2026, 3, 12, 14))
    assert lunch == timedelta(hours=1, minutes=30)
    # Fri 13 Mar 11:00 → Mon 16 Mar 14:00: Fri 0.5 h + 4 h, Mon 4 h + 1 h = 9 h 30.
    a, b = at(2026, 3, 13, 11), at(2026, 3, 16, 14)
    assert CAL.working_time_between(a, b) == timedelta(hours=9, minutes=30)
    # 9.5 h / 8 h = 1.1875 → 1.19 working days overdue.
    assert CAL.working_days_between(a, b) == Decimal("1.19")
    assert CAL.working_time_between(b, a) == timedelta(0)
    assert CAL.working_days_between(b, a) == Decimal("0.00")


def test_add_working_time_stops_at_the_end_of_an_interval() -> None:
    # 10:00 + 1 h 30 ends at 11:30, not at the 13:00 reopening.
    assert CAL.add_working_time(at(2026, 3, 12, 10), timedelta(hours=1, minutes=30)) == at(
        2026, 3, 12, 11, 30
    )
    # A full day from the opening ends at 17:00 the same day, not 07:30 the next.
    assert CAL.add_working_time(at(2026, 3, 12, 7, 30), timedelta(hours=8)) == at(2026, 3, 12, 17)
    # Zero is the start itself, even outside office hours.
    assert CAL.add_working_time(at(2026, 3, 14, 10), timedelta(0)) == at(2026, 3, 14, 10)


def test_next_opening() -> None:
    assert CAL.next_opening(at(2026, 3, 12, 6)) == at(2026, 3, 12, 7, 30)
    assert CAL.next_opening(at(2026, 3, 12, 12)) == at(2026, 3, 12, 13)
    assert CAL.next_opening(at(2026, 3, 12, 13)) == at(2026, 3, 12, 13)
    # Fri 13 Mar 17:30 → Mon 16 Mar 07:30.
    assert CAL.next_opening(at(2026, 3, 13, 17, 30)) == at(2026, 3, 16, 7, 30)


def test_instants_in_other_zones_are_converted_and_returned_in_the_calendar_zone() -> None:
    # 03:00 UTC is 10:00 in Hanoi; 3 working days from Thu 12 Feb 2026 as above.
    due = CAL.due_at(datetime(2026, 2, 12, 3, tzinfo=UTC), Decimal(3), DAYS)
    assert due == at(2026, 2, 24, 17)
    assert due.tzinfo is VIETNAM_TZ
    # 20:00 UTC on Fri 13 Feb is 03:00 Sat 14 Feb in Hanoi: a day off.
    assert not CAL.is_working_day(datetime(2026, 2, 13, 20, tzinfo=UTC))


def test_naive_datetimes_are_rejected() -> None:
    naive = datetime(2026, 3, 12, 10)
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.due_at(naive, Decimal(1), DAYS)
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.working_time_between(naive, at(2026, 3, 13))
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.add_working_time(naive, timedelta(hours=1))
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.next_opening(naive)


def test_invalid_limits_and_office_hours_are_rejected() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        CAL.due_at(at(2026, 3, 12, 10), Decimal(-1), DAYS)
    with pytest.raises(ValueError, match="whole number"):
        CAL.due_at(at(2026, 3, 12, 10), Decimal("1.5"), LimitUnit.CALENDAR_DAYS)
    with pytest.raises(ValueError, match="overlaps"):
        OfficeHours([(time(8), time(12)), (time(11), time(17))])
    with pytest.raises(ValueError, match="must be dates"):
        WorkingCalendar(overrides={datetime(2026, 1, 2, tzinfo=UTC): DayKind.HOLIDAY})


def test_custom_office_hours() -> None:
    # A single 08:00–16:00 shift; 3 h from Thu 15:00 → 1 h Thu, 2 h from Fri 08:00 → 10:00.
    hours = OfficeHours([(time(8), time(16))])
    assert hours.hours_per_day == Decimal(8)
    cal = WorkingCalendar(office_hours=hours)
    assert cal.add_working_time(at(2026, 3, 12, 15), timedelta(hours=3)) == at(2026, 3, 13, 10)
    assert OfficeHours().hours_per_day == Decimal(8)


def test_shipped_overrides_carry_dispatch_12729() -> None:
    overrides = load_shipped_overrides()
    assert overrides[date(2026, 1, 2)] is DayKind.HOLIDAY
    assert overrides[date(2026, 1, 10)] is DayKind.WORKDAY
    entries = {e.date: e for e in shipped_override_entries()}
    assert "12729/VPCP-KGVX" in entries[date(2026, 1, 2)].reference
    assert all(e.reason and e.reference for e in entries.values())


HEADER = "version: 1\npublished: 2026-11-27\noverrides:\n"


def test_override_data_with_a_repeated_date_is_refused() -> None:
    text = HEADER + (
        "  - {date: 2026-01-02, kind: holiday, reason: r, reference: x}\n"
        "  - {date: 2026-01-02, kind: workday, reason: r, reference: x}\n"
    )
    with pytest.raises(OverrideDataError, match="more than one override for 2026-01-02"):
        parse_overrides(text, source="ops.yaml")


def test_override_data_with_an_unknown_kind_is_refused() -> None:
    text = HEADER + "  - {date: 2026-01-02, kind: half_day, reason: r, reference: x}\n"
    with pytest.raises(OverrideDataError, match=r"ops\.yaml.*\n(.|\n)*'workday' or 'holiday'"):
        parse_overrides(text, source="ops.yaml")


def test_override_data_without_a_reference_is_refused() -> None:
    text = HEADER + "  - {date: 2026-01-02, kind: holiday, reason: r}\n"
    with pytest.raises(OverrideDataError, match="reference"):
        parse_overrides(text)


def test_an_instants_month_is_the_month_of_its_local_date() -> None:
    # 31 October 2026, 17:00 UTC is 1 November, 00:00 in Hanoi: November's.
    assert CAL.local_month(datetime(2026, 10, 31, 16, 59, 59, tzinfo=UTC)) == date(2026, 10, 1)
    assert CAL.local_month(datetime(2026, 10, 31, 17, 0, tzinfo=UTC)) == date(2026, 11, 1)
    assert CAL.local_month(at(2026, 12, 31, 23, 59)) == date(2026, 12, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.local_month(datetime(2026, 10, 31, 17, 0))
