"""Calendar overrides through the API, and the worker re-deriving the open dossiers they touch."""

from __future__ import annotations

import httpx
from arq.worker import Worker
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import create_sessionmaker
from app.core.settings import Settings
from tests.helpers import (
    ADMIN,
    event,
    get_dossier,
    instant,
    post_events,
    put_procedure,
    put_unit,
    vn,
)
from worker.settings import JOBS, worker_options


async def test_calendar_lists_holidays_swaps_and_weekends(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/calendar", params={"from": "2026-01-01", "to": "2026-01-11"})
    assert response.status_code == 200
    days = {d["date"]: d for d in response.json()["items"]}
    assert len(days) == 11
    assert (days["2026-01-01"]["working"], days["2026-01-01"]["source"]) == (
        False, "public_holiday"
    )  # fmt: skip
    assert days["2026-01-01"]["name"] == "Tết Dương lịch"
    assert (days["2026-01-02"]["working"], days["2026-01-02"]["source"]) == (
        False, "shipped_override"
    )  # fmt: skip
    assert days["2026-01-02"]["reference"] == "Official Dispatch 12729/VPCP-KGVX"
    assert (days["2026-01-10"]["working"], days["2026-01-10"]["weekday"]) == (True, 6)
    assert (days["2026-01-11"]["working"], days["2026-01-11"]["source"]) == (False, "weekend")
    assert response.json()["office_hours"] == ["07:30-11:30", "13:00-17:00"]


async def test_calendar_rejects_backwards_or_huge_ranges(client: httpx.AsyncClient) -> None:
    backwards = await client.get("/v1/calendar", params={"from": "2026-02-01", "to": "2026-01-01"})
    assert backwards.status_code == 422
    huge = await client.get("/v1/calendar", params={"from": "2020-01-01", "to": "2026-01-01"})
    assert huge.status_code == 422
    bad = await client.get("/v1/calendar", params={"from": "2026-13-01", "to": "2026-01-01"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["parameter"] == "from"


async def test_override_needs_admin_and_valid_kind(client: httpx.AsyncClient) -> None:
    body = {"kind": "holiday", "reason": "Bão số 3", "reference": "CĐ 01/CĐ-UBND"}
    assert (await client.put("/v1/calendar/days/2026-03-03", json=body)).status_code == 401
    wrong = await client.put(
        "/v1/calendar/days/2026-03-03", json={**body, "kind": "maybe"}, headers=ADMIN
    )
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["pointer"] == "#/kind"
    missing = await client.delete("/v1/calendar/days/2026-03-03", headers=ADMIN)
    assert missing.status_code == 404


async def test_new_day_off_moves_open_dossiers_through_the_worker(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    await put_unit(client, "H01", "province")
    await put_unit(client, "H01.01", "commune", "H01")
    await put_procedure(client, "P3", 3, "working_days")
    # Received Mon 2 Mar: Tue 3 (1), Wed 4 (2), Thu 5 (3) → due Thu 5 Mar 17:00.
    await post_events(client, [
        event("o1", "OPEN", 2, "2026-03-02 08:00", procedure="P3"),
        event("f1", "DONE", 2, "2026-03-02 08:00", procedure="P3"),
        event("f2", "DONE", 9, "2026-03-04 08:00", procedure="P3"),
    ])  # fmt: skip
    assert instant((await get_dossier(client, "OPEN"))["due_at"]) == vn("2026-03-05 17:00")

    # A storm closes offices on Wed 4 Mar: Tue 3 (1), Thu 5 (2), Fri 6 (3).
    response = await client.put(
        "/v1/calendar/days/2026-03-04",
        json={"kind": "holiday", "reason": "Nghỉ do bão", "reference": "CĐ 12/CĐ-UBND"},
        headers=ADMIN,
    )
    assert response.status_code == 200
    assert response.json()["updated_by"] == "admin"
    days = (await client.get("/v1/calendar?from=2026-03-04&to=2026-03-04")).json()["items"]
    assert (days[0]["working"], days[0]["source"]) == (False, "operator_override")

    # The change recorded a job in the outbox and handed it to Redis; a real arq worker runs it.
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM outbox"))).scalar() == 0
    options = worker_options(settings, settings.database_url or "", settings.redis_url or "")
    options.pop("cron_jobs")
    worker = Worker(**options, burst=True, poll_delay=0.05)
    try:
        await worker.main()
    finally:
        await worker.close()
    assert worker.jobs_complete == 1 and worker.jobs_failed == 0

    assert instant((await get_dossier(client, "OPEN"))["due_at"]) == vn("2026-03-06 17:00")
    # Finished dossiers keep the deadline they were judged by.
    assert instant((await get_dossier(client, "DONE"))["due_at"]) == vn("2026-03-05 17:00")

    # Removing the override puts the deadline back (again through the worker).
    assert (await client.delete("/v1/calendar/days/2026-03-04", headers=ADMIN)).status_code == 204
    worker = Worker(**options, burst=True, poll_delay=0.05)
    try:
        await worker.main()
    finally:
        await worker.close()
    assert instant((await get_dossier(client, "OPEN"))["due_at"]) == vn("2026-03-05 17:00")


async def test_jobs_wait_in_the_outbox_while_redis_is_down(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    from app.core.outbox import relay
    from app.core.queue import create_queue

    await client.put(
        "/v1/calendar/days/2026-03-04",
        json={"kind": "holiday", "reason": "x"},
        headers=ADMIN,
    )
    # Recorded and relayed by the request: nothing left behind.
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM outbox"))).scalar() == 0
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO outbox (function, args) VALUES ('recompute_open_dossiers', "
                 "'[\"2026-03-05\"]')")
        )  # fmt: skip
    dead = create_queue("redis://127.0.0.1:1/0")
    sessionmaker = create_sessionmaker(engine)
    assert await relay(sessionmaker, dead) == 0
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM outbox"))).scalar() == 1
    live = create_queue(settings.redis_url or "")
    assert await relay(sessionmaker, live) == 1
    await dead.aclose()
    await live.aclose()
    assert {f.__name__ for f in JOBS} >= {"recompute_open_dossiers", "relay_outbox"}
