"""A small world for access and input tests: two units, keys of every kind, one dossier."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from tests.helpers import (
    ADMIN,
    create_key,
    event,
    post_events,
    province_with_communes,
    put_procedure,
)

UNIT_A = "H01.01"
UNIT_B = "H05.01"
DOSSIER_A = "H01.01-260302-0001"


@dataclass
class World:
    keys: dict[str, dict[str, str]]  # kind → headers
    key_ids: dict[str, str]
    webhook_a: str
    spare_key_id: str


async def build_world(client: httpx.AsyncClient) -> World:
    await province_with_communes(client)
    await put_procedure(client, "P3", 3, "working_days")
    desk = ["dossiers:write", "dossiers:read", "indicators:write"]
    ids: dict[str, str] = {}
    keys: dict[str, dict[str, str]] = {"none": {}, "admin": ADMIN}
    ids["desk_a"], keys["desk_a"] = await create_key(client, desk, UNIT_A, name="Một cửa A")
    ids["desk_b"], keys["desk_b"] = await create_key(client, desk, UNIT_B, name="Một cửa B")
    ids["read_only"], keys["read_only"] = await create_key(client, ["dossiers:read"], None, "Đọc")
    ids["revoked"], keys["revoked"] = await create_key(client, desk, UNIT_A, name="Thu hồi")
    revoked = await client.delete(f"/v1/api-keys/{ids['revoked']}", headers=ADMIN)
    assert revoked.status_code == 200, revoked.text
    spare, _ = await create_key(client, ["dossiers:read"], UNIT_A, name="spare")
    await post_events(client, [event("seed-1", DOSSIER_A, 2, "2026-03-02 08:00")])
    hook = await client.post(
        "/v1/webhooks",
        json={"url": "https://a.example/hook", "unit_code": UNIT_A, "kinds": ["dossier.overdue"]},
        headers=ADMIN,
    )
    assert hook.status_code == 201, hook.text
    return World(keys=keys, key_ids=ids, webhook_a=hook.json()["id"], spare_key_id=spare)


@pytest.fixture
async def world(client: httpx.AsyncClient) -> World:
    return await build_world(client)
