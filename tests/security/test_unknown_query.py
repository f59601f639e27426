"""A /v1/ route refuses query parameters it does not take: 400 naming them, never ignored."""

from __future__ import annotations

import httpx

from tests.helpers import ADMIN, create_key, put_unit

UNKNOWN = "/problems/unknown-query-parameter"


async def test_a_misspelt_filter_is_refused_naming_it(client: httpx.AsyncClient) -> None:
    await put_unit(client, "H01", "province")
    _, key = await create_key(client, ["dossiers:read"], "H01")

    response = await client.get("/v1/dossiers", params={"stat": "open"}, headers=key)

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == UNKNOWN
    assert "'stat'" in problem["detail"]
    assert problem["errors"] == [
        {"in": "query", "name": "stat", "detail": "This route does not take this parameter."}
    ]
    # The detail lists what the route does take, so the client can fix the call.
    assert "state" in problem["detail"] and "limit" in problem["detail"]


async def test_every_unknown_name_is_named_once(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/rankings?level=province&period=2026-10&foo=1&bar=&foo=2",
    )

    assert response.status_code == 400
    problem = response.json()
    assert [error["name"] for error in problem["errors"]] == ["foo", "bar"]
    assert problem["detail"].startswith("Unknown query parameters 'foo', 'bar';")


async def test_routes_with_path_parameters_are_checked_too(client: httpx.AsyncClient) -> None:
    await put_unit(client, "H01", "province")
    _, key = await create_key(client, ["dossiers:read"], "H01")

    refused = await client.get("/v1/units/H01/overdue?limt=5", headers=key)
    taken = await client.get("/v1/units/H01/overdue?limit=5", headers=key)

    assert refused.status_code == 400
    assert refused.json()["errors"][0]["name"] == "limt"
    assert taken.status_code == 200


async def test_parameters_of_dependencies_and_repeats_are_taken(
    client: httpx.AsyncClient,
) -> None:
    """``limit`` and ``cursor`` come from the pagination dependency, not the route itself."""
    response = await client.get("/v1/units?limit=2&level=province&level=province", headers=ADMIN)

    assert response.status_code == 200


async def test_writes_are_checked_before_their_body_is_used(client: httpx.AsyncClient) -> None:
    await put_unit(client, "H01", "province")

    response = await client.put(
        "/v1/units/H02?dry_run=1",
        json={"name": "Tỉnh mới", "level": "province", "parent_code": None},
        headers=ADMIN,
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["name"] == "dry_run"
    # Nothing was stored.
    assert (await client.get("/v1/units/H02")).status_code == 404


async def test_the_portal_protocol_and_the_dashboard_stay_lenient(
    client: httpx.AsyncClient,
) -> None:
    """Producers of the national portal's shapes add parameters of their own; a browser adds
    whatever a link carries. Neither is refused for it."""
    await put_unit(client, "H01", "province")
    _, key = await create_key(client, ["dossiers:write"], "H01")

    portal = await client.post(
        "/dvcqg/DongBoHoSoMC",
        params={"MaDinhDanhDV": "H01", "isUpdating": "False", "utm_source": "lgsp"},
        json=[],
        headers=key,
    )
    page = await client.get("/dashboard?utm_source=mail")

    assert portal.status_code == 200, portal.text
    assert page.status_code == 200


async def test_an_unknown_path_is_still_404_not_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/no-such-route?foo=1")

    assert response.status_code == 404
