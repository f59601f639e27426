"""The worker process SIGKILLed in the middle of a portal sync and of an overdue sweep: after a
restart the stored state equals that of a run that was never interrupted."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.core.database import async_url, create_sessionmaker
from app.core.queue import create_queue
from app.core.settings import Settings
from app.dossiers.jobs import derive_dossiers, sweep_overdue
from app.portal.client import PortalClient, PortalSource, RetryPolicy
from app.portal.sync import sync_source
from tests.conftest import ADMIN_TOKEN, plain_url
from tests.faults.conftest import Process, Stack, create_database, prepare_database, record_result
from tests.helpers import ADMIN, DERIVED

pytestmark = pytest.mark.faults

SIM_DOSSIERS = 600
PAGE_SIZE = 50


def _settings(stack: Stack, database: str) -> Settings:
    return Settings(environment="test", database_url=stack.url_of(database),
                    redis_url=stack.redis_url, admin_token=SecretStr(ADMIN_TOKEN))  # fmt: skip


async def _rows(engine: AsyncEngine, query: str) -> list[tuple[str, ...]]:
    async with engine.connect() as conn:
        return sorted(tuple(map(str, r)) for r in await conn.execute(text(query)))


async def _run_job(stack: Stack, function: str, worker: Process) -> Any:
    queue = create_queue(stack.redis_url)
    try:
        job = await queue.enqueue_job(function, _job_id=f"{function}:{time.monotonic_ns()}")
        assert job is not None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert worker.alive(), worker.tail()
            info = await job.result_info()
            if info is not None:
                assert info.success, info.result
                return info.result
            await asyncio.sleep(0.2)
        raise TimeoutError(f"{function} did not finish:\n{worker.tail()}")
    finally:
        await queue.aclose()


async def _scalar(engine: AsyncEngine, query: str) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(query))).scalar()


# A time chiso had to infer (a terminal status without its date) is the record's arrival: the
# two runs pulled it at different moments, so such times are compared as "inferred" only.
_AT = "CASE WHEN time_inferred THEN NULL ELSE occurred_at END"
SYNC_STATE = {
    "events": f"SELECT event_id, dossier_code, status, {_AT}, time_inferred FROM dossier_events",
    "dossiers": "SELECT code, unit_code, procedure_code, status, channel, received_at, due_at, "
    "end_at IS NULL, outcome, supplement_requests, pauses FROM dossiers",
    "cursor": "SELECT source, cursor, records_synced FROM portal_sync_state",
}


async def test_a_worker_killed_mid_sync_resumes_to_the_state_of_an_uninterrupted_sync(
    stack: Stack, engine: AsyncEngine
) -> None:
    sim = await stack.start_portal_sim("--dossiers", str(SIM_DOSSIERS), "--seed", "17",
                                       "--latency", "0.3")  # fmt: skip
    portal = {"portal_base_url": f"http://127.0.0.1:{sim.port}", "portal_username": "chiso",
              "portal_password": "chiso-sim", "portal_page_size": str(PAGE_SIZE),
              "sync_every_minutes": "60", "sweep_every_minutes": "60"}  # fmt: skip
    worker = stack.start_worker(**portal)
    queue = create_queue(stack.redis_url)
    await queue.enqueue_job("sync_portal", _job_id="sync-to-be-killed")
    await queue.aclose()
    deadline = time.monotonic() + 60
    while (await _scalar(engine, "SELECT max(pages_synced) FROM portal_sync_state") or 0) < 3:
        assert time.monotonic() < deadline and worker.alive(), worker.tail()
        await asyncio.sleep(0.05)
    worker.kill()
    pages_at_kill = await _scalar(engine, "SELECT pages_synced FROM portal_sync_state")
    stored_at_kill = await _scalar(
        engine, "SELECT count(DISTINCT dossier_code) FROM dossier_events"
    )
    assert pages_at_kill < SIM_DOSSIERS // PAGE_SIZE  # it really was in the middle

    restarted = stack.start_worker(**portal)
    resumed = await _run_job(stack, "sync_portal", restarted)
    assert resumed[0]["error"] is None
    await _run_job(stack, "derive_dossiers", restarted)  # whatever its loop has not done yet

    # The same portal synced once, uninterrupted, into a second database.
    await prepare_database(stack.server_url, "chiso_ref")
    reference = create_async_engine(async_url(stack.url_of("chiso_ref")))
    async with httpx.AsyncClient() as http:
        source = PortalSource(
            name="default",
            base_url=f"http://127.0.0.1:{sim.port}",
            username="chiso",
            password="chiso-sim",
            page_size=PAGE_SIZE,
        )
        ref_settings, ref_sessions = _settings(stack, "chiso_ref"), create_sessionmaker(reference)
        report = await sync_source(
            ref_sessions, ref_settings,
            PortalClient(source, http, RetryPolicy()), lambda: datetime.now(UTC),
        )  # fmt: skip
        await derive_dossiers({"sessionmaker": ref_sessions, "settings": ref_settings})
    assert report.error is None and report.records == SIM_DOSSIERS
    try:
        for name, query in SYNC_STATE.items():
            assert await _rows(engine, query) == await _rows(reference, query), name
        events = await _scalar(engine, "SELECT count(*) FROM dossier_events")
    finally:
        await reference.dispose()
    record_result("worker_kill_mid_sync", {
        "portal_records": SIM_DOSSIERS, "pages_committed_at_kill": pages_at_kill,
        "dossiers_stored_at_kill": stored_at_kill, "records_after_restart": resumed[0]["records"],
        "events_stored": events, "events_in_uninterrupted_run": events,
        "state_equal": True,
    })  # fmt: skip


SWEEP_STATE = {
    "flags": "SELECT code, overdue_since IS NOT NULL, due_soon_since IS NOT NULL FROM dossiers",
    "notices": "SELECT kind, unit_code, dedupe_key, payload FROM webhook_deliveries",
}


async def _seed_overdue(stack: Stack, dossiers: int) -> None:
    api = await stack.start_api()
    events = []
    for n in range(dossiers):
        code = f"H01-S{n:04d}"
        received = f"2026-11-{2 + n % 20:02d}T08:00:00+07:00"
        events.append({"event_id": f"s{n}-a", "dossier_code": code, "unit_code": "H01",
                       "procedure_code": "1.000894", "status": 2, "occurred_at": received,
                       "channel": 1, "received_at": received})  # fmt: skip
        if n % 5 == 0:  # some finished on the day: never overdue
            events.append({"event_id": f"s{n}-b", "dossier_code": code, "unit_code": "H01",
                           "procedure_code": "1.000894", "status": 9, "channel": 1,
                           "occurred_at": received.replace("08:00", "10:00")})  # fmt: skip
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api.port}", timeout=60) as http:
        hook = await http.post(
            "/v1/webhooks",
            json={"url": "http://127.0.0.1:9/hook", "unit_code": "H01",
                  "kinds": ["dossier.overdue"]},
            headers=ADMIN,
        )  # fmt: skip
        assert hook.status_code == 201, hook.text
        posted = await http.post("/v1/dossier-events/batch", json={"events": events},
                                 headers={**ADMIN, **DERIVED})  # fmt: skip
        assert posted.status_code == 200 and posted.json()["rejected"] == 0, posted.text
    api.stop()


async def test_a_worker_killed_mid_sweep_leaves_nothing_half_done(
    stack: Stack, engine: AsyncEngine
) -> None:
    await _seed_overdue(stack, 400)
    await engine.dispose()  # no connection may stay on a template database
    await create_database(stack.server_url, "chiso_ref", template="chiso")

    # Hold one dossier row so the sweep blocks half-way through its transaction.
    blocker = await asyncpg.connect(plain_url(stack.database_url))
    # Outside any transaction: pg_stat_activity is a snapshot per transaction.
    watcher = await asyncpg.connect(plain_url(stack.database_url))
    worker = stack.start_worker(sync_every_minutes="60", sweep_every_minutes="60")
    try:
        await blocker.execute("BEGIN")
        await blocker.execute("SELECT code FROM dossiers WHERE code = 'H01-S0399' FOR UPDATE")
        queue = create_queue(stack.redis_url)
        await queue.enqueue_job("sweep_overdue", _job_id="sweep-to-be-killed")
        await queue.aclose()
        deadline = time.monotonic() + 60
        while not await watcher.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query ILIKE '%SET overdue_since%'"
        ):
            assert time.monotonic() < deadline and worker.alive(), worker.tail()
            await asyncio.sleep(0.05)
        worker.kill()
    finally:
        await blocker.execute("ROLLBACK")
    deadline = time.monotonic() + 30
    while await watcher.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE '%SET overdue_since%' "
        "AND state = 'active' AND pid <> pg_backend_pid()"
    ):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    flagged_after_kill = await blocker.fetchval(
        "SELECT count(*) FROM dossiers WHERE overdue_since IS NOT NULL"
    )
    await blocker.close()
    await watcher.close()
    assert flagged_after_kill == 0  # the killed sweep's transaction left nothing behind

    restarted = stack.start_worker(sync_every_minutes="60", sweep_every_minutes="60")
    swept = await _run_job(stack, "sweep_overdue", restarted)

    current = create_async_engine(async_url(stack.database_url))
    reference = create_async_engine(async_url(stack.url_of("chiso_ref")))
    try:
        ctx = {"sessionmaker": create_sessionmaker(reference),
               "settings": _settings(stack, "chiso_ref")}  # fmt: skip
        uninterrupted = await sweep_overdue(ctx)
        assert swept == uninterrupted
        for name, query in SWEEP_STATE.items():
            assert await _rows(current, query) == await _rows(reference, query), name
    finally:
        await current.dispose()
        await reference.dispose()
    record_result("worker_kill_mid_sweep", {
        "dossiers": 400, "flagged_after_kill": flagged_after_kill,
        "overdue_after_restart": swept["overdue"],
        "overdue_uninterrupted": uninterrupted["overdue"],
        "notifications_after_restart": swept["notifications"], "state_equal": True,
    })  # fmt: skip
