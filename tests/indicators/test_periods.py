"""Scoring periods: the three spellings, their days, their neighbours and their months; the
arithmetic on them, on the local calendar (Asia/Ho_Chi_Minh, UTC+7)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.errors import Unprocessable
from app.core.settings import Settings
from app.indicators.periods import (
    LATEST_YEAR,
    Period,
    PeriodKind,
    has_ended,
    parse_period,
    periods_between,
    periods_touched,
    previous,
    running,
    today,
    window,
)

VN = ZoneInfo("Asia/Ho_Chi_Minh")
SETTINGS = Settings(environment="development", _env_file=None)  # type: ignore[call-arg]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "kind", "first", "last"),
    [
        ("2024-04", PeriodKind.month, date(2024, 4, 1), date(2024, 4, 30)),
        ("2024-02", PeriodKind.month, date(2024, 2, 1), date(2024, 2, 29)),  # leap year
        ("2025-12", PeriodKind.month, date(2025, 12, 1), date(2025, 12, 31)),
        ("2024-Q2", PeriodKind.quarter, date(2024, 4, 1), date(2024, 6, 30)),
        ("2024-Q4", PeriodKind.quarter, date(2024, 10, 1), date(2024, 12, 31)),
        ("2024", PeriodKind.year, date(2024, 1, 1), date(2024, 12, 31)),
    ],
)
def test_parse_gives_kind_and_days(text: str, kind: PeriodKind, first: date, last: date) -> None:
    period = Period.parse(text)
    assert (period.kind, period.first_day, period.last_day) == (kind, first, last)
    assert str(period) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2024-13", "month must be 01–12"),
        ("2024-00", "month must be 01–12"),
        ("2024-Q5", "quarter must be Q1–Q4"),
        ("2024-Q0", "quarter must be Q1–Q4"),
        ("2024-4", "must look like 2024-04"),
        ("24-04", "must look like 2024-04"),
        ("2024/04", "must look like 2024-04"),
        ("2024-q2", "must look like 2024-04"),
        ("", "must look like 2024-04"),
        ("1999", "outside 2000–2099"),
    ],
)
def test_invalid_periods_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Period.parse(text)


def test_previous_stays_in_kind_and_crosses_years() -> None:
    assert str(Period.parse("2024-01").previous()) == "2023-12"
    assert str(Period.parse("2024-04").previous()) == "2024-03"
    assert str(Period.parse("2024-Q1").previous()) == "2023-Q4"
    assert str(Period.parse("2024-Q3").previous()) == "2024-Q2"
    assert str(Period.parse("2024").previous()) == "2023"


def test_months_and_parts() -> None:
    assert [str(m) for m in Period.parse("2024-Q2").months()] == ["2024-04", "2024-05", "2024-06"]
    assert len(Period.parse("2024").months()) == 12
    assert [str(p) for p in Period.parse("2024").parts()] == [
        "2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4",
    ]  # fmt: skip
    assert Period.parse("2024-04").months() == (Period.parse("2024-04"),)
    assert Period.parse("2024-04").parts() == ()


def test_containing_and_order() -> None:
    day = date(2024, 5, 17)
    assert str(Period.containing(day, PeriodKind.month)) == "2024-05"
    assert str(Period.containing(day, PeriodKind.quarter)) == "2024-Q2"
    assert str(Period.containing(day, PeriodKind.year)) == "2024"
    texts = ["2024-04", "2024-Q2", "2023", "2024-01", "2024", "2024-Q1"]
    assert [str(p) for p in sorted(Period.parse(t) for t in texts)] == [
        "2023", "2024", "2024-Q1", "2024-01", "2024-Q2", "2024-04",
    ]  # fmt: skip


periods = st.one_of(
    st.builds(Period, st.just(PeriodKind.month), st.integers(2001, 2099), st.integers(1, 12)),
    st.builds(Period, st.just(PeriodKind.quarter), st.integers(2001, 2099), st.integers(1, 4)),
    st.builds(Period, st.just(PeriodKind.year), st.integers(2001, 2099)),
)


@given(periods)
def test_text_round_trip_and_contiguity(period: Period) -> None:
    assert Period.parse(str(period)) == period
    before = period.previous()
    assert before.kind is period.kind
    assert (period.first_day - before.last_day).days == 1
    assert before.following() == period
    months = period.months()
    assert months[0].first_day == period.first_day
    assert months[-1].last_day == period.last_day
    if period.year < LATEST_YEAR:
        after = period.following()
        assert (after.first_day - period.last_day).days == 1
        assert after.kind is period.kind


def test_following_crosses_years() -> None:
    assert str(Period.parse("2023-12").following()) == "2024-01"
    assert str(Period.parse("2024-Q4").following()) == "2025-Q1"
    assert str(Period.parse("2024").following()) == "2025"


def test_parse_period_answers_422_naming_the_parameter() -> None:
    assert parse_period("2026-Q1") == Period(PeriodKind.quarter, 2026, 1)
    with pytest.raises(Unprocessable) as caught:
        parse_period("2026-13", "from")
    assert caught.value.errors == [
        {"parameter": "from", "detail": "period '2026-13': the month must be 01–12"}
    ]


def test_window_is_the_local_month() -> None:
    start, end = window(Period.parse("2026-03"), VN)
    # 1 March 00:00 local is 28 February 17:00 UTC; the window ends a microsecond before
    # 1 April 00:00 local (31 March 17:00 UTC).
    assert start.astimezone(UTC) == utc("2026-02-28 17:00")
    assert end.astimezone(UTC) == utc("2026-03-31 16:59:59.999999")
    q_start, q_end = window(Period.parse("2026-Q2"), VN)
    assert (q_start.date(), q_end.date()) == (date(2026, 4, 1), date(2026, 6, 30))


def test_periods_touched_from_a_span() -> None:
    # A dossier received on 15 January and finished on 2 March counts in three months, their
    # quarter and their year; the ends may come in either order.
    expected = ["2026", "2026-01", "2026-02", "2026-03", "2026-Q1"]
    assert periods_touched([(date(2026, 1, 15), date(2026, 3, 2))]) == expected
    assert periods_touched([(date(2026, 3, 2), date(2026, 1, 15))]) == expected
    assert periods_touched([(date(2025, 12, 31), date(2026, 1, 1))]) == [
        "2025", "2025-12", "2025-Q4", "2026", "2026-01", "2026-Q1",
    ]  # fmt: skip
    # A span of 24 months cut to its latest 3: November 2025 to January 2026.
    cut = periods_touched([(date(2024, 2, 1), date(2026, 1, 20))], limit=3)
    assert cut == ["2025", "2025-11", "2025-12", "2025-Q4", "2026", "2026-01", "2026-Q1"]
    assert periods_touched([]) == []


def test_periods_between_in_each_granularity() -> None:
    months = periods_between(Period.parse("2025-11"), Period.parse("2026-02"), "month")
    assert [str(p) for p in months] == ["2025-11", "2025-12", "2026-01", "2026-02"]
    quarters = periods_between(Period.parse("2025-11"), Period.parse("2026-02"), "quarter")
    assert [str(p) for p in quarters] == ["2025-Q4", "2026-Q1"]
    years = periods_between(Period.parse("2025-Q4"), Period.parse("2026"), "year")
    assert [str(p) for p in years] == ["2025", "2026"]
    assert periods_between(Period.parse("2026-03"), Period.parse("2026-03"), "month") == [
        Period.parse("2026-03")
    ]


def test_periods_between_refuses_a_reversed_or_too_long_range() -> None:
    with pytest.raises(Unprocessable) as reversed_range:
        periods_between(Period.parse("2026-03"), Period.parse("2026-02"), "month")
    assert reversed_range.value.errors == [{"parameter": "to", "detail": "before from"}]
    # 120 months from January 2016 to December 2025 are allowed, 121 are not.
    assert len(periods_between(Period.parse("2016-01"), Period.parse("2025-12"), "month")) == 120
    with pytest.raises(Unprocessable) as too_long:
        periods_between(Period.parse("2015-12"), Period.parse("2025-12"), "month")
    assert too_long.value.errors == [{"parameter": "from", "detail": "range too long"}]
    assert len(periods_between(Period.parse("2026-01"), Period.parse("2026-03"), "month", 3)) == 3
    with pytest.raises(Unprocessable):
        periods_between(Period.parse("2026-01"), Period.parse("2026-04"), "month", 3)


@pytest.mark.parametrize(
    ("instant", "local_day", "march_ended", "running_month", "previous_month"),
    [
        # 23:59 local on 31 March (16:59 UTC): March is still running.
        ("2026-03-31 16:59", date(2026, 3, 31), False, "2026-03", "2026-02"),
        # Midnight local on 1 April (17:00 UTC on 31 March): March has ended.
        ("2026-03-31 17:00", date(2026, 4, 1), True, "2026-04", "2026-03"),
        # 06:59 local on 1 April is still 31 March by the UTC date: March has ended all the same.
        ("2026-03-31 23:59", date(2026, 4, 1), True, "2026-04", "2026-03"),
        # 07:00 local on 1 April, 00:00 UTC: both calendars agree.
        ("2026-04-01 00:00", date(2026, 4, 1), True, "2026-04", "2026-03"),
    ],
)
def test_the_local_calendar_at_the_turn_of_a_month(
    instant: str, local_day: date, march_ended: bool, running_month: str, previous_month: str
) -> None:
    at = utc(instant)
    assert today(SETTINGS, at) == local_day
    assert has_ended(Period.parse("2026-03"), SETTINGS, at) is march_ended
    assert has_ended(Period.parse("2026-Q1"), SETTINGS, at) is march_ended
    assert str(running(SETTINGS, at)) == running_month
    assert str(previous(SETTINGS, at)) == previous_month


def test_the_local_calendar_at_the_turn_of_a_year() -> None:
    at = utc("2025-12-31 17:30")  # 00:30 local on 1 January 2026
    assert str(running(SETTINGS, at)) == "2026-01"
    assert str(running(SETTINGS, at, PeriodKind.quarter)) == "2026-Q1"
    assert str(running(SETTINGS, at, PeriodKind.year)) == "2026"
    assert str(previous(SETTINGS, at)) == "2025-12"
    assert has_ended(Period.parse("2025"), SETTINGS, at)
    # Another zone, another calendar: the same instant is still 2025 in UTC.
    assert str(running(SETTINGS.model_copy(update={"timezone": "UTC"}), at)) == "2025-12"
