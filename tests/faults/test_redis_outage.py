"""Redis stopped: ingestion and reads go on, readiness says Redis is down, rate limits fail
open, and the jobs and notifications recorded meanwhile run once Redis is back (outbox)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson
import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import create_sessionmaker
from app.core.queue import create_queue
from app.core.settings import Settings
from app.dossiers.jobs import sweep_overdue
from tests.conftest import ADMIN_TOKEN
from tests.faults.conftest import Stack, record_result
from tests.faults.receiver import subscriber
from tests.helpers import ADMIN

pytestmark = pytest.mark.faults

OVERDUE = "H01-R-OVERDUE"  # received long ago with a one-day limit: overdue now
MOVED = "H01-R-MOVED"  # due Thu 10 Dec; a holiday on Tue 8 Dec moves it to Fri 11 Dec


def _event(event_id: str, dossier: str, procedure: str, at: str) -> dict[str, Any]:
    return {"event_id": event_id, "dossier_code": dossier, "unit_code": "H01",
            "procedure_code": procedure, "status": 2, "occurred_at": at, "channel": 1,
            "received_at": at}  # fmt: skip


async def _outbox(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(text("SELECT function FROM outbox ORDER BY id"))).scalars())


async def _due_at(http: httpx.AsyncClient, code: str) -> str:
    response = await http.get(f"/v1/dossiers/{code}", headers=ADMIN)
    assert response.status_code == 200, response.text
    due: str = response.json()["due_at"]
    return due


async def test_with_redis_down_the_api_keeps_working_and_queued_work_runs_when_it_is_back(
    stack: Stack, engine: AsyncEngine
) -> None:
    api = await stack.start_api(rate_public_per_minute="600", rate_write_per_minute="1200")
    async with (
        subscriber() as sub,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{api.port}", timeout=20) as http,
    ):
        hook = await http.post(
            "/v1/webhooks",
            json={"url": sub.url, "unit_code": "H01", "kinds": ["dossier.overdue"]},
            headers=ADMIN,
        )
        assert hook.status_code == 201, hook.text

        await asyncio.to_thread(stack.redis.stop)
        started = time.monotonic()
        events = [
            _event("r-1", OVERDUE, "1.000894", "2026-11-16T08:00:00+07:00"),
            _event("r-2", MOVED, "1.002425", "2026-12-07T08:00:00+07:00"),
        ]
        posted = await http.post("/v1/dossier-events/batch", json={"events": events},
                                 headers=ADMIN)  # fmt: skip
        assert posted.status_code == 200, posted.text
        acknowledged = [i["event_id"] for i in posted.json()["items"] if i["result"] == "stored"]
        assert acknowledged == ["r-1", "r-2"]
        assert (await http.get("/v1/units")).status_code == 200  # public: the limiter fails open
        due_before = await _due_at(http, MOVED)
        assert due_before.startswith("2026-12-10")

        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.headers["content-type"] == "application/problem+json"
        checks = ready.json()["checks"]
        assert checks["database"] == "ok" and checks["redis"].startswith("unreachable")

        holiday = await http.put("/v1/calendar/days/2026-12-08",
                                 json={"kind": "holiday", "reason": "fault test"},
                                 headers=ADMIN)  # fmt: skip
        assert holiday.status_code == 200, holiday.text

        # The scheduled sweep runs while Redis is away: its notice waits in PostgreSQL.
        dead_queue = create_queue(stack.redis_url)
        settings = Settings(
            environment="test",
            database_url=stack.database_url,
            redis_url=stack.redis_url,
            admin_token=SecretStr(ADMIN_TOKEN),
        )
        ctx = {"sessionmaker": create_sessionmaker(engine), "settings": settings,
               "redis": dead_queue}  # fmt: skip
        swept = await sweep_overdue(ctx)
        await dead_queue.aclose()
        assert swept["overdue"] == 1 and swept["notifications"] == 1
        queued = await _outbox(engine)
        assert sorted(queued) == ["deliver_webhook", "recompute_open_dossiers"]
        metrics = (await http.get("/metrics")).text
        fail_open = [
            line for line in metrics.splitlines()
            if line.startswith("chiso_rate_limit_fail_open_total ")
        ]  # fmt: skip
        assert fail_open and float(fail_open[0].split()[1]) >= 1
        down_for = time.monotonic() - started

        await asyncio.to_thread(stack.redis.start)
        worker = stack.start_worker()
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            due_now = await _due_at(http, MOVED)
            if not await _outbox(engine) and sub.received and due_now != due_before:
                break
            assert worker.alive(), worker.tail()
            await asyncio.sleep(0.2)
        assert await _outbox(engine) == []
        assert (await _due_at(http, MOVED)).startswith("2026-12-11")  # recomputed
        assert len(sub.received) == 1
        notice = orjson.loads(sub.received[0])
        assert notice["kind"] == "dossier.overdue"
        assert notice["data"]["dossier_code"] == OVERDUE
        assert (await http.get("/readyz")).status_code == 200
        async with engine.connect() as conn:
            stored = (await conn.execute(text("SELECT count(*) FROM dossier_events"))).scalar()
    record_result(
        "redis_outage",
        {"events_sent": len(events), "events_acknowledged": len(acknowledged),
         "events_stored": stored, "jobs_recorded_while_down": len(queued),
         "jobs_run_after_restart": len(queued), "notifications_delivered": len(sub.received),
         "redis_down_s": round(down_for, 1),
         "rate_limit_fail_open": float(fail_open[0].split()[1])},
    )  # fmt: skip
