"""No ping before each checkout: a connection dropped while pooled is replaced at checkout when
this process has seen its socket close, and a statement opening a unit of work on one it has
not seen close runs once more on a fresh connection. Either way the client never notices."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import event, text

from app.core.database import _refuse_closed
from app.core.settings import Settings
from app.main import create_app
from tests.conftest import plain_url
from tests.helpers import ADMIN, create_key, put_unit

UNIT = {"name": "Tỉnh thử", "level": "province"}
BACKEND_PID = text("SELECT pg_backend_pid()")


@asynccontextmanager
async def own_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://chiso.test") as c:
            yield app, c


async def terminate_every_chiso_connection(database_url: str) -> int:
    conn = await asyncpg.connect(plain_url(database_url))
    try:
        ended: int = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name LIKE 'chiso%' AND datname = current_database()"
        )
        return ended
    finally:
        await conn.close()


def test_the_pool_does_not_ping(app: FastAPI) -> None:
    assert app.state.engine.sync_engine.pool._pre_ping is False


@pytest.mark.parametrize("seen_closed", [True, False], ids=["replaced", "retried"])
async def test_after_every_connection_is_ended_the_next_requests_succeed(
    settings: Settings,
    client: httpx.AsyncClient,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
    seen_closed: bool,
) -> None:
    await put_unit(client, "H01", "province")
    _, desk = await create_key(client, ["admin"], "H01")
    async with own_app(settings) as (app, api):
        pool = app.state.engine.sync_engine.pool
        if not seen_closed:  # as if the close had not reached this process yet
            event.remove(pool, "checkout", _refuse_closed)
        # Connections in the pool, a key in memory: the state of a process at work.
        for _ in range(3):
            assert (await api.get("/v1/units")).status_code == 200
            assert (await api.put("/v1/units/H01", json=UNIT, headers=desk)).status_code == 200
        assert pool.checkedin() >= 1
        assert await terminate_every_chiso_connection(database_url) >= 2  # pool + listener
        with caplog.at_level(logging.WARNING, logger="chiso.database"):
            written = await api.put("/v1/units/H01", json=UNIT, headers=desk)
            read = await api.get("/v1/units")
            admin_write = await api.put("/v1/units/H01", json=UNIT, headers=ADMIN)
        assert (written.status_code, read.status_code, admin_write.status_code) == (200,) * 3
        retried = [r for r in caplog.records if "running the statement again" in r.message]
        if not seen_closed:
            assert len(retried) == 1  # once: the pool then remade its older connections too


async def test_a_unit_of_work_with_work_done_is_not_run_again(
    settings: Settings, clean: None, database_url: str
) -> None:
    """A statement after others in its transaction is not repeated: what came before is gone
    with the connection, so the request fails (503) rather than half happen."""
    async with own_app(settings) as (app, _):
        pool = app.state.engine.sync_engine.pool
        event.remove(pool, "checkout", _refuse_closed)
        async with app.state.sessionmaker() as session:
            pid = (await session.execute(BACKEND_PID)).scalar_one()
            conn = await asyncpg.connect(plain_url(database_url))
            try:
                await conn.execute("SELECT pg_terminate_backend($1)", pid)
            finally:
                await conn.close()
            with pytest.raises(Exception) as failed:
                await session.execute(BACKEND_PID)
            assert getattr(failed.value, "connection_invalidated", False)
