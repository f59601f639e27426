"""Ownership and idempotency: no unit writes into, reads or shadows another unit's dossiers.

H01 (An Giang) has communes H01.01 and H01.02; H05 (Bắc Ninh) has commune H05.01. The rival
is always H05.01, a unit of another province competing in the same rankings.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers import (
    ADMIN,
    DERIVED,
    create_key,
    event,
    get_dossier,
    province_with_communes,
    put_procedure,
)

CODE = "H01.01-260302-0001"


@pytest.fixture
async def keys(client: httpx.AsyncClient) -> dict[str, dict[str, str]]:
    await province_with_communes(client)
    await put_procedure(client, "P3", 3, "working_days")
    scopes = ["dossiers:write", "dossiers:read"]
    _, own = await create_key(client, scopes, "H01.01", name="Một cửa Long Xuyên")
    _, rival = await create_key(client, scopes, "H05.01", name="Một cửa Kinh Bắc")
    _, province = await create_key(client, scopes, "H01", name="Sở Nội vụ An Giang")
    return {"own": own, "rival": rival, "province": province}


async def post(
    client: httpx.AsyncClient, body: dict[str, Any], key: dict[str, str]
) -> httpx.Response:
    return await client.post("/v1/dossier-events", json=body, headers={**key, **DERIVED})


async def batch(
    client: httpx.AsyncClient, events: list[dict[str, Any]], key: dict[str, str]
) -> dict[str, Any]:
    response = await client.post(
        "/v1/dossier-events/batch", json={"events": events}, headers={**key, **DERIVED}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_rival_cannot_write_into_a_dossier_whatever_unit_it_names(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    # Received Mon 2 Mar 08:00, due 3 working days later: Thu 5 Mar 17:00; finished Wed 4 Mar.
    assert (await post(client, event("a1", CODE, 2, "2026-03-02 08:00"), keys["own"])).is_success
    assert (await post(client, event("a2", CODE, 9, "2026-03-04 10:00"), keys["own"])).is_success

    # The rival names its own unit, then ours, then back-dates a receipt a month earlier.
    attacks = [
        event("x1", CODE, 4, "2026-03-20 08:00", unit="H05.01"),
        event("x2", CODE, 4, "2026-03-20 08:00", unit="H01.01"),
        event("x3", CODE, 2, "2026-02-02 08:00", unit="H05.01", received_at="2026-02-02 08:00"),
    ]
    for attack in attacks:
        response = await post(client, attack, keys["rival"])
        assert response.status_code == 403, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    result = await batch(client, attacks, keys["rival"])
    assert result["stored"] == 0 and result["rejected"] == 3
    assert result["items"][0]["errors"] == [
        {"pointer": "#/events/0/dossier_code", "detail": "outside this key's unit"}
    ]

    dossier = await get_dossier(client, CODE, keys["own"])
    assert dossier["unit_code"] == "H01.01"
    assert dossier["timeliness"] == "early"  # finished a day before it was due
    assert dossier["anomalies"] == []
    history = (await client.get(f"/v1/dossiers/{CODE}/events", headers=keys["own"])).json()
    assert [e["event_id"] for e in history["items"]] == ["a1", "a2"]
    # … and the rival reads nothing of it.
    assert (await client.get(f"/v1/dossiers/{CODE}", headers=keys["rival"])).status_code == 403
    response = await client.get(f"/v1/dossiers/{CODE}/events", headers=keys["rival"])
    assert response.status_code == 403


async def test_portal_records_belong_to_the_unit_their_code_names_not_to_madonvi(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    assert (await post(client, event("a1", CODE, 2, "2026-03-02 08:00"), keys["own"])).is_success
    record = {
        "MaHoSo": CODE, "MaTTHC": "P3", "KenhThucHien": "1", "TrangThaiHoSo": "10",
        "NgayTiepNhan": "20260302080000", "NgayHenTra": "20260305170000",
        "NgayKetThucXuLy": "20260320080000", "NgayTra": "20260320090000",
    }  # fmt: skip
    response = await client.post(
        "/v1/portal/dossiers?madonvi=H05.01", json=[record], headers=keys["rival"]
    )
    assert response.status_code == 200
    body = response.json()
    assert body["error_code"] != 0
    assert body["result"]["items"][0]["result"] == "rejected"
    assert "outside this key's unit" in str(body["result"]["items"][0]["errors"])
    dossier = await get_dossier(client, CODE, keys["own"])
    assert dossier["finished_at"] is None and dossier["unit_code"] == "H01.01"


async def test_a_rival_cannot_squat_a_code_that_names_another_unit(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    squat = event("s1", "H01.01-260303-0007", 2, "2026-03-03 08:00", unit="H05.01")
    response = await post(client, squat, keys["rival"])
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "#/dossier_code"
    # The code stays free for its unit.
    mine = event("m1", "H01.01-260303-0007", 2, "2026-03-03 08:00", unit="H01.01")
    assert (await post(client, mine, keys["own"])).status_code == 201
    assert (await get_dossier(client, "H01.01-260303-0007", keys["own"]))["unit_code"] == "H01.01"
    # A desk below the commune may number its dossiers with the commune's code.
    await client.put(
        "/v1/units/H01.01.MC", json={"name": "Một cửa", "level": "desk", "parent_code": "H01.01"},
        headers=ADMIN,
    )  # fmt: skip
    desk = event("d1", "H01.01-260303-0008", 2, "2026-03-03 08:00", unit="H01.01.MC")
    assert (await post(client, desk, keys["own"])).status_code == 201


async def test_with_prefixes_required_no_code_can_be_squatted(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]], configure: Any
) -> None:
    configure(dossier_code_prefix="required")
    response = await post(client, event("t1", "TWICE", 2, "2026-03-03 08:00"), keys["own"])
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "#/dossier_code"
    ok = event("t2", "H01.01-TWICE", 2, "2026-03-03 08:00")
    assert (await post(client, ok, keys["own"])).status_code == 201


async def test_event_ids_are_per_dossier_and_never_leak_across_units(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    theirs = event("evt-0001", "H05.01-260302-0001", 2, "2026-03-02 08:00", unit="H05.01")
    assert (await post(client, theirs, keys["rival"])).status_code == 201
    ours = event("evt-0001", CODE, 2, "2026-03-02 09:00")
    response = await post(client, ours, keys["own"])
    assert response.status_code == 201, response.text
    assert response.json()["result"] == "stored"
    history = (await client.get(f"/v1/dossiers/{CODE}/events", headers=keys["own"])).json()
    assert [e["event_id"] for e in history["items"]] == ["evt-0001"]


async def test_same_id_same_content_is_a_duplicate_other_content_a_409(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    first = event("e1", CODE, 2, "2026-03-02 08:00")
    assert (await post(client, first, keys["own"])).status_code == 201
    again = await client.post("/v1/dossier-events", json=first, headers=keys["own"])
    assert again.status_code == 200 and again.json()["result"] == "duplicate"

    changed = event("e1", CODE, 2, "2026-03-02 08:30")
    response = await post(client, changed, keys["own"])
    assert response.status_code == 409
    problem = response.json()
    assert problem["status"] == 409 and problem["stored_at"]
    assert problem["errors"][0]["pointer"] == "#/event_id"

    result = await batch(
        client,
        [first, changed, event("e2", CODE, 4, "2026-03-02 10:00"),
         event("e3", CODE, 9, "2026-03-03 10:00"), event("e3", CODE, 10, "2026-03-03 11:00")],
        keys["own"],
    )  # fmt: skip
    assert [i["result"] for i in result["items"]] == [
        "duplicate", "conflict", "stored", "stored", "conflict"
    ]  # fmt: skip
    assert (result["stored"], result["duplicate"], result["conflict"]) == (2, 1, 1 + 1)
    assert result["items"][1]["stored_at"] == problem["stored_at"]
    assert result["items"][4]["stored_at"] is None  # its twin is earlier in this batch
    # The version that stays is the first one, unchanged.
    history = (await client.get(f"/v1/dossiers/{CODE}/events", headers=keys["own"])).json()
    assert [(e["event_id"], e["status"]) for e in history["items"]] == [
        ("e1", 2), ("e2", 4), ("e3", 9)
    ]  # fmt: skip
    assert history["items"][0]["occurred_at"] == "2026-03-02T01:00:00Z"


async def test_a_step_by_another_unit_of_the_subtree_is_a_transfer(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    assert (await post(client, event("a1", CODE, 2, "2026-03-02 08:00"), keys["own"])).is_success
    step = event("a2", CODE, 4, "2026-03-02 10:00", unit="H01.02")
    assert (await post(client, step, keys["own"])).status_code == 403  # not the commune's
    assert (await post(client, step, keys["province"])).status_code == 201
    dossier = await get_dossier(client, CODE, keys["own"])
    assert dossier["unit_code"] == "H01.01"  # still the owner's: it counts for H01.01
    assert dossier["anomalies"] == [
        {"code": "transfer", "detail": "H01.01 → H01.02 (liên thông)", "event_id": "a2"}
    ]


async def test_each_event_records_the_key_that_posted_it(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    own_id, own = await create_key(client, ["dossiers:write", "dossiers:read"], "H01.01")
    assert (await post(client, event("a1", CODE, 2, "2026-03-02 08:00"), own)).is_success
    assert (await post(client, event("a2", CODE, 4, "2026-03-02 09:00"), ADMIN)).is_success
    history = (await client.get(f"/v1/dossiers/{CODE}/events", headers=own)).json()
    assert [e["key_id"] for e in history["items"]] == [own_id, None]


async def test_a_resent_portal_record_with_a_new_appointment_is_an_update(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    record = {
        "MaHoSo": CODE, "MaTTHC": "P3", "KenhThucHien": "2", "TrangThaiHoSo": "2",
        "NgayTiepNhan": "20260302080000", "NgayHenTra": "20260305170000",
    }  # fmt: skip
    url = "/v1/portal/dossiers?madonvi=H01.01"
    first = (await client.post(url, json=[record], headers={**keys["own"], **DERIVED})).json()
    assert first["result"]["items"][0]["result"] == "stored"
    same = (await client.post(url, json=[record], headers={**keys["own"], **DERIVED})).json()
    assert same["result"]["items"][0]["result"] == "duplicate"
    moved = {**record, "NgayHenTra": "20260306170000"}
    again = (await client.post(url, json=[moved], headers={**keys["own"], **DERIVED})).json()
    assert again["error_code"] == 0
    assert again["result"]["items"][0]["result"] == "updated"
    dossier = await get_dossier(client, CODE, keys["own"])
    assert dossier["due_at"] == "2026-03-06T10:00:00Z"  # Fri 6 Mar 17:00 local
    history = (await client.get(f"/v1/dossiers/{CODE}/events", headers=keys["own"])).json()
    assert len(history["items"]) == 1


async def test_a_refused_event_for_a_new_dossier_is_refused_not_retried(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    unknown_unit = event("u1", "H01.01-260302-0009", 2, "2026-03-02 08:00", unit="H99")
    response = await post(client, unknown_unit, ADMIN)
    assert response.status_code == 422
    assert response.json()["errors"] == [{"pointer": "#/unit_code", "detail": "unknown unit"}]
    outside = event("u2", "H05.01-260302-0009", 2, "2026-03-02 08:00", unit="H05.01")
    assert (await post(client, outside, keys["own"])).status_code == 403
