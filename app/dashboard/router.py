"""Serves the dashboard's pages and assets, with the same ETag / 304 caching as the API.

Every asset ships with the project (no CDN): the dashboard must work on a closed network.
The pages are static HTML with a little JavaScript that reads the public JSON API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from app.core.errors import NotFound
from app.core.http_cache import cache_headers, etag_for, matches, not_modified
from app.units.schemas import UNIT_CODE_PATTERN
from app.units.service import no_such_unit

STATIC = Path(__file__).parent / "static"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def _load() -> dict[str, Asset]:
    assets = {}
    for path in STATIC.iterdir():
        if path.suffix in _TYPES:
            body = path.read_bytes()
            assets[path.name] = Asset(body, _TYPES[path.suffix], etag_for(path.name, body))
    return assets


ASSETS = _load()


def _serve(request: Request, name: str) -> Response:
    asset = ASSETS.get(name)
    if asset is None:
        raise NotFound(f"No dashboard file {name!r}.")
    if matches(request, asset.etag):
        return not_modified(asset.etag)
    return Response(asset.body, media_type=asset.media_type, headers=cache_headers(asset.etag))


@router.get("/")
async def home() -> Response:
    return RedirectResponse("/dashboard/rankings", status_code=307)


@router.get("/dashboard")
@router.get("/dashboard/rankings")
async def rankings_page(request: Request) -> Response:
    return _serve(request, "rankings.html")


@router.get("/dashboard/units/{code}")
async def unit_page(request: Request, code: str) -> Response:
    if not re.fullmatch(UNIT_CODE_PATTERN, code):  # the page itself asks the API for the unit
        raise no_such_unit(code)
    return _serve(request, "unit.html")


@router.get("/dashboard/overdue")
async def overdue_page(request: Request) -> Response:
    return _serve(request, "overdue.html")


@router.get("/dashboard/static/{name}")
async def static_file(request: Request, name: str) -> Response:
    return _serve(request, name)
