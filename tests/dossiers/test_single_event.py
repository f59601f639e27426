"""A single event's POST: one statement in autocommit on the direct pool (app.core.direct).

The answers themselves are tested with every other ingestion test; these hold what the direct
path does on its own: the facts an event states kept in its statement, a race for a new
dossier settled, a dropped connection replaced.
"""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import create_sessionmaker
from app.core.direct import DirectPool
from app.dossiers.facts_repository import facts_of
from tests.helpers import ADMIN, create_key, event, province_with_communes, put_procedure


@pytest.fixture
async def setup(client: httpx.AsyncClient) -> None:
    await province_with_communes(client)
    await put_procedure(client, "P3", 3, "working_days")


async def _facts(engine: AsyncEngine, code: str) -> tuple[object, ...] | None:
    async with create_sessionmaker(engine)() as session:
        facts = await facts_of(session, code)
    if facts is None:
        return None
    return (facts.papers_total, facts.fees_total, facts.databases, facts.payment_code)


async def test_the_facts_an_accepted_event_states_are_kept_by_its_statement(
    client: httpx.AsyncClient, setup: None, engine: AsyncEngine
) -> None:
    code = "H01.01-261130-0001"
    first = event("e1", code, 2, "2026-11-20 10:00", papers_total=3, fees_total=50000)
    response = await client.post("/v1/dossier-events", json=first, headers=ADMIN)
    assert response.status_code == 202, response.text
    assert await _facts(engine, code) == (3, Decimal(50000), None, None)

    # The same event again, stating more: a duplicate (200), its facts kept as a batch's are.
    again = {**first, "databases": ["CSDLQG", "CSDLQG"], "payment_code": "PAY-1"}
    response = await client.post("/v1/dossier-events", json=again, headers=ADMIN)
    assert response.status_code == 200, response.text
    assert await _facts(engine, code) == (3, Decimal(50000), ("CSDLQG",), "PAY-1")

    # Other content under the same id: 409, nothing kept.
    other = {**first, "status": 5, "papers_total": 9}
    response = await client.post("/v1/dossier-events", json=other, headers=ADMIN)
    assert response.status_code == 409, response.text
    assert await _facts(engine, code) == (3, Decimal(50000), ("CSDLQG",), "PAY-1")

    # Refused (unknown procedure): nothing stored, no facts.
    refused = event("e1", "H01.01-261130-0002", 2, "2026-11-20 10:00", procedure="NOPE")
    response = await client.post(
        "/v1/dossier-events", json={**refused, "papers_total": 4}, headers=ADMIN
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [
        {"pointer": "#/procedure_code", "detail": "unknown procedure"}
    ]
    assert await _facts(engine, "H01.01-261130-0002") is None


async def test_concurrent_first_events_of_a_dossier_settle_on_one_owner(
    client: httpx.AsyncClient, setup: None, engine: AsyncEngine
) -> None:
    code = "H01-261130-0042"
    _, commune_key = await create_key(client, ["dossiers:write"], "H01.01")
    events = [
        event(f"e{n}", code, 2 if n == 0 else 3, f"2026-11-20 1{n}:00", unit="H01.01")
        for n in range(8)
    ]
    answers = await asyncio.gather(
        *(client.post("/v1/dossier-events", json=e, headers=commune_key) for e in events)
    )
    assert [a.status_code for a in answers] == [202] * 8, [a.text for a in answers]
    async with engine.connect() as conn:
        owners = (
            await conn.execute(
                text("SELECT unit_code FROM dossier_owners WHERE code = :c"), {"c": code}
            )
        ).all()
        stored = await conn.scalar(
            text("SELECT count(*) FROM dossier_events WHERE dossier_code = :c"), {"c": code}
        )
        queued = await conn.scalar(
            text("SELECT count(*) FROM dossier_backlog WHERE dossier_code = :c"), {"c": code}
        )
    assert [tuple(o) for o in owners] == [("H01.01",)]
    assert stored == 8
    assert queued == 1


async def test_a_dropped_connection_is_replaced_and_the_event_stored(
    client: httpx.AsyncClient, setup: None, app: FastAPI, engine: AsyncEngine
) -> None:
    first = event("e1", "H01.01-261130-0003", 2, "2026-11-20 10:00")
    response = await client.post("/v1/dossier-events", json=first, headers=ADMIN)
    assert response.status_code == 202, response.text

    async def server_pid(db: object) -> int:
        pid: int = db.get_server_pid()  # type: ignore[attr-defined]
        return pid

    pid = await app.state.direct.run(server_pid)
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    await asyncio.sleep(0.2)

    second = event("e2", "H01.01-261130-0003", 3, "2026-11-20 11:00")
    response = await client.post("/v1/dossier-events", json=second, headers=ADMIN)
    assert response.status_code == 202, response.text
    async with engine.connect() as conn:
        stored = await conn.scalar(
            text("SELECT count(*) FROM dossier_events WHERE dossier_code = 'H01.01-261130-0003'")
        )
    assert stored == 2


STORED_AT = re.compile(r'"stored_at":"[^"]+"')


async def test_the_common_case_is_answered_as_the_declared_route_answers_it(
    client: httpx.AsyncClient, setup: None
) -> None:
    """A plain JSON event from a writing key is answered by its lane, from the gate;
    anything else takes the declared route. A client cannot tell them apart: the same requests
    sent as ``application/json`` (served below) and as ``application/json; charset=utf-8``
    (the declared route) get the same answers, status, body and headers, refusals included."""
    _, desk = await create_key(client, ["dossiers:write"], "H01.01", name="desk")
    _, reader = await create_key(client, ["dossiers:read"], "H01.01", name="reader")

    async def answers(content_type: str, serial: str) -> list[tuple[int, str, str, str]]:
        code = f"H01.01-261130-{serial}"
        foreign = f"H01.02-261130-{serial}"
        first = event("e1", code, 2, "2026-11-20 10:00")
        sent = [
            (first, desk),  # stored: 202
            (first, desk),  # duplicate: 200
            ({**first, "status": 5}, desk),  # other content, same id: 409
            (event("e2", foreign, 2, "2026-11-20 10:00", unit="H01.02"), desk),  # 403
            (event("e3", code, 2, "2026-11-20 10:00", procedure="NOPE"), desk),  # 422
            ({**first, "status": 99}, desk),  # the model refuses it: 422
            (event("e4", code, 4, "2026-11-20 11:00"), reader),  # no write scope: 403
            ({**first, "event_id": "e5"}, {}),  # no key: 401
        ]
        seen = []
        for body, key in sent:
            response = await client.post(
                "/v1/dossier-events",
                content=orjson.dumps(body),
                headers={**key, "content-type": content_type},
            )
            seen.append(
                (
                    response.status_code,
                    STORED_AT.sub('"stored_at":"*"', response.text.replace(serial, "*")),
                    response.headers.get("location", "").replace(serial, "*"),
                    response.headers["content-type"],
                )
            )
        return seen

    below = await answers("application/json", "0101")
    declared = await answers("application/json; charset=utf-8", "0102")
    assert [s for s, *_ in below] == [202, 200, 409, 403, 422, 422, 403, 401]
    assert below == declared
    assert below[0][1:3] == (
        '{"event_id":"e1","result":"stored","dossier_url":"/v1/dossiers/H01.01-261130-*",'
        '"dossier":null}',
        "/v1/dossiers/H01.01-261130-*",
    )


async def test_a_failure_in_the_lane_is_answered_by_the_app_s_handlers(
    client: httpx.AsyncClient, setup: None, app: FastAPI, engine: AsyncEngine
) -> None:
    """What the store raises on the lane is answered as the declared route answers it: a
    database that cannot be reached is a 503 problem (never a 500), nothing stored."""
    unreachable = DirectPool(app.state.settings, "postgresql://postgres@127.0.0.1:1/chiso")
    original, app.state.direct = app.state.direct, unreachable
    answers = []
    try:
        for n, content_type in enumerate(("application/json", "application/json; charset=utf-8")):
            body = event(f"e{n}", "H01.01-261130-0201", 2, "2026-11-20 10:00")
            response = await client.post(
                "/v1/dossier-events",
                content=orjson.dumps(body),
                headers={**ADMIN, "content-type": content_type},
            )
            said = (response.status_code, response.headers["content-type"], response.json())
            answers.append(said)
    finally:
        app.state.direct = original
        await unreachable.close()
    lane, declared = answers
    assert lane == declared
    assert lane[0] == 503
    assert lane[1] == "application/problem+json"
    assert lane[2]["detail"] == "The database is unreachable; retry shortly."
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM dossier_events")) == 0


async def test_a_query_string_takes_the_declared_route_which_refuses_it(
    client: httpx.AsyncClient, setup: None, engine: AsyncEngine
) -> None:
    body = event("e1", "H01.01-261130-0202", 2, "2026-11-20 10:00")
    response = await client.post("/v1/dossier-events?dry_run=1", json=body, headers=ADMIN)
    assert response.status_code == 400, response.text
    assert "dry_run" in response.json()["detail"]
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM dossier_events")) == 0


async def test_the_lane_s_answers_are_counted_under_their_route(
    client: httpx.AsyncClient, setup: None
) -> None:
    async def counted() -> dict[str, float]:
        metrics = (await client.get("/metrics")).text
        prefix = 'chiso_http_requests_total{method="POST",route="/v1/dossier-events",status="'
        return {
            line[len(prefix) : len(prefix) + 3]: float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith(prefix)
        }

    before = await counted()
    body = event("e1", "H01.01-261130-0203", 2, "2026-11-20 10:00")
    for expected in (202, 200, 200):
        response = await client.post("/v1/dossier-events", json=body, headers=ADMIN)
        assert response.status_code == expected, response.text
    after = await counted()
    assert after.get("202", 0) - before.get("202", 0) == 1
    assert after.get("200", 0) - before.get("200", 0) == 2
