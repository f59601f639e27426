"""Properties of office-time arithmetic that must hold for any instant in 2025–2027."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from app.calendar.data import load_shipped_overrides
from app.calendar.workdays import VIETNAM_TZ, LimitUnit, WorkingCalendar

CAL = WorkingCalendar(overrides=load_shipped_overrides(), years=range(2025, 2029))
DAY = timedelta(hours=8)

instants = st.datetimes(
    min_value=datetime(2025, 1, 1),
    max_value=datetime(2027, 12, 31, 23, 59, 59),
    timezones=st.sampled_from([VIETNAM_TZ, UTC, ZoneInfo("Europe/Paris")]),
)
# Whole minutes up to ~60 working days.
amounts = st.integers(min_value=0, max_value=60 * 8 * 60).map(lambda m: timedelta(minutes=m))


def within_office_hours(instant: datetime) -> bool:
    local = instant.astimezone(VIETNAM_TZ)
    if not CAL.is_working_day(local.date()):
        return False
    wall = local.time().replace(tzinfo=None)
    return any(start <= wall <= end for start, end in CAL.office_hours.intervals)


@given(instants, amounts)
def test_round_trip(start: datetime, amount: timedelta) -> None:
    assert CAL.working_time_between(start, CAL.add_working_time(start, amount)) == amount


@given(instants, amounts, amounts)
def test_add_working_time_is_monotonic_in_amount(
    start: datetime, first: timedelta, second: timedelta
) -> None:
    smaller, larger = sorted((first, second))
    assert CAL.add_working_time(start, smaller) <= CAL.add_working_time(start, larger)


@given(instants, amounts)
def test_add_working_time_is_the_earliest_such_instant(start: datetime, amount: timedelta) -> None:
    end = CAL.add_working_time(start, amount)
    assert end >= start
    if end > start:
        assert CAL.working_time_between(start, end - timedelta(microseconds=1)) < amount


@given(instants, amounts.filter(lambda a: a > timedelta(0)))
def test_results_fall_within_office_hours_on_a_working_day(
    start: datetime, amount: timedelta
) -> None:
    assert within_office_hours(CAL.add_working_time(start, amount))


@given(instants, instants, instants)
def test_working_time_between_is_additive(a: datetime, b: datetime, c: datetime) -> None:
    a, b, c = sorted((a, b, c))
    whole = CAL.working_time_between(a, c)
    assert whole == CAL.working_time_between(a, b) + CAL.working_time_between(b, c)
    assert timedelta(0) <= whole <= (c - a)


@given(instants, st.integers(min_value=0, max_value=60))
def test_one_more_working_day_is_later(received_at: datetime, days: int) -> None:
    unit = LimitUnit.WORKING_DAYS
    shorter = CAL.due_at(received_at, Decimal(days), unit)
    longer = CAL.due_at(received_at, Decimal(days + 1), unit)
    assert longer > shorter
    assert within_office_hours(longer)
    # One more working day is exactly one more day of office time.
    assert CAL.working_time_between(shorter, longer) == DAY


@given(instants, st.integers(min_value=1, max_value=60))
def test_whole_days_equal_hours_from_the_next_opening(received_at: datetime, days: int) -> None:
    # Integer days = N × 8 h from the opening of the first working day after the receipt day.
    local = received_at.astimezone(VIETNAM_TZ)
    day_start = datetime.combine(local.date(), datetime.min.time(), tzinfo=VIETNAM_TZ)
    receipt_day_open = CAL.next_opening(day_start)
    next_open = CAL.next_opening(
        datetime.combine(receipt_day_open.date() + timedelta(days=1), day_start.timetz())
    )
    expected = CAL.add_working_time(next_open, days * DAY)
    assert CAL.due_at(received_at, Decimal(days), LimitUnit.WORKING_DAYS) == expected
