"""arq wiring: the worker's functions, cron table, shared resources, startup and shutdown.

Job bodies live in the domains (``app/*/jobs.py``) and call the same services as the API;
each domain's ``schedules(settings)`` says when its scheduled jobs run, beside them.
``chiso worker`` runs them under ``worker.supervisor`` (which outlives Redis outages);
``arq worker.settings.WorkerSettings`` works too, without that. Cron runs are unique per
scheduled instant (arq job ids) and the job bodies take a PostgreSQL advisory lock, so
several workers never run one schedule at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from arq.cron import CronJob
from prometheus_client import start_http_server

from app.core import jobs as core_jobs
from app.core.clock import system_clock
from app.core.database import create_engine, create_sessionmaker
from app.core.jobs import relay_outbox
from app.core.observability import SYNC_LAG, SYNC_RECORDS, configure_logging, instrumented
from app.core.queue import QUEUE_NAME, redis_settings
from app.core.settings import Settings, get_settings
from app.dossiers import jobs as dossier_jobs
from app.dossiers.jobs import (
    check_derived_states,
    derive_dossiers,
    keep_deriving,
    recompute_open_dossiers,
    sweep_overdue,
)
from app.insights import jobs as insight_jobs
from app.insights.jobs import check_integrity, project_scores
from app.portal import jobs as portal_jobs
from app.portal.jobs import fetch_official_results, release_unmapped, sync_portal
from app.portal.sync import SyncReport
from app.scores import jobs as score_jobs
from app.scores.jobs import close_periods, refresh_scores
from app.webhooks import jobs as webhook_jobs
from app.webhooks.jobs import JOBS as WEBHOOK_JOBS
from app.webhooks.jobs import daily_digest
from app.wiring import wire

wire()  # the worker is a composition root: events reach their subscribers

JOBS: list[Any] = [
    instrumented(job)
    for job in (recompute_open_dossiers, relay_outbox, derive_dossiers, sweep_overdue, sync_portal,
                fetch_official_results, daily_digest, refresh_scores, close_periods,
                check_integrity, project_scores, check_derived_states, release_unmapped)
]  # fmt: skip


def cron_table(settings: Settings) -> list[CronJob]:
    """Every domain's schedules, each job counted and timed like the queued ones."""
    table = [
        *core_jobs.schedules(settings),
        *dossier_jobs.schedules(settings),
        *portal_jobs.schedules(settings),
        *webhook_jobs.schedules(settings),
        *score_jobs.schedules(settings),
        *insight_jobs.schedules(settings),
    ]
    return [replace(c, coroutine=instrumented(c.coroutine)) for c in table]  # type: ignore[arg-type]


def _observe_sync(report: SyncReport) -> None:
    if report.error is None and not report.skipped:
        SYNC_LAG.labels(report.source).set(0)
    for result in ("stored", "duplicate", "quarantined"):
        SYNC_RECORDS.labels(report.source, result).inc(getattr(report, result))


# Scheduled jobs that only hand work to Redis: pointless while it is down. Every other
# scheduled job needs only PostgreSQL (and the portal) and also runs in-process during an
# outage (``worker.supervisor``); a job that enqueues must be listed here.
NEEDS_QUEUE = frozenset({"relay_outbox"})


def in_process_cron_table(settings: Settings) -> list[CronJob]:
    """The schedules the supervisor keeps running while Redis is down (fresh CronJob objects:
    their next run is their own, not the arq worker's)."""
    return [c for c in cron_table(settings) if c.name.removeprefix("cron:") not in NEEDS_QUEUE]


@contextlib.asynccontextmanager
async def worker_context(settings: Settings, database_url: str) -> AsyncIterator[dict[str, Any]]:
    """What every job finds in its ``ctx`` (arq adds ``redis`` and the job's own keys)."""
    engine = create_engine(settings, database_url)
    http = httpx.AsyncClient(headers={"User-Agent": "chiso-worker"})
    try:
        yield {
            "settings": settings,
            "engine": engine,
            "sessionmaker": create_sessionmaker(engine),
            "clock": system_clock,
            "http": http,
            "observe_sync": _observe_sync,
        }
    finally:
        await http.aclose()
        await engine.dispose()


def queue_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``arq.worker.Worker`` that do not depend on how it is run."""
    return {
        "functions": [
            *JOBS,
            # arq.func entries carry their own retry budget (webhook deliveries retry for hours).
            *(replace(f, coroutine=instrumented(f.coroutine)) for f in WEBHOOK_JOBS),  # type: ignore[arg-type]
        ],
        "cron_jobs": cron_table(settings),
        "queue_name": QUEUE_NAME,
        "timezone": ZoneInfo(settings.timezone),
        "max_tries": 5,
        "job_timeout": JOB_TIMEOUT_SECONDS,
        "keep_result": 3600,
        "health_check_interval": 10,
        "health_check_key": HEALTH_KEY,
    }


def worker_options(settings: Settings, database_url: str, redis_url: str) -> dict[str, Any]:
    """A self-contained arq worker (``arq worker.settings.WorkerSettings``, tests): it opens
    the resources at startup and derives in the background, but exits when Redis goes away;
    ``chiso worker`` runs ``worker.supervisor`` instead."""
    resources = contextlib.AsyncExitStack()

    async def startup(ctx: dict[str, Any]) -> None:
        configure_logging(settings.log_level, settings.log_json)
        ctx.update(await resources.enter_async_context(worker_context(settings, database_url)))
        if settings.worker_metrics_port:
            start_http_server(settings.worker_metrics_port)
        await relay_outbox(ctx)  # jobs recorded while no worker was running
        ctx["deriving"] = asyncio.create_task(keep_deriving(ctx), name="keep-deriving")

    async def shutdown(ctx: dict[str, Any]) -> None:
        if (deriving := ctx.get("deriving")) is not None:
            deriving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await deriving
        await resources.aclose()

    return {
        **queue_options(settings),
        "on_startup": startup,
        "on_shutdown": shutdown,
        "redis_settings": redis_settings(redis_url),
    }


HEALTH_KEY = f"{QUEUE_NAME}:health-check"
JOB_TIMEOUT_SECONDS = 3600


def __getattr__(name: str) -> Any:
    # `arq worker.settings.WorkerSettings` support; needs both URLs configured.
    if name == "WorkerSettings":
        settings = get_settings()
        if settings.database_url is None or settings.redis_url is None:
            raise RuntimeError("set CHISO_DATABASE_URL and CHISO_REDIS_URL, or use `chiso worker`")
        options = worker_options(settings, settings.database_url, settings.redis_url)
        return type("WorkerSettings", (), options)
    raise AttributeError(name)
