"""Worker jobs of the scores domain: debounced refresh, scheduled closing of months."""

from __future__ import annotations

from typing import Any

from arq import cron
from arq.cron import CronJob
from sqlalchemy.ext.asyncio import AsyncSession

from app.calendar.service import current_calendar
from app.core.clock import system_clock
from app.core.locks import exclusive
from app.core.settings import Settings
from app.core.uow import unit_of_work
from app.indicators.catalog import shipped_catalog
from app.indicators.periods import Period
from app.scores import refresh


async def refresh_scores(ctx: dict[str, Any]) -> list[str]:
    """Every minute: recompute the periods whose inputs changed since the last run.

    Ingestion and submissions only mark periods; bursts of thousands of events cost one
    refresh per period here, not one per event. Taking the marks is a unit of work of its own
    (input arriving from then on marks its periods again), then each period is one: a failure
    loses only its own period's refresh, and no lock outlives one period.
    """
    settings, catalog = ctx["settings"], ctx.get("catalog") or shipped_catalog()
    at = (ctx.get("clock") or system_clock)()
    maker = ctx["sessionmaker"]
    async with exclusive(maker, "refresh-scores") as mine:
        if not mine:
            return []
        queue = await unit_of_work(maker, refresh.take_dirty)
        known = set(queue)
        refreshed = []
        while queue:
            period = queue.pop(0)

            async def one(
                session: AsyncSession, period: Period = period
            ) -> tuple[bool, Period | None]:
                if not await refresh.refresh_period(session, settings, catalog, period, at):
                    return False, None
                return True, await refresh.computed_follower(session, period)

            done, follower = await unit_of_work(maker, one)
            if not done:
                continue
            refreshed.append(str(period))
            if follower is not None and follower not in known:
                known.add(follower)
                queue.append(follower)
        return refreshed


async def close_periods(ctx: dict[str, Any]) -> list[str]:
    """Daily: close months that ended ``CHISO_CLOSE_AFTER_WORKING_DAYS`` working days ago."""
    settings = ctx["settings"]
    if not settings.close_after_working_days:
        return []
    async with exclusive(ctx["sessionmaker"], "close-periods") as mine:
        if not mine:
            return []
        maker = ctx["sessionmaker"]
        at = (ctx.get("clock") or system_clock)()
        catalog = ctx.get("catalog") or shipped_catalog()

        async def closable(session: AsyncSession) -> list[Period]:
            calendar = await current_calendar(session, settings)
            return await refresh.closable_months(
                session, settings, calendar, at, settings.close_after_working_days
            )

        closed = []
        for month in await unit_of_work(maker, closable):

            async def close(session: AsyncSession, month: Period = month) -> None:
                await refresh.close(session, settings, catalog, month, "schedule", at)

            await unit_of_work(maker, close)  # one month, one unit of work
            closed.append(str(month))
        return closed


def schedules(settings: Settings) -> list[CronJob]:
    """When this domain's scheduled jobs run: the debounced refresh every minute (at :45),
    closing ended months every night."""
    return [
        cron(refresh_scores, second={45}, unique=True),
        cron(close_periods, hour={2}, minute={0}, unique=True),
    ]
