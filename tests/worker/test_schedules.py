"""The worker's schedules: each cron run happens once even with several workers."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from arq import cron
from arq.worker import Worker
from redis.asyncio import Redis

from app.core.queue import QUEUE_NAME, redis_settings
from app.core.settings import Settings
from worker.settings import cron_table


async def tick(ctx: dict[str, Any]) -> None:
    await ctx["redis"].rpush("test:ticks", ctx["job_id"])


async def test_two_workers_run_each_cron_instant_once(settings: Settings, redis: Redis) -> None:
    await redis.delete("test:ticks")

    def worker() -> Worker:
        return Worker(
            functions=[],
            cron_jobs=[cron(tick, second=set(range(60)), unique=True)],  # every second
            redis_settings=redis_settings(settings.redis_url or ""),
            queue_name=f"{QUEUE_NAME}:test",
            poll_delay=0.05,
            handle_signals=False,
        )

    workers = [worker(), worker()]
    tasks = [asyncio.create_task(w.main()) for w in workers]
    await asyncio.sleep(3.5)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for w in workers:
        await w.close()
    ticks = [t.decode() for t in await redis.lrange("test:ticks", 0, -1)]
    assert len(ticks) >= 2
    assert len(ticks) == len(set(ticks)), ticks  # no scheduled instant ran twice
    assert sum(w.jobs_complete for w in workers) == len(ticks)


@pytest.mark.parametrize("minutes", [1, 5, 15])
def test_every_scheduled_job_is_unique_per_instant(settings: Settings, minutes: int) -> None:
    configured = settings.model_copy(
        update={"sweep_every_minutes": minutes, "portal_base_url": "http://portal"}
    )
    table = cron_table(configured)
    names = {c.name for c in table}
    assert names == {
        "cron:relay_outbox", "cron:sweep_overdue", "cron:fetch_official_results",
        "cron:sync_portal", "cron:daily_digest", "cron:refresh_scores", "cron:close_periods",
        "cron:check_integrity", "cron:project_scores", "cron:check_derived_states",
    }  # fmt: skip
    assert all(c.unique for c in table)
    sweep = next(c for c in table if c.name == "cron:sweep_overdue")
    assert sweep.minute == set(range(0, 60, minutes))
