"""Hostile and broken input: every answer is a 4xx problem+json, never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.settings import Settings
from app.main import create_app
from tests.helpers import ADMIN
from tests.security.conftest import DOSSIER_A, UNIT_A, World

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, *statuses: int) -> None:
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.headers["content-type"] == PROBLEM, response.headers
    body = response.json()
    assert body["status"] == response.status_code and body["type"] and body["title"]


def good_event(**changes: Any) -> dict[str, Any]:
    return {"event_id": "bad-input-1", "dossier_code": DOSSIER_A, "unit_code": UNIT_A,
            "procedure_code": "P3", "status": 4, "occurred_at": "2026-03-03T09:00:00+07:00",
            "channel": 1, **changes}  # fmt: skip


@pytest.fixture
async def small_body_client(settings: Settings, clean: None) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(settings.model_copy(update={"max_body_bytes": 4096}))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://chiso.test") as c:
            yield c


async def test_bodies_over_the_configured_size_get_413(
    small_body_client: httpx.AsyncClient,
) -> None:
    big = {"events": [good_event(note="x" * 1000, event_id=f"e{i}") for i in range(5)]}
    response = await small_body_client.post("/v1/dossier-events/batch", json=big, headers=ADMIN)
    assert_problem(response, 413)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"events": ['
        for _ in range(10):
            yield b'{"note": "' + b"y" * 1000 + b'"},'
        yield b"{}]}"

    streamed = await small_body_client.post(
        "/v1/dossier-events/batch",
        content=chunks(),
        headers=ADMIN | {"content-type": "application/json"},
    )
    assert_problem(streamed, 413)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/dossier-events/batch", {"events": [{}] * 10_001}),
        ("/v1/indicator-values/batch", {"values": [{}] * 5_001}),
        ("/v1/portal/dossiers", [{}] * 10_001),
    ],
)
async def test_batches_over_the_limit_are_refused_whole(
    client: httpx.AsyncClient, path: str, body: Any
) -> None:
    assert_problem(await client.post(path, json=body, headers=ADMIN), 413, 422)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"events": [{"event_id": "\xff\xfe"}]}',  # invalid UTF-8
        b"\xef\xbb\xbf\x00\x00",  # a BOM and NULs
        b'{"events": [' * 50_000 + b"]" * 50_000,  # deeply nested
        b"[" * 100_000,  # nested and truncated
        b'{"events": "' + b"\\ud800" + b'"}',  # a lone surrogate
        b'{"events": [1e999999]}',
        b'{"events": [' + b"9" * 50_000 + b"]}",  # beyond Python's integer-string limit
        b"",
        b"not json at all",
    ],
)
async def test_malformed_bodies_are_4xx_problems(client: httpx.AsyncClient, raw: bytes) -> None:
    for path in ("/v1/dossier-events/batch", "/v1/dossier-events", "/v1/portal/dossiers",
                 "/v1/indicator-values/batch"):  # fmt: skip
        response = await client.post(
            path, content=raw, headers=ADMIN | {"content-type": "application/json"}
        )
        if response.status_code == 200:  # a well-formed batch whose items are all bad
            body = response.json()
            result = body.get("result", body)
            assert result["items"] and result["stored"] == 0, body
            assert all(item["result"] == "rejected" for item in result["items"])
            continue
        assert_problem(response, 400, 413, 422)


@pytest.mark.parametrize(
    "changes",
    [
        {"status": 10**40},
        {"status": 1e308},
        {"channel": -(2**70)},
        {"applicant_kind": 2**63},
        {"occurred_at": "0001-01-01T00:00:00+00:00"},
        {"occurred_at": "9999-12-31T23:59:59+14:00"},
        {"occurred_at": "2026-02-30T10:00:00+07:00"},
        {"occurred_at": "2026-03-03T09:00:00+99:00"},
        {"due_at": "1899-12-31T00:00:00Z"},
        {"occurred_at": 1e20},
        {"note": "\x00 NUL in text"},
        {"event_id": "x" * 10_000},
        {"dossier_code": "H01'; DROP TABLE dossiers;--"},
        {"unit_code": "H01.01' OR '1'='1"},
    ],
)
async def test_bad_values_in_an_event_are_422(
    client: httpx.AsyncClient, world: World, changes: dict[str, Any]
) -> None:
    response = await client.post("/v1/dossier-events", json=good_event(**changes), headers=ADMIN)
    assert_problem(response, 422)


async def test_bad_values_in_indicator_and_admin_bodies_are_4xx(
    client: httpx.AsyncClient, world: World
) -> None:
    value = {"unit_code": UNIT_A, "period": "2024-04", "metric_code": "DOSSIER_SYNC",
             "numerator": 10**30, "denominator": 2**64}  # fmt: skip
    assert_problem(await client.post("/v1/indicator-values", json=value, headers=ADMIN), 422)
    for period in ("0000-00", "99999-01", "2024-13", "2024-Q9", "1'--"):
        assert_problem(await client.post("/v1/indicator-values", json=value | {
            "numerator": 1, "denominator": 2, "period": period}, headers=ADMIN), 422)  # fmt: skip
    unit = {"name": "\x00", "level": "commune", "parent_code": "H01"}
    assert_problem(await client.put("/v1/units/H01.09", json=unit, headers=ADMIN), 422)
    unit = {"name": "Xã", "level": "commune", "valid_from": "9999-12-31", "valid_to": "0001-01-01"}
    assert_problem(await client.put("/v1/units/H01.09", json=unit, headers=ADMIN), 422)
    procedure = {"name": "P", "limit_value": 1e308, "limit_unit": "working_days"}
    assert_problem(await client.put("/v1/procedures/P9", json=procedure, headers=ADMIN), 422)
    override = {"kind": "holiday", "reason": "r" * 10_000}
    assert_problem(await client.put("/v1/calendar/days/2026-05-04", json=override,
                                    headers=ADMIN), 422)  # fmt: skip


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/calendar", {"from": "0001-01-01", "to": "0001-12-31"}),
        ("/v1/calendar", {"from": "9999-12-01", "to": "9999-12-31"}),
        ("/v1/calendar", {"from": "2026-13-01", "to": "2026-12-31"}),
        ("/v1/calendar", {"from": "0", "to": "1"}),
        ("/v1/units", {"valid_at": "10000-01-01"}),
        ("/v1/units/H01/history", {"from": "0001-01", "to": "9999-12"}),
        ("/v1/units/H01/history", {"from": "0000-01", "to": "2026-01"}),
        ("/v1/units/H01/scorecard", {"period": "9999-Q4"}),
        ("/v1/rankings", {"level": "province", "period": "0001"}),
        ("/v1/periods/0000-00", {}),
        ("/v1/indicators", {"at": "0001-01-01"}),
        ("/v1/dossiers", {"due_before": "0001-01-01T00:00:00+14:00"}),
        ("/v1/dossiers", {"due_after": "9999-12-31T23:59:59-12:00"}),
        ("/v1/units", {"limit": "99999999999999999999999"}),
        ("/v1/units", {"cursor": "W1swXV0"}),
        ("/v1/audit", {"cursor": "WzE4NDQ2NzQ0MDczNzA5NTUxNjE1XQ"}),
        ("/v1/api-keys", {"cursor": "WyJcdTAwMDAiXQ"}),
    ],
)
async def test_out_of_range_dates_and_numbers_in_queries_are_4xx(
    client: httpx.AsyncClient, world: World, path: str, params: dict[str, str]
) -> None:
    response = await client.get(path, params=params, headers=ADMIN)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_problem(response, response.status_code)


INJECTIONS = ["' OR '1'='1", "'; DROP TABLE dossiers; --",
              "%' UNION SELECT secret FROM webhooks --",
              "\\x00", "$$ || pg_sleep(5) || $$", "H01) OR (1=1"]  # fmt: skip


@pytest.mark.parametrize("payload", INJECTIONS)
async def test_sql_metacharacters_in_filters_are_refused_or_match_nothing(
    client: httpx.AsyncClient, world: World, engine: AsyncEngine, payload: str
) -> None:
    # Filters with a code pattern refuse the value; free-text filters are bound parameters,
    # so the value matches nothing and nothing else happens.
    refused = [
        ("/v1/dossiers", {"unit": payload}), ("/v1/dossiers", {"procedure": payload}),
        ("/v1/dossiers", {"state": payload}), ("/v1/units", {"parent": payload}),
        ("/v1/units", {"level": payload}), ("/v1/rankings", {"level": "province",
        "period": "2026-01", "parent": payload}), ("/v1/webhooks", {"unit": payload}),
    ]  # fmt: skip
    for path, params in refused:
        assert_problem(await client.get(path, params=params, headers=ADMIN), 422)
    matching_nothing = [
        ("/v1/procedures", {"field_code": payload}), ("/v1/audit", {"target": payload}),
        ("/v1/audit", {"action": payload[:60]}), ("/v1/portal/quarantine", {"source": payload}),
    ]  # fmt: skip
    for path, params in matching_nothing:
        response = await client.get(path, params=params, headers=ADMIN)
        assert response.status_code == 200, response.text
        assert response.json()["items"] == []
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM dossiers"))).scalar() == 1
