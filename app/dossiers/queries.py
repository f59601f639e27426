"""The read side of dossiers: lists, overdue lists and counts, as the API shows them.

Each list states the sort key its cursor carries (``BY_...``: the shape the caller decodes a
cursor with) and answers a page with the cursor of the next one
(:func:`app.core.pagination.paginate`). Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from app.calendar.service import current_calendar
from app.core.auth import Principal
from app.core.errors import Unprocessable
from app.core.pagination import Instant, Integer, Text, paginate
from app.core.settings import Settings
from app.dossiers import repository, service
from app.dossiers.repository import DossierFilter
from app.dossiers.schemas import (
    DossierEventOut,
    DossierOut,
    OverdueCountAt,
    OverdueCountsOut,
    OverdueItem,
)

T = TypeVar("T")

__all__ = ["DossierFilter"]  # the routes narrow lists with it

# The sort key of each list, as its cursor carries it.
BY_TIME_AND_ID = (Instant(), Integer(minimum=1))
BY_CODE = (Text(max_length=64),)
BY_DUE_TIME = (Instant(), Text(max_length=64))

Paged = tuple[list[T], str | None]


async def dossier_events(
    session: AsyncSession,
    principal: Principal,
    code: str,
    after: tuple[datetime, int] | None,
    limit: int,
) -> Paged[DossierEventOut]:
    """A dossier's history in time order, after the (time, id) a page ended on."""
    # The repository reads the time back from ISO text (UTC, offset included).
    key = (after[0].isoformat(), after[1]) if after is not None else None
    rows = await service.dossier_events(session, principal, code, key, limit)
    page, next_cursor = paginate(rows, limit, lambda r: [r.occurred_at, r.id])
    return [DossierEventOut.model_validate(r._asdict()) for r in page], next_cursor


def received_between(
    settings: Settings, first: date | None, last: date | None
) -> tuple[datetime | None, datetime | None]:
    """The instants a receipt filter spans: from the start of ``first`` to the end of ``last``
    (both local dates, both included); 422 when ``last`` is before ``first``."""
    if first is not None and last is not None and last < first:
        raise Unprocessable(
            "`received_to` is before `received_from`",
            errors=[{"parameter": "received_to", "detail": "before received_from"}],
        )
    tz = ZoneInfo(settings.timezone)
    start = datetime.combine(first, time(), tz) if first is not None else None
    end = datetime.combine(last + timedelta(days=1), time(), tz) if last is not None else None
    return start, end


async def dossiers(
    session: AsyncSession,
    settings: Settings,
    narrowed: DossierFilter,
    at: datetime,
    *,
    after: tuple[str] | None,
    limit: int,
    count: bool = False,
) -> tuple[list[DossierOut], str | None, int | None]:
    """Dossiers of the filter's subtree (every dossier for None), filtered, by code; with
    ``count``, how many there are in all pages."""
    max_supp = settings.max_supplement_requests
    rows = await repository.list_dossiers(
        session, narrowed, now=at, max_supp=max_supp,
        after=after[0] if after is not None else None, limit=limit,
    )  # fmt: skip
    page, next_cursor = paginate(rows, limit, lambda r: [r.code])
    total = (
        await repository.count_dossiers(session, narrowed, now=at, max_supp=max_supp)
        if count
        else None
    )
    return await _out(session, settings, page, at), next_cursor, total


async def scope_root(
    session: AsyncSession, principal: Principal, requested: str | None
) -> str | None:
    """The unit subtree a read is limited to: the requested unit (404 unknown, 403 outside
    the key's unit), else the key's own (None: every unit)."""
    return await service.scope_root(session, principal, requested)


async def unit_root(session: AsyncSession, principal: Principal, code: str) -> str:
    """The unit whose subtree an overdue or due-soon list covers, checked against the key."""
    root = await service.scope_root(session, principal, code)
    assert root is not None  # a unit was asked for
    return root


async def overdue(
    session: AsyncSession,
    settings: Settings,
    root: str,
    at: datetime,
    *,
    after: tuple[datetime, str] | None,
    limit: int,
) -> Paged[OverdueItem]:
    """Open overdue dossiers of ``root``'s subtree, most overdue first."""
    rows = await repository.overdue(
        session, root=root, now=at, max_supp=settings.max_supplement_requests,
        after=_due_key(after), limit=limit,
    )  # fmt: skip
    page, next_cursor = paginate(rows, limit, lambda r: [r.due_at, r.code])
    return await service.overdue_items(session, settings, page, at), next_cursor


async def overdue_export(
    session: AsyncSession, settings: Settings, root: str, at: datetime
) -> list[OverdueItem]:
    """Every open overdue dossier of ``root``'s subtree, most overdue first."""
    rows = await repository.overdue(
        session, root=root, now=at, max_supp=settings.max_supplement_requests,
        after=None, limit=None,
    )  # fmt: skip
    return await service.overdue_items(session, settings, rows, at)


async def overdue_counts_at(
    session: AsyncSession, settings: Settings, code: str, at: datetime, period: str | None
) -> OverdueCountsOut:
    """Per unit of ``code``'s subtree (a known unit): dossiers pending and overdue at instant
    ``at`` (public counts: no dossier is named)."""
    rows = await repository.overdue_counts_at(
        session, root=code, at=at, max_supp=settings.max_supplement_requests
    )
    return OverdueCountsOut(
        unit_code=code,
        as_of=at,
        period=period,
        items=[OverdueCountAt.model_validate(r._asdict()) for r in rows],
    )


async def due_soon(
    session: AsyncSession,
    settings: Settings,
    root: str,
    at: datetime,
    *,
    hours: int | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> Paged[DossierOut]:
    """Open dossiers of ``root``'s subtree due within the next ``hours`` working hours (the
    configured window by default), soonest first."""
    until = await service.due_soon_until(session, settings, at, hours or settings.due_soon_hours)
    rows = await repository.due_soon(
        session, root=root, now=at, until=until, after=_due_key(after), limit=limit
    )
    page, next_cursor = paginate(rows, limit, lambda r: [r.due_at, r.code])
    return await _out(session, settings, page, at), next_cursor


async def _out(
    session: AsyncSession, settings: Settings, rows: Sequence[object], at: datetime
) -> list[DossierOut]:
    calendar = await current_calendar(session, settings)
    rules = service.rules_from(settings)
    return [service.to_out(r, calendar, rules, at) for r in rows]


def _due_key(after: tuple[datetime, str] | None) -> tuple[str, str] | None:
    # The repository reads the time back from ISO text (UTC, offset included).
    return (after[0].isoformat(), after[1]) if after is not None else None
