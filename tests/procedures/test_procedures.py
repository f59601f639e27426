"""Procedures: upsert, validation with pointers, listing and the shipped sample."""

from __future__ import annotations

import httpx

from app.procedures.service import SAMPLE_CSV, parse_procedures_csv
from tests.helpers import ADMIN, put_procedure


async def test_put_then_get_round_trips_a_fractional_limit(client: httpx.AsyncClient) -> None:
    created = await client.put(
        "/v1/procedures/1.001193",
        json={
            "name": "Đăng ký khai sinh",
            "field_code": "HOTICH",
            "limit_value": 0.5,
            "limit_unit": "working_days",
            "has_fees": False,
            "full_online": True,
        },
        headers=ADMIN,
    )
    assert created.status_code == 201
    fetched = (await client.get("/v1/procedures/1.001193")).json()
    assert fetched == {
        "code": "1.001193",
        "name": "Đăng ký khai sinh",
        "field_code": "HOTICH",
        "field_name": None,
        "limit_value": "0.50",
        "limit_unit": "working_days",
        "has_fees": False,
        "full_online": True,
        "online_allowed": None,
        "paper_result": True,
        "for_citizens": True,
        "verified": True,
        "learned_at": None,
    }


async def test_repeated_put_is_200_and_unchanged(client: httpx.AsyncClient) -> None:
    first = await put_procedure(client, "2.000908", 4, "working_hours")
    again = await client.put(
        "/v1/procedures/2.000908",
        json={"name": first["name"], "limit_value": 4, "limit_unit": "working_hours"},
        headers=ADMIN,
    )
    assert again.status_code == 200
    assert again.json() == first


async def test_bad_values_are_422_with_pointers(client: httpx.AsyncClient) -> None:
    response = await client.put(
        "/v1/procedures/X1",
        json={"name": "x", "limit_value": 0, "limit_unit": "fortnights"},
        headers=ADMIN,
    )
    assert response.status_code == 422
    pointers = sorted(e["pointer"] for e in response.json()["errors"])
    assert pointers == ["#/limit_unit", "#/limit_value"]
    assert (await client.get("/v1/procedures/X1")).status_code == 404


async def test_list_filters_by_field_and_online(client: httpx.AsyncClient) -> None:
    await put_procedure(client, "A1", field_code="HOTICH", full_online=True)
    await put_procedure(client, "A2", field_code="HOTICH")
    await put_procedure(client, "B1", field_code="DATDAI", full_online=True)
    hotich = (await client.get("/v1/procedures", params={"field_code": "HOTICH"})).json()
    assert [p["code"] for p in hotich["items"]] == ["A1", "A2"]
    online = (await client.get("/v1/procedures", params={"full_online": "true"})).json()
    assert [p["code"] for p in online["items"]] == ["A1", "B1"]


async def test_reads_are_public_but_writes_need_admin(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/procedures")).status_code == 200
    anonymous = await client.put(
        "/v1/procedures/A1", json={"name": "x", "limit_value": 1, "limit_unit": "months"}
    )
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")


def test_shipped_sample_covers_every_limit_unit() -> None:
    records = parse_procedures_csv(SAMPLE_CSV.read_text(encoding="utf-8"))
    assert {r.limit_unit.value for r in records} == {
        "working_days",
        "working_hours",
        "calendar_days",
        "months",
    }
    assert any(r.limit_value == 0.5 for r in records)


async def test_the_index_facts_of_a_procedure_default_to_true_and_can_be_stated(
    client: httpx.AsyncClient,
) -> None:
    body = {"name": "Cấp phiếu lý lịch tư pháp", "limit_value": 10, "limit_unit": "working_days",
            "paper_result": False, "for_citizens": False}  # fmt: skip
    assert (
        await client.put("/v1/procedures/2.000488", json=body, headers=ADMIN)
    ).status_code == 201
    fetched = (await client.get("/v1/procedures/2.000488")).json()
    assert (fetched["paper_result"], fetched["for_citizens"]) == (False, False)


def test_the_procedure_csv_states_the_index_facts_or_leaves_the_defaults() -> None:
    one, two = parse_procedures_csv(
        "code,name,field_code,limit_value,limit_unit,has_fees,full_online,paper_result\n"
        "1.1,Một,,3,working_days,true,false,false\n"
        "1.2,Hai,,3,working_days,true,false,\n"
    )
    assert (one.paper_result, one.for_citizens) == (False, True)  # column absent: true
    assert (two.paper_result, two.for_citizens) == (True, True)  # empty cell: true
