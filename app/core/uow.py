"""Units of work that commit once at their boundary and are retried when they lose a race.

Services never commit: the boundary decides. A request's unit of work is its session
(``app.core.database.get_session``), committed by its route with :func:`committed`; a job's
is opened, run and committed by :func:`unit_of_work`; a chunked job (deriving the backlog,
re-deriving after a calendar change, releasing quarantined records) runs each chunk as a unit
of work of its own with :func:`in_chunks`, so no transaction holds locks on everything.

A deadlock, a serialization failure or a first write that another transaction won
(:class:`Contention`) is not the client's fault and not a bug: the whole unit of work runs
again on a fresh transaction, a bounded number of times, then answers 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.database import closing
from app.core.errors import CONTENTION_SQLSTATES, ServiceUnavailable, sqlstate

T = TypeVar("T")
logger = logging.getLogger(__name__)


class Contention(Exception):
    """Another transaction committed what this one had to read first (e.g. it created the
    same dossier a moment earlier): running the unit of work again sees it."""


def is_contention(exc: BaseException) -> bool:
    return isinstance(exc, Contention) or sqlstate(exc) in CONTENTION_SQLSTATES


async def give_way(attempt: int, retries: int, what: str) -> None:
    """After run ``attempt`` (0 for the first) of ``what`` lost a race: wait a moment, with
    jitter, before the next run, or answer 503 with Retry-After when ``retries`` are used up."""
    logger.info("%s retried", what, extra={"attempt": attempt + 1})
    if attempt >= retries:
        raise ServiceUnavailable(
            "Other writes to the same dossiers kept getting in the way; retry shortly.",
            retry_after=1,
        )
    await asyncio.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 - jitter


async def committed(
    session: AsyncSession, work: Callable[[], Awaitable[T]], *, retries: int = 3
) -> T:
    """Run ``work`` and commit; on contention roll back and run it again (with jitter).

    ``work`` must do all its writes through ``session`` and may run more than once.
    """
    attempt = 0
    while True:
        try:
            result = await work()
            await session.commit()
            return result
        except Exception as exc:
            if not is_contention(exc):
                raise
            await session.rollback()
            await give_way(attempt, retries, "unit of work")
            attempt += 1


async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession],
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    retries: int = 3,
) -> T:
    """A job's unit of work: open a session, run ``work`` in it and commit, as
    :func:`committed` (retried on contention); the session is closed whatever happens."""
    async with closing(sessionmaker()) as session:
        return await committed(session, lambda: work(session), retries=retries)


async def in_chunks(
    sessionmaker: async_sessionmaker[AsyncSession],
    chunk: Callable[[AsyncSession, T | None], Awaitable[T]],
    *,
    last: Callable[[T], bool],
    retries: int = 3,
) -> AsyncIterator[T]:
    """Run ``chunk`` as one :func:`unit_of_work` after another and yield what each committed,
    until ``last`` says a chunk was the last one.

    ``chunk`` is handed what the previous chunk returned (``None`` the first time), to carry a
    cursor. A chunk that loses a race runs again alone; the chunks committed before it stay.
    """
    previous: T | None = None
    while True:

        async def run(session: AsyncSession, after: T | None = previous) -> T:
            return await chunk(session, after)

        done = await unit_of_work(sessionmaker, run, retries=retries)
        yield done
        if last(done):
            return
        previous = done
