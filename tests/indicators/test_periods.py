"""Scoring periods: the three spellings, their days, their neighbours and their months."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.indicators.periods import Period, PeriodKind


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
    months = period.months()
    assert months[0].first_day == period.first_day
    assert months[-1].last_day == period.last_day
