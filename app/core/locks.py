"""Run a job body at most once at a time across every worker (PostgreSQL advisory lock)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core import repository


@asynccontextmanager
async def exclusive(
    sessionmaker: async_sessionmaker[AsyncSession], name: str
) -> AsyncIterator[bool]:
    """Yields True when this process holds the lock ``name`` (False: another one runs it).

    The lock lives on a dedicated connection; a killed worker's connection closes and the
    lock goes with it, so a crash never leaves a job locked out. It is a session-level lock,
    outside any transaction: nothing here commits (closing the holder ends its read-only
    transaction).
    """
    async with sessionmaker() as holder:
        got = await repository.try_advisory_lock(holder, name)
        try:
            yield got
        finally:
            if got:
                await repository.advisory_unlock(holder, name)
