"""The API documentation pages, served whole by the service: Swagger UI at ``/docs`` and ReDoc
at ``/redoc``, with the scripts, styles and favicon the ``fastapi-offline`` package ships.

On a closed network nothing else can be reached, and nothing else is asked for. ReDoc's
script puts its vendor's logo, from a CDN, in the menu's footer: the script is served with that
address replaced by an empty image (the footer hides a logo that does not load). And the pages'
Content-Security-Policy lets them load only from this origin, whatever a later asset tries.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.core.http_cache import cache_headers, matches, not_modified
from app.core.vocabulary import document_enums

ASSETS_URL = "/docs/assets"
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"

# Inline script and styles: FastAPI's pages start the UI inline, and both UIs style inline.
# ReDoc's search runs in a Worker made from a blob: URL; icons are data: URLs.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; frame-ancestors 'self'; base-uri 'self'; form-action 'self'"
)


REDOC_SCRIPT = "redoc.standalone.js"
REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"


@cache
def _redoc_script() -> tuple[bytes, str]:
    """ReDoc's script without its one address off this service, and the result's ETag."""
    body = (ASSETS_DIR / REDOC_SCRIPT).read_bytes().replace(REDOC_LOGO, b"data:,")
    return body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def _local(response: HTMLResponse) -> HTMLResponse:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI, ReDoc and their assets from this app (create it with docs_url=None,
    redoc_url=None), and name every enumerated value of its OpenAPI document in Vietnamese
    and English (app/core/vocabulary.py)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_enums(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect_url = "/docs/oauth2-redirect"

    # Before the mount, which would answer it with the file as shipped.
    @app.get(f"{ASSETS_URL}/{REDOC_SCRIPT}", include_in_schema=False)
    async def redoc_script(request: Request) -> Response:
        body, etag = _redoc_script()
        if matches(request, etag):
            return not_modified(etag)
        return Response(body, media_type="text/javascript", headers=cache_headers(etag))

    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _local(
            get_swagger_ui_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{app.title} - Swagger UI",
                oauth2_redirect_url=f"{root}{oauth2_redirect_url}",
                swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                # No badge from the online validator (validator.swagger.io).
                swagger_ui_parameters={"validatorUrl": None},
            )
        )

    @app.get(oauth2_redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return _local(get_swagger_ui_oauth2_redirect_html())

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _local(
            get_redoc_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{root}{ASSETS_URL}/{REDOC_SCRIPT}",
                redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                with_google_fonts=False,
            )
        )
