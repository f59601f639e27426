"""arq wiring: the worker's functions, cron table, startup and shutdown.

Job bodies live in the domains (``app/*/jobs.py``) and call the same services as the API.
``chiso worker`` runs it; ``arq worker.settings.WorkerSettings`` works too.
"""

from __future__ import annotations

from typing import Any

from arq import cron
from arq.typing import WorkerCoroutine

from app.calendar.jobs import recompute_open_dossiers
from app.core.database import create_engine, create_sessionmaker
from app.core.jobs import relay_outbox
from app.core.observability import configure_logging
from app.core.queue import QUEUE_NAME, redis_settings
from app.core.settings import Settings, get_settings

FUNCTIONS: list[WorkerCoroutine] = [recompute_open_dossiers, relay_outbox]


def worker_options(settings: Settings, database_url: str, redis_url: str) -> dict[str, Any]:
    """Keyword arguments for ``arq.worker.Worker`` (also the ``WorkerSettings`` attributes)."""

    async def startup(ctx: dict[str, Any]) -> None:
        configure_logging(settings.log_level, settings.log_json)
        engine = create_engine(settings, database_url)
        ctx["settings"] = settings
        ctx["engine"] = engine
        ctx["sessionmaker"] = create_sessionmaker(engine)
        await relay_outbox(ctx)  # jobs recorded while no worker was running

    async def shutdown(ctx: dict[str, Any]) -> None:
        await ctx["engine"].dispose()

    return {
        "functions": FUNCTIONS,
        "cron_jobs": [
            cron(relay_outbox, second={0}, unique=True, run_at_startup=False),  # every minute
        ],
        "on_startup": startup,
        "on_shutdown": shutdown,
        "redis_settings": redis_settings(redis_url),
        "queue_name": QUEUE_NAME,
        "max_tries": 5,
        "job_timeout": 3600,
        "keep_result": 3600,
        "health_check_interval": 30,
    }


def __getattr__(name: str) -> Any:
    # `arq worker.settings.WorkerSettings` support; needs both URLs configured.
    if name == "WorkerSettings":
        settings = get_settings()
        if settings.database_url is None or settings.redis_url is None:
            raise RuntimeError("set CHISO_DATABASE_URL and CHISO_REDIS_URL, or use `chiso worker`")
        return type(
            "WorkerSettings",
            (),
            worker_options(settings, settings.database_url, settings.redis_url),
        )
    raise AttributeError(name)
