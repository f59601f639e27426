"""The worker's supervisor: derivation and PostgreSQL-only schedules go on without Redis, the
queue side waits for Redis and comes back by itself, and the liveness probe tells the truth.

Each test runs the supervisor in the test's event loop with a Redis of its own (started and
stopped by the test) and the suite's PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from arq import cron
from arq.cron import CronJob
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.embedded import EmbeddedRedis
from app.core.observability import instrumented
from app.core.settings import PROJECT_ROOT, Settings
from app.dossiers.jobs import sweep_overdue
from tests.conftest import ADMIN_TOKEN
from tests.helpers import ADMIN, event, get_dossier, instant, put_procedure, put_unit, vn
from worker.heartbeat import check_liveness, heartbeat_path, write_heartbeat
from worker.settings import cron_table, in_process_cron_table, worker_context
from worker.supervisor import Supervisor

EVERY_SECOND = set(range(60))


def sweep_every_second(settings: Settings) -> list[CronJob]:
    # The real sweep on a test-sized schedule: the production table runs it every 5 minutes.
    return [cron(instrumented(sweep_overdue), second=EVERY_SECOND, unique=True)]


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    """A Redis this test may stop and start (a short path: Unix socket limits)."""
    root = Path(tempfile.mkdtemp(prefix="chw-"))
    server = EmbeddedRedis(root / "redis")
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def worker_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"worker_heartbeat_file": tmp_path / "heartbeat.json"})


@pytest.fixture
async def open_dossier(client: httpx.AsyncClient) -> Callable[[str], Awaitable[None]]:
    """Posts (queued, not derived) an event opening a dossier received Mon 2 Mar 2026, P3:
    due Thu 5 Mar 17:00, overdue long before today."""
    await put_unit(client, "H01", "province")
    await put_unit(client, "H01.01", "commune", "H01")
    await put_procedure(client, "P3", 3, "working_days")

    async def post(code: str) -> None:
        body = event(f"{code}-1", code, 2, "2026-03-02 08:00", procedure="P3")
        answer = await client.post("/v1/dossier-events", json=body, headers=ADMIN)
        assert answer.status_code == 202, answer.text

    return post


@pytest.fixture
async def run_supervisor(
    worker_settings: Settings, own_redis: EmbeddedRedis
) -> AsyncIterator[Callable[[], Awaitable[Supervisor]]]:
    runs: list[tuple[Supervisor, asyncio.Task[int], Any]] = []

    async def start() -> Supervisor:
        resources = worker_context(worker_settings, worker_settings.database_url or "")
        ctx = await resources.__aenter__()
        supervisor = Supervisor(
            worker_settings, own_redis.url, ctx, heartbeat_path(worker_settings),
            schedules=sweep_every_second,
        )  # fmt: skip
        runs.append((supervisor, asyncio.create_task(supervisor.run(handle_signals=False)),
                     resources))  # fmt: skip
        return supervisor

    yield start
    for supervisor, task, resources in runs:
        supervisor.stopping.set()
        try:
            done, _ = await asyncio.wait([task], timeout=30)
            if not done:
                stacks = "\n".join(f"{t.get_name()}: {t.get_stack(limit=3)}"
                                   for t in asyncio.all_tasks())  # fmt: skip
                raise AssertionError(f"the supervisor did not stop within 30 s:\n{stacks}")
            assert task.result() == 0  # no loop of it ended by itself
        finally:
            await resources.__aexit__(None, None, None)


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


async def rows(engine: AsyncEngine, sql: str) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(text(sql))]


async def derived_and_flagged(engine: AsyncEngine, code: str) -> bool:
    found = await rows(engine, f"SELECT overdue_since FROM dossiers WHERE code = '{code}'")
    return bool(found) and found[0][0] is not None


async def record_recompute_job(engine: AsyncEngine, day: str) -> None:
    """What the API leaves in the outbox when Redis is down at commit time."""
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO outbox (function, args) VALUES ('recompute_open_dossiers', "
                 "CAST(:args AS jsonb))"),
            {"args": json.dumps([day])},
        )  # fmt: skip


async def add_holiday(client: httpx.AsyncClient, engine: AsyncEngine, day: str) -> None:
    """A day off for which the re-derivation job waits in the outbox, as while Redis is down
    (the test API relays to the suite's Redis, which no worker of this test reads)."""
    answer = await client.put(
        f"/v1/calendar/days/{day}", json={"kind": "holiday", "reason": "bão"}, headers=ADMIN
    )
    assert answer.status_code == 200, answer.text
    await record_recompute_job(engine, day)


def liveness(settings: Settings) -> tuple[int, str]:
    return check_liveness(settings)


def probe_says(settings: Settings, *fragments: str) -> Callable[[], Awaitable[bool]]:
    """The probe answers 0 with every fragment (the heartbeat is rewritten every 5 s)."""

    async def check() -> bool:
        code, line = check_liveness(settings)
        return code == 0 and all(f in line for f in fragments)

    return check


# --- the supervisor ---------------------------------------------------------------------------


async def test_a_worker_started_without_redis_derives_and_runs_schedules_then_starts_the_queue(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    worker_settings: Settings,
    own_redis: EmbeddedRedis,
    open_dossier: Callable[[str], Awaitable[None]],
    run_supervisor: Callable[[], Awaitable[Supervisor]],
) -> None:
    code = "H01.01-SUP-1"
    await open_dossier(code)
    assert await rows(engine, "SELECT code FROM dossiers") == []  # queued only
    started = datetime.now(UTC)
    supervisor = await run_supervisor()  # Redis has not been started

    # Derivation needs only PostgreSQL; the overdue sweep runs on its schedule in-process.
    await eventually(lambda: derived_and_flagged(engine, code), "derived and flagged overdue")
    assert await rows(engine, "SELECT dossier_code FROM dossier_backlog") == []
    await eventually(
        probe_says(worker_settings, "redis: down since ", "postgres: up",
                   "derivation: last pass", "schedules: in-process"),
        "the probe says alive, Redis down",
    )  # fmt: skip
    beat = json.loads(heartbeat_path(worker_settings).read_text())
    assert beat["pid"] == os.getpid()
    assert beat["redis"]["state"] == "down"
    assert datetime.fromisoformat(beat["redis"]["since"]) >= started
    assert datetime.fromisoformat(beat["derivation"]["last_pass_at"]) >= started

    # A job recorded meanwhile waits in the outbox: nothing runs it without Redis.
    await add_holiday(client, engine, "2026-03-04")
    await asyncio.sleep(2)
    assert await rows(engine, "SELECT function FROM outbox") == [("recompute_open_dossiers",)]
    assert instant((await get_dossier(client, code))["due_at"]) == vn("2026-03-05 17:00")

    await asyncio.to_thread(own_redis.start)

    async def queue_took_over() -> bool:
        return supervisor.redis.state == "up" and supervisor.in_process is None

    # The backoff has grown to a few seconds by now: the reconnection comes within it.
    await eventually(queue_took_over, "the queue worker runs after Redis appeared", 45)
    await eventually(lambda: no_rows(engine, "SELECT id FROM outbox"), "the outbox relayed")

    async def moved() -> bool:
        due = instant((await get_dossier(client, code))["due_at"])
        return due == vn("2026-03-06 17:00")  # Tue 3, Thu 5, Fri 6: one day later

    await eventually(moved, "the queued job ran and moved the deadline")
    await eventually(
        probe_says(worker_settings, "redis: up;", "schedules: queue"), "the probe says Redis up"
    )


async def no_rows(engine: AsyncEngine, sql: str) -> bool:
    return await rows(engine, sql) == []


async def test_the_worker_rides_out_redis_stopping_under_it_and_reconnects(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    worker_settings: Settings,
    own_redis: EmbeddedRedis,
    open_dossier: Callable[[str], Awaitable[None]],
    run_supervisor: Callable[[], Awaitable[Supervisor]],
) -> None:
    await asyncio.to_thread(own_redis.start)
    supervisor = await run_supervisor()

    async def queue_running() -> bool:
        return supervisor.redis.state == "up" and supervisor.queue is not None

    await eventually(queue_running, "the queue worker runs")
    first_worker = supervisor.queue
    await eventually(probe_says(worker_settings, "redis: up;", "schedules: queue"), "Redis up")

    await asyncio.to_thread(own_redis.stop)

    async def noticed() -> bool:
        return supervisor.redis.state == "down"

    await eventually(noticed, "the outage is noticed", 10)
    stopped_at = datetime.now(UTC)
    code = "H01.01-SUP-2"
    await open_dossier(code)  # after Redis went away
    await eventually(lambda: derived_and_flagged(engine, code), "derived and flagged overdue")
    await add_holiday(client, engine, "2026-03-04")
    await eventually(
        probe_says(worker_settings, "redis: down since", "schedules: in-process"),
        "the probe says alive, Redis down",
    )
    assert supervisor.redis.since >= stopped_at - timedelta(seconds=10)

    await asyncio.to_thread(own_redis.start)
    await eventually(queue_running, "a new queue worker runs after Redis came back", 45)
    assert supervisor.queue is not first_worker

    async def moved() -> bool:
        due = instant((await get_dossier(client, code))["due_at"])
        return due == vn("2026-03-06 17:00")

    await eventually(moved, "the job recorded during the outage ran")
    assert await rows(engine, "SELECT id FROM outbox") == []


async def test_a_stopped_worker_leaves_no_heartbeat_behind(
    client: httpx.AsyncClient,
    worker_settings: Settings,
    run_supervisor: Callable[[], Awaitable[Supervisor]],
) -> None:
    supervisor = await run_supervisor()
    path = heartbeat_path(worker_settings)

    async def written() -> bool:
        return path.exists()

    await eventually(written, "the first heartbeat")
    supervisor.stopping.set()

    async def removed() -> bool:
        return not path.exists()

    await eventually(removed, "the heartbeat removed at shutdown")
    assert liveness(worker_settings) == (1, f"worker not alive: no heartbeat file at {path}")


# --- the liveness probe -----------------------------------------------------------------------


def _beat(written_at: datetime, **parts: Any) -> dict[str, Any]:
    return {
        "pid": 4242,
        "written_at": written_at.isoformat(),
        "redis": {"state": "up", "since": "2026-11-29T01:00:00+00:00", "error": None},
        "postgres": {"state": "up", "since": "2026-11-29T01:00:00+00:00", "error": None},
        "derivation": {"last_pass_at": written_at.isoformat(), "failing_since": None},
        "schedules": "queue",
        **parts,
    }


NOW = datetime(2026, 11, 29, 5, 3, 34, tzinfo=UTC)  # 12:03:34 in Hồ Chí Minh City


def test_a_fresh_heartbeat_is_alive_whatever_redis_says(
    worker_settings: Settings,
) -> None:
    path = heartbeat_path(worker_settings)
    down = {"state": "down", "since": "2026-11-29T05:03:04+00:00", "error": "ConnectionError"}
    write_heartbeat(path, _beat(NOW - timedelta(seconds=4), redis=down, schedules="in-process"))
    assert check_liveness(worker_settings, NOW) == (0, (
        "worker alive (pid 4242, heartbeat 4 s ago); redis: down since 12:03:04; "
        "postgres: up; derivation: last pass 4 s ago; schedules: in-process"
    ))  # fmt: skip


def test_a_heartbeat_says_since_when_postgres_is_down_with_the_date_when_not_today(
    worker_settings: Settings,
) -> None:
    path = heartbeat_path(worker_settings)
    down = {"state": "down", "since": "2026-11-28T16:59:00+00:00", "error": "OSError"}
    failing = {"last_pass_at": "2026-11-28T16:58:55+00:00",
               "failing_since": "2026-11-28T16:59:01+00:00"}  # fmt: skip
    write_heartbeat(path, _beat(NOW, postgres=down, derivation=failing))
    code, line = check_liveness(worker_settings, NOW)
    assert code == 0  # a restart would not bring PostgreSQL back
    assert "postgres: down since 2026-11-28 23:59:00; " in line
    assert "derivation: failing since 2026-11-28 23:59:01;" in line


def test_a_stale_or_missing_heartbeat_is_not_alive(worker_settings: Settings) -> None:
    path = heartbeat_path(worker_settings)
    assert check_liveness(worker_settings, NOW) == (
        1, f"worker not alive: no heartbeat file at {path}"
    )  # fmt: skip
    write_heartbeat(path, _beat(NOW - timedelta(seconds=31)))
    assert check_liveness(worker_settings, NOW) == (1, (
        f"worker not alive: last heartbeat 31 s ago (pid 4242, limit 30 s) in {path}"
    ))  # fmt: skip
    write_heartbeat(path, _beat(NOW - timedelta(seconds=30)))
    assert check_liveness(worker_settings, NOW)[0] == 0
    path.write_text("{not json")
    assert check_liveness(worker_settings, NOW) == (
        1, f"worker not alive: unreadable heartbeat {path} (JSONDecodeError)"
    )  # fmt: skip


def test_the_check_command_exits_with_the_probe_s_code(tmp_path: Path) -> None:
    path = tmp_path / "beat.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHISO_")}
    env.update(CHISO_ENVIRONMENT="test", CHISO_ADMIN_TOKEN=ADMIN_TOKEN,
               CHISO_WORKER_HEARTBEAT_FILE=str(path))  # fmt: skip

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app.cli", "worker", "--check"],
            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    missing = check()
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == f"worker not alive: no heartbeat file at {path}\n"
    down = {"state": "down", "since": datetime.now(UTC).isoformat(), "error": "ConnectionError"}
    write_heartbeat(path, _beat(datetime.now(UTC), redis=down))
    alive = check()
    assert alive.returncode == 0, alive.stderr
    assert re.fullmatch(
        r"worker alive \(pid 4242, heartbeat \d+ s ago\); redis: down since \d\d:\d\d:\d\d; "
        r"postgres: up; derivation: last pass \d+ s ago; schedules: queue\n",
        alive.stdout,
    ), alive.stdout


