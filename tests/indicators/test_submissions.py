"""Submitting indicator values: revisions, validation, unit scope, batches and history."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.helpers import ADMIN, create_key, province_with_communes, vn


def value(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "unit_code": "H01.01",
        "period": "2024-04",
        "metric_code": "DOSSIER_SYNC",
        "numerator": 45,
        "denominator": 50,
    }
    body.update(overrides)
    return body


@pytest.fixture
async def units(client: httpx.AsyncClient, clock: Callable[[datetime], None]) -> None:
    await province_with_communes(client)
    clock(vn("2024-06-15 10:00"))


async def post(
    client: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.post("/v1/indicator-values", json=body, headers=headers or ADMIN)


async def test_a_resubmission_is_a_new_revision_and_history_shows_who_and_when(
    client: httpx.AsyncClient, units: None
) -> None:
    key_id, key = await create_key(client, ["indicators:write"], "H01", name="Sở Nội vụ An Giang")
    first = await post(client, value(), key)
    assert first.status_code == 201
    assert first.json() | {"submitted_at": None} == {
        "unit_code": "H01.01", "period": "2024-04", "period_kind": "month",
        "metric_code": "DOSSIER_SYNC", "indicator": "1.4", "source": "submitted",
        "numerator": 45, "denominator": 50, "revision": 1,
        "submitted_by": "Sở Nội vụ An Giang", "submitted_at": None, "key_id": key_id,
        "admin_scope": False, "result": "stored",
    }  # fmt: skip

    same = await post(client, value(), key)
    assert same.status_code == 200
    assert (same.json()["result"], same.json()["revision"]) == ("unchanged", 1)
    assert same.json()["submitted_by"] == "Sở Nội vụ An Giang"  # the revision that stands

    corrected = await post(client, value(numerator=47), ADMIN)
    assert corrected.status_code == 201
    assert (corrected.json()["revision"], corrected.json()["submitted_by"]) == (2, "admin")
    assert corrected.json()["admin_scope"] is True
    # The unit sending the admin's figure changes nothing: the admin's revision stands.
    echoed = await post(client, value(numerator=47), key)
    assert (echoed.status_code, echoed.json()["revision"]) == (200, 2)

    latest = await client.get("/v1/units/H01.01/indicator-values?period=2024-04", headers=key)
    assert latest.status_code == 200
    assert [(i["metric_code"], i["revision"], i["numerator"]) for i in latest.json()["items"]] == [
        ("DOSSIER_SYNC", 2, 47)
    ]
    history = await client.get(
        "/v1/units/H01.01/indicator-values?period=2024-04&history=true", headers=key
    )
    items = history.json()["items"]
    assert [(i["revision"], i["numerator"], i["submitted_by"], i["indicator"]) for i in items] == [
        (2, 47, "admin", "1.4"),
        (1, 45, "Sở Nội vụ An Giang", "1.4"),
    ]
    assert items[0]["key_id"] is None and items[1]["key_id"] == key_id
    assert items[0]["submitted_at"] >= items[1]["submitted_at"]


async def test_periods_are_normalised_and_all_three_kinds_accepted(
    client: httpx.AsyncClient, units: None
) -> None:
    for period, kind in (("2024-05", "month"), ("2024-Q1", "quarter"), ("2023", "year")):
        response = await post(client, value(period=f" {period} "))
        assert response.status_code == 201, response.text
        assert (response.json()["period"], response.json()["period_kind"]) == (period, kind)


async def test_a_composite_is_submitted_per_component(
    client: httpx.AsyncClient, units: None
) -> None:
    assert (await post(client, value(metric_code="ONLINE_PAYMENT.A"))).status_code == 201
    whole = await post(client, value(metric_code="ONLINE_PAYMENT"))
    assert whole.status_code == 422
    assert whole.json()["errors"] == [
        {
            "pointer": "#/metric_code",
            "detail": "ONLINE_PAYMENT is scored from its components; submit ONLINE_PAYMENT.A, "
            "ONLINE_PAYMENT.B, ONLINE_PAYMENT.C",
        }
    ]


@pytest.mark.parametrize(
    ("overrides", "pointer", "detail"),
    [
        ({"numerator": 51}, "#/numerator", "numerator 51 exceeds denominator 50"),
        ({"numerator": -1}, "#/numerator", "greater than or equal to 0"),
        ({"denominator": -5}, "#/denominator", "greater than or equal to 0"),
        ({"numerator": 4.5}, "#/numerator", "valid integer"),
        ({"numerator": "45"}, "#/numerator", "valid integer"),
        ({"period": "2024-13"}, "#/period", "the month must be 01–12"),
        ({"period": "2024-Q5"}, "#/period", "the quarter must be Q1–Q4"),
        ({"period": "April 2024"}, "#/period", "must look like 2024-04"),
        ({"period": "2024-07"}, "#/period", "period 2024-07 has not started yet"),
        ({"period": "2021-12"}, "#/period", "no indicator catalog version is in force"),
        ({"metric_code": "ON_TIME_RATE"}, "#/metric_code", "computed by chiso from dossier"),
        ({"metric_code": "NO_SUCH"}, "#/metric_code", "unknown metric 'NO_SUCH'"),
        ({"unit_code": "H99"}, "#/unit_code", "unknown unit 'H99'"),
        ({"extra": 1}, "#/extra", "Extra inputs are not permitted"),
    ],
)
async def test_bad_values_are_422_problems_with_a_pointer(
    client: httpx.AsyncClient, units: None, overrides: dict[str, Any], pointer: str, detail: str
) -> None:
    response = await post(client, value(**overrides))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert errors[0]["pointer"] == pointer
    assert detail in errors[0]["detail"]


async def test_a_unit_that_did_not_exist_in_the_period_is_refused(
    client: httpx.AsyncClient, units: None
) -> None:
    from tests.helpers import put_unit

    await put_unit(client, "H01.09", "commune", "H01", valid_from="2024-05-01")
    response = await post(client, value(unit_code="H01.09", period="2024-04"))
    assert response.status_code == 422
    assert "did not exist during 2024-04" in response.json()["detail"]
    assert (await post(client, value(unit_code="H01.09", period="2024-05"))).status_code == 201


async def test_keys_write_only_within_their_unit(client: httpx.AsyncClient, units: None) -> None:
    _, h01 = await create_key(client, ["indicators:write"], "H01")
    _, reader = await create_key(client, ["dossiers:read"], "H01")
    assert (await post(client, value(unit_code="H01.01.MC"), h01)).status_code == 201
    outside = await post(client, value(unit_code="H05.01"), h01)
    assert outside.status_code == 403
    assert outside.headers["content-type"] == "application/problem+json"
    assert (await post(client, value(), reader)).status_code == 403
    anonymous = await client.post("/v1/indicator-values", json=value())
    assert anonymous.status_code == 401


async def test_a_batch_answers_per_item(client: httpx.AsyncClient, units: None) -> None:
    _, h01 = await create_key(client, ["indicators:write"], "H01")
    assert (await post(client, value(), h01)).status_code == 201
    values = [
        value(),  # 0: identical to the latest revision
        value(metric_code="PUBLISH_ON_TIME"),  # 1: new
        value(unit_code="H05.01"),  # 2: another province
        value(numerator=60),  # 3: numerator above the denominator
        value(period="2024-5"),  # 4: malformed period
        value(metric_code="PUBLISH_ON_TIME", numerator=1),  # 5: same key as item 1
        value(unit_code="H01.02", numerator=0, denominator=0),  # 6: empty denominator is data
        "not an object",  # 7
    ]
    response = await client.post("/v1/indicator-values/batch", json={"values": values}, headers=h01)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["stored"], body["unchanged"], body["rejected"]) == (2, 1, 5)
    results = {i["index"]: i for i in body["items"]}
    assert [results[i]["result"] for i in range(8)] == [
        "unchanged", "stored", "rejected", "rejected", "rejected", "rejected", "stored",
        "rejected",
    ]  # fmt: skip
    assert results[0]["revision"] == 1
    described = [(results[i]["indicator"], results[i]["source"], results[i]["admin_scope"])
                 for i in (0, 1)]  # fmt: skip
    assert described == [("1.4", "submitted", False), ("1.1", "submitted", False)]
    assert results[2]["errors"] == [
        {"pointer": "#/values/2/unit_code", "detail": "outside this key's unit"}
    ]
    assert results[3]["errors"][0]["pointer"] == "#/values/3/numerator"
    assert results[4]["errors"][0]["pointer"] == "#/values/4/period"
    assert results[5]["errors"] == [
        {
            "pointer": "#/values/5/metric_code",
            "detail": "repeats item 1 (same unit, period and metric)",
        }
    ]
    assert results[7]["errors"][0]["pointer"] == "#/values/7"

    # Nothing of the rejected items was stored.
    stored = await client.get("/v1/units/H01/indicator-values", headers=ADMIN)
    assert stored.json()["items"] == []
    h0101 = await client.get("/v1/units/H01.01/indicator-values", headers=ADMIN)
    assert [(i["metric_code"], i["numerator"]) for i in h0101.json()["items"]] == [
        ("DOSSIER_SYNC", 45), ("PUBLISH_ON_TIME", 45),
    ]  # fmt: skip


async def test_batch_shape_and_size_limits(client: httpx.AsyncClient, units: None) -> None:
    not_a_list = await client.post("/v1/indicator-values/batch", json={"values": {}}, headers=ADMIN)
    assert not_a_list.status_code == 422
    assert not_a_list.json()["errors"][0]["pointer"] == "#/values"
    too_many = await client.post(
        "/v1/indicator-values/batch", json={"values": [value()] * 5001}, headers=ADMIN
    )
    assert too_many.status_code == 413


async def test_a_large_batch_is_stored_in_one_go(client: httpx.AsyncClient, units: None) -> None:
    months = [f"{year}-{month:02d}" for year in (2022, 2023) for month in range(1, 13)]
    metrics = ["PUBLISH_ON_TIME", "PUBLIC_UPDATE_ON_TIME", "DOSSIER_SYNC", "FULL_ONLINE_RATE"]
    units_ = ["H01", "H01.01", "H01.02", "H05", "H05.01"]
    values = [
        value(unit_code=u, period=p, metric_code=m, numerator=i % 50)
        for i, (u, p, m) in enumerate((u, p, m) for u in units_ for p in months for m in metrics)
    ]
    assert len(values) == 480
    response = await client.post(
        "/v1/indicator-values/batch", json={"values": values}, headers=ADMIN
    )
    assert response.json()["stored"] == 480
    again = await client.post("/v1/indicator-values/batch", json={"values": values}, headers=ADMIN)
    assert again.json()["unchanged"] == 480


async def test_reading_values_needs_a_key_covering_the_unit(
    client: httpx.AsyncClient, units: None
) -> None:
    assert (await post(client, value())).status_code == 201
    _, h01 = await create_key(client, ["dossiers:read"], "H01")
    _, h05 = await create_key(client, ["indicators:write"], "H05")
    path = "/v1/units/H01.01/indicator-values"
    assert (await client.get(path)).status_code == 401
    assert (await client.get(path, headers=h05)).status_code == 403
    assert (await client.get(path, headers=h01)).status_code == 200
    assert (await client.get("/v1/units/H99/indicator-values", headers=ADMIN)).status_code == 404
    bad = await client.get(f"{path}?period=2024-13", headers=ADMIN)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["parameter"] == "period"


async def test_values_filter_and_page(client: httpx.AsyncClient, units: None) -> None:
    batch = [
        value(period="2024-04", metric_code="DOSSIER_SYNC"),
        value(period="2024-04", metric_code="PUBLISH_ON_TIME"),
        value(period="2024-05", metric_code="DOSSIER_SYNC"),
        value(period="2024-Q2", metric_code="DOSSIER_SYNC"),
    ]
    await client.post("/v1/indicator-values/batch", json={"values": batch}, headers=ADMIN)
    await post(client, value(period="2024-04", metric_code="DOSSIER_SYNC", numerator=1))
    path = "/v1/units/H01.01/indicator-values"

    by_metric = await client.get(f"{path}?metric=DOSSIER_SYNC", headers=ADMIN)
    assert [(i["period"], i["revision"]) for i in by_metric.json()["items"]] == [
        ("2024-04", 2), ("2024-05", 1), ("2024-Q2", 1),
    ]  # fmt: skip

    seen: list[tuple[str, str, int]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"history": "true", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(path, params=params, headers=ADMIN)).json()
        seen.extend((i["period"], i["metric_code"], i["revision"]) for i in page["items"])
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [
        ("2024-04", "DOSSIER_SYNC", 2),
        ("2024-04", "DOSSIER_SYNC", 1),
        ("2024-04", "PUBLISH_ON_TIME", 1),
        ("2024-05", "DOSSIER_SYNC", 1),
        ("2024-Q2", "DOSSIER_SYNC", 1),
    ]

    first = (await client.get(path, params={"limit": 1}, headers=ADMIN)).json()
    second = (
        await client.get(path, params={"limit": 1, "cursor": first["next"]}, headers=ADMIN)
    ).json()
    # Latest revisions only: after (2024-04, DOSSIER_SYNC, rev 2) comes the next metric, not rev 1.
    assert [(i["metric_code"], i["revision"]) for i in first["items"] + second["items"]] == [
        ("DOSSIER_SYNC", 2), ("PUBLISH_ON_TIME", 1),
    ]  # fmt: skip
