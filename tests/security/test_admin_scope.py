"""The admin scope on a key bound to a unit administers that subtree and nothing else.

World: H01 (An Giang) with communes H01.01 (and its desk H01.01.MC) and H01.02; H05 (Bắc Ninh)
with commune H05.01. ``bound`` is an admin key bound to H01; ``national`` an admin key bound to
no unit; ``ADMIN`` the admin token. Every answer below was worked out from those rules by hand.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from app.core.auth import Scope, require
from app.core.migrations import downgrade, upgrade
from tests.conftest import (
    TEST_DATABASE,
    Servers,
    drop_database,
    plain_url,
    recreate_database,
    with_database,
)
from tests.helpers import ADMIN, create_key, province_with_communes, put_procedure

PROBLEM = "application/problem+json"
LIMITED = "This key is limited to unit H01 and its subunits."


@dataclass
class Keys:
    bound: dict[str, str]
    bound_id: str
    national: dict[str, str]
    national_id: str


@pytest.fixture
async def keys(client: httpx.AsyncClient) -> Keys:
    await province_with_communes(client)
    bound_id, bound = await create_key(client, ["admin"], "H01", name="Sở Nội vụ An Giang")
    national_id, national = await create_key(client, ["admin"], None, name="Bộ Nội vụ")
    return Keys(bound, bound_id, national, national_id)


def refused(response: httpx.Response, detail: str) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["detail"] == detail


def national(why: str) -> str:
    return (
        f"This admin key is bound to unit H01; {why}, so this needs an admin key bound to no "
        "unit or the admin token."
    )


async def unit_body(client: httpx.AsyncClient, code: str, **changes: Any) -> dict[str, Any]:
    current = (await client.get(f"/v1/units/{code}")).json()
    fields = ("name", "level", "parent_code", "valid_from", "valid_to", "successor_code")
    return {f: current[f] for f in fields} | changes


# --- keys ------------------------------------------------------------------------------------


async def test_a_bound_admin_creates_keys_for_units_of_its_subtree_only(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    async def create(unit: str | None, scopes: list[str]) -> httpx.Response:
        body = {"name": f"key for {unit}", "scopes": scopes, "unit_code": unit}
        return await client.post("/v1/api-keys", json=body, headers=keys.bound)

    desk = await create("H01.01", ["dossiers:write", "dossiers:read"])
    assert desk.status_code == 201, desk.text
    assert (desk.json()["unit_code"], desk.json()["scopes"]) == (
        "H01.01", ["dossiers:read", "dossiers:write"],
    )  # fmt: skip
    # Any scope, admin included: the new key reaches no further than the subtree.
    sub_admin = await create("H01.02", ["admin"])
    assert sub_admin.status_code == 201, sub_admin.text

    refused(await create("H05", ["dossiers:read"]), LIMITED)
    refused(await create("H05.01", ["admin"]), LIMITED)
    refused(
        await create(None, ["dossiers:read"]),
        national("a key bound to no unit acts for every unit"),
    )
    unknown = await create("H01.99", ["dossiers:read"])
    assert unknown.status_code == 422  # an unknown unit is named as such, as for everyone

    # The sub-admin of H01.02 cannot reach its sibling H01.01, nor its parent H01.
    sub = {"Authorization": f"Bearer {sub_admin.json()['key']}"}
    body = {"name": "x", "scopes": ["dossiers:read"], "unit_code": "H01.01"}
    refused(
        await client.post("/v1/api-keys", json=body, headers=sub),
        "This key is limited to unit H01.02 and its subunits.",
    )
    listed = (await client.get("/v1/api-keys", headers=ADMIN)).json()["items"]
    assert sorted((k["name"], k["unit_code"]) for k in listed) == [
        ("Bộ Nội vụ", None),
        ("Sở Nội vụ An Giang", "H01"),
        ("key for H01.01", "H01.01"),
        ("key for H01.02", "H01.02"),
    ]  # fmt: skip — nothing was stored by the refused calls


async def test_a_bound_admin_lists_and_revokes_the_keys_of_its_subtree_only(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    desk_a_id, _ = await create_key(client, ["dossiers:write"], "H01.01.MC", name="Một cửa A")
    desk_b_id, desk_b = await create_key(client, ["dossiers:read"], "H05.01", name="Một cửa B")
    reader_id, _ = await create_key(client, ["dossiers:read"], None, name="Đọc toàn quốc")

    async def listed(headers: dict[str, str]) -> set[str]:
        ids: set[str] = set()
        cursor = None
        while True:  # pages of one: the filter holds across pages
            params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/v1/api-keys", params=params, headers=headers)).json()
            ids |= {k["id"] for k in page["items"]}
            if (cursor := page["next"]) is None:
                return ids

    assert await listed(keys.bound) == {keys.bound_id, desk_a_id}
    assert await listed(ADMIN) == await listed(keys.national) == {
        keys.bound_id, keys.national_id, desk_a_id, desk_b_id, reader_id,
    }  # fmt: skip

    refused(await client.delete(f"/v1/api-keys/{desk_b_id}", headers=keys.bound), LIMITED)
    refused(
        await client.delete(f"/v1/api-keys/{reader_id}", headers=keys.bound),
        national("a key bound to no unit acts for every unit"),
    )
    refused(
        await client.delete(f"/v1/api-keys/{keys.national_id}", headers=keys.bound),
        national("a key bound to no unit acts for every unit"),
    )
    # The refused revocation changed nothing: H05.01's key still works.
    assert (await client.get("/v1/units/H05.01/overdue", headers=desk_b)).status_code == 200

    revoked = await client.delete(f"/v1/api-keys/{desk_a_id}", headers=keys.bound)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    missing = await client.delete(f"/v1/api-keys/{uuid.uuid4()}", headers=keys.bound)
    assert missing.status_code == 404


# --- units -----------------------------------------------------------------------------------


async def test_a_bound_admin_edits_units_inside_its_subtree_and_keeps_the_subtree_whole(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    async def put(code: str, body: dict[str, Any]) -> httpx.Response:
        return await client.put(f"/v1/units/{code}", json=body, headers=keys.bound)

    renamed = await put("H01.01", await unit_body(client, "H01.01", name="UBND phường Bình Đức"))
    assert renamed.status_code == 200, renamed.text
    assert (await client.get("/v1/units/H01.01")).json()["name"] == "UBND phường Bình Đức"
    created = await put("H01.03", {"name": "UBND xã Mới", "level": "commune",
                                   "parent_code": "H01"})  # fmt: skip
    assert created.status_code == 201, created.text
    root = await put("H01", await unit_body(client, "H01", name="UBND tỉnh An Giang (mới)"))
    assert root.status_code == 200, root.text

    # Outside the subtree: another province, a new unit hung outside or at the top.
    refused(await put("H05", await unit_body(client, "H05", name="Đổi tên")), LIMITED)
    assert (await client.get("/v1/units/H05")).json()["name"] == "UBND tỉnh Bắc Ninh"
    outside = "This key is limited to unit H01 and its subunits: parent_code 'H05' lies outside."
    refused(await put("H09", {"name": "x", "level": "commune", "parent_code": "H05"}), outside)
    top = ("This key is limited to unit H01 and its subunits: a unit needs a parent_code inside "
           "that subtree.")  # fmt: skip
    refused(await put("H09", {"name": "x", "level": "province"}), top)
    assert (await client.get("/v1/units/H09")).status_code == 404

    # Moving a unit out of the subtree, under another province or to the top: refused.
    moved = await put("H01.01", await unit_body(client, "H01.01", parent_code="H05"))
    refused(moved, outside)
    assert moved.json()["errors"] == [{"pointer": "#/parent_code", "detail": "must lie within H01"}]
    refused(await put("H01.02", await unit_body(client, "H01.02", parent_code=None)), top)
    assert (await client.get("/v1/units/H01.01")).json()["parent_code"] == "H01"
    # Its own root's place in the tree is its parent's business.
    refused(
        await put("H01", await unit_body(client, "H01", parent_code="H05")),
        "Unit H01 is this key's own root: only an admin bound to no unit may change its parent.",
    )
    # A merger into another province's unit is national too; one inside the subtree is not.
    refused(
        await put("H01.02", await unit_body(client, "H01.02", successor_code="H05.01")),
        "This key is limited to unit H01 and its subunits: successor_code 'H05.01' lies outside.",
    )
    merged = await put("H01.02", await unit_body(client, "H01.02", successor_code="H01.01"))
    assert merged.status_code == 200, merged.text
    # Moving within the subtree is fine; the usual checks still apply.
    within = await put("H01.01.MC", await unit_body(client, "H01.01.MC", parent_code="H01.03"))
    assert within.status_code == 200, within.text
    unknown = await put("H01.04", {"name": "x", "level": "commune", "parent_code": "H01.99"})
    assert unknown.status_code == 422 and unknown.json()["detail"] == "unknown unit 'H01.99'"

    # The national admin key may do what the bound one may not.
    body = await unit_body(client, "H01.01", parent_code="H05")
    moved = await client.put("/v1/units/H01.01", json=body, headers=keys.national)
    assert moved.status_code == 200, moved.text


# --- national routes -------------------------------------------------------------------------


async def test_national_actions_refuse_a_bound_admin_and_accept_an_unbound_admin_key(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    procedure = {"name": "Thủ tục P3", "limit_value": 3, "limit_unit": "working_days"}
    holiday = {"kind": "holiday", "reason": "nghỉ bù"}
    calls: list[tuple[str, str, dict[str, Any] | None, str, int]] = [
        ("PUT", "/v1/procedures/P3", procedure,
         "procedures and their time limits are national", 201),
        ("PUT", "/v1/calendar/days/2026-05-04", holiday,
         "the working-day calendar is the same for every unit", 200),
        ("DELETE", "/v1/calendar/days/2026-05-04", None,
         "the working-day calendar is the same for every unit", 204),
        ("POST", "/v1/periods/2025-01/close", None,
         "a period's scores and rankings cover every unit", 200),
        ("POST", "/v1/periods/2025-01/reopen", None,
         "a period's scores and rankings cover every unit", 200),
        ("GET", "/v1/portal/quarantine", None,
         "quarantined portal records belong to no known unit", 200),
    ]  # fmt: skip
    for method, path, body, why, _ in calls:
        response = await client.request(method, path, json=body, headers=keys.bound)
        refused(response, national(why))
    assert (await client.get("/v1/procedures/P3")).status_code == 404
    assert (await client.get("/v1/periods/2025-01")).json()["status"] == "open"

    for method, path, body, _, status in calls:
        response = await client.request(method, path, json=body, headers=keys.national)
        assert response.status_code == status, (method, path, response.text)

    # Operational figures without any unit's data: every admin reads them.
    assert (await client.get("/v1/portal/sync-status", headers=keys.bound)).status_code == 200


async def test_a_bound_admin_resolves_integrity_flags_of_its_subtree_only(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    body = {"period": "2026-03", "note": "đã kiểm tra"}
    path = "/v1/units/{}/integrity/quick_finish/resolve"
    refused(await client.post(path.format("H05.01"), json=body, headers=keys.bound), LIMITED)
    # Inside the subtree the call reaches the flags (there is none to resolve here).
    inside = await client.post(path.format("H01.01"), json=body, headers=keys.bound)
    assert inside.status_code == 404
    assert inside.json()["detail"] == "Unit H01.01 has no quick_finish flag for 2026-03."


# --- audit -----------------------------------------------------------------------------------


def who(entry: dict[str, Any]) -> tuple[str, str | None, str]:
    return entry["actor_kind"], entry["actor_key_id"], entry["actor_name"]


async def entries(client: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await client.get("/v1/audit", params={"limit": 100}, headers=headers)
    assert response.status_code == 200, response.text
    return list(reversed(response.json()["items"]))  # oldest first


async def test_every_audit_entry_names_the_acting_key_or_the_admin_token(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    # A key may be named anything, "admin" too: its entries still carry its id and kind.
    impostor_id, impostor = await create_key(client, ["admin"], None, name="admin")
    before = len(await entries(client, ADMIN))

    b = keys.bound
    n = keys.national
    await client.put(
        "/v1/units/H01.01",
        headers=b,
        json=await unit_body(client, "H01.01", name="UBND phường Bình Đức"),
    )
    made = await client.post("/v1/api-keys", headers=b,
                             json={"name": "Một cửa", "scopes": ["dossiers:read"],
                                   "unit_code": "H01.01"})  # fmt: skip
    await client.delete(f"/v1/api-keys/{made.json()['id']}", headers=b)
    await client.put(
        "/v1/procedures/P3",
        headers=n,
        json={"name": "Thủ tục P3", "limit_value": 3, "limit_unit": "working_days"},
    )
    await client.put(
        "/v1/calendar/days/2026-05-04", headers=n, json={"kind": "holiday", "reason": "nghỉ bù"}
    )
    await client.delete("/v1/calendar/days/2026-05-04", headers=n)
    await client.post("/v1/periods/2025-01/close", headers=n)
    await client.post("/v1/periods/2025-01/reopen", headers=n)
    await client.put(
        "/v1/units/H05.01",
        headers=impostor,
        json=await unit_body(client, "H05.01", name="UBND phường Vũ Ninh"),
    )
    await put_procedure(client, "P5", 5)  # the admin token

    written = (await entries(client, ADMIN))[before:]
    bound = ("api_key", keys.bound_id, "Sở Nội vụ An Giang")
    unbound = ("api_key", keys.national_id, "Bộ Nội vụ")
    assert [(e["action"], e["target"], who(e)) for e in written] == [
        ("unit.upsert", "H01.01", bound),
        ("api_key.create", made.json()["id"], bound),
        ("api_key.revoke", made.json()["id"], bound),
        ("procedure.upsert", "P3", unbound),
        ("calendar.override.set", "2026-05-04", unbound),
        ("calendar.override.remove", "2026-05-04", unbound),
        ("period.close", "2025-01", unbound),
        ("period.reopen", "2025-01", unbound),
        ("unit.upsert", "H05.01", ("api_key", impostor_id, "admin")),
        ("procedure.upsert", "P5", ("admin_token", None, "admin token")),
    ]
    # The deprecated `actor` keeps its old values; only the token's entries say "admin" there
    # and mean the token — `actor_kind` tells the impostor apart.
    assert [e["actor"] for e in written[-2:]] == ["admin", "admin"]
    assert [e["actor_kind"] for e in written[-2:]] == ["api_key", "admin_token"]


async def test_a_bound_admin_reads_the_audit_entries_about_its_subtree_only(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    desk_b_id, _ = await create_key(client, ["dossiers:read"], "H05.01", name="Một cửa B")
    desk_a_id, desk_a = await create_key(client, ["indicators:write"], "H01.01", name="Một cửa A")
    await put_procedure(client, "P3", 3)
    await client.put("/v1/calendar/days/2026-05-04", headers=ADMIN,
                     json={"kind": "holiday", "reason": "nghỉ bù"})  # fmt: skip
    value = {"unit_code": "H01.01", "period": "2024-04", "metric_code": "DOSSIER_SYNC",
             "numerator": 45, "denominator": 50}  # fmt: skip
    assert (
        await client.post("/v1/indicator-values", json=value, headers=desk_a)
    ).status_code == 201

    seen = [(e["action"], e["target"], e["unit_code"]) for e in await entries(client, keys.bound)]
    assert seen == [
        ("unit.upsert", "H01", "H01"),
        ("unit.upsert", "H01.01", "H01.01"),
        ("unit.upsert", "H01.02", "H01.02"),
        ("unit.upsert", "H01.01.MC", "H01.01.MC"),
        ("api_key.create", keys.bound_id, "H01"),
        ("api_key.create", desk_a_id, "H01.01"),
        ("indicator.revision", "H01.01:2024-04:DOSSIER_SYNC", "H01.01"),
    ]
    everything = await entries(client, ADMIN)
    assert [(e["action"], e["target"]) for e in everything] == [
        ("unit.upsert", "H01"), ("unit.upsert", "H05"), ("unit.upsert", "H01.01"),
        ("unit.upsert", "H01.02"), ("unit.upsert", "H01.01.MC"), ("unit.upsert", "H05.01"),
        ("api_key.create", keys.bound_id), ("api_key.create", keys.national_id),
        ("api_key.create", desk_b_id), ("api_key.create", desk_a_id),
        ("procedure.upsert", "P3"), ("calendar.override.set", "2026-05-04"),
        ("indicator.revision", "H01.01:2024-04:DOSSIER_SYNC"),
    ]  # fmt: skip
    assert await entries(client, keys.national) == everything
    # A filter narrows the subtree's entries further; it never widens them.
    narrowed = await client.get("/v1/audit", params={"target": "H05"}, headers=keys.bound)
    assert narrowed.json()["items"] == []


# --- every admin route states its rule -------------------------------------------------------

# What an admin key bound to a unit may do on each admin route: "subtree" (the route or its
# service checks the unit it touches) or "national" (403 for any bound admin).
ADMIN_ROUTES = {
    ("POST", "/v1/api-keys"): "subtree",
    ("GET", "/v1/api-keys"): "subtree",
    ("DELETE", "/v1/api-keys/{key_id}"): "subtree",
    ("PUT", "/v1/units/{code}"): "subtree",
    ("POST", "/v1/units/{code}/integrity/{rule}/resolve"): "subtree",
    ("GET", "/v1/audit"): "subtree",
    ("GET", "/v1/portal/sync-status"): "subtree",
    ("PUT", "/v1/procedures/{code}"): "national",
    ("PUT", "/v1/calendar/days/{day}"): "national",
    ("DELETE", "/v1/calendar/days/{day}"): "national",
    ("POST", "/v1/periods/{period}/close"): "national",
    ("POST", "/v1/periods/{period}/reopen"): "national",
    ("GET", "/v1/portal/quarantine"): "national",
    ("GET", "/v1/portal/unmapped"): "subtree",
}


def test_every_admin_route_goes_through_one_of_the_two_admin_rules(app: FastAPI) -> None:
    from app.keys.access import require_admin

    found: dict[tuple[str, str], str] = {}
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        top = [d.call for d in route.dependant.dependencies]
        direct = [c for c in top if _requires_scope(c) == Scope.admin]
        assert not direct, f"{route.path} uses require(Scope.admin) instead of app.keys.access"
        if require_admin in top:
            rule = "subtree"
        elif any(getattr(c, "__qualname__", "").startswith("national_admin.") for c in top):
            rule = "national"
        else:
            continue
        for method in route.methods:
            found[(method, route.path)] = rule
    assert found == ADMIN_ROUTES


def _requires_scope(dependency: Any) -> Scope | None:
    """The scope a ``require(scope)`` dependency checks (None for any other callable)."""
    if getattr(dependency, "__qualname__", "") != f"{require.__name__}.<locals>.dependency":
        return None
    cells = dependency.__closure__ or ()
    return next((c.cell_contents for c in cells if isinstance(c.cell_contents, Scope)), None)


async def test_the_migration_keeps_old_entries_without_guessing_their_actor(
    servers: Servers,
) -> None:
    """Entries written before the actor's kind was recorded: a key id proves a key; a bare name
    proves nothing (a key could be named "admin"), so those say ``unrecorded``. The unit each
    is about is read from what it names."""
    name = f"{TEST_DATABASE}_audit_actor"
    await recreate_database(servers.server_url, name)
    url = with_database(servers.server_url, name)
    key_id = uuid.uuid4()
    try:
        await asyncio.to_thread(upgrade, url, "0010_dossier_ownership")
        conn = await asyncpg.connect(plain_url(url))
        try:
            await conn.executemany(
                "INSERT INTO audit_log (actor, actor_key_id, action, target, after) "
                "VALUES ($1, $2, $3, $4, $5::jsonb)",
                [
                    ("admin", None, "unit.upsert", "H01.01", None),
                    ("Sở Nội vụ", key_id, "indicator.revision", "H01.02:2024-04:X", None),
                    ("admin", None, "api_key.create", str(key_id), '{"unit_code": "H05"}'),
                    ("cli", None, "api_key.revoke", str(key_id), '{"unit_code": null}'),
                    ("admin", None, "period.close", "2025-01", None),
                ],
            )
            await asyncio.to_thread(upgrade, url, "0011_audit_actor")
            rows = await conn.fetch(
                "SELECT actor_kind, actor_key_id, actor_name, unit_code FROM audit_log ORDER BY id"
            )
            assert [tuple(r) for r in rows] == [
                ("unrecorded", None, "admin", "H01.01"),
                ("api_key", key_id, "Sở Nội vụ", "H01.02"),
                ("unrecorded", None, "admin", "H05"),
                ("unrecorded", None, "cli", None),
                ("unrecorded", None, "admin", None),
            ]
            await conn.execute(
                "INSERT INTO audit_log (actor_kind, actor_name, action, target) "
                "VALUES ('admin_token', 'admin token', 'procedure.upsert', 'P3')"
            )
            with pytest.raises(asyncpg.CheckViolationError):  # a key's entry without its id
                await conn.execute(
                    "INSERT INTO audit_log (actor_kind, actor_name, action, target) "
                    "VALUES ('api_key', 'admin', 'procedure.upsert', 'P3')"
                )
            await asyncio.to_thread(downgrade, url, "0010_dossier_ownership")
            names = await conn.fetch("SELECT actor FROM audit_log ORDER BY id")
            assert [r["actor"] for r in names] == ["admin", "Sở Nội vụ", "admin", "cli", "admin",
                                                   "admin"]  # fmt: skip
        finally:
            await conn.close()
    finally:
        await drop_database(servers.server_url, name)
