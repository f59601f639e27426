"""Worker jobs of the dossier domain: deriving queued dossiers, the overdue / due-soon sweep."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import system_clock
from app.core.locks import exclusive
from app.core.outbox import relay
from app.core.uow import committed
from app.dossiers import service

logger = logging.getLogger("chiso.dossiers.derive")

DERIVED = Counter("chiso_dossiers_derived_total", "Queued dossiers derived by the worker")
LAGGING = Counter(
    "chiso_dossiers_lagging_total",
    "Dossiers whose derived state missed an event of their history, found and queued again",
)
_ERROR_BACKOFF_SECONDS = 5.0


async def derive_dossiers(ctx: dict[str, Any]) -> int:
    """Drain the backlog: derive queued dossiers, a chunk per transaction, until none is left.

    Idempotent (a state is always re-derived from the whole history) and safe to run in several
    workers at once (each claims its chunk with SKIP LOCKED).
    """
    settings = ctx["settings"]
    total = 0
    while True:
        async with ctx["sessionmaker"]() as session:

            async def chunk(session: AsyncSession = session) -> int:
                return await service.derive_queued(session, settings, settings.derive_chunk)

            derived = await committed(session, chunk, retries=settings.retry_conflicts)
        DERIVED.inc(derived)
        total += derived
        if derived < settings.derive_chunk:
            return total


async def check_derived_states(ctx: dict[str, Any]) -> int:
    """Every few minutes: queue again any dossier whose state lags its history (it should
    never happen; the metric says if it does) and derive them. Needs only PostgreSQL."""
    async with exclusive(ctx["sessionmaker"], "check-derived-states") as mine:
        if not mine:
            return 0
        async with ctx["sessionmaker"]() as session:
            found = await service.requeue_lagging(session)
            await session.commit()
    if found:
        logger.warning("dossier states lagging their history", extra={"requeued": found})
        LAGGING.inc(found)
        await derive_dossiers(ctx)
    return found


async def keep_deriving(
    ctx: dict[str, Any], on_pass: Callable[[Exception | None], None] | None = None
) -> None:
    """The worker's background loop: drain, then look again every ``derive_idle_seconds``.

    ``on_pass`` hears of each pass (None, or the error it failed with): the worker's heartbeat.
    """
    settings = ctx["settings"]
    while True:
        try:
            await derive_dossiers(ctx)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a database outage: the backlog waits, nothing is lost
            logger.exception("deriving queued dossiers failed; retrying")
            if on_pass is not None:
                on_pass(exc)
            await asyncio.sleep(_ERROR_BACKOFF_SECONDS)
            continue
        if on_pass is not None:
            on_pass(None)
        await asyncio.sleep(settings.derive_idle_seconds)


async def sweep_overdue(ctx: dict[str, Any]) -> dict[str, int]:
    """Every few minutes: flag dossiers newly overdue / due soon and notify their units.

    Idempotent (flags are set once per deadline) and exclusive across workers. Notifications
    are recorded in the same transaction as the flags (outbox), then handed to the queue.
    """
    async with exclusive(ctx["sessionmaker"], "sweep-overdue") as mine:
        if not mine:
            return {"skipped": 1}
        await derive_dossiers(ctx)  # flags must see every event stored so far
        async with ctx["sessionmaker"]() as session:
            now = (ctx.get("clock") or system_clock)()
            overdue, due_soon = await service.sweep(session, ctx["settings"], now)
            notified = await service.notify_flagged(session, overdue, due_soon)
            await session.commit()
    if notified and ctx.get("redis") is not None:
        await relay(ctx["sessionmaker"], ctx["redis"])
    return {"overdue": len(overdue), "due_soon": len(due_soon), "notifications": notified}


async def daily_digest(ctx: dict[str, Any]) -> int:
    """Every morning (07:30 local by default): each subscribed unit's overdue digest."""
    async with exclusive(ctx["sessionmaker"], "daily-digest") as mine:
        if not mine:
            return 0
        async with ctx["sessionmaker"]() as session:
            queued = await service.daily_digest(
                session, ctx["settings"], (ctx.get("clock") or system_clock)()
            )
            await session.commit()
    if queued and ctx.get("redis") is not None:
        await relay(ctx["sessionmaker"], ctx["redis"])
    return queued
