"""API keys: creation shown once, hashing, scopes, unit binding, revocation."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.auth import Principal
from app.core.errors import Forbidden
from app.units.service import ensure_in_scope
from tests.helpers import ADMIN, create_key, province_with_communes

UNIT_BODY = {"name": "Tỉnh thử", "level": "province"}


async def test_key_is_shown_once_and_stored_only_as_hash(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    response = await client.post(
        "/v1/api-keys", json={"name": "desk", "scopes": ["dossiers:write"]}, headers=ADMIN
    )
    assert response.status_code == 201
    key = response.json()["key"]
    async with engine.connect() as conn:
        row = (await conn.execute(text("SELECT prefix, secret_hash FROM api_keys"))).one()
    _, prefix, secret = key.split("_", 2)
    assert row.prefix == prefix
    assert bytes(row.secret_hash) == hashlib.sha256(secret.encode()).digest()
    listed = (await client.get("/v1/api-keys", headers=ADMIN)).json()
    assert "key" not in listed["items"][0]
    assert key not in str(listed)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, 401),
        ("Bearer chiso_nope_nope", 401),
        ("Bearer not-even-a-key", 401),
        ("Basic dXNlcjpwYXNz", 401),
        ("Bearer ", 401),
    ],
)
async def test_admin_write_without_valid_credentials_is_401(
    client: httpx.AsyncClient, header: str | None, expected: int
) -> None:
    headers = {"Authorization": header} if header else {}
    response = await client.put("/v1/units/H01", json=UNIT_BODY, headers=headers)
    assert response.status_code == expected
    assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get("/v1/units/H01")).status_code == 404


@pytest.mark.parametrize(
    ("scopes", "expected"),
    [
        (["dossiers:write"], 403),
        (["dossiers:read", "indicators:write"], 403),
        (["admin"], 201),
    ],
)
async def test_scope_decides_between_403_and_success(
    client: httpx.AsyncClient, scopes: list[str], expected: int
) -> None:
    _, headers = await create_key(client, scopes)
    response = await client.put("/v1/units/H01", json=UNIT_BODY, headers=headers)
    assert response.status_code == expected


async def test_revocation_is_effective_immediately(client: httpx.AsyncClient) -> None:
    key_id, headers = await create_key(client, ["admin"])
    assert (await client.put("/v1/units/H01", json=UNIT_BODY, headers=headers)).status_code == 201
    revoked = await client.delete(f"/v1/api-keys/{key_id}", headers=ADMIN)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    again = await client.put("/v1/units/H01", json=UNIT_BODY, headers=headers)
    assert again.status_code == 401


async def test_revoking_unknown_key_is_404(client: httpx.AsyncClient) -> None:
    response = await client.delete(
        "/v1/api-keys/00000000-0000-0000-0000-000000000000", headers=ADMIN
    )
    assert response.status_code == 404


async def test_key_for_unknown_unit_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/api-keys",
        json={"name": "x", "scopes": ["dossiers:read"], "unit_code": "H99"},
        headers=ADMIN,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "#/unit_code"


async def test_unknown_scope_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/api-keys", json={"name": "x", "scopes": ["everything"]}, headers=ADMIN
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "#/scopes/0"


async def test_unit_bound_principal_reaches_its_subtree_only(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await province_with_communes(client)
    desk_of_h01 = Principal(name="k", scopes=frozenset({"dossiers:read"}), unit_code="H01")
    async with AsyncSession(engine) as session:
        for inside in ("H01", "H01.01", "H01.01.MC", "H01.02"):
            await ensure_in_scope(session, desk_of_h01, inside)
        for outside in ("H05", "H05.01"):
            with pytest.raises(Forbidden):
                await ensure_in_scope(session, desk_of_h01, outside)
