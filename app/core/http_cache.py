"""Conditional GETs for polled resources: strong ETags, ``304 Not Modified`` without a body;
and one ``Vary`` header naming each request header once."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from fastapi import Request
from fastapi.responses import Response
from starlette.middleware.gzip import GZipMiddleware as _StarletteGZip
from starlette.types import Message, Receive, Scope, Send

CACHE_CONTROL = "public, max-age=30, must-revalidate"


def etag_for(*parts: object) -> str:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:32]
    return f'"{digest}"'


def matches(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if not header:
        return False
    candidates: Iterable[str] = (t.strip() for t in header.split(","))
    return any(c in (etag, "*") or c.removeprefix("W/") == etag for c in candidates)


def not_modified(etag: str) -> Response:
    return Response(status_code=304, headers=cache_headers(etag))


def cache_headers(etag: str) -> dict[str, str]:
    return {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept, Accept-Encoding"}


def vary_once(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The headers with every ``Vary`` merged into one that names each header once.

    Names compare case-insensitively (the first spelling stays); ``*`` stands alone.
    """
    names: list[bytes] = []
    seen: set[bytes] = set()
    first = -1
    kept: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        if name.lower() != b"vary":
            kept.append((name, value))
            continue
        if first < 0:
            first = len(kept)
        for part in value.split(b","):
            part = part.strip()
            if part and part.lower() not in seen:
                seen.add(part.lower())
                names.append(part)
    if first < 0:
        return headers
    kept.insert(first, (b"vary", b"*" if b"*" in seen else b", ".join(names)))
    return kept


class GZipMiddleware(_StarletteGZip):
    """Starlette's gzip, whose ``Vary: Accept-Encoding`` is added once, not once more.

    Starlette appends ``Accept-Encoding`` to whatever ``Vary`` the response carries, so a
    response that already varies on it (:func:`cache_headers`) would name it twice.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return

        async def send_vary_once(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = vary_once(list(message.get("headers", [])))
            await send(message)

        await super().__call__(scope, receive, send_vary_once)
