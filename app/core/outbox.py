"""Transactional outbox: jobs are recorded in PostgreSQL with the change that justifies them.

A job row commits (or rolls back) with its transaction, so a job is never enqueued for a
change that did not happen, and never lost because Redis was down at commit time. The relay
moves rows to arq after commit (right away from the API, and every minute from the worker).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from arq.connections import ArqRedis
from redis.exceptions import RedisError
from sqlalchemy import BigInteger, DateTime, Identity, String, delete, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base

logger = logging.getLogger("chiso.outbox")


class OutboxJob(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    function: Mapped[str] = mapped_column(String(100), nullable=False)
    args: Mapped[list[Any]] = mapped_column(JSONB, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


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
            rows = (
                await session.scalars(
                    select(OutboxJob)
                    .order_by(OutboxJob.id)
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
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
            await session.execute(delete(OutboxJob).where(OutboxJob.id.in_([r.id for r in rows])))
            moved += len(rows)


async def relay_soon(app: Any) -> None:
    """After-commit hook for the API: hand new jobs to the queue now (the worker retries)."""
    try:
        await relay(app.state.sessionmaker, app.state.queue)
    except Exception:  # never fail a request that already committed
        logger.exception("outbox relay failed; the worker will retry")
