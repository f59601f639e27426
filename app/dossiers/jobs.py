"""Worker jobs of the dossier domain: the overdue / due-soon sweep."""

from __future__ import annotations

from typing import Any

from app.core.clock import system_clock
from app.core.locks import exclusive
from app.core.outbox import relay
from app.dossiers import service


async def sweep_overdue(ctx: dict[str, Any]) -> dict[str, int]:
    """Every few minutes: flag dossiers newly overdue / due soon and notify their units.

    Idempotent (flags are set once per deadline) and exclusive across workers. Notifications
    are recorded in the same transaction as the flags (outbox), then handed to the queue.
    """
    async with exclusive(ctx["sessionmaker"], "sweep-overdue") as mine:
        if not mine:
            return {"skipped": 1}
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
