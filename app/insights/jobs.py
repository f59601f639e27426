"""Worker jobs of the insights domain: daily integrity flags and month-end projections."""

from __future__ import annotations

from typing import Any

from arq import cron
from arq.cron import CronJob
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import system_clock
from app.core.locks import exclusive
from app.core.settings import Settings
from app.core.uow import unit_of_work
from app.indicators.catalog import shipped_catalog
from app.indicators.periods import Period
from app.insights import integrity, projections
from app.insights.rules import shipped_rules


async def check_integrity(ctx: dict[str, Any], period: str | None = None) -> dict[str, int]:
    """Daily (or for one month): recompute the integrity flags of the running month and the
    one before it; re-running replaces a month's flags, so arq may run it twice safely."""
    async with exclusive(ctx["sessionmaker"], "check-integrity") as mine:
        if not mine:
            return {}
        settings = ctx["settings"]
        at = (ctx.get("clock") or system_clock)()
        rules = ctx.get("integrity_rules") or shipped_rules()
        months = [Period.parse(period)] if period else integrity.checked_months(settings, at)
        flagged: dict[str, int] = {}
        for month in months:

            async def check(session: AsyncSession, month: Period = month) -> int:
                return len(await integrity.check_period(session, settings, rules, month, at))

            flagged[str(month)] = await unit_of_work(ctx["sessionmaker"], check)  # per month
        return flagged


async def project_scores(ctx: dict[str, Any]) -> int:
    """Daily: project every unit's month-end score and rank for the running month and keep it,
    so it can be compared with the result once the month ends (one row per unit and day)."""
    async with exclusive(ctx["sessionmaker"], "project-scores") as mine:
        if not mine:
            return 0
        at = (ctx.get("clock") or system_clock)()
        catalog = ctx.get("catalog") or shipped_catalog()

        async def store(session: AsyncSession) -> int:
            return await projections.store_projections(session, ctx["settings"], catalog, at)

        return await unit_of_work(ctx["sessionmaker"], store)


def schedules(settings: Settings) -> list[CronJob]:
    """When this domain's scheduled jobs run: integrity flags at 03:10, projections at 06:30."""
    return [
        cron(check_integrity, hour={3}, minute={10}, unique=True),
        cron(project_scores, hour={6}, minute={30}, unique=True),
    ]
