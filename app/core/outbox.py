"""Transactional outbox: jobs are recorded in PostgreSQL with the change that justifies them.

A job row commits (or rolls back) with its transaction, so a job is never enqueued for a
change that did not happen, and never lost because Redis was down at commit time. The relay
moves rows to arq after commit (right away from the API, and every minute from the worker).
"""

from __future__ import annotations

import logging
from typing import Any

from arq.connections import ArqRedis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core import repository
from app.core.models import OutboxJob

logger = logging.getLogger("chiso.outbox")


def add_job(session: AsyncSession, function: str, *args: Any) -> None:
    """Record a job in the caller's transaction; it reaches the queue only if that commits."""
    session.add(OutboxJob(function=function, args=list(args)))


async def relay(
    sessionmaker: async_sessionmaker[AsyncSession], queue: ArqRedis, batch: int = 100
) -> int:
    """Move pending jobs to arq. Safe to run concurrently and repeatedly.

    The arq job id is the outbox id, so a row enqueued but not yet deleted (crash in between)
    is not enqueued twice. Returns how many jobs were handed over; leaves rows in place (and
    logs) when Redis is unreachable.
    """
    moved = 0
    while True:
        async with sessionmaker() as session, session.begin():
            rows = await repository.pending_jobs(session, batch)
            if not rows:
                return moved
            try:
                for row in rows:
                    await queue.enqueue_job(row.function, *row.args, _job_id=f"outbox:{row.id}")
            except (RedisError, OSError, TimeoutError) as exc:
                logger.warning(
                    "queue unreachable; jobs stay in the outbox", extra={"error": repr(exc)}
                )
                return moved
            await repository.delete_jobs(session, [r.id for r in rows])
            moved += len(rows)


async def relay_soon(app: Any) -> None:
    """After-commit hook for the API: hand new jobs to the queue now (the worker retries)."""
    try:
        await relay(app.state.sessionmaker, app.state.queue)
    except Exception:  # never fail a request that already committed
        logger.exception("outbox relay failed; the worker will retry")
