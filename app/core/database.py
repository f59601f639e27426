"""Async SQLAlchemy engine, session factory and the declarative base with a naming convention."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, event, func
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from app.core.errors import describe_error, is_outage
from app.core.settings import Settings

logger = logging.getLogger("chiso.database")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


def async_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs (as operators write them) and pick the asyncpg driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def create_engine(settings: Settings, database_url: str) -> AsyncEngine:
    """The process's engine. Its pool does not ping a connection before lending it (a round
    trip, three with the asyncpg dialect's BEGIN / ``;`` / ROLLBACK, on every checkout): a
    connection whose socket this process already saw closed is replaced at checkout, free, and
    a statement that opens a unit of work on a connection found dropped runs once more on a
    fresh one (:class:`RetryingSession`)."""
    engine = create_async_engine(
        async_url(database_url),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        # Errors and echo logs print statements without their values: parameters carry notes
        # and whatever a client sent.
        hide_parameters=True,
        connect_args={
            "server_settings": {
                "statement_timeout": str(settings.db_statement_timeout_ms),
                "application_name": "chiso",
                "timezone": "UTC",
                # Batch statements take arrays whose size varies widely; a cached generic plan
                # for `= ANY($1)` degrades to a sequential scan as tables grow (bench finding).
                "plan_cache_mode": "force_custom_plan",
            },
            "command_timeout": max(settings.db_statement_timeout_ms / 1000 + 5, 10),
        },
    )
    event.listen(engine.sync_engine.pool, "checkout", _refuse_closed)
    return engine


def _refuse_closed(
    dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
) -> None:
    """A pooled connection whose socket was closed (the server restarted, or an operator
    ended the backend) is replaced before it is lent: the pool reconnects on this error."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    is_closed = getattr(driver, "is_closed", None)
    if is_closed is not None and is_closed():
        raise sa_exc.DisconnectionError("connection closed while in the pool")


def dropped(exc: BaseException) -> bool:
    """The statement failed because its connection was gone (SQLAlchemy has invalidated it)."""
    return isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated


class RetryingSyncSession(Session):
    """A statement that opens the session's unit of work — nothing done in it yet, nothing
    pending — and finds its connection dropped runs once more on a fresh connection.

    Nothing was sent on the dead connection that could have taken effect, so running the
    statement again is safe; once a unit of work has done anything, a dropped connection
    fails it as before (503, the client retries). The failure invalidates the pool's older
    connections as well, so the requests after this one start on fresh connections.
    """

    def _execute_internal(self, *args: Any, **kwargs: Any) -> Any:
        fresh = not self.in_transaction() and not (self.new or self.dirty or self.deleted)
        try:
            return super()._execute_internal(*args, **kwargs)
        except sa_exc.DBAPIError as exc:
            if not (fresh and dropped(exc)):
                raise
            logger.warning("database connection dropped; running the statement again")
            self.rollback()
            return super()._execute_internal(*args, **kwargs)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(
        engine, expire_on_commit=False, autoflush=False, sync_session_class=RetryingSyncSession
    )


# A session the gate (app/core/gate.py) opened to look the caller's key up: the request's unit
# of work goes on in it rather than paying for a second connection checkout.
SESSION_STATE = "session"


@asynccontextmanager
async def closing(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """``session``, closed at the end whatever happened in it.

    Closing rolls back what was left open. When the connection died meanwhile (the database
    restarted after the request had its answer, or while an error was on its way out), that
    rollback has nothing left to undo: the connection is discarded and the failure logged,
    never raised over the request's answer or over the error that is already being handled.
    """
    try:
        yield session
    finally:
        try:
            await session.close()
        except Exception as exc:
            if not is_outage(exc):
                raise
            logger.warning(
                "database connection lost before the session closed; discarded",
                extra={"error": describe_error(exc)},
            )
            await session.invalidate()


@asynccontextmanager
async def request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session: the one the gate opened to look its key up (the gate closes it
    once the answer is sent), else one opened here."""
    opened: AsyncSession | None = request.scope.get("state", {}).get(SESSION_STATE)
    if opened is not None:
        yield opened
        return
    async with closing(request.app.state.sessionmaker()) as session:
        yield session


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request: the unit of work. Routers commit once, at the end."""
    async with request_session(request) as session:
        yield session


# The request's unit of work, as a route parameter: ``session: DbSession``.
DbSession = Annotated[AsyncSession, Depends(get_session)]