def test_the_heartbeat_lives_in_the_data_dir_unless_it_cannot_be_written(
    settings: Settings, tmp_path: Path
) -> None:
    configured = settings.model_copy(update={"worker_heartbeat_file": tmp_path / "x.json"})
    assert heartbeat_path(configured) == tmp_path / "x.json"
    data_dir = tmp_path / "data"
    default = settings.model_copy(update={"data_dir": data_dir, "worker_heartbeat_file": None})
    fallback = Path(tempfile.gettempdir()) / "chiso-worker-heartbeat.json"
    assert heartbeat_path(default) == fallback  # the probe never creates the data dir
    assert heartbeat_path(default, create=True) == data_dir / "worker-heartbeat.json"
    assert heartbeat_path(default) == data_dir / "worker-heartbeat.json"
    # A read-only image: /srv/chiso/.data cannot be created by the worker's user.
    read_only = default.model_copy(update={"data_dir": Path("/proc/chiso-data")})
    assert heartbeat_path(read_only, create=True) == fallback
    assert heartbeat_path(read_only) == fallback


# --- the schedules ----------------------------------------------------------------------------


def test_every_schedule_but_the_relay_runs_in_process_while_redis_is_down(
    settings: Settings,
) -> None:
    configured = settings.model_copy(
        update={"portal_base_url": "http://portal", "derive_check_every_minutes": 10}
    )
    assert {c.name for c in cron_table(configured)} - {
        c.name for c in in_process_cron_table(configured)
    } == {"cron:relay_outbox"}  # it only feeds Redis
    assert {c.name for c in in_process_cron_table(configured)} == {
        "cron:sweep_overdue", "cron:fetch_official_results", "cron:sync_portal",
        "cron:daily_digest", "cron:refresh_scores", "cron:close_periods",
        "cron:check_integrity", "cron:project_scores", "cron:check_derived_states",
    }  # fmt: skip
    check = next(c for c in cron_table(configured) if c.name == "cron:check_derived_states")
    assert (check.hour, check.minute, check.second) == (None, {0, 10, 20, 30, 40, 50}, {5})
    hourly = settings.model_copy(update={"derive_check_every_minutes": 180})
    check = next(c for c in cron_table(hourly) if c.name == "cron:check_derived_states")
    assert (check.hour, check.minute) == ({0, 3, 6, 9, 12, 15, 18, 21}, {0})
