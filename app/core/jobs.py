"""Worker jobs of the shared plumbing, and the helpers every domain's schedules use.

Each domain's ``jobs.py`` keeps its job bodies and, beside them, a ``schedules(settings)``
giving when the scheduled ones run (arq cron entries); ``worker.settings`` only collects them.
"""

from __future__ import annotations

from typing import Any

from arq import cron
from arq.cron import CronJob

from app.core.outbox import relay
from app.core.settings import Settings


async def relay_outbox(ctx: dict[str, Any]) -> int:
    """Every minute: hand jobs recorded in PostgreSQL to the queue (idempotent)."""
    return await relay(ctx["sessionmaker"], ctx["redis"])


def every(minutes: int) -> tuple[set[int] | None, set[int]]:
    """(hour, minute) of cron() for "every N minutes" (60 and more: every N // 60 hours)."""
    if minutes < 60:
        return None, set(range(0, 60, minutes))
    return set(range(0, 24, minutes // 60)), {0}


def schedules(settings: Settings) -> list[CronJob]:
    return [cron(relay_outbox, second={0}, unique=True)]  # every minute
