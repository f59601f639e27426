"""Units of work that commit once at their boundary and are retried when they lose a race.

A deadlock, a serialization failure or a first write that another transaction won
(:class:`Contention`) is not the client's fault and not a bug: the whole unit of work runs
again on a fresh transaction, a bounded number of times, then answers 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import CONTENTION_SQLSTATES, ServiceUnavailable, sqlstate

T = TypeVar("T")
logger = logging.getLogger(__name__)


class Contention(Exception):
    """Another transaction committed what this one had to read first (e.g. it created the
    same dossier a moment earlier): running the unit of work again sees it."""


def is_contention(exc: BaseException) -> bool:
    return isinstance(exc, Contention) or sqlstate(exc) in CONTENTION_SQLSTATES


async def committed(
    session: AsyncSession, work: Callable[[], Awaitable[T]], *, retries: int = 3
) -> T:
    """Run ``work`` and commit; on contention roll back and run it again (with jitter).

    ``work`` must do all its writes through ``session`` and may run more than once.
    """
    for attempt in range(retries + 1):
        try:
            result = await work()
            await session.commit()
            return result
        except Exception as exc:
            if not is_contention(exc):
                raise
            await session.rollback()
            logger.info("unit of work retried", extra={"attempt": attempt + 1})
            if attempt == retries:
                break
            await asyncio.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 - jitter
    raise ServiceUnavailable(
        "Other writes to the same dossiers kept getting in the way; retry shortly.",
        retry_after=1,
    )
