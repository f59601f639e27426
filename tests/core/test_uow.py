"""Units of work of jobs: one commit at the boundary, a lost race run again, one per chunk."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.database import create_sessionmaker
from app.core.models import OutboxJob
from app.core.uow import Contention, in_chunks, unit_of_work


async def _functions(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT function FROM outbox ORDER BY id"))
        return [r[0] for r in rows]


async def test_a_job_commits_once_and_a_lost_race_leaves_nothing_behind(
    engine: AsyncEngine, clean: None
) -> None:
    attempts: list[int] = []

    async def work(session: AsyncSession) -> str:
        attempts.append(len(attempts) + 1)
        session.add(OutboxJob(function=f"attempt-{len(attempts)}", args=[]))
        await session.flush()
        if len(attempts) == 1:
            raise Contention("someone else created it first")
        return "done"

    assert await unit_of_work(create_sessionmaker(engine), work) == "done"
    assert attempts == [1, 2]
    assert await _functions(engine) == ["attempt-2"]  # the first attempt rolled back


async def test_each_chunk_commits_on_its_own_and_carries_the_cursor(
    engine: AsyncEngine, clean: None
) -> None:
    seen: list[int | None] = []

    async def chunk(session: AsyncSession, previous: int | None) -> int:
        seen.append(previous)
        number = (previous or 0) + 1
        session.add(OutboxJob(function=f"chunk-{number}", args=[]))
        return number

    committed: list[list[str]] = []
    async for number in in_chunks(create_sessionmaker(engine), chunk, last=lambda n: n == 3):
        committed.append(await _functions(engine))  # what other connections see by now
        assert len(committed) == number
    assert seen == [None, 1, 2]
    assert committed == [["chunk-1"], ["chunk-1", "chunk-2"], ["chunk-1", "chunk-2", "chunk-3"]]
