"""The audit log: admin changes recorded with who, when, what, before and after, in the same
transaction as the change, readable by admins only, filtered and keyset-paginated."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import ADMIN, create_key, put_procedure, put_unit


async def audit(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/v1/audit", params=params, headers=ADMIN)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_admin_changes_are_recorded_with_before_and_after(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await put_unit(client, "H01", "province", name="Tỉnh cũ")
    await put_unit(client, "H01", "province", name="UBND tỉnh An Giang")
    await put_unit(client, "H01", "province", name="UBND tỉnh An Giang")  # unchanged: no entry
    await put_unit(client, "H01.01", "commune", "H01")
    await put_procedure(client, "P3", 3)
    await put_procedure(client, "P3", 5)
    key_id, key = await create_key(client, ["indicators:write"], "H01", name="Sở Nội vụ")
    await client.put("/v1/calendar/days/2026-05-04", headers=ADMIN,
                     json={"kind": "holiday", "reason": "nghỉ bù"})  # fmt: skip
    await client.delete("/v1/calendar/days/2026-05-04", headers=ADMIN)
    value = {"unit_code": "H01.01", "period": "2024-04", "metric_code": "DOSSIER_SYNC",
             "numerator": 45, "denominator": 50}  # fmt: skip
    assert (await client.post("/v1/indicator-values", json=value, headers=key)).status_code == 201
    corrected = value | {"numerator": 47}
    assert (
        await client.post("/v1/indicator-values", json=corrected, headers=ADMIN)
    ).status_code == 201
    assert (await client.post("/v1/periods/2025-01/close", headers=ADMIN)).status_code == 200
    assert (await client.post("/v1/periods/2025-01/reopen", headers=ADMIN)).status_code == 200
    assert (await client.delete(f"/v1/api-keys/{key_id}", headers=ADMIN)).status_code == 200

    entries = await audit(client, limit=100)
    actions = [e["action"] for e in reversed(entries)]
    assert actions == [
        "unit.upsert", "unit.upsert", "unit.upsert", "procedure.upsert", "procedure.upsert",
        "api_key.create", "calendar.override.set", "calendar.override.remove",
        "indicator.revision", "indicator.revision", "period.close", "period.reopen",
        "api_key.revoke",
    ]  # fmt: skip
    renamed = (await audit(client, action="unit.upsert", target="H01"))[0]
    assert renamed["actor"] == "admin" and renamed["at"]
    assert renamed["before"]["name"] == "Tỉnh cũ"
    assert renamed["after"]["name"] == "UBND tỉnh An Giang"
    created = (await audit(client, action="unit.upsert", target="H01"))[1]
    assert created["before"] is None
    limit = (await audit(client, action="procedure.upsert"))[0]
    assert (limit["before"]["limit_value"], limit["after"]["limit_value"]) == ("3.00", "5.00")
    revision = (await audit(client, action="indicator.revision"))[0]
    assert revision["target"] == "H01.01:2024-04:DOSSIER_SYNC" and revision["actor"] == "admin"
    assert revision["before"] == {"revision": 1, "numerator": 45, "denominator": 50}
    assert revision["after"] == {"revision": 2, "numerator": 47, "denominator": 50}
    first = (await audit(client, action="indicator.revision"))[1]
    assert first["actor"] == "Sở Nội vụ" and first["actor_key_id"] == key_id
    override = await audit(client, target="2026-05-04")
    assert override[0]["before"]["reason"] == "nghỉ bù" and override[0]["after"] is None
    key_created = (await audit(client, action="api_key.create"))[0]
    assert "key" not in key_created["after"] and key_created["target"] == key_id
    closed = (await audit(client, action="period.close"))[0]
    assert closed["before"]["status"] == "open" and closed["after"]["status"] == "closed"

    # Keyset pagination over the whole log, newest first, nothing repeated or skipped.
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/audit", params=params, headers=ADMIN)).json()
        seen.extend(e["id"] for e in page["items"])
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True) == [e["id"] for e in entries]

    async with engine.connect() as conn:
        query = text("SELECT count(*) FROM audit_log WHERE after::text LIKE '%chiso_%'")
        secrets = (await conn.execute(query)).scalar()
    assert secrets == 0  # a key's secret never reaches the log


async def test_a_refused_change_leaves_no_entry_and_only_admins_read_the_log(
    client: httpx.AsyncClient,
) -> None:
    await put_unit(client, "H01", "province")
    await put_unit(client, "H01.01", "commune", "H01")
    body = {"name": "H01", "level": "province", "parent_code": "H01.01"}
    cycle = await client.put("/v1/units/H01", headers=ADMIN, json=body)
    assert cycle.status_code == 422
    assert [e["target"] for e in await audit(client)] == ["H01.01", "H01"]  # not the cycle
    _, reader = await create_key(client, ["dossiers:read"])
    assert (await client.get("/v1/audit", headers=reader)).status_code == 403
    assert (await client.get("/v1/audit")).status_code == 401
    bad = await client.get("/v1/audit", params={"cursor": "WyJ4Il0"}, headers=ADMIN)
    assert bad.status_code == 400
