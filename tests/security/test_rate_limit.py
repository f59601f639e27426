"""Rate limits: token buckets in Redis per client (no key) and per key (writes); 429 with
Retry-After; fail open when Redis is down, saying so in the logs and a metric."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client import REGISTRY

from app.core.settings import Settings
from app.main import create_app
from tests.helpers import ADMIN, create_key, put_unit

TIGHT = {"rate_public_per_minute": 60, "rate_public_burst": 3,
         "rate_write_per_minute": 60, "rate_write_burst": 2}  # fmt: skip

Clients = Callable[..., Any]


@asynccontextmanager
async def limited_app(settings: Settings, **changes: Any) -> AsyncIterator[Clients]:
    app = create_app(settings.model_copy(update={**TIGHT, **changes}))
    async with LifespanManager(app):

        def client_from(address: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=(address, 40000))
            return httpx.AsyncClient(transport=transport, base_url="http://chiso.test")

        yield client_from


@pytest.mark.parametrize("store", ["local", "redis"])
async def test_public_polling_is_limited_per_client_with_retry_after(
    settings: Settings, clean: None, store: str
) -> None:
    async with (
        limited_app(settings, rate_public_store=store) as client_from,
        client_from("203.0.113.7") as poller,
        client_from("198.51.100.1") as other,
    ):
        answers = [(await poller.get("/v1/units")).status_code for _ in range(4)]
        assert answers == [200, 200, 200, 429]
        limited = await poller.get("/v1/units")
        assert limited.status_code == 429
        assert limited.headers["content-type"] == "application/problem+json"
        assert limited.json()["type"] == "/problems/rate-limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 2  # one token a second
        assert (await other.get("/v1/units")).status_code == 200  # its own bucket
        assert (await poller.get("/healthz")).status_code == 200  # operations: never


async def test_forwarded_for_counts_only_behind_a_trusted_proxy(
    settings: Settings, clean: None
) -> None:
    spoofed = [{"X-Forwarded-For": f"192.0.2.{n}, 10.0.0.1"} for n in range(5)]
    async with limited_app(settings) as client_from, client_from("10.0.0.1") as proxy:
        answers = [(await proxy.get("/v1/units", headers=h)).status_code for h in spoofed]
        assert answers == [200, 200, 200, 429, 429]  # the header is ignored: one client
    trusting = limited_app(settings, rate_trust_forwarded_for=True)
    async with trusting as client_from, client_from("10.0.0.2") as proxy:
        answers = [(await proxy.get("/v1/units", headers=h)).status_code for h in spoofed]
        assert answers == [200] * 5  # five clients behind the proxy
        same = [(await proxy.get("/v1/units", headers=spoofed[0])).status_code
                for _ in range(3)]  # fmt: skip
        assert same[-1] == 429


async def test_writes_are_limited_per_key_and_reads_with_a_key_are_not(
    settings: Settings, clean: None, client: httpx.AsyncClient
) -> None:
    await put_unit(client, "H01", "province")
    _, desk = await create_key(client, ["dossiers:read", "dossiers:write"], "H01")
    async with limited_app(settings) as client_from, client_from("203.0.113.9") as api:
        body = {"name": "Tỉnh", "level": "province"}
        writes = [(await api.put("/v1/units/H01", json=body, headers=ADMIN)).status_code
                  for _ in range(3)]  # fmt: skip
        assert writes == [200, 200, 429]
        # Another key has its own bucket; reads with a key are not limited.
        assert (await api.post("/v1/dossier-events/batch", json={"events": []},
                               headers=desk)).status_code == 200  # fmt: skip
        reads = [(await api.get("/v1/dossiers", headers=desk)).status_code for _ in range(6)]
        assert reads == [200] * 6


async def test_limits_fail_open_when_redis_is_down_and_say_so(
    settings: Settings, clean: None, caplog: pytest.LogCaptureFixture
) -> None:
    before = REGISTRY.get_sample_value("chiso_rate_limit_fail_open_total") or 0
    dead = "redis://127.0.0.1:1/0"
    with caplog.at_level(logging.WARNING, logger="chiso.ratelimit"):
        async with (
            limited_app(settings, redis_url=dead, rate_public_store="redis") as client_from,
            client_from("203.0.113.10") as poller,
        ):
            answers = [(await poller.get("/v1/units")).status_code for _ in range(6)]
    assert answers == [200] * 6  # beyond the burst of 3, yet served
    assert (REGISTRY.get_sample_value("chiso_rate_limit_fail_open_total") or 0) - before == 6
    assert any("failing open" in r.getMessage() for r in caplog.records)


async def test_public_buckets_in_process_need_no_redis(settings: Settings, clean: None) -> None:
    before = REGISTRY.get_sample_value("chiso_rate_limit_fail_open_total") or 0
    dead = "redis://127.0.0.1:1/0"
    async with (
        limited_app(settings, redis_url=dead) as client_from,
        client_from("203.0.113.11") as poller,
    ):
        answers = [(await poller.get("/v1/units")).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]  # limited all the same: the bucket is local
    assert (REGISTRY.get_sample_value("chiso_rate_limit_fail_open_total") or 0) == before


def test_a_local_bucket_refills_at_its_rate_and_forgets_full_buckets() -> None:
    from app.core.ratelimit import Limit, LocalBuckets

    buckets = LocalBuckets(Limit(per_minute=60, burst=2))  # one token a second, two at most
    assert buckets.take("a", 100.0) is None
    assert buckets.take("a", 100.0) is None
    assert buckets.take("a", 100.0) == 1.0  # empty: a whole token to wait for
    assert buckets.take("a", 100.5) == 0.5  # half refilled
    assert buckets.take("a", 101.0) is None  # one token back after a second
    assert buckets.take("b", 101.0) is None
    buckets._forget_full(104.0)  # "a" (0 at 101) and "b" (1 at 101) are full again by 104
    assert buckets.state == {}


def test_defaults_are_generous_and_zero_turns_a_limit_off() -> None:
    defaults = Settings(environment="development")
    assert defaults.rate_public_per_minute >= 600
    assert defaults.rate_write_per_minute >= 600
    assert not defaults.rate_trust_forwarded_for
    assert defaults.rate_public_store == "local"
    off = Settings(environment="development", rate_public_per_minute=0, rate_write_per_minute=0)
    from app.core.ratelimit import limits

    assert limits(off) == (None, None)
