"""Worker jobs of the portal domain: incremental dossier sync, official results, and the
release of records that waited for their unit; and when the scheduled ones run
(:func:`schedules`)."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
from arq import cron
from arq.cron import CronJob
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import system_clock
from app.core.jobs import every
from app.core.settings import Settings, portal_sources
from app.core.uow import in_chunks, unit_of_work
from app.indicators import periods
from app.portal import repository, unmapped
from app.portal.client import PortalClient, PortalError, RetryPolicy, source_from_settings
from app.portal.sync import SyncReport, sync_source
from app.scores.repository import mark_dirty
from app.units.repository import existing_codes

logger = logging.getLogger("chiso.portal.jobs")
GROUP_CODES = ("CKMB", "TDGQ", "CLGQ", "TTTT", "MDHL", "MDSH")
# Records released per transaction: a commit every few hundred keeps each one short.
RELEASE_CHUNK = 500


def clients(ctx: dict[str, Any]) -> list[PortalClient]:
    settings: Settings = ctx["settings"]
    http: httpx.AsyncClient = ctx["http"]
    policy = RetryPolicy(
        max_tries=settings.portal_max_tries, timeout=settings.portal_timeout_seconds
    )
    return [
        PortalClient(
            source_from_settings(s),
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


async def fetch_official_results(
    ctx: dict[str, Any], time_type: str = "month", period: str | None = None
) -> int:
    """Store the portal's published results of a period as official snapshots (upsert)."""
    at = (ctx.get("clock") or system_clock)()
    period = period or str(periods.previous(ctx["settings"], at))  # the local calendar's
    stored = 0
    for client in clients(ctx):
        try:
            rows = await client.evaluation_results(time_type, period)
        except PortalError as exc:
            logger.warning("official results unavailable", extra={"error": str(exc)})
            continue

        async def store(
            session: AsyncSession,
            rows: list[dict[str, Any]] = rows,
            source: str = client.source.name,
            period: str = period,
        ) -> int:
            known = await existing_codes(session, [str(r.get("departmentCode")) for r in rows])
            clean = [r for r in (_official(row, time_type, period) for row in rows) if r]
            count = await repository.store_official(
                session, source, [r for r in clean if r["unit_code"] in known]
            )
            await mark_dirty(session, [period], "official")
            return count

        stored += await unit_of_work(ctx["sessionmaker"], store)
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


async def release_unmapped(ctx: dict[str, Any], identifier: str) -> dict[str, int]:
    """``identifier`` now names a unit: ingest the records that waited for it, a chunk per
    transaction. Idempotent: a chunk's records leave the quarantine when it commits, so a run
    cut short is resumed by the next one (or by putting the unit again)."""
    settings: Settings = ctx["settings"]
    chunk: int = ctx.get("release_chunk") or RELEASE_CHUNK
    totals: dict[str, int] = {"taken": 0, "held": 0}

    async def release(session: AsyncSession, _: unmapped.Released | None) -> unmapped.Released:
        return await unmapped.release_chunk(session, settings, identifier, chunk)

    def last(outcome: unmapped.Released) -> bool:
        # A short chunk was the last; one that all went back to waiting would come round again.
        return outcome.taken < chunk or outcome.waiting_again == outcome.taken

    async for outcome in in_chunks(
        ctx["sessionmaker"], release, last=last, retries=settings.retry_conflicts
    ):
        totals["taken"] += outcome.taken
        totals["held"] += outcome.held
        for result, count in outcome.results.items():
            totals[result] = totals.get(result, 0) + count
    if totals["taken"]:
        logger.info("released quarantined records", extra={"identifier": identifier, **totals})
    return totals


def schedules(settings: Settings) -> list[CronJob]:
    """When this domain's scheduled jobs run: official results every morning; the sync every
    few minutes, once a portal source is configured."""
    jobs = [cron(fetch_official_results, hour={6}, minute={0}, unique=True)]
    if portal_sources(settings):
        sync_hours, sync_minutes = every(settings.sync_every_minutes)
        jobs.append(
            cron(sync_portal, hour=sync_hours, minute=sync_minutes, second={30}, unique=True)
        )
    return jobs
