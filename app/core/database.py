"""Async SQLAlchemy engine, session factory and the declarative base with a naming convention."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, func
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.core.settings import Settings

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
    return create_async_engine(
        async_url(database_url),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=True,
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


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


# A session the gate (app/core/gate.py) opened to look the caller's key up: the request's unit
# of work goes on in it rather than paying for a second connection checkout.
SESSION_STATE = "session"


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request: the unit of work. Routers commit once, at the end."""
    opened: AsyncSession | None = request.scope.get("state", {}).get(SESSION_STATE)
    if opened is not None:
        yield opened  # the gate closes it once the response is sent
        return
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        yield session


# The request's unit of work, as a route parameter: ``session: DbSession``.
DbSession = Annotated[AsyncSession, Depends(get_session)]
