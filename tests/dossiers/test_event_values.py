"""Values an event may carry: each bad one refused with a pointer, the rest of a batch kept."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers import ADMIN, event, province_with_communes, put_procedure


@pytest.fixture
async def setup(client: httpx.AsyncClient) -> None:
    await province_with_communes(client)
    await put_procedure(client, "P3", 3, "working_days")


async def single(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/v1/dossier-events", json=body, headers=ADMIN)


async def test_a_nul_in_one_batch_item_rejects_that_item_only(
    client: httpx.AsyncClient, setup: None
) -> None:
    good = event("v1", "H01.01-260302-0001", 2, "2026-03-02 08:00")
    bad = {**event("v2", "H01.01-260302-0002", 2, "2026-03-02 08:00"), "note": "a\x00b"}
    response = await client.post(
        "/v1/dossier-events/batch", json={"events": [good, bad]}, headers=ADMIN
    )
    assert response.status_code == 200
    body = response.json()
    assert [i["result"] for i in body["items"]] == ["stored", "rejected"]
    assert body["items"][1]["errors"][0]["pointer"] == "#/events/1/note"


async def test_a_dossier_code_with_a_slash_is_refused_because_it_could_not_be_read(
    client: httpx.AsyncClient, setup: None
) -> None:
    response = await single(client, event("v1", "H01.01/2026/0001", 2, "2026-03-02 08:00"))
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "#/dossier_code"


@pytest.mark.parametrize("value", [1790000000, 1790000000.5, True])
async def test_a_number_is_not_a_time(
    client: httpx.AsyncClient, setup: None, value: object
) -> None:
    body = {**event("v1", "H01.01-260302-0001", 2, "2026-03-02 08:00"), "occurred_at": value}
    response = await single(client, body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "#/occurred_at"


@pytest.mark.parametrize("field", ["occurred_at", "received_at", "due_at"])
async def test_a_date_years_ahead_is_refused_and_breaks_nothing(
    client: httpx.AsyncClient, setup: None, field: str
) -> None:
    body = {**event("v1", "H01.01-260302-0001", 2, "2026-03-02 08:00"),
            field: "2099-12-31T10:00:00+07:00"}  # fmt: skip
    response = await single(client, body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == f"#/{field}"
    # The scores of the period still refresh (a 2099 date once broke every refresh).
    ranking = await client.get("/v1/rankings", params={"level": "province", "period": "2026-03"})
    assert ranking.status_code == 200
