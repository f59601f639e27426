"""Scoring periods of the service index: a month (``2024-04``), a quarter (``2024-Q2``), a year.

A period is a value: parsed from and printed to the same text, hashable, and ordered by its
first day (then by length, so ``2024`` sorts before ``2024-Q1`` before ``2024-01``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Annotated, Self

from pydantic import WithJsonSchema

EARLIEST_YEAR = 2000
LATEST_YEAR = 2099

_PATTERN = re.compile(r"(?P<year>[0-9]{4})(?:-(?:Q(?P<quarter>[0-9])|(?P<month>[0-9]{2})))?")
# Exactly the texts `Period.parse` accepts, as the OpenAPI schema states them (years
# EARLIEST_YEAR–LATEST_YEAR; a test holds the two together).
PERIOD_PATTERN = r"^20[0-9]{2}(-Q[1-4]|-(0[1-9]|1[0-2]))?$"
MONTH_PATTERN = r"^20[0-9]{2}-(0[1-9]|1[0-2])$"

# A period in a request, as text: the route parses it (422 says what is wrong with it); the
# schema states the same rule, so no schema-valid period is refused.
PeriodText = Annotated[
    str,
    WithJsonSchema(
        {"type": "string", "pattern": PERIOD_PATTERN, "examples": ["2026-03", "2026-Q1", "2026"]}
    ),
]
MonthText = Annotated[
    str, WithJsonSchema({"type": "string", "pattern": MONTH_PATTERN, "examples": ["2026-03"]})
]


class PeriodKind(StrEnum):
    month = "month"
    quarter = "quarter"
    year = "year"


_LENGTH_RANK = {PeriodKind.year: 0, PeriodKind.quarter: 1, PeriodKind.month: 2}


@dataclass(frozen=True, slots=True)
class Period:
    """``index`` is the month (1–12) or quarter (1–4); 0 for a year."""

    kind: PeriodKind
    year: int
    index: int = 0

    def __post_init__(self) -> None:
        if not EARLIEST_YEAR <= self.year <= LATEST_YEAR:
            raise ValueError(f"year {self.year} is outside {EARLIEST_YEAR}–{LATEST_YEAR}")
        bound = {PeriodKind.month: 12, PeriodKind.quarter: 4, PeriodKind.year: 0}[self.kind]
        low = 0 if self.kind is PeriodKind.year else 1
        if not low <= self.index <= bound:
            raise ValueError(f"{self.kind.value} index {self.index} is outside {low}–{bound}")

    @classmethod
    def parse(cls, text: str) -> Self:
        """``2024-04`` (month), ``2024-Q2`` (quarter) or ``2024`` (year); anything else fails
        (ASCII digits, no surrounding blanks: exactly :data:`PERIOD_PATTERN`)."""
        match = _PATTERN.fullmatch(text)
        if match is None:
            raise ValueError(
                f"period {text!r} must look like 2024-04 (month), 2024-Q2 (quarter) or 2024 (year)"
            )
        year = int(match["year"])
        if match["quarter"] is not None:
            quarter = int(match["quarter"])
            if not 1 <= quarter <= 4:
                raise ValueError(f"period {text!r}: the quarter must be Q1–Q4")
            return cls(PeriodKind.quarter, year, quarter)
        if match["month"] is not None:
            month = int(match["month"])
            if not 1 <= month <= 12:
                raise ValueError(f"period {text!r}: the month must be 01–12")
            return cls(PeriodKind.month, year, month)
        return cls(PeriodKind.year, year)

    @classmethod
    def containing(cls, day: date, kind: PeriodKind) -> Self:
        """The period of ``kind`` that ``day`` falls in."""
        if kind is PeriodKind.month:
            return cls(kind, day.year, day.month)
        if kind is PeriodKind.quarter:
            return cls(kind, day.year, (day.month - 1) // 3 + 1)
        return cls(kind, day.year)

    def __str__(self) -> str:
        if self.kind is PeriodKind.month:
            return f"{self.year:04d}-{self.index:02d}"
        if self.kind is PeriodKind.quarter:
            return f"{self.year:04d}-Q{self.index}"
        return f"{self.year:04d}"

    @property
    def first_day(self) -> date:
        if self.kind is PeriodKind.month:
            return date(self.year, self.index, 1)
        if self.kind is PeriodKind.quarter:
            return date(self.year, 3 * self.index - 2, 1)
        return date(self.year, 1, 1)

    @property
    def last_day(self) -> date:
        if self.kind is PeriodKind.month:
            following = date(self.year + self.index // 12, self.index % 12 + 1, 1)
            return following - timedelta(days=1)
        if self.kind is PeriodKind.quarter:
            return Period(PeriodKind.month, self.year, 3 * self.index).last_day
        return date(self.year, 12, 31)

    def contains_day(self, day: date) -> bool:
        return self.first_day <= day <= self.last_day

    def previous(self) -> Period:
        """The period of the same kind just before this one (2024-01 → 2023-12)."""
        if self.kind is PeriodKind.year:
            return Period(self.kind, self.year - 1)
        if self.index > 1:
            return Period(self.kind, self.year, self.index - 1)
        last = 12 if self.kind is PeriodKind.month else 4
        return Period(self.kind, self.year - 1, last)

    def months(self) -> tuple[Period, ...]:
        """The months inside this period, in order (a month contains itself)."""
        if self.kind is PeriodKind.month:
            return (self,)
        start = self.first_day.month
        end = self.last_day.month
        return tuple(Period(PeriodKind.month, self.year, m) for m in range(start, end + 1))

    def parts(self) -> tuple[Period, ...]:
        """One level down: a year's quarters, a quarter's months, nothing for a month."""
        if self.kind is PeriodKind.year:
            return tuple(Period(PeriodKind.quarter, self.year, q) for q in range(1, 5))
        if self.kind is PeriodKind.quarter:
            return self.months()
        return ()

    def sort_key(self) -> tuple[date, int]:
        return (self.first_day, _LENGTH_RANK[self.kind])

    def __lt__(self, other: Period) -> bool:
        return self.sort_key() < other.sort_key()

    def __le__(self, other: Period) -> bool:
        return self.sort_key() <= other.sort_key()

    def __gt__(self, other: Period) -> bool:
        return self.sort_key() > other.sort_key()

    def __ge__(self, other: Period) -> bool:
        return self.sort_key() >= other.sort_key()


def periods_touched(spans: Iterable[tuple[date, date]], limit: int = 36) -> list[str]:
    """Every month (and its quarter and year) that a dossier living from ``a`` to ``b`` may
    count in; a span longer than ``limit`` months is cut to its latest months."""
    found: set[str] = set()
    for first, last in spans:
        if last < first:
            first, last = last, first
        month = Period.containing(last, PeriodKind.month)
        for _ in range(limit):
            found.update(
                {
                    str(month),
                    str(Period.containing(month.first_day, PeriodKind.quarter)),
                    str(Period.containing(month.first_day, PeriodKind.year)),
                }
            )
            if month.first_day <= first:
                break
            month = month.previous()
    return sorted(found)
