"""Redis stopped: ingestion and reads go on, readiness says Redis is down, rate limits fail
open, and the jobs and notifications recorded meanwhile run once Redis is back (outbox). The
worker rides the outage out: it keeps deriving, its liveness probe stays green, and its queue
side reconnects by itself, also when it was started while Redis was down."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from typing import Any

import httpx
import orjson
import pytest
from arq.jobs import Job
from pydantic import SecretStr
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import create_sessionmaker
from app.core.queue import create_queue
from app.core.settings import PROJECT_ROOT, Settings
from app.dossiers.jobs import sweep_overdue
from tests.conftest import ADMIN_TOKEN
from tests.faults.conftest import Process, Stack, record_result
from tests.faults.load import Tally, batch_events, post_until_acknowledged, stored
from tests.faults.receiver import subscriber
from tests.helpers import ADMIN

pytestmark = pytest.mark.faults

OVERDUE = "H01-R-OVERDUE"  # received long ago with a one-day limit: overdue now
MOVED = "H01-R-MOVED"  # due Thu 10 Dec; a holiday on Tue 8 Dec moves it to Fri 11 Dec
# The test's receiver listens on loopback: an operator's own range, as on a closed network.
RECEIVER_NETWORK = '["127.0.0.0/8"]'


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
    api = await stack.start_api(rate_public_per_minute="600", rate_write_per_minute="1200",
                                webhook_allowed_networks=RECEIVER_NETWORK)  # fmt: skip
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
        # Writes are drawn from the process's own buckets; what they spent is reported to Redis
        # in the background (CHISO_RATE_SYNC_MS), and counted as failing open when it cannot be.
        fail_open = await _fail_open(http, within=5.0)
        assert fail_open >= 1
        down_for = time.monotonic() - started

        await asyncio.to_thread(stack.redis.start)
        worker = stack.start_worker(webhook_allowed_networks=RECEIVER_NETWORK)
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
         "rate_limit_fail_open": fail_open},
    )  # fmt: skip


async def _fail_open(http: httpx.AsyncClient, within: float) -> float:
    """``chiso_rate_limit_fail_open_total`` once it is above 0, or as it is after ``within``
    seconds."""
    deadline = time.monotonic() + within
    while True:
        metrics = (await http.get("/metrics")).text
        lines = [
            line for line in metrics.splitlines()
            if line.startswith("chiso_rate_limit_fail_open_total ")
        ]  # fmt: skip
        value = float(lines[0].split()[1]) if lines else 0.0
        if value >= 1 or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


# --- the worker through a Redis outage ------------------------------------------------------

LAGGING = """
    SELECT count(*) FROM (SELECT dossier_code, max(id) AS last_id FROM dossier_events
                          GROUP BY dossier_code) e
    LEFT JOIN dossiers d ON d.code = e.dossier_code
    WHERE d.derived_through IS NULL OR d.derived_through < e.last_id
"""


async def _scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def _probe(stack: Stack) -> subprocess.CompletedProcess[str]:
    """`chiso worker --check`, as compose runs it, with the worker's own settings."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "app.cli", "worker", "--check"],
        cwd=PROJECT_ROOT, env=stack.env(), capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


async def _heartbeat(stack: Stack, worker: Process, redis: str, timeout: float = 60) -> None:
    """Wait for the worker's heartbeat to say Redis is ``redis`` (read directly: cheap)."""
    path = stack.root / "data" / "worker-heartbeat.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.alive(), worker.tail()
        with contextlib.suppress(OSError, ValueError):
            if orjson.loads(path.read_bytes())["redis"]["state"] == redis:
                return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"the heartbeat never said redis {redis}:\n{worker.tail()}")


