"""Types of dates, times and free text in requests, with the JSON schema that states their rules.

Pydantic's lax mode would read ``0`` or ``1.5`` as a Unix timestamp (``/calendar/days/0`` is
1 January 1970); a parameter documented as a date must be written as one. Each type carries
its rules into the OpenAPI schema (format, year range, no NUL), so a request the schema calls
valid is never refused for them, and one it calls invalid never accepted.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}.*", re.ASCII)

# Far enough for any dossier or report; far from the ends of Python's and PostgreSQL's ranges.
EARLIEST_YEAR, LATEST_YEAR = 1900, 2199
# The same range, as the schema states it (a test holds the two together).
YEAR_PATTERN = "(19[0-9]{2}|2[01][0-9]{2})"
DATE_PATTERN = f"^{YEAR_PATTERN}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
DATETIME_PATTERN = f"^{YEAR_PATTERN}-"

# PostgreSQL text holds no NUL character: free text states it, and is refused with a pointer.
NO_NUL_PATTERN = r"^[^\x00]*$"

# A unit or procedure code as another system writes it in an event: what dossier events may
# carry, and what a procedure learned from them may be named (stricter rules for addressing
# one in a URL live with each domain's schemas).
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$"


def _date_text(value: object) -> object:
    # A date built in code passes; from a request, only text (a JSON number is no date).
    if isinstance(value, date) or (isinstance(value, str) and _DATE.fullmatch(value)):
        return value
    raise ValueError("expected a date as YYYY-MM-DD")


def _datetime_text(value: object) -> object:
    if isinstance(value, datetime) or (isinstance(value, str) and _DATETIME.fullmatch(value)):
        return value
    raise ValueError("expected a date and time as YYYY-MM-DDTHH:MM[:SS]±HH:MM")


def _year_in_range(year: int) -> None:
    if not EARLIEST_YEAR <= year <= LATEST_YEAR:
        raise ValueError(f"year must be between {EARLIEST_YEAR} and {LATEST_YEAR}")


def _date_in_range(value: date) -> date:
    _year_in_range(value.year)
    return value


def _datetime_in_range(value: datetime) -> datetime:
    # The year as written (what the schema's pattern sees), not in UTC: both ends stay far
    # from the limits of Python and PostgreSQL whatever the offset.
    _year_in_range(value.year)
    return value


IsoDate = Annotated[
    date,
    BeforeValidator(_date_text),
    AfterValidator(_date_in_range),
    WithJsonSchema({"type": "string", "format": "date", "pattern": DATE_PATTERN}),
]
IsoDateTime = Annotated[
    AwareDatetime,
    BeforeValidator(_datetime_text),
    AfterValidator(_datetime_in_range),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": DATETIME_PATTERN}),
]


def _json_integer(value: object) -> object:
    """JSON has one number type: ``12.0`` is the integer 12, as JSON Schema reads it. Text and
    booleans are not numbers (lax pydantic would read "12" and true as integers)."""
    if isinstance(value, (bool, str)):
        # pydantic's own wording for a value of the wrong type
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# For integers and integer enums of request bodies: `Annotated[int, ..., JSON_INTEGER]`.
JSON_INTEGER = BeforeValidator(_json_integer)
