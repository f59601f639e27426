"""Conditional GETs for polled resources: strong ETags, ``304 Not Modified`` without a body."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from fastapi import Request
from fastapi.responses import Response

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