async def _drained(engine: AsyncEngine, worker: Process, timeout: float = 90) -> None:
    """Every stored event is covered by its dossier's derived state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.alive(), worker.tail()
        if await _scalar(engine, LAGGING) == 0:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"derivation did not catch up:\n{worker.tail()}")


async def _day_off_while_redis_is_down(
    http: httpx.AsyncClient, engine: AsyncEngine, day: str
) -> int:
    """A day off recorded while Redis is down: its job waits in the outbox, and the worker
    runs it through arq once Redis is back. Returns the outbox id (the arq job is its id)."""
    holiday = await http.put(f"/v1/calendar/days/{day}", headers=ADMIN,
                             json={"kind": "holiday", "reason": "fault test"})  # fmt: skip
    assert holiday.status_code == 200, holiday.text
    job_id = await _scalar(engine, "SELECT max(id) FROM outbox")
    assert await _outbox(engine) == ["recompute_open_dossiers"]
    return int(job_id)


async def _job_succeeded(stack: Stack, worker: Process, job_id: int, timeout: float = 60) -> None:
    queue = create_queue(stack.redis_url)
    try:
        job = Job(f"outbox:{job_id}", queue)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert worker.alive(), worker.tail()
            with contextlib.suppress(RedisError, OSError):
                if (info := await job.result_info()) is not None:
                    assert info.success, info.result
                    return
            await asyncio.sleep(0.2)
        raise TimeoutError(f"outbox job {job_id} did not run:\n{worker.tail()}")
    finally:
        await queue.aclose(close_connection_pool=True)


async def test_the_worker_rides_out_redis_stopping_under_load(
    stack: Stack, engine: AsyncEngine
) -> None:
    api = await stack.start_api()
    worker = stack.start_worker()
    await _heartbeat(stack, worker, "up")
    base_url = f"http://127.0.0.1:{api.port}"
    tally = Tally()
    posting = asyncio.Event()
    posting.set()

    async def client(number: int) -> None:
        # Steady posting: a batch, a breath, until the test says stop.
        async with httpx.AsyncClient(base_url=base_url, timeout=20) as http:
            batch = 0
            while posting.is_set():
                events = batch_events(number, batch, 25)
                await post_until_acknowledged(http, events, tally, time.monotonic() + 60)
                batch += 1
                await asyncio.sleep(0.05)

    clients = [asyncio.create_task(client(n)) for n in range(3)]
    async with httpx.AsyncClient(base_url=base_url, timeout=20) as http:
        await tally.first_ack.wait()
        await asyncio.sleep(2)
        await asyncio.to_thread(stack.redis.stop)
        stopped = time.monotonic()
        last_before = await _scalar(engine, "SELECT coalesce(max(id), 0) FROM dossier_events")
        sent_before = len(tally.sent)
        await _heartbeat(stack, worker, "down", timeout=15)
        noticed_s = time.monotonic() - stopped
        await asyncio.sleep(6)  # the old worker exited 0.7 s after Redis stopped
        probe = await _probe(stack)
        assert probe.returncode == 0, probe.stderr
        assert "redis: down since " in probe.stdout and "postgres: up" in probe.stdout
        assert "schedules: in-process" in probe.stdout, probe.stdout
        posting.clear()
        await asyncio.gather(*clients)
        sent_during = len(tally.sent) - sent_before
        # Derivation went on without Redis: every event, old and new, is in its dossier.
        await _drained(engine, worker)
        derived_during = await _scalar(
            engine, "SELECT count(*) FROM dossiers WHERE derived_through > :id", id=last_before
        )
        stored_during = await _scalar(
            engine, "SELECT count(*) FROM dossier_events WHERE id > :id", id=last_before
        )
        job_id = await _day_off_while_redis_is_down(http, engine, "2026-11-04")
        assert worker.alive(), worker.tail()
        down_s = time.monotonic() - stopped

        await asyncio.to_thread(stack.redis.start)
        back = time.monotonic()
        await _job_succeeded(stack, worker, job_id)
        job_after_s = time.monotonic() - back
        assert await _outbox(engine) == []
        await _heartbeat(stack, worker, "up")
        probe = await _probe(stack)
        assert probe.returncode == 0 and "redis: up;" in probe.stdout, probe.stdout
    count, twice = await stored(engine, tally.acknowledged)
    record_result(
        "redis_outage_worker_under_load",
        tally.counts(count, twice)
        | {"redis_down_s": round(down_s, 1), "outage_noticed_s": round(noticed_s, 1),
           "events_sent_while_down": sent_during, "events_stored_while_down": stored_during,
           "dossiers_derived_while_down": derived_during, "worker_alive": worker.alive(),
           "queued_job_ran_s_after_redis_back": round(job_after_s, 1)},
    )  # fmt: skip
    assert not tally.unexpected, tally.unexpected[:5]
    assert not [s for s in tally.statuses if s >= 500], tally.statuses  # writes need only PG
    assert tally.acknowledged == tally.sent and (count, twice) == (len(tally.sent), 0)
    assert sent_during > 0 and stored_during > 0 and derived_during > 0
    assert worker.alive(), worker.tail()


async def test_a_worker_started_while_redis_is_down_waits_for_it(
    stack: Stack, engine: AsyncEngine
) -> None:
    api = await stack.start_api()
    await asyncio.to_thread(stack.redis.stop)
    worker = stack.start_worker()
    started = time.monotonic()
    await _heartbeat(stack, worker, "down")
    await asyncio.sleep(max(0.0, 8 - (time.monotonic() - started)))  # it used to exit at 4 s
    assert worker.alive(), worker.tail()
    probe = await _probe(stack)
    assert probe.returncode == 0, probe.stderr
    assert "redis: down since " in probe.stdout, probe.stdout

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api.port}", timeout=20) as http:
        tally = Tally()
        await post_until_acknowledged(http, batch_events(0, 0, 40), tally, time.monotonic() + 60)
        assert tally.acknowledged == tally.sent, tally.unexpected
        await _drained(engine, worker)  # derived with Redis still down
        derived = await _scalar(engine, "SELECT count(*) FROM dossiers")
        job_id = await _day_off_while_redis_is_down(http, engine, "2026-11-04")

        await asyncio.to_thread(stack.redis.start)
        back = time.monotonic()
        await _job_succeeded(stack, worker, job_id)
        job_after_s = time.monotonic() - back
        await _heartbeat(stack, worker, "up")
    record_result(
        "redis_down_at_worker_start",
        {"waited_s": round(back - started, 1), "dossiers_derived_while_down": derived,
         "queued_job_ran_s_after_redis_back": round(job_after_s, 1),
         "worker_alive": worker.alive()},
    )  # fmt: skip
    assert derived == 40
    assert worker.alive(), worker.tail()
