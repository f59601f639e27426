"""Units: idempotent upserts, the tree, validity, pagination and CSV loading."""

from __future__ import annotations

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.units.service import PROVINCES_CSV, parse_units_csv
from tests.helpers import ADMIN, province_with_communes, put_unit


async def test_put_creates_then_is_idempotent(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    body = {"name": "UBND tỉnh An Giang", "level": "province", "valid_from": "2025-07-01"}
    first = await client.put("/v1/units/H01", json=body, headers=ADMIN)
    assert first.status_code == 201
    async with engine.connect() as conn:
        stamp = (await conn.execute(text("SELECT updated_at FROM units"))).scalar_one()

    again = await client.put("/v1/units/H01", json=body, headers=ADMIN)
    assert again.status_code == 200
    assert again.json() == first.json()
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT code, updated_at FROM units"))).all()
    # Still one row, untouched by the repeated PUT.
    assert rows == [("H01", stamp)]


async def test_put_updates_changed_fields(client: httpx.AsyncClient) -> None:
    await put_unit(client, "H01", "province", name="An Giang")
    response = await client.put(
        "/v1/units/H01",
        json={"name": "UBND tỉnh An Giang", "level": "province", "valid_to": "2030-12-31"},
        headers=ADMIN,
    )
    assert response.status_code == 200
    assert response.json()["name"] == "UBND tỉnh An Giang"
    assert response.json()["valid_to"] == "2030-12-31"


async def test_unit_detail_has_parent_chain_and_children_count(client: httpx.AsyncClient) -> None:
    await province_with_communes(client)
    desk = (await client.get("/v1/units/H01.01.MC")).json()
    assert [p["code"] for p in desk["parents"]] == ["H01.01", "H01"]
    assert desk["children_count"] == 0
    province = (await client.get("/v1/units/H01")).json()
    assert province["parents"] == []
    assert province["children_count"] == 2


async def test_list_filters_by_level_and_parent(client: httpx.AsyncClient) -> None:
    await province_with_communes(client)
    communes = (await client.get("/v1/units", params={"level": "commune"})).json()
    assert [u["code"] for u in communes["items"]] == ["H01.01", "H01.02", "H05.01"]
    assert communes["next"] is None
    children = (await client.get("/v1/units", params={"parent": "H01"})).json()
    assert [u["code"] for u in children["items"]] == ["H01.01", "H01.02"]


async def test_list_filters_by_validity_for_merged_provinces(client: httpx.AsyncClient) -> None:
    # Kiên Giang merged into An Giang on 1 July 2025.
    await put_unit(client, "H01", "province", valid_from="2025-07-01", name="An Giang (2025)")
    await put_unit(
        client, "H30", "province", valid_to="2025-06-30", successor_code="H01", name="Kiên Giang"
    )
    before = (await client.get("/v1/units", params={"valid_at": "2025-06-30"})).json()
    after = (await client.get("/v1/units", params={"valid_at": "2025-07-01"})).json()
    assert [u["code"] for u in before["items"]] == ["H30"]
    assert [u["code"] for u in after["items"]] == ["H01"]
    assert before["items"][0]["successor_code"] == "H01"


async def test_keyset_pagination_walks_every_unit_once(client: httpx.AsyncClient) -> None:
    await province_with_communes(client)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/units", params=params)).json()
        seen += [u["code"] for u in page["items"]]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == ["H01", "H01.01", "H01.01.MC", "H01.02", "H05", "H05.01"]
    assert pages == 3


async def test_bad_cursor_and_limit_are_problems(client: httpx.AsyncClient) -> None:
    bad_cursor = await client.get("/v1/units", params={"cursor": "%%%not-base64"})
    assert bad_cursor.status_code == 400
    assert bad_cursor.json()["type"] == "/problems/invalid-cursor"
    too_many = await client.get("/v1/units", params={"limit": 501})
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["parameter"] == "limit"


async def test_unknown_parent_is_422_with_pointer(client: httpx.AsyncClient) -> None:
    response = await client.put(
        "/v1/units/H01.01",
        json={"name": "x", "level": "commune", "parent_code": "H99"},
        headers=ADMIN,
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {"pointer": "#/parent_code", "detail": "unknown unit 'H99'"}
    ]
    assert (await client.get("/v1/units/H01.01")).status_code == 404


async def test_bad_level_is_422_with_pointer(client: httpx.AsyncClient) -> None:
    response = await client.put(
        "/v1/units/H01", json={"name": "x", "level": "galaxy"}, headers=ADMIN
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "#/level"


async def test_cycle_is_rejected_and_nothing_changes(client: httpx.AsyncClient) -> None:
    await province_with_communes(client)
    response = await client.put(
        "/v1/units/H01",
        json={"name": "x", "level": "province", "parent_code": "H01.01.MC"},
        headers=ADMIN,
    )
    assert response.status_code == 422
    province = (await client.get("/v1/units/H01")).json()
    assert province["parent_code"] is None
    assert province["name"] == "UBND tỉnh An Giang"


async def test_shipped_provinces_csv_has_the_34_provinces() -> None:
    records = parse_units_csv(PROVINCES_CSV.read_text(encoding="utf-8"))
    assert len(records) == 34
    assert {r.level for r in records} == {"province"}
    by_code = {r.code: r.name for r in records}
    assert by_code["H01"] == "UBND tỉnh An Giang"
    assert by_code["H29"] == "UBND Thành phố Hồ Chí Minh"
