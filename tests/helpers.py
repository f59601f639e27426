"""Small builders shared by tests: units, procedures and keys created through the API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from app.core.settings import Settings
from app.main import create_app
from tests.conftest import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def put_unit(
    client: httpx.AsyncClient, code: str, level: str, parent: str | None = None, **extra: Any
) -> dict[str, Any]:
    body = {"name": extra.pop("name", f"Đơn vị {code}"), "level": level, "parent_code": parent}
    body.update(extra)
    response = await client.put(f"/v1/units/{code}", json=body, headers=ADMIN)
    assert response.status_code in (200, 201), response.text
    result: dict[str, Any] = response.json()
    return result


async def put_procedure(
    client: httpx.AsyncClient,
    code: str,
    limit_value: float | str = 3,
    limit_unit: str = "working_days",
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "name": extra.pop("name", f"Thủ tục {code}"),
        "limit_value": limit_value,
        "limit_unit": limit_unit,
        **extra,
    }
    response = await client.put(f"/v1/procedures/{code}", json=body, headers=ADMIN)
    assert response.status_code in (200, 201), response.text
    result: dict[str, Any] = response.json()
    return result


async def create_key(
    client: httpx.AsyncClient, scopes: list[str], unit_code: str | None = None, name: str = "k"
) -> tuple[str, dict[str, str]]:
    """Returns (key id, Authorization header)."""
    response = await client.post(
        "/v1/api-keys",
        json={"name": name, "scopes": scopes, "unit_code": unit_code},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["id"], {"Authorization": f"Bearer {body['key']}"}


async def province_with_communes(client: httpx.AsyncClient) -> None:
    """H01 (An Giang) with two communes and a desk; H05 (Bắc Ninh) with one commune."""
    await put_unit(client, "H01", "province", name="UBND tỉnh An Giang")
    await put_unit(client, "H05", "province", name="UBND tỉnh Bắc Ninh")
    await put_unit(client, "H01.01", "commune", "H01", name="UBND phường Long Xuyên")
    await put_unit(client, "H01.02", "commune", "H01", name="UBND xã Mỹ Hòa Hưng")
    await put_unit(client, "H01.01.MC", "desk", "H01.01", name="Bộ phận Một cửa Long Xuyên")
    await put_unit(client, "H05.01", "commune", "H05", name="UBND phường Kinh Bắc")


VN = ZoneInfo("Asia/Ho_Chi_Minh")


def vn(text: str) -> datetime:
    """``"2026-02-12 10:00"`` as an aware instant in Vietnam time."""
    return datetime.fromisoformat(text).replace(tzinfo=VN)


def event(
    event_id: str,
    dossier: str,
    status: int,
    occurred: str,
    *,
    unit: str = "H01.01",
    procedure: str = "P3",
    channel: int = 1,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": event_id,
        "dossier_code": dossier,
        "unit_code": unit,
        "procedure_code": procedure,
        "status": status,
        "occurred_at": vn(occurred).isoformat(),
        "channel": channel,
    }
    for key, value in extra.items():
        body[key] = vn(value).isoformat() if key.endswith("_at") and value else value
    return body


DERIVED = {"Prefer": "return=representation"}


async def post_events(
    client: httpx.AsyncClient, events: list[dict[str, Any]], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """Post a batch and have its dossiers derived before the answer (``Prefer``), as the
    tests read states right after; the queued path has tests of its own."""
    response = await client.post(
        "/v1/dossier-events/batch",
        json={"events": events},
        headers={**(headers or ADMIN), **DERIVED},
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def get_dossier(
    client: httpx.AsyncClient, code: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response = await client.get(f"/v1/dossiers/{code}", headers=headers or ADMIN)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def instant(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@asynccontextmanager
async def instance(settings: Settings, **changes: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An app of its own — its own engine, pools, caches and listener, as a second API process
    has — with ``changes`` to its settings, and a client calling it."""
    app = create_app(settings.model_copy(update=changes))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://chiso.test") as c:
            yield c


def app_of(client: httpx.AsyncClient) -> FastAPI:
    """The app a client of :func:`instance` calls."""
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    app = transport.app
    assert isinstance(app, FastAPI)
    return app
