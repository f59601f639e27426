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
import time
from collections import deque
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


# An idle connection unused this long is closed (as asyncpg's pool does by default).
IDLE_SECONDS = 300.0


class DirectPool:
    """Connections to the database for :meth:`run`, opened lazily (an API whose database is
    down still starts and answers 503), up to ``CHISO_DB_POOL_SIZE``, closed by the app's
    lifespan.

    Not asyncpg's pool: a request here is one statement, and asyncpg's pool spent more of a
    single event's Python on lending the connection than on the statement (a proxy object, a
    shielded task to take it back, an idle timer set and cancelled per use; about an eighth
    of the request, profiled). This one lends a connection from a stack and takes it back:
    the most recently used first, waiting callers served in order. A connection whose work was
    cancelled or failed outside PostgreSQL (the state of its protocol unknown) is closed, not
    lent again; one idle for ``IDLE_SECONDS`` is closed when another is returned.
    """

    def __init__(self, settings: Settings, database_url: str) -> None:
        self._dsn = plain_dsn(database_url)
        self._settings = settings
        self._size = settings.db_pool_size
        self._idle: deque[tuple[asyncpg.Connection, float]] = deque()  # oldest first
        self._opened = 0  # open, or being opened
        self._waiting: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._closed = False
        self._closing: set[asyncio.Task[None]] = set()  # idle connections being closed

    async def run(
        self, work: Callable[[asyncpg.Connection], Awaitable[T]], *, retries: int = 3
    ) -> T:
        """``work`` on a connection of the pool; retried on contention (it must be safe to run
        again: each statement is its own transaction) and once on a dropped connection."""
        dropped = False
        attempt = 0
        while True:
            try:
                return await self._on_a_connection(work)
            except _DROPPED:
                if dropped:
                    raise
                dropped = True  # the dead connection was closed; the next one is sound
                logger.info("dropped connection replaced")
            except Exception as exc:
                if not is_contention(exc):
                    if isinstance(exc, asyncpg.PostgresError):
                        raise _as_engine_error(exc) from exc
                    raise
                await give_way(attempt, retries, "statement")
                attempt += 1

    async def _on_a_connection(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        connection = await self._lend()
        sound = False
        try:
            result = await work(connection)
            sound = True
            return result
        except asyncpg.PostgresError as exc:
            # PostgreSQL refused the statement: the connection is as it was, unless the error
            # is the connection's own (class 08) or the server's going away (57P).
            sound = not str(exc.sqlstate).startswith(("08", "57P"))
            raise
        finally:
            self._take_back(connection, sound)

    async def _lend(self) -> asyncpg.Connection:
        while True:
            if self._closed:
                raise asyncpg.exceptions.InterfaceError("the pool is closed")
            while self._idle:
                connection, _ = self._idle.pop()
                if not connection.is_closed():
                    return connection
                self._opened -= 1
            if self._opened < self._size:
                self._opened += 1
                try:
                    return await self._connect()
                except BaseException:
                    self._opened -= 1
                    self._hand_on(None)  # a waiter may try to open it in turn
                    raise
            waiter: asyncio.Future[asyncpg.Connection | None] = (
                asyncio.get_running_loop().create_future()
            )
            self._waiting.append(waiter)
            try:
                connection = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # handed one as it was cancelled
                    lent = waiter.result()
                    if lent is not None:
                        self._take_back(lent, True)
                    else:
                        self._hand_on(None)
                raise
            if connection is not None:
                return connection
            # None: a connection was closed; its place is free to open another.

    def _take_back(self, connection: asyncpg.Connection, sound: bool) -> None:
        if not sound or self._closed or connection.is_closed():
            if not connection.is_closed():
                connection.terminate()
            self._opened -= 1
            self._hand_on(None)
            return
        if self._hand_on(connection):
            return
        now = time.monotonic()
        self._idle.append((connection, now))
        while self._idle and now - self._idle[0][1] > IDLE_SECONDS:
            stale, _ = self._idle.popleft()
            self._opened -= 1
            closing = asyncio.get_running_loop().create_task(_close_quietly(stale))
            self._closing.add(closing)  # held until done: the loop keeps only weak references
            closing.add_done_callback(self._closing.discard)

    def _hand_on(self, connection: asyncpg.Connection | None) -> bool:
        """Give ``connection`` (None: a free place) to the first caller still waiting."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return True
        return False

    async def _connect(self) -> asyncpg.Connection:
        settings = self._settings
        connection: asyncpg.Connection = await asyncpg.connect(
            self._dsn,
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
        return connection

    async def close(self) -> None:
        """Close the idle connections; those lent are closed as they come back."""
        self._closed = True
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(asyncpg.exceptions.InterfaceError("the pool is closed"))
        idle, self._idle = self._idle, deque()
        self._opened -= len(idle)
        await asyncio.gather(*(_close_quietly(connection) for connection, _ in idle))


async def _close_quietly(connection: asyncpg.Connection) -> None:
    """Close an idle connection; one the server already dropped is simply gone."""
    try:
        await connection.close(timeout=5)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):  # TimeoutError: an OSError
        connection.terminate()


def _as_engine_error(exc: asyncpg.PostgresError) -> sa_exc.DBAPIError:
    """The error as the engine raises it, so the handlers answer it as on the engine's path
    (its values stay out of logs: the statement's parameters are never attached)."""
    return sa_exc.DBAPIError(None, None, exc, hide_parameters=True)
