"""Incremental pull of changed dossiers from a portal source.

Each page is stored through the same path as ``POST /v1/portal/dossiers`` (idempotent) and
the cursor advances in the same transaction as the page's events, so a crash mid-run resumes
from the last committed page: no gap (the cursor never runs ahead of the data) and no
duplicate (a page fetched twice is acknowledged as duplicates). Records that cannot be stored
are quarantined without holding up their page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.locks import exclusive
from app.core.principal import Principal, Scope
from app.core.settings import Settings
from app.core.uow import unit_of_work
from app.dossiers.privacy import scrub
from app.portal import repository
from app.portal.client import ChangedPage, PortalClient, PortalError, PortalSource
from app.portal.records import minimised
from app.portal.service import ingest_records

logger = logging.getLogger("chiso.portal.sync")


@dataclass
class SyncReport:
    source: str
    skipped: bool = False
    pages: int = 0
    records: int = 0
    stored: int = 0
    duplicate: int = 0
    quarantined: int = 0
    error: str | None = None


@dataclass(frozen=True)
class PageCounts:
    stored: int
    duplicate: int
    quarantined: int


async def sync_source(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    client: PortalClient,
    clock: Callable[[], datetime],
    max_pages: int | None = None,
) -> SyncReport:
    """Pull every change since the stored cursor; one run per source at a time."""
    name = client.source.name
    report = SyncReport(source=name)
    principal = Principal(name=f"portal:{name}", scopes=frozenset({Scope.dossiers_write}))
    async with exclusive(sessionmaker, f"portal-sync:{name}") as mine:
        if not mine:
            report.skipped = True
            return report
        async with sessionmaker() as session:
            current = await repository.state(session, name)
        cursor = current.cursor if current else None
        try:
            while max_pages is None or report.pages < max_pages:
                page = await client.changed_dossiers(cursor)

                async def store(session: AsyncSession, page: ChangedPage = page) -> PageCounts:
                    counts = await _store_page(
                        session, settings, principal, client.source, page.records
                    )
                    await repository.advance(
                        session, name, page.next_cursor, len(page.records), clock()
                    )
                    return counts

                counts = await unit_of_work(sessionmaker, store, retries=settings.retry_conflicts)
                report.stored += counts.stored
                report.duplicate += counts.duplicate
                report.quarantined += counts.quarantined
                cursor = page.next_cursor
                report.pages += 1
                report.records += len(page.records)
                if not page.records or page.remaining == 0:
                    break
        except PortalError as exc:
            # Recorded and left for the next scheduled run, which resumes from the cursor.
            report.error = str(exc)
            logger.warning("portal sync failed", extra={"source": name, "error": str(exc)})

        async def finish(session: AsyncSession) -> None:
            await repository.finish(session, name, clock(), report.error)

        await unit_of_work(sessionmaker, finish)
    return report


async def _store_page(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    source: PortalSource,
    records: list[Any],
) -> PageCounts:
    # Records name their unit (MaDonVi or the MaHoSo prefix); the source's unit is a fallback.
    result = await ingest_records(
        session, settings, principal, records, source.madonvi, source="sync"
    )
    # Errors quote the offending value: scrubbed like the record, since it may be personal.
    bad = [
        (minimised(records[i.index]), [{**e, "detail": scrub(str(e.get("detail", "")))}
                                       for e in i.errors or []])
        for i in result.items
        if i.result == "rejected"
    ]  # fmt: skip
    await repository.quarantine(session, source.name, bad)
    return PageCounts(
        stored=result.stored + result.updated,
        duplicate=result.duplicate,
        quarantined=len(bad) + result.quarantined,
    )
