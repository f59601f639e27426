"""All SQL of the shared plumbing: the outbox, advisory locks, and the probes of the database."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.models import OutboxJob


async def pending_jobs(session: AsyncSession, batch: int) -> Sequence[OutboxJob]:
    """The oldest ``batch`` outbox rows no other relay holds (locked until the caller ends)."""
    return (
        await session.scalars(
            select(OutboxJob).order_by(OutboxJob.id).limit(batch).with_for_update(skip_locked=True)
        )
    ).all()


async def delete_jobs(session: AsyncSession, ids: Sequence[int]) -> None:
    await session.execute(delete(OutboxJob).where(OutboxJob.id.in_(ids)))


async def try_advisory_lock(session: AsyncSession, name: str) -> bool:
    """Take the session-level advisory lock ``name`` if it is free."""
    return bool(
        await session.scalar(text("SELECT pg_try_advisory_lock(hashtext(:name))"), {"name": name})
    )


async def advisory_unlock(session: AsyncSession, name: str) -> None:
    await session.execute(text("SELECT pg_advisory_unlock(hashtext(:name))"), {"name": name})


async def migration_versions(conn: AsyncConnection) -> set[str]:
    """The Alembic revisions the database is at."""
    rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
    return {r[0] for r in rows}


async def ping(conn: AsyncConnection) -> None:
    """A round trip: raises whatever the driver raises when PostgreSQL is not usable."""
    await conn.execute(text("SELECT 1"))
