"""API keys from each process's memory: a known key costs no database round trip, a revoked
key is refused by every process within a second — through the LISTEN connection, and through
the cache's own short memory when that connection is down — and unknown tokens are never kept.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.auth import KeyCache, Principal
from app.core.settings import Settings
from tests.conftest import plain_url
from tests.helpers import ADMIN, app_of, create_key, instance, put_unit

DESK = Principal("desk", frozenset({"dossiers:read"}), "H01", key_id="k-1")
OTHER = Principal("other", frozenset({"dossiers:read"}), None, key_id="k-2")
THIRD = Principal("third", frozenset({"dossiers:read"}), None, key_id="k-3")


def test_an_entry_lives_while_the_listener_confirms_and_a_second_without_it() -> None:
    cache = KeyCache(10, stale_after=1.0, max_age=60.0)
    digest = KeyCache.digest("chiso_abc_secret")
    cache.put(digest, DESK, 100.0, cache.generation)
    # No listener has ever confirmed: a second from the lookup, no more.
    assert cache.get(digest, 100.9) == DESK
    assert cache.get(digest, 101.0) is None
    assert cache.entries == {}  # dropped, not kept for later
    # Listening: served as long as the last confirmation is younger than a second.
    cache.put(digest, DESK, 200.0, cache.generation)
    cache.confirm(230.0)
    assert cache.get(digest, 230.9) == DESK
    cache.confirm(259.5)
    assert cache.get(digest, 259.9) == DESK
    assert cache.get(digest, 260.0) is None  # 60 s after its lookup: whatever the listener says
    cache.put(digest, DESK, 300.0, cache.generation)
    cache.confirm(300.2)
    cache.listener_down()
    assert cache.get(digest, 300.99) == DESK  # still within a second of its lookup
    assert cache.get(digest, 301.0) is None


def test_eviction_by_key_id_and_a_lookup_racing_it_is_not_kept() -> None:
    cache = KeyCache(10)
    digest = KeyCache.digest("chiso_abc_secret")
    cache.put(digest, DESK, 10.0, cache.generation)
    cache.confirm(10.0)
    cache.evict("k-2")  # another key: this one stays
    assert cache.get(digest, 10.5) == DESK
    cache.evict("k-1")
    assert cache.get(digest, 10.5) is None
    started = cache.generation  # a lookup begins, reads the row, ...
    cache.evict("k-9")  # ... a change to some key is announced meanwhile ...
    cache.put(digest, DESK, 11.0, started)  # ... so what it read is not kept
    assert cache.entries == {}
    cache.put(digest, DESK, 11.0, cache.generation)
    cache.evict("*")  # a TRUNCATE: everything goes
    assert cache.entries == {} and cache.by_key_id == {}


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    cache = KeyCache(2)
    cache.confirm(0.0)
    first, second, third = (KeyCache.digest(f"chiso_p{n}_s") for n in range(3))
    cache.put(first, DESK, 0.0, cache.generation)
    cache.put(second, OTHER, 0.0, cache.generation)
    assert cache.get(first, 0.1) == DESK  # used: now the most recent
    cache.put(third, THIRD, 0.0, cache.generation)
    assert list(cache.entries) == [first, third]
    assert cache.by_key_id == {"k-1": first, "k-3": third}


def lookups(app: FastAPI) -> tuple[list[str], Callable[[], None]]:
    """The key lookups ``app`` sends to PostgreSQL from now on, and how to stop counting."""
    seen: list[str] = []

    def executed(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM api_keys" in statement:
            seen.append(statement)

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", executed)
    return seen, lambda: event.remove(engine, "before_cursor_execute", executed)


async def listening(client: httpx.AsyncClient) -> None:
    cache: KeyCache = app_of(client).state.key_cache
    deadline = time.monotonic() + 10
    while time.monotonic() - cache.confirmed_at > 0.5:
        assert time.monotonic() < deadline, "the key change listener never connected"
        await asyncio.sleep(0.02)


async def revoke_in_sql(engine: AsyncEngine, key_id: str) -> None:
    """Revoke a key as an operator's own SQL would: no chiso code involved."""
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE api_keys SET revoked_at = now() WHERE id = :id"), {"id": key_id}
        )


async def refused_within(client: httpx.AsyncClient, headers: dict[str, str]) -> float:
    """How long after now ``client`` still accepted the key: the seconds from now to the
    sending of the last request it answered 200 (0 if none), polling every 20 ms until a 401."""
    started = time.monotonic()
    accepted = 0.0
    while True:
        sent = time.monotonic()
        status = (await client.get("/v1/dossiers", headers=headers)).status_code
        if status == 401:
            return accepted
        assert status == 200 and sent - started < 3, "the revoked key is still accepted"
        accepted = sent - started
        await asyncio.sleep(0.02)


