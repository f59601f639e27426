"""Event ingestion: idempotent, order-independent, durable, per-item results in a batch."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import create_sessionmaker
from app.core.settings import Settings
from app.dossiers.jobs import derive_dossiers
from tests.helpers import (
    ADMIN,
    DERIVED,
    create_key,
    event,
    get_dossier,
    instant,
    post_events,
    province_with_communes,
    put_procedure,
    vn,
)


@pytest.fixture
async def setup(client: httpx.AsyncClient) -> None:
    await province_with_communes(client)
    await put_procedure(client, "P3", 3, "working_days")
    await put_procedure(client, "P5", 5, "working_days")


def history(prefix: str, dossier: str) -> list[dict[str, Any]]:
    """Received Mon 2 Mar 2026, supplement requested and supplied, finished, returned."""
    return [
        event(f"{prefix}-1", dossier, 2, "2026-03-02 08:00", procedure="P5"),
        event(f"{prefix}-2", dossier, 4, "2026-03-02 09:00", procedure="P5"),
        event(f"{prefix}-3", dossier, 5, "2026-03-04 10:00", procedure="P5"),
        event(
            f"{prefix}-4",
            dossier,
            4,
            "2026-03-05 15:00",
            procedure="P5",
            supplement_supplied_at="2026-03-05 15:00",
        ),
        event(f"{prefix}-5", dossier, 9, "2026-03-10 16:00", procedure="P5"),
        event(f"{prefix}-6", dossier, 10, "2026-03-11 09:00", procedure="P5"),
    ]


def comparable(dossier: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in dossier.items() if k != "code"}


async def test_single_event_is_201_with_state_when_asked_then_duplicate_is_200(
    client: httpx.AsyncClient, engine: AsyncEngine, setup: None
) -> None:
    body = event("e-1", "H01.01-260302-0001", 2, "2026-03-02 08:00")
    first = await client.post("/v1/dossier-events", json=body, headers={**ADMIN, **DERIVED})
    assert first.status_code == 201
    assert first.headers["preference-applied"] == "return=representation"
    assert first.json()["result"] == "stored"
    assert first.json()["dossier"]["status"] == 2
    # Retried with a note (notes are not kept by default): the same event, nothing changes.
    again = await client.post(
        "/v1/dossier-events", json={**body, "note": "retry"}, headers={**ADMIN, **DERIVED}
    )
    assert again.status_code == 200
    assert again.json()["result"] == "duplicate"
    assert again.json()["dossier"] == first.json()["dossier"]
    # The same id with another status is not a retry: refused, nothing changes.
    other = await client.post(
        "/v1/dossier-events", json={**body, "status": 9}, headers={**ADMIN, **DERIVED}
    )
    assert other.status_code == 409
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT status, note FROM dossier_events"))).all()
        queued = (await conn.execute(text("SELECT count(*) FROM dossier_backlog"))).scalar()
    assert rows == [(2, None)]
    assert queued == 0  # derived in the request: nothing left for the worker


async def test_an_event_is_accepted_then_derived_by_the_worker_and_readable_at_once(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, setup: None
) -> None:
    code = "H01.01-260302-0001"
    received = event("e-1", code, 2, "2026-03-02 08:00", procedure="P3")
    accepted = await client.post("/v1/dossier-events", json=received, headers=ADMIN)
    assert accepted.status_code == 202
    assert accepted.headers["location"] == f"/v1/dossiers/{code}"
    assert accepted.json() == {"event_id": "e-1", "result": "stored",
                               "dossier_url": f"/v1/dossiers/{code}", "dossier": None}  # fmt: skip

    async def table(sql: str) -> list[Any]:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql))).all())

    assert await table("SELECT dossier_code FROM dossier_backlog") == [(code,)]
    assert await table("SELECT code FROM dossiers") == []  # not derived yet
    # Read right after posting: derived from the history for the answer, nothing written.
    early = await get_dossier(client, code)
    assert (early["status"], early["unit_code"], early["procedure_code"]) == (2, "H01.01", "P3")
    # Received Mon 2 Mar 08:00, 3 working days: due Thu 5 Mar at 17:00 (UTC+7: 10:00Z).
    assert instant(early["due_at"]) == vn("2026-03-05 17:00")
    assert await table("SELECT code FROM dossiers") == []

    ctx = {"sessionmaker": create_sessionmaker(engine), "settings": settings}
    assert await derive_dossiers(ctx) == 1
    assert await table("SELECT code, status FROM dossiers") == [(code, 2)]
    assert await table("SELECT dossier_code FROM dossier_backlog") == []
    assert await get_dossier(client, code) == early  # the stored state is the one read before
    assert await derive_dossiers(ctx) == 0  # idempotent: an empty backlog is a no-op

    finished = event("e-2", code, 9, "2026-03-04 10:00", procedure="P3")
    assert (
        await client.post("/v1/dossier-events", json=finished, headers=ADMIN)
    ).status_code == 202
    assert (await get_dossier(client, code))["timeliness"] == "early"  # before the worker ran
    duplicate = await client.post("/v1/dossier-events", json=finished, headers=ADMIN)
    assert duplicate.status_code == 200
    assert duplicate.json()["result"] == "duplicate"
    assert await derive_dossiers(ctx) == 1
    assert await table("SELECT status, outcome FROM dossiers") == [(9, "early")]


async def test_a_queued_batch_is_derived_in_chunks_by_the_worker(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, setup: None
) -> None:
    events = [event(f"q-{n}", f"H01.01-260302-{n:04d}", 2, "2026-03-02 08:00") for n in range(5)]
    answer = await client.post("/v1/dossier-events/batch", json={"events": events}, headers=ADMIN)
    assert answer.status_code == 200
    assert (answer.json()["stored"], answer.json()["derived"]) == (5, False)
    ctx = {"sessionmaker": create_sessionmaker(engine),
           "settings": settings.model_copy(update={"derive_chunk": 2})}  # fmt: skip
    assert await derive_dossiers(ctx) == 5  # 2 + 2 + 1, each chunk its own transaction
    async with engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM dossiers"))).scalar()
    assert count == 5


async def test_shuffled_history_gives_the_same_state_as_ordered(
    client: httpx.AsyncClient, setup: None
) -> None:
    ordered = history("a", "H01.01-260302-0001")
    await post_events(client, ordered)
    shuffled = history("b", "H01.01-260302-0002")
    random.Random(7).shuffle(shuffled)
    # Out of order, and one at a time, as a desk recovering from an outage might send them;
    # queued (202), so the state read below is derived from the history on the read.
    for item in reversed(shuffled):
        response = await client.post("/v1/dossier-events", json=item, headers=ADMIN)
        assert response.status_code == 202
    a = await get_dossier(client, "H01.01-260302-0001")
    b = await get_dossier(client, "H01.01-260302-0002")
    assert comparable(a) == comparable(b)
    assert a["status"] == 10
    # Due Mon 9 Mar 17:00 + 11.5 paused working hours = Wed 11 Mar 11:00; finished Tue 10 Mar.
    assert a["timeliness"] == "early"


async def test_batch_with_bad_items_stores_the_good_ones(
    client: httpx.AsyncClient, engine: AsyncEngine, setup: None
) -> None:
    good = event("g-1", "H01.01-260302-0001", 2, "2026-03-02 08:00")
    items = [
        good,
        event("b-1", "H01.01-260302-0002", 2, "2026-03-02 08:00", unit="H99"),
        {**event("b-2", "H01.01-260302-0003", 2, "2026-03-02 08:00"), "status": 11},
        {**event("b-3", "H01.01-260302-0004", 2, "2026-03-02 08:00"), "occurred_at": None},
        {
            **event("b-4", "H01.01-260302-0005", 2, "2026-03-02 08:00"),
            "occurred_at": "2026-03-02T08:00:00",
        },
        event("b-5", "H01.01-260302-0006", 2, "2026-03-02 08:00", procedure="NOPE"),
        good,  # the same event twice in one batch
        "not an object",
    ]
    result = await post_events(client, items)
    assert (result["stored"], result["duplicate"], result["rejected"]) == (1, 1, 6)
    by_index = {i["index"]: i for i in result["items"]}
    assert by_index[0]["result"] == "stored"
    assert by_index[6]["result"] == "duplicate"
    assert by_index[1]["errors"] == [{"pointer": "#/events/1/unit_code", "detail": "unknown unit"}]
    assert by_index[2]["errors"][0]["pointer"] == "#/events/2/status"
    assert by_index[3]["errors"][0]["pointer"] == "#/events/3/occurred_at"
    assert by_index[4]["errors"][0]["pointer"] == "#/events/4/occurred_at"
    assert by_index[5]["errors"] == [
        {"pointer": "#/events/5/procedure_code", "detail": "unknown procedure"}
    ]
    assert by_index[7]["errors"][0]["pointer"] == "#/events/7"
    async with engine.connect() as conn:
        stored = (await conn.execute(text("SELECT event_id FROM dossier_events"))).scalars().all()
        dossiers = (await conn.execute(text("SELECT code FROM dossiers"))).scalars().all()
    assert stored == ["g-1"]
    assert dossiers == ["H01.01-260302-0001"]


async def test_single_bad_event_is_422_with_pointer_and_stores_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine, setup: None
) -> None:
    body = event("e-1", "H01.01-260302-0001", 2, "2026-03-02 08:00", unit="H99")
    response = await client.post("/v1/dossier-events", json=body, headers=ADMIN)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [{"pointer": "#/unit_code", "detail": "unknown unit"}]
    malformed = await client.post(
        "/v1/dossier-events",
        json={**body, "unit_code": "H01.01", "occurred_at": "yesterday"},
        headers=ADMIN,
    )
    assert malformed.status_code == 422
    assert malformed.json()["errors"][0]["pointer"] == "#/occurred_at"
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM dossier_events"))).scalar() == 0


async def test_batch_over_the_limit_is_413(client: httpx.AsyncClient, setup: None) -> None:
    one = event("x", "H01.01-260302-0001", 2, "2026-03-02 08:00")
    response = await client.post(
        "/v1/dossier-events/batch", json={"events": [one] * 10_001}, headers=ADMIN
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


async def test_personal_data_is_never_stored(
    client: httpx.AsyncClient, engine: AsyncEngine, setup: None, configure: Any
) -> None:
    configure(store_notes=True)  # by default notes are not kept at all
    body = {
        **event("e-1", "H01.01-260302-0001", 2, "2026-03-02 08:00"),
        "note": "Gọi 0912 345 678, mail lan@example.vn, CCCD 079190012345",
        "owner_identity_number": "079190012345",
        "owner_phone": "0912345678",
        "owner_email": "lan@example.vn",
    }
    posted = await client.post("/v1/dossier-events", json=body, headers={**ADMIN, **DERIVED})
    assert posted.status_code == 201
    async with engine.connect() as conn:
        dumped = str((await conn.execute(text("SELECT * FROM dossier_events"))).all())
        dumped += str((await conn.execute(text("SELECT * FROM dossiers"))).all())
    for secret in ("0912", "345 678", "lan@example.vn", "079190012345"):
        assert secret not in dumped
    assert "Gọi [phone], mail [email], CCCD [id]" in dumped


async def test_notes_are_not_kept_unless_configured(
    client: httpx.AsyncClient, engine: AsyncEngine, setup: None
) -> None:
    body = {**event("e-1", "H01.01-260302-0001", 2, "2026-03-02 08:00"), "note": "Ông Lan"}
    assert (await client.post("/v1/dossier-events", json=body, headers=ADMIN)).status_code == 202
    async with engine.connect() as conn:
        notes = (await conn.execute(text("SELECT note FROM dossier_events"))).scalars().all()
    assert notes == [None]


async def test_processing_after_returned_is_stored_and_flagged(
    client: httpx.AsyncClient, setup: None
) -> None:
    code = "H01.01-260302-0001"
    await post_events(client, [
        event("e-1", code, 2, "2026-03-02 08:00"),
        event("e-2", code, 10, "2026-03-03 09:00"),
        event("e-3", code, 4, "2026-03-04 09:00"),
    ])  # fmt: skip
    dossier = await get_dossier(client, code)
    assert dossier["anomalies"] == [
        {"code": "status_after_end", "detail": "status 4 after the dossier ended",
         "event_id": "e-3"}
    ]  # fmt: skip
    # The odd event is kept in the history, never dropped.
    events = (await client.get(f"/v1/dossiers/{code}/events", headers=ADMIN)).json()
    assert [e["event_id"] for e in events["items"]] == ["e-1", "e-2", "e-3"]
    assert dossier["finished_at"] is not None


async def test_write_scope_and_unit_binding(client: httpx.AsyncClient, setup: None) -> None:
    _, reader = await create_key(client, ["dossiers:read"], "H01")
    _, desk_h05 = await create_key(client, ["dossiers:write"], "H05")
    body = event("e-1", "H01.01-260302-0001", 2, "2026-03-02 08:00")
    assert (await client.post("/v1/dossier-events", json=body)).status_code == 401
    assert (await client.post("/v1/dossier-events", json=body, headers=reader)).status_code == 403
    outside = await client.post("/v1/dossier-events", json=body, headers=desk_h05)
    assert outside.status_code == 403
    assert outside.json()["errors"] == [
        {"pointer": "#/unit_code", "detail": "outside this key's unit"}
    ]


async def test_two_workers_share_the_backlog_without_deriving_a_dossier_twice(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, setup: None
) -> None:
    events = [
        event(f"w-{n}-{k}", f"H01.01-260302-{n:04d}", status, f"2026-03-0{2 + k} 08:00")
        for n in range(60)
        for k, status in enumerate((2, 4, 9))
    ]
    answer = await client.post("/v1/dossier-events/batch", json={"events": events}, headers=ADMIN)
    assert answer.json()["stored"] == 180
    small_chunks = settings.model_copy(update={"derive_chunk": 7})
    workers = [{"sessionmaker": create_sessionmaker(engine), "settings": small_chunks}
               for _ in range(2)]  # fmt: skip
    done = await asyncio.gather(*(derive_dossiers(ctx) for ctx in workers))
    assert sum(done) == 60  # every dossier claimed by exactly one of them
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT status, event_count FROM dossiers"))).all()
        queued = (await conn.execute(text("SELECT count(*) FROM dossier_backlog"))).scalar()
    assert sorted(set(rows)) == [(9, 3)] and len(rows) == 60
    assert queued == 0


async def test_a_receipt_dated_hours_ahead_of_its_arrival_is_flagged(
    client: httpx.AsyncClient, setup: None
) -> None:
    """A desk whose clock or date is wrong sends times hours ahead of now: the event is kept
    (it may be right and the clock wrong) and the dossier says so; a few minutes of clock skew
    (within CHISO_FUTURE_TOLERANCE_MINUTES, 15 by default) is not flagged."""
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    ahead = (now + timedelta(hours=3, minutes=20)).replace(microsecond=0)
    skewed = (now + timedelta(minutes=5)).replace(microsecond=0)
    _, key = await create_key(client, ["dossiers:write", "dossiers:read"], "H01")
    future = event("F-1", "H01.01-F", 2, "2026-03-02 08:00")
    future["occurred_at"] = future["received_at"] = ahead.isoformat()
    near = event("N-1", "H01.01-N", 2, "2026-03-02 08:00")
    near["occurred_at"] = skewed.isoformat()

    stored = await post_events(client, [future, near], headers=key)
    assert [item["result"] for item in stored["items"]] == ["stored", "stored"]

    flagged = await get_dossier(client, "H01.01-F", key)
    anomalies = [a for a in flagged["anomalies"] if a["code"] == "dated_in_future"]
    assert [(a["event_id"], a["detail"].split(" ", 1)[0]) for a in anomalies] == [
        ("F-1", "occurred_at"),
        ("F-1", "received_at"),
    ]
    # 3 h 20 min ahead, give or take the seconds the request took.
    assert all(" is 3 h 19 min after " in a["detail"] or " is 3 h 20 min after " in a["detail"]
               for a in anomalies)  # fmt: skip
    assert flagged["received_at"] is not None  # kept as stated

    plain = await get_dossier(client, "H01.01-N", key)
    assert [a for a in plain["anomalies"] if a["code"] == "dated_in_future"] == []
