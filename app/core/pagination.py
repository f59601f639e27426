"""Keyset pagination: one list envelope, ``{"items": [...], "next": cursor | null}``, everywhere."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Query
from pydantic import BaseModel

from app.core.errors import InvalidCursor

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class Page(BaseModel, Generic[T]):
    items: list[T]
    next: str | None = None


def encode_cursor(key: Sequence[Any]) -> str:
    """Opaque to clients: the sort key of the last item, base64url-encoded JSON."""
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, orjson.JSONDecodeError) as exc:
        raise InvalidCursor("Pass back the `next` value of a previous page unchanged.") from exc
    if not isinstance(value, list) or len(value) != arity:
        raise InvalidCursor("Pass back the `next` value of a previous page unchanged.")
    if not all(isinstance(v, str | int | float | None) for v in value):
        raise InvalidCursor("Pass back the `next` value of a previous page unchanged.")
    return value


class PageParams(BaseModel):
    limit: int
    cursor: str | None

    def after(self, arity: int = 1) -> tuple[str, ...] | None:
        """The sort key the previous page ended on, as text (None on the first page)."""
        if not self.cursor:
            return None
        return tuple(str(v) for v in decode_cursor(self.cursor, arity))


def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=512, description="The `next` value of the previous page")
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor)


def paginate(rows: Sequence[T], limit: int, key: Any) -> tuple[list[T], str | None]:
    """Repositories fetch ``limit + 1`` rows; the extra row tells whether a next page exists."""
    items = list(rows[:limit])
    if len(rows) > limit and items:
        return items, encode_cursor(key(items[-1]))
    return items, None
