"""Worker jobs of the scores domain: debounced refresh, scheduled closing of months."""

from __future__ import annotations

from typing import Any

from app.calendar.service import current_calendar
from app.core.clock import system_clock
from app.core.locks import exclusive
from app.indicators.catalog import shipped_catalog
from app.scores import refresh


async def refresh_scores(ctx: dict[str, Any]) -> list[str]:
    """Every minute: recompute the periods whose inputs changed since the last run.

    Ingestion and submissions only mark periods; bursts of thousands of events cost one
    refresh per period here, not one per event. One unit of work per period: a failure
    loses only its own period's refresh, and no lock outlives one period.
    """
    settings, catalog = ctx["settings"], ctx.get("catalog") or shipped_catalog()
    at = (ctx.get("clock") or system_clock)()
    async with exclusive(ctx["sessionmaker"], "refresh-scores") as mine:
        if not mine:
            return []
        async with ctx["sessionmaker"]() as session:
            queue = await refresh.take_dirty(session)
            await session.commit()  # input arriving from now on marks its periods again
            known = set(queue)
            refreshed = []
            while queue:
                period = queue.pop(0)
                if await refresh.refresh_period(session, settings, catalog, period, at):
                    refreshed.append(str(period))
                    follower = await refresh.computed_follower(session, period)
                    if follower is not None and follower not in known:
                        known.add(follower)
                        queue.append(follower)
                await session.commit()  # one period, one unit of work
            return refreshed


async def close_periods(ctx: dict[str, Any]) -> list[str]:
    """Daily: close months that ended ``CHISO_CLOSE_AFTER_WORKING_DAYS`` working days ago."""
    settings = ctx["settings"]
    if not settings.close_after_working_days:
        return []
    async with exclusive(ctx["sessionmaker"], "close-periods") as mine:
        if not mine:
            return []
        async with ctx["sessionmaker"]() as session:
            at = (ctx.get("clock") or system_clock)()
            calendar = await current_calendar(session, settings)
            catalog = ctx.get("catalog") or shipped_catalog()
            closed = []
            for month in await refresh.closable_months(
                session, settings, calendar, at, settings.close_after_working_days
            ):
                await refresh.close(session, settings, catalog, month, "schedule", at)
                await session.commit()
                closed.append(str(month))
            return closed
