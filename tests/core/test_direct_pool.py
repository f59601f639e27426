"""The direct pool (app.core.direct): single events' connections, lent one at a time.

Each rule is held against a real PostgreSQL: which server process served a call is what the
call itself reads (``pg_backend_pid()``), and whether a process still exists is what
``pg_stat_activity`` says.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc

from app.core import direct
from app.core.direct import DirectPool
from app.core.errors import is_outage
from app.core.settings import Settings
from tests.conftest import plain_url


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[DirectPool]:
    lent = DirectPool(settings.model_copy(update={"db_pool_size": 2}), settings.database_url)
    yield lent
    await lent.close()


async def pid(connection: asyncpg.Connection) -> int:
    value: int = await connection.fetchval("SELECT pg_backend_pid()")
    return value


def slow_pid(seconds: float):  # type: ignore[no-untyped-def]
    async def work(connection: asyncpg.Connection) -> int:
        value: int = await connection.fetchval(
            "SELECT pg_backend_pid() FROM pg_sleep($1::float8)", seconds
        )
        return value

    return work


async def alive(settings: Settings, pids: set[int]) -> set[int]:
    conn = await asyncpg.connect(plain_url(settings.database_url))
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE pid = ANY($1::int[])", list(pids)
        )
    finally:
        await conn.close()
    return {row["pid"] for row in rows}


async def test_callers_beyond_the_pool_s_size_wait_their_turn(pool: DirectPool) -> None:
    served = await asyncio.gather(*(pool.run(slow_pid(0.05)) for _ in range(7)))
    assert len(served) == 7
    assert len(set(served)) == 2  # two connections served all seven, none opened past the size


async def test_the_connection_used_last_is_lent_first(pool: DirectPool) -> None:
    first, second = await asyncio.gather(pool.run(slow_pid(0.05)), pool.run(slow_pid(0.1)))
    assert first != second
    # The second came back last: it is lent next, and again, while the first waits idle.
    assert [await pool.run(pid) for _ in range(3)] == [second] * 3


async def test_a_statement_postgresql_refuses_keeps_its_connection(pool: DirectPool) -> None:
    before = await pool.run(pid)

    async def divide(connection: asyncpg.Connection) -> None:
        await connection.execute("SELECT 1 / 0")

    with pytest.raises(sa_exc.DBAPIError) as refused:
        await pool.run(divide)
    assert isinstance(refused.value.orig, asyncpg.exceptions.DivisionByZeroError)
    assert await pool.run(pid) == before


async def test_a_cancelled_call_s_connection_is_closed_not_lent_again(
    pool: DirectPool, settings: Settings
) -> None:
    first = await pool.run(pid)
    call = asyncio.create_task(pool.run(slow_pid(1)))
    await asyncio.sleep(0.3)  # the statement is running on `first`
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    after = await pool.run(pid)
    assert after != first
    # The socket is closed at once; the server process ends when its statement does (it
    # cannot see the socket while it sleeps).
    for _ in range(60):
        if not await alive(settings, {first}):
            break
        await asyncio.sleep(0.05)
    assert await alive(settings, {first}) == set()


async def test_a_caller_cancelled_while_waiting_leaves_no_connection_behind(
    pool: DirectPool,
) -> None:
    busy = [asyncio.create_task(pool.run(slow_pid(0.3))) for _ in range(2)]
    await asyncio.sleep(0.1)
    waiting = asyncio.create_task(pool.run(pid))
    await asyncio.sleep(0.05)
    waiting.cancel()
    pids = set(await asyncio.gather(*busy))
    with pytest.raises(asyncio.CancelledError):
        await waiting
    # Both connections came back: two callers at once are served by them, nobody waits.
    again = await asyncio.wait_for(
        asyncio.gather(pool.run(slow_pid(0.05)), pool.run(slow_pid(0.05))), 5
    )
    assert set(again) == pids


async def test_a_connection_idle_too_long_is_closed_when_another_comes_back(
    pool: DirectPool, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    older, newer = await asyncio.gather(pool.run(slow_pid(0.05)), pool.run(slow_pid(0.1)))
    monkeypatch.setattr(direct, "IDLE_SECONDS", 0.2)
    await asyncio.sleep(0.3)  # both idle past the limit
    assert await pool.run(pid) == newer  # lent (most recent first), and back: `older` closes
    for _ in range(50):
        if not await alive(settings, {older}):
            break
        await asyncio.sleep(0.05)
    assert await alive(settings, {older, newer}) == {newer}


async def test_an_unreachable_database_is_an_outage_and_holds_no_place(
    settings: Settings,
) -> None:
    unreachable = DirectPool(
        settings.model_copy(update={"db_pool_size": 1}), "postgresql://postgres@127.0.0.1:1/x"
    )
    try:
        for _ in range(3):  # the failed opening gave its place back each time
            with pytest.raises(ConnectionRefusedError) as failed:  # not a wait for a place
                await asyncio.wait_for(unreachable.run(pid), 5)
            assert is_outage(failed.value)
    finally:
        await unreachable.close()


async def test_a_closed_pool_refuses_as_an_outage(settings: Settings) -> None:
    lent = DirectPool(settings, settings.database_url)
    await lent.run(pid)
    await lent.close()
    with pytest.raises(asyncpg.exceptions.InterfaceError) as refused:
        await lent.run(pid)
    assert is_outage(refused.value)
