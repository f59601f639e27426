"""Write limits per key without a Redis round trip per request: each process draws from its own
bucket and reconciles it with the key's shared bucket in Redis in the background.

Limits here: one write a minute, a burst of 2 — a token refills in 60 s, so every level below
is exact up to the refill of the test's few seconds (compared within 0.05 token: 3 s)."""

from __future__ import annotations

import asyncio
import time
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from app.core.ratelimit import Draw, Limit, LocalBuckets, RedisBuckets, SharedBuckets
from app.core.settings import Settings
from tests.helpers import app_of, create_key, instance, put_unit

SLOW = {"rate_write_per_minute": 1, "rate_write_burst": 2, "rate_public_per_minute": 0}
UNIT = {"name": "Tỉnh thử", "level": "province"}


def process(settings: Settings, **changes: Any) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    """An API process of its own, with write limits low enough to run out in a test."""
    return instance(settings, **{**SLOW, **changes})


def limiter_of(client: httpx.AsyncClient) -> Any:
    return app_of(client).state.rate_limiter


async def tokens(redis: Redis, key_id: str) -> float:
    return float(await redis.hget(f"chiso:rate:write:{key_id}", "tokens") or "nan")


def about(level: float) -> Any:
    return pytest.approx(level, abs=0.05)


async def test_two_processes_share_a_key_s_bucket_through_redis(
    settings: Settings, client: httpx.AsyncClient, redis: Redis
) -> None:
    """Reconciled after each answered write (CHISO_RATE_SYNC_MS=0, the tests' setting)."""
    await put_unit(client, "H01", "province")
    key_id, desk = await create_key(client, ["admin"], "H01")
    async with process(settings) as first, process(settings) as second:
        put = "/v1/units/H01"
        assert (await first.put(put, json=UNIT, headers=desk)).status_code == 200
        assert await tokens(redis, key_id) == about(1.0)  # 2 - 1
        # The second process had never seen the key: its bucket starts full (the overshoot
        # the limits allow, at most a burst per process), and its write is reported at once.
        assert (await second.put(put, json=UNIT, headers=desk)).status_code == 200
        assert await tokens(redis, key_id) == about(0.0)
        assert (await second.put(put, json=UNIT, headers=desk)).status_code == 429
        # The first process learnt the shared level with its own report: 1 left there, but
        # the second process spent it. Its next write is let through once more (owed), ...
        assert (await first.put(put, json=UNIT, headers=desk)).status_code == 200
        assert await tokens(redis, key_id) == about(-1.0)
        # ... and from then on both refuse, for the two minutes the debt takes to refill.
        for api in (first, second):
            refused = await api.put(put, json=UNIT, headers=desk)
            assert refused.status_code == 429
            assert refused.json()["type"] == "/problems/rate-limited"
        # The second last learnt a level of 0: a whole token to wait for, at 1 a minute (less
        # the refill since, a second at most here).
        assert int(refused.headers["retry-after"]) in (59, 60)


async def test_in_the_background_a_process_learns_what_another_spent(
    settings: Settings, client: httpx.AsyncClient, redis: Redis
) -> None:
    await put_unit(client, "H01", "province")
    key_id, desk = await create_key(client, ["admin"], "H01")
    async with (
        process(settings, rate_sync_ms=50) as first,
        process(settings, rate_sync_ms=50) as second,
    ):
        put = "/v1/units/H01"
        assert (await second.put(put, json=UNIT, headers=desk)).status_code == 200
        await until(lambda: tokens(redis, key_id), 1.0)  # the second reported its write
        assert (await first.put(put, json=UNIT, headers=desk)).status_code == 200
        await until(lambda: tokens(redis, key_id), 0.0)  # and the first its own
        # The second keeps the key in view: within a reconciliation it knows the bucket is
        # empty, though it took only one of the two tokens itself.
        deadline = time.monotonic() + 5
        while (await second.put(put, json=UNIT, headers=desk)).status_code != 429:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert (await first.put(put, json=UNIT, headers=desk)).status_code == 429


async def until(read: Any, expected: float) -> None:
    deadline = time.monotonic() + 5
    while await read() != about(expected):
        assert time.monotonic() < deadline, f"never reached {expected}"
        await asyncio.sleep(0.02)


async def test_without_redis_a_process_still_limits_and_counts_what_it_could_not_share(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    await put_unit(client, "H01", "province")
    _, desk = await create_key(client, ["admin"], "H01")
    before = REGISTRY.get_sample_value("chiso_rate_limit_fail_open_total") or 0
    async with process(settings, redis_url="redis://127.0.0.1:1/0") as api:
        answers = [
            (await api.put("/v1/units/H01", json=UNIT, headers=desk)).status_code for _ in range(3)
        ]
    assert answers == [200, 200, 429]  # the burst of 2, in this process
    after = REGISTRY.get_sample_value("chiso_rate_limit_fail_open_total") or 0
    assert after - before == 2  # two writes no reconciliation could report


async def test_shutdown_reports_what_was_spent_since_the_last_reconciliation(
    settings: Settings, client: httpx.AsyncClient, redis: Redis
) -> None:
    await put_unit(client, "H01", "province")
    key_id, desk = await create_key(client, ["admin"], "H01")
    async with process(settings, rate_sync_ms=60_000) as api:  # no reconciliation meanwhile
        assert (await api.put("/v1/units/H01", json=UNIT, headers=desk)).status_code == 200
        assert await redis.exists(f"chiso:rate:write:{key_id}") == 0
    assert await tokens(redis, key_id) == about(1.0)


async def test_a_sync_adds_the_spending_and_keeps_what_was_spent_meanwhile(
    redis: Redis, clean: None
) -> None:
    local = LocalBuckets(100)
    shared = SharedBuckets(local, RedisBuckets())
    draw = Draw("write", "chiso:rate:write:k", Limit(1, 5))  # 1 a minute, burst 5
    now = time.monotonic()
    assert all(shared.draw(draw, now) is None for _ in range(3))
    assert shared.unreported == 3
    await redis.hset("chiso:rate:write:k", mapping={"tokens": "4", "ts": "0"})  # others spent 1
    await shared.sync(redis)  # 4 (refilled up to 5: the ts is long past) - 3 = 2
    assert shared.unreported == 0
    assert float(await redis.hget("chiso:rate:write:k", "tokens") or 0) == about(2.0)
    level, _ = local.state["chiso:rate:write:k"]
    assert level == about(2.0)
    # A key idle here for longer than WATCH_SECONDS is no longer reconciled.
    shared.watched["chiso:rate:write:k"].drawn_at -= SharedBuckets.WATCH_SECONDS + 1
    await shared.sync(redis)
    assert shared.watched == {}
