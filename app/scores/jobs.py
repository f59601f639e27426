"""Worker jobs of the scores domain: debounced refresh, scheduled closing of months."""

from __future__ import annotations

from typing import Any

from app.calendar.service import current_calendar
from app.core.clock import system_clock
from app.core.locks import exclusive
from app.indicators.catalog import shipped_catalog
from app.scores import service


async def refresh_scores(ctx: dict[str, Any]) -> list[str]:
    """Every minute: recompute the periods whose inputs changed since the last run.

    Ingestion and submissions only mark periods; bursts of thousands of events cost one
    refresh per period here, not one per event.
    """
    async with exclusive(ctx["sessionmaker"], "refresh-scores") as mine:
        if not mine:
            return []
        async with ctx["sessionmaker"]() as session:
            return await service.refresh_dirty(
                session, ctx["settings"], ctx.get("catalog") or shipped_catalog(),
                (ctx.get("clock") or system_clock)(),
            )  # fmt: skip


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
            for month in await service.closable_months(
                session, settings, calendar, at, settings.close_after_working_days
            ):
                await service.close(session, settings, catalog, month, "schedule", at)
                await session.commit()
                closed.append(str(month))
            return closed
