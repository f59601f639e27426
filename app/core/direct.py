"""A raw asyncpg pool for the hottest write: a statement in autocommit, without the ORM.

A single event is checked, stored and queued by one statement (its own transaction), so it
needs no session, no ``BEGIN`` and no ``COMMIT``: one round trip. Its connections are set up
as the engine's (``app.core.database.create_engine``): the same time zone, statement timeout
and plan cache mode, each statement prepared once per connection (asyncpg's statement cache).

Errors keep the meaning they have on the engine's path: a statement that loses a race
(deadlock, serialization failure, :class:`~app.core.uow.Contention`) runs again, a bounded
number of times, then answers 503; a connection found dropped (a server restart, an idle
connection cut) is replaced and the statement sent once more; any other database error is
handed to the error handlers as the engine would hand it (a value the database refuses: 422,
an outage: 503).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from app.core.settings import Settings
from app.core.uow import give_way, is_contention

T = TypeVar("T")
logger = logging.getLogger(__name__)

# What a connection that died while idle in the pool raises on its next use.
_DROPPED: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.AdminShutdownError,
    ConnectionResetError,
    BrokenPipeError,
)


def plain_dsn(database_url: str) -> str:
    """asyncpg's DSN for a SQLAlchemy URL (``postgresql+asyncpg://`` or plain)."""
    parsed = make_url(database_url).set(drivername="postgresql")
    host = parsed.query.get("host")
    rendered = parsed.set(query={}).render_as_string(hide_password=False)
    return f"{rendered}?host={host}" if host else rendered


async def _keep(_: asyncpg.Connection) -> None:
    """Release without asyncpg's reset query (``RESET ALL`` ...): these statements change no
    session state, and the reset would cost a round trip per request."""


class DirectPool:
    """The pool, connected lazily (an API whose database is down still starts and answers
    503), closed by the app's lifespan."""

    def __init__(self, settings: Settings, database_url: str) -> None:
        self._dsn = plain_dsn(database_url)
        self._settings = settings
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def _get(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    self._pool = await self._create()
        return self._pool

    async def _create(self) -> asyncpg.Pool:
        settings = self._settings
        pool: asyncpg.Pool = await asyncpg.create_pool(
            self._dsn,
            min_size=0,
            max_size=settings.db_pool_size,
            reset=_keep,
            statement_cache_size=100,
            # The store statement is about 20 KB: above asyncpg's default (15 KB) it would be
            # prepared again, a round trip and a plan, at every use.
            max_cacheable_statement_size=256 * 1024,
            command_timeout=max(settings.db_statement_timeout_ms / 1000 + 5, 10),
            server_settings={
                "statement_timeout": str(settings.db_statement_timeout_ms),
                "application_name": "chiso",
                "timezone": "UTC",
                # As the engine: a cached generic plan for `= ANY($1)` degrades as tables grow.
                "plan_cache_mode": "force_generic_plan",
                # The statement's estimates (a recursive unit tree, CTEs) may pass
                # jit_above_cost: compiling would cost far more than running it.
                "jit": "off",
            },
        )
        return pool

    async def run(
        self, work: Callable[[asyncpg.Connection], Awaitable[T]], *, retries: int = 3
    ) -> T:
        """``work`` on a connection of the pool; retried on contention (it must be safe to run
        again: each statement is its own transaction) and once on a dropped connection."""
        pool = await self._get()
        dropped = False
        attempt = 0
        while True:
            try:
                async with pool.acquire() as connection:
                    return await work(connection)
            except _DROPPED:
                if dropped:
                    raise
                dropped = True  # the pool replaces the dead connection on the next acquire
                logger.info("dropped connection replaced")
            except Exception as exc:
                if not is_contention(exc):
                    if isinstance(exc, asyncpg.PostgresError):
                        raise _as_engine_error(exc) from exc
                    raise
                await give_way(attempt, retries, "statement")
                attempt += 1

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


def _as_engine_error(exc: asyncpg.PostgresError) -> sa_exc.DBAPIError:
    """The error as the engine raises it, so the handlers answer it as on the engine's path
    (its values stay out of logs: the statement's parameters are never attached)."""
    return sa_exc.DBAPIError(None, None, exc, hide_parameters=True)
