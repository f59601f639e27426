"""Worker jobs of the dossier domain: deriving queued dossiers, the overdue / due-soon sweep,
re-deriving after a calendar change; and when the scheduled ones run (:func:`schedules`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import date
from typing import Any

from arq import cron
from arq.cron import CronJob
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import system_clock
from app.core.jobs import every
from app.core.locks import exclusive
from app.core.outbox import relay
from app.core.settings import Settings
from app.core.uow import in_chunks, unit_of_work
from app.dossiers import service

logger = logging.getLogger("chiso.dossiers.derive")

DERIVED = Counter("chiso_dossiers_derived_total", "Queued dossiers derived by the worker")
LAGGING = Counter(
    "chiso_dossiers_lagging_total",
    "Dossiers whose derived state missed an event of their history, found and queued again",
)
_ERROR_BACKOFF_SECONDS = 5.0
# Open dossiers re-derived per transaction after a calendar change.
RECOMPUTE_CHUNK = 2000


async def derive_dossiers(ctx: dict[str, Any]) -> int:
    """Drain the backlog: derive queued dossiers, a chunk per transaction, until none is left.

    Idempotent (a state is always re-derived from the whole history) and safe to run in several
    workers at once (each claims its chunk with SKIP LOCKED). Within one worker,
    ``derive_in_flight`` chunks run at once on their own connections, so one chunk's reading
    and writing in PostgreSQL overlaps another's deriving in Python; together they hold
    ``derive_chunk`` dossiers at most (docs/PERFORMANCE.md, "Derivation": 1.4 × the events
    a second of one chunk at a time at national scale, at the same memory).
    """
    settings: Settings = ctx["settings"]
    lanes: int = ctx.get("derive_in_flight", settings.derive_in_flight)
    size = max(1, -(-settings.derive_chunk // lanes))

    async def chunk(session: AsyncSession, _: int | None) -> int:
        return await service.derive_queued(session, settings, size)

    async def drain() -> int:
        total = 0
        async for derived in in_chunks(
            ctx["sessionmaker"], chunk, last=lambda n: n < size, retries=settings.retry_conflicts
        ):
            DERIVED.inc(derived)
            total += derived
        return total

    running = [asyncio.ensure_future(drain()) for _ in range(lanes)]
    try:
        return sum(await asyncio.gather(*running))
    except BaseException:
        for lane in running:  # one failed (or this job was cancelled): the others stop too
            lane.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        raise


async def check_derived_states(ctx: dict[str, Any]) -> int:
    """Every few minutes: queue again any dossier whose state lags its history (it should
    never happen; the metric says if it does) and derive them. Needs only PostgreSQL."""
    async with exclusive(ctx["sessionmaker"], "check-derived-states") as mine:
        if not mine:
            return 0
        found = await unit_of_work(ctx["sessionmaker"], service.requeue_lagging)
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
        now = (ctx.get("clock") or system_clock)()

        async def flag(session: AsyncSession) -> dict[str, int]:
            overdue, due_soon = await service.sweep(session, ctx["settings"], now)
            notified = await service.notify_flagged(session, overdue, due_soon)
            return {"overdue": len(overdue), "due_soon": len(due_soon), "notifications": notified}

        report = await unit_of_work(ctx["sessionmaker"], flag)
    if report["notifications"] and ctx.get("redis") is not None:
        await relay(ctx["sessionmaker"], ctx["redis"])
    return report


async def recompute_open_dossiers(ctx: dict[str, Any], day_iso: str) -> int:
    """A calendar override changed ``day_iso``: re-derive the open dossiers it may affect, a
    chunk per transaction (idempotent: re-deriving gives the same state)."""
    settings: Settings = ctx["settings"]
    day = date.fromisoformat(day_iso)
    size: int = ctx.get("recompute_chunk") or RECOMPUTE_CHUNK

    async def chunk(
        session: AsyncSession, previous: service.Recomputed | None
    ) -> service.Recomputed:
        after = previous.codes[-1] if previous else None
        return await service.recompute_open_chunk(session, settings, day, after, size)

    total = 0
    async for done in in_chunks(
        ctx["sessionmaker"],
        chunk,
        last=lambda done: len(done.codes) < size,
        retries=settings.retry_conflicts,
    ):
        total += done.derived
    return total


def schedules(settings: Settings) -> list[CronJob]:
    """When this domain's jobs run (unique per scheduled instant; the bodies are exclusive)."""
    sweep_hours, sweep_minutes = every(settings.sweep_every_minutes)
    check_hours, check_minutes = every(settings.derive_check_every_minutes)
    return [
        cron(sweep_overdue, hour=sweep_hours, minute=sweep_minutes, second={15}, unique=True),
        cron(check_derived_states, hour=check_hours, minute=check_minutes, second={5},
             unique=True),
    ]  # fmt: skip
