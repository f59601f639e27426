"""Worker jobs of the portal domain: incremental dossier sync and official results."""

from __future__ import annotations

import asyncio
import logging
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from app.core.clock import system_clock
from app.core.settings import Settings, portal_sources
from app.portal import repository
from app.portal.client import PortalClient, PortalError, PortalSource, RetryPolicy
from app.portal.sync import SyncReport, sync_source
from app.scores.repository import mark_dirty
from app.units.repository import existing_codes

logger = logging.getLogger("chiso.portal.jobs")
GROUP_CODES = ("CKMB", "TDGQ", "CLGQ", "TTTT", "MDHL", "MDSH")


def clients(ctx: dict[str, Any]) -> list[PortalClient]:
    settings: Settings = ctx["settings"]
    http: httpx.AsyncClient = ctx["http"]
    policy = RetryPolicy(
        max_tries=settings.portal_max_tries, timeout=settings.portal_timeout_seconds
    )
    return [
        PortalClient(
            PortalSource(
                name=s.name,
                base_url=s.base_url,
                username=s.username,
                password=s.password.get_secret_value(),
                madonvi=s.madonvi,
                page_size=s.page_size,
            ),
            http,
            policy,
            sleep=ctx.get("sleep") or asyncio.sleep,
        )
        for s in portal_sources(settings)
    ]


async def sync_portal(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    """Every few minutes: pull changes from each configured source (idempotent)."""
    reports: list[SyncReport] = []
    for client in clients(ctx):
        report = await sync_source(
            ctx["sessionmaker"], ctx["settings"], client, ctx.get("clock") or system_clock
        )
        reports.append(report)
        observe = ctx.get("observe_sync")
        if observe is not None:
            observe(report)
    return [vars(r) for r in reports]


def previous_month(today: date) -> str:
    first = today.replace(day=1)
    last_month = date.fromordinal(first.toordinal() - 1)
    return f"{last_month:%Y-%m}"


async def fetch_official_results(
    ctx: dict[str, Any], time_type: str = "month", period: str | None = None
) -> int:
    """Store the portal's published results of a period as official snapshots (upsert)."""
    period = period or previous_month((ctx.get("clock") or system_clock)().date())
    stored = 0
    for client in clients(ctx):
        try:
            rows = await client.evaluation_results(time_type, period)
        except PortalError as exc:
            logger.warning("official results unavailable", extra={"error": str(exc)})
            continue
        async with ctx["sessionmaker"]() as session:
            known = await existing_codes(session, [str(r.get("departmentCode")) for r in rows])
            clean = [r for r in (_official(row, time_type, period) for row in rows) if r]
            stored += await repository.store_official(
                session, client.source.name, [r for r in clean if r["unit_code"] in known]
            )
            await mark_dirty(session, [period], "official")
            await session.commit()
    return stored


def _official(row: dict[str, Any], time_type: str, period: str) -> dict[str, Any] | None:
    try:
        groups = row.get("groupScores") or {}
        return {
            "unit_code": str(row["departmentCode"]),
            "period": period,
            "time_type": time_type,
            "total": Decimal(str(row["totalScore"])),
            "score_delta": Decimal(str(row["scoreDelta"]))
            if row.get("scoreDelta") is not None
            else None,
            "group_scores": {g: float(groups[g]) for g in GROUP_CODES if g in groups},
        }
    except (KeyError, InvalidOperation, TypeError, ValueError):
        logger.warning("skipping malformed official result", extra={"row": str(row)[:200]})
        return None