async def test_a_known_key_costs_no_database_round_trip(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await put_unit(client, "H01", "province")
    _, desk = await create_key(client, ["dossiers:read"], "H01")
    await listening(client)
    seen, stop = lookups(app)
    try:
        answers = [(await client.get("/v1/dossiers", headers=desk)).status_code for _ in range(3)]
    finally:
        stop()
    assert answers == [200, 200, 200]
    assert len(seen) == 1  # the first request looked it up; the others found it in memory


async def test_unknown_tokens_are_never_kept(app: FastAPI, client: httpx.AsyncClient) -> None:
    cache: KeyCache = app.state.key_cache
    before = len(cache.entries)
    seen, stop = lookups(app)
    try:
        for n in range(20):
            bad = {"Authorization": f"Bearer chiso_{n:012x}_{'x' * 32}"}
            assert (await client.get("/v1/dossiers", headers=bad)).status_code == 401
        again = {"Authorization": f"Bearer chiso_{0:012x}_{'x' * 32}"}
        assert (await client.get("/v1/dossiers", headers=again)).status_code == 401
    finally:
        stop()
    assert len(cache.entries) == before
    assert len(seen) == 21  # each one looked up: nothing remembered of a token that failed


async def test_a_key_revoked_through_one_process_is_refused_by_another_within_a_second(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    await put_unit(client, "H01", "province")
    async with instance(settings) as first, instance(settings) as second:
        key_id, desk = await create_key(first, ["dossiers:read"], "H01")
        await listening(first)
        await listening(second)
        for api in (first, second):  # both have it in memory now
            assert (await api.get("/v1/dossiers", headers=desk)).status_code == 200
        seen, stop = lookups(app_of(second))
        assert (await second.get("/v1/dossiers", headers=desk)).status_code == 200
        stop()
        assert seen == []  # served from the second process's cache
        revoked = await first.delete(f"/v1/api-keys/{key_id}", headers=ADMIN)
        assert revoked.status_code == 200
        assert (await first.get("/v1/dossiers", headers=desk)).status_code == 401  # at once
        assert await refused_within(second, desk) < 1.0


async def test_an_operator_s_own_update_reaches_every_process(
    settings: Settings, client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await put_unit(client, "H01", "province")
    async with instance(settings) as first, instance(settings) as second:
        key_id, desk = await create_key(first, ["dossiers:read"], "H01")
        await listening(first)
        await listening(second)
        for api in (first, second):
            assert (await api.get("/v1/dossiers", headers=desk)).status_code == 200
        await revoke_in_sql(engine, key_id)  # psql, say: no chiso code involved
        assert await refused_within(first, desk) < 1.0
        assert await refused_within(second, desk) < 1.0


async def test_without_its_listener_a_process_keeps_a_key_at_most_a_second(
    settings: Settings, client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await put_unit(client, "H01", "province")
    key_id, desk = await create_key(client, ["dossiers:read"], "H01")
    # The listener's PostgreSQL does not answer: no notice ever arrives.
    nowhere = "postgresql://postgres@127.0.0.1:1/postgres"
    async with instance(settings, listen_database_url=nowhere) as api:
        app = app_of(api)
        seen, stop = lookups(app)
        try:
            assert (await api.get("/v1/dossiers", headers=desk)).status_code == 200
            assert (await api.get("/v1/dossiers", headers=desk)).status_code == 200
            assert len(seen) == 1  # within the second: from memory
            await asyncio.sleep(1.05)
            assert (await api.get("/v1/dossiers", headers=desk)).status_code == 200
            assert len(seen) == 2  # older than a second: looked up again
        finally:
            stop()
        await revoke_in_sql(engine, key_id)  # the notice reaches no one here
        assert await refused_within(api, desk) < 1.0


async def test_a_listener_cut_off_reconnects_and_meanwhile_keys_live_a_second(
    settings: Settings, client: httpx.AsyncClient, database_url: str
) -> None:
    await put_unit(client, "H01", "province")
    _, desk = await create_key(client, ["dossiers:read"], "H01")
    async with instance(settings) as api:
        cache: KeyCache = app_of(api).state.key_cache
        await listening(api)
        assert (await api.get("/v1/dossiers", headers=desk)).status_code == 200
        assert len(cache.entries) == 1
        conn = await asyncpg.connect(plain_url(database_url))
        try:
            ended = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'chiso-keys' AND datname = current_database()"
            )
        finally:
            await conn.close()
        assert ended >= 1
        deadline = time.monotonic() + 5
        while cache.confirmed_at > float("-inf"):  # the listener notices it is cut off
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        await listening(api)  # and comes back by itself
        assert cache.entries == {}  # what it cached before may have missed a notice
        assert (await api.get("/v1/dossiers", headers=desk)).status_code == 200


@pytest.mark.parametrize("size", [0])
async def test_a_cache_of_size_zero_looks_every_key_up(
    settings: Settings, client: httpx.AsyncClient, size: int
) -> None:
    await put_unit(client, "H01", "province")
    _, desk = await create_key(client, ["dossiers:read"], "H01")
    async with instance(settings, key_cache_size=size) as api:
        seen, stop = lookups(app_of(api))
        try:
            for _ in range(3):
                assert (await api.get("/v1/dossiers", headers=desk)).status_code == 200
        finally:
            stop()
        assert len(seen) == 3
