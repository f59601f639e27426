"""All SQL about operator calendar overrides."""

from __future__ import annotations

from datetime import date

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.calendar.models import CalendarDay


async def all_overrides(session: AsyncSession) -> list[CalendarDay]:
    return list((await session.scalars(select(CalendarDay).order_by(CalendarDay.day))).all())


async def get(session: AsyncSession, day: date) -> dict[str, object] | None:
    """An override's values as plain data (not an ORM object the upsert would leave stale)."""
    row = (
        await session.execute(
            select(CalendarDay.kind, CalendarDay.reason, CalendarDay.reference).where(
                CalendarDay.day == day
            )
        )
    ).first()
    return dict(row._mapping) if row else None


async def upsert(
    session: AsyncSession, day: date, kind: str, reason: str, reference: str | None, by: str
) -> CalendarDay:
    stmt = insert(CalendarDay).values(
        day=day, kind=kind, reason=reason, reference=reference, updated_by=by
    )
    upsert_stmt = stmt.on_conflict_do_update(
        index_elements=[CalendarDay.day],
        set_={
            "kind": stmt.excluded.kind,
            "reason": stmt.excluded.reason,
            "reference": stmt.excluded.reference,
            "updated_by": stmt.excluded.updated_by,
            "updated_at": func.now(),
        },
    ).returning(CalendarDay)
    row: CalendarDay = (await session.scalars(upsert_stmt)).one()
    return row


async def remove(session: AsyncSession, day: date) -> bool:
    result = await session.execute(delete(CalendarDay).where(CalendarDay.day == day))
    return bool(result.rowcount)  # type: ignore[attr-defined]
