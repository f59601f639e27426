"""Run a job body at most once at a time across every worker (PostgreSQL advisory lock)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


@asynccontextmanager
async def exclusive(
    sessionmaker: async_sessionmaker[AsyncSession], name: str
) -> AsyncIterator[bool]:
    """Yields True when this process holds the lock ``name`` (False: another one runs it).

    The lock lives on a dedicated connection; a killed worker's connection closes and the
    lock goes with it, so a crash never leaves a job locked out.
    """
    async with sessionmaker() as holder:
        got = bool(
            await holder.scalar(
                text("SELECT pg_try_advisory_lock(hashtext(:name))"), {"name": name}
            )
        )
        try:
            yield got
        finally:
            if got:
                await holder.execute(
                    text("SELECT pg_advisory_unlock(hashtext(:name))"), {"name": name}
                )
                await holder.commit()
