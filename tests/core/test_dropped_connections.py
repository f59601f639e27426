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
from sqlalchemy import exc as sa_exc

from app.core.database import _refuse_closed, closing, create_engine, create_sessionmaker
from app.core.errors import is_outage
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


async def end_backend(database_url: str, pid: int) -> None:
    conn = await asyncpg.connect(plain_url(database_url))
    try:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()


@pytest.mark.parametrize("raised", [None, LookupError], ids=["answered", "failing"])
async def test_a_session_whose_connection_died_closes_without_raising_over_the_request(
    settings: Settings,
    clean: None,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
    raised: type[Exception] | None,
) -> None:
    """The database restarts after a request had its answer (or while its error was on the way
    out), its transaction still open: closing the session cannot roll back. The request keeps
    its answer, or its own error: never a 500 for the close."""
    engine = create_engine(settings, database_url)
    sessionmaker = create_sessionmaker(engine)
    try:
        # Without the guard, the close's failed rollback is what the request would raise.
        with pytest.raises(sa_exc.DBAPIError):
            async with sessionmaker() as bare:
                await end_backend(database_url, (await bare.execute(BACKEND_PID)).scalar_one())

        with caplog.at_level(logging.WARNING, logger="chiso.database"):
            if raised is None:
                async with closing(sessionmaker()) as session:
                    await end_backend(
                        database_url, (await session.execute(BACKEND_PID)).scalar_one()
                    )
            else:
                with pytest.raises(raised, match="the request's own error"):
                    async with closing(sessionmaker()) as session:
                        await end_backend(
                            database_url, (await session.execute(BACKEND_PID)).scalar_one()
                        )
                        raise raised("the request's own error")
        assert any("discarded" in r.message for r in caplog.records)
        async with closing(sessionmaker()) as session:  # the pool lends a live connection
            assert (await session.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await engine.dispose()


async def test_a_copy_begun_as_the_server_ends_the_session_is_an_outage(
    database_url: str,
) -> None:
    """The server ends a backend (it is shutting down) and the batch's COPY starts on that
    connection before its close has been read: the driver refuses the COPY from the state the
    server's last message left it in. That is the outage the client retries (503), as the
    other errors such a COPY meets are, not a server error."""
    plain = plain_url(database_url)
    other = await asyncpg.connect(plain)
    met: list[Exception] = []
    try:
        for _ in range(12):
            staging = await asyncpg.connect(plain)
            try:
                await staging.execute("CREATE TEMP TABLE staged (x int)")
                await other.fetchval("SELECT pg_terminate_backend($1)", staging.get_server_pid())
                await staging.copy_records_to_table("staged", records=[(1,)])
            except Exception as exc:
                met.append(exc)
            finally:
                staging.terminate()
    finally:
        await other.close()
    assert len(met) == 12
    kinds = {type(exc).__name__ for exc in met}
    assert kinds <= {"InternalClientError", "ConnectionDoesNotExistError", "InterfaceError"}
    assert [exc for exc in met if not is_outage(exc)] == []
