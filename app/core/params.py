"""Types of dates and times in paths and query strings: ISO 8601 text only.

Pydantic's lax mode would read ``0`` or ``1.5`` as a Unix timestamp (``/calendar/days/0`` is
1 January 1970); a parameter documented as a date must be written as one.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}.*")


def _date_text(value: object) -> object:
    if isinstance(value, str) and not _DATE.fullmatch(value.strip()):
        raise ValueError("expected a date as YYYY-MM-DD")
    return value


def _datetime_text(value: object) -> object:
    if isinstance(value, str) and not _DATETIME.fullmatch(value.strip()):
        raise ValueError("expected a date and time as YYYY-MM-DDTHH:MM[:SS]±HH:MM")
    return value


# Far enough for any dossier or report; far from the ends of Python's and PostgreSQL's ranges.
EARLIEST_YEAR, LATEST_YEAR = 1900, 2199


def _date_in_range(value: date) -> date:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"year must be between {EARLIEST_YEAR} and {LATEST_YEAR}")
    return value


def _datetime_in_range(value: datetime) -> datetime:
    try:
        _date_in_range(value.astimezone(UTC).date())
    except OverflowError:
        raise ValueError(f"year must be between {EARLIEST_YEAR} and {LATEST_YEAR}") from None
    return value


IsoDate = Annotated[date, BeforeValidator(_date_text), AfterValidator(_date_in_range)]
IsoDateTime = Annotated[
    AwareDatetime, BeforeValidator(_datetime_text), AfterValidator(_datetime_in_range)
]
