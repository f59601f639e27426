"""Keyset pagination: one list envelope, ``{"items": [...], "next": cursor | null}``, everywhere.

A cursor is the sort key of a page's last item, as base64url-encoded JSON. Clients treat it as
opaque, but nothing stops them from crafting one, and its values end up as bound parameters of
a query: each list states the *shape* of its cursor (one :class:`CursorField` per position) and
a cursor that does not fit it exactly is refused with 400 before any value reaches a query.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Query
from pydantic import BaseModel, Field, WithJsonSchema

from app.core.errors import InvalidCursor

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# What a cursor may look like on the wire; stated in the OpenAPI schema of every list.
MAX_CURSOR_LENGTH = 512
CURSOR_PATTERN = "^[A-Za-z0-9_-]*$"
_CURSOR_CHARSET = re.compile(r"[A-Za-z0-9_-]*")

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MAX = 2**31 - 1

# RFC 3339 with an explicit offset: what encode_cursor writes (``datetime.isoformat`` of an
# aware value). Week dates, basic format, naive times and nanoseconds are not cursor values.
_INSTANT = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})", re.ASCII
)
_UUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}", re.ASCII)


class _Refused(Exception):
    """One position of a cursor does not fit its field; the message says why."""


@dataclass(frozen=True, kw_only=True)
class CursorField:
    """One position of a cursor. ``nullable`` admits JSON null there (read as ``None``)."""

    nullable: bool = False

    def read(self, value: object) -> Any:
        if value is None:
            if self.nullable:
                return None
            raise _Refused("is null")
        return self._read(value)

    def _read(self, value: object) -> Any:
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class Text(CursorField):
    """Text of at most ``max_length`` characters (the column's width), without NUL."""

    max_length: int = 64

    def _read(self, value: object) -> str:
        if type(value) is not str:
            raise _Refused("is not text")
        if len(value) > self.max_length:
            raise _Refused(f"is longer than {self.max_length} characters")
        if "\x00" in value:
            raise _Refused("holds a NUL character")
        return value


@dataclass(frozen=True, kw_only=True)
class Integer(CursorField):
    """A JSON integer in ``[minimum, maximum]`` (default: PostgreSQL's bigint range).

    Booleans and floats are refused even when their value is integral (``true``, ``1.0``).
    """

    minimum: int = INT64_MIN
    maximum: int = INT64_MAX

    def _read(self, value: object) -> int:
        if type(value) is not int:
            raise _Refused("is not an integer")
        if not self.minimum <= value <= self.maximum:
            raise _Refused(f"is outside {self.minimum}..{self.maximum}")
        return value


@dataclass(frozen=True, kw_only=True)
class Instant(CursorField):
    """An ISO 8601 (RFC 3339) time with a UTC offset, read as an aware UTC datetime."""

    def _read(self, value: object) -> datetime:
        if type(value) is not str or _INSTANT.fullmatch(value) is None:
            raise _Refused("is not an ISO 8601 time with a UTC offset")
        try:
            return datetime.fromisoformat(value).astimezone(UTC)
        except (ValueError, OverflowError) as exc:  # 2026-02-30, or year 1 at +14:00
            raise _Refused("is not a valid time") from exc


@dataclass(frozen=True, kw_only=True)
class Uuid(CursorField):
    """A UUID in its canonical hyphenated form."""

    def _read(self, value: object) -> uuid.UUID:
        if type(value) is not str or _UUID.fullmatch(value) is None:
            raise _Refused("is not a UUID")
        return uuid.UUID(value)


CursorShape = tuple[CursorField, ...]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next: str | None = None


class CountedPage(Page[T], Generic[T]):
    """A page of a list that can also say how many items it holds in all (when asked)."""

    total: int | None = Field(
        default=None, description="How many items the list holds in all pages (with `count`)"
    )


CursorValue = str | int | datetime | uuid.UUID | None


def encode_cursor(key: Sequence[CursorValue]) -> str:
    """Opaque to clients: the sort key of the last item, base64url-encoded JSON.

    Times are written in UTC with an explicit offset and UUIDs in canonical form, exactly what
    the matching :class:`CursorField` reads back.
    """
    values: list[str | int | None] = []
    for value in key:
        if isinstance(value, datetime):
            if value.utcoffset() is None:
                raise ValueError("a cursor time must be timezone-aware")
            values.append(value.astimezone(UTC).isoformat())
        elif isinstance(value, uuid.UUID):
            values.append(str(value))
        elif isinstance(value, bool):
            raise TypeError("a cursor holds no booleans")
        else:
            values.append(value)
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def _invalid(reason: str) -> InvalidCursor:
    return InvalidCursor(
        f"{reason}. Pass back the `next` value of a previous page of the same list unchanged, "
        "or leave `cursor` out for the first page.",
        errors=[{"detail": reason, "parameter": "cursor"}],
    )


def decode_cursor(cursor: str, shape: CursorShape) -> tuple[Any, ...]:
    """The typed sort key a cursor carries, one value per field of ``shape``.

    Anything else — not base64url, not JSON, not an array, another number of values, a value
    of another type or out of its range — raises :class:`InvalidCursor` (400).
    """
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise _invalid(f"The cursor is longer than {MAX_CURSOR_LENGTH} characters")
    if _CURSOR_CHARSET.fullmatch(cursor) is None:
        raise _invalid("The cursor holds characters outside base64url (A-Z a-z 0-9 - _)")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = orjson.loads(raw)
    except (binascii.Error, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
        raise _invalid("The cursor is not base64url-encoded JSON") from exc
    if not isinstance(value, list):
        raise _invalid("The cursor is not a JSON array")
    if len(value) != len(shape):
        raise _invalid(
            f"The cursor holds {len(value)} value(s) where this list's cursor holds {len(shape)}"
        )
    typed: list[Any] = []
    for position, (field, item) in enumerate(zip(shape, value, strict=True), start=1):
        try:
            typed.append(field.read(item))
        except _Refused as exc:
            raise _invalid(f"Value {position} of {len(shape)} in the cursor {exc}") from None
    return tuple(typed)


class PageParams(BaseModel):
    limit: int
    cursor: str | None

    def after(self, shape: CursorShape) -> tuple[Any, ...] | None:
        """The typed sort key the previous page ended on (None on the first page)."""
        if not self.cursor:
            return None
        return decode_cursor(self.cursor, shape)


def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = DEFAULT_LIMIT,
    # Length and charset are stated in the schema but checked by decode_cursor, so that every
    # unusable cursor gets the same answer: 400 invalid-cursor.
    cursor: Annotated[
        str | None,
        WithJsonSchema(
            {"type": "string", "maxLength": MAX_CURSOR_LENGTH, "pattern": CURSOR_PATTERN}
        ),
        Query(
            description=(
                "The `next` value of the previous page, passed back unchanged (opaque; "
                "base64url). Any other value is refused with 400 `invalid-cursor`."
            ),
        ),
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor)


def paginate(rows: Sequence[T], limit: int, key: Any) -> tuple[list[T], str | None]:
    """Repositories fetch ``limit + 1`` rows; the extra row tells whether a next page exists."""
    items = list(rows[:limit])
    if len(rows) > limit and items:
        return items, encode_cursor(key(items[-1]))
    return items, None
