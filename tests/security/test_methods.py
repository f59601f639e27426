"""405 Method Not Allowed names every method of the path (RFC 9110 §15.5.6), as problem+json.

Routes of one path are registered separately (GET and PUT of a unit), and the router answers
405 from the first one it meets: the `Allow` header must still list them all.
"""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI

from tests.helpers import ADMIN


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PATCH", "/v1/units/H01", "GET, PUT"),
        ("DELETE", "/v1/units/H01", "GET, PUT"),
        ("DELETE", "/v1/rankings", "GET"),
        ("PUT", "/v1/dossier-events", "POST"),
        ("POST", "/v1/calendar/days/2026-05-04", "GET, PUT, DELETE"),
        ("POST", "/v1/webhooks/00000000-0000-0000-0000-000000000000", "GET, DELETE"),
        ("DELETE", "/v1/api-keys", "GET, POST"),
        ("OPTIONS", "/v1/procedures/P3", "GET, PUT"),
    ],
)
async def test_405_lists_every_method_of_the_path(
    client: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    response = await client.request(method, path, headers=ADMIN)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allow
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 405
    assert body["title"] == "Method Not Allowed"
    assert body["instance"] == path
    assert body["detail"] == f"{method} is not allowed on {path}; it allows {allow}."


async def test_405_on_every_documented_path_allows_exactly_its_documented_methods(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    # No operation uses PATCH, so PATCH on any path is a 405 whose `Allow` must equal the
    # methods the OpenAPI document lists for that path.
    paths = app.openapi()["paths"]
    assert len(paths) > 30
    wrong: list[str] = []
    for template, operations in paths.items():
        documented = {m.upper() for m in operations}
        assert "PATCH" not in documented
        path = re.sub(r"\{[^}]+\}", "x", template)
        response = await client.patch(path, headers=ADMIN)
        allowed = {m.strip() for m in response.headers.get("allow", "").split(",") if m.strip()}
        if response.status_code != 405 or allowed != documented:
            wrong.append(f"{template}: {response.status_code} Allow={allowed} ≠ {documented}")
    assert wrong == []
