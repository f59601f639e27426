"""Rate limits: token buckets per client address (no key, a bad key, failed authentications)
and per issued key (writes); 429 with Retry-After; fail open when Redis is down, saying so in
the logs and a metric; X-Forwarded-For trusted only when configured, by uvicorn too."""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from app.core.settings import Settings
from app.main import create_app
from tests.helpers import ADMIN, create_key, put_unit

TIGHT = {"rate_public_per_minute": 60, "rate_public_burst": 3,
         "rate_write_per_minute": 60, "rate_write_burst": 2}  # fmt: skip

Clients = Callable[..., Any]


@asynccontextmanager
async def limited(settings: Settings, **changes: Any) -> AsyncIterator[tuple[FastAPI, Clients]]:
    """An app of its own with tight limits, and clients calling it from a chosen address."""
    app = create_app(settings.model_copy(update={**TIGHT, **changes}))
    async with LifespanManager(app):

        def client_from(address: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=(address, 40000))
            return httpx.AsyncClient(transport=transport, base_url="http://chiso.test")

        yield app, client_from


@asynccontextmanager
async def limited_app(settings: Settings, **changes: Any) -> AsyncIterator[Clients]:
    async with limited(settings, **changes) as (_, client_from):
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


def test_a_local_bucket_refills_at_its_rate() -> None:
    from app.core.ratelimit import Draw, Limit, LocalBuckets

    one_a_second = Limit(per_minute=60, burst=2)  # one token a second, two at most
    buckets = LocalBuckets(max_buckets=100)
    a = [Draw("public", "a", one_a_second)]
    assert buckets.draw(a, 100.0) is None
    assert buckets.draw(a, 100.0) is None
    refused = buckets.draw(a, 100.0)
    assert refused is not None and refused.retry_after == 1.0  # empty: a whole token to wait
    refused = buckets.draw(a, 100.5)
    assert refused is not None and refused.retry_after == 0.5  # half refilled
    assert buckets.draw(a, 101.0) is None  # one token back after a second


def test_a_draw_from_two_buckets_takes_from_both_or_from_neither() -> None:
    from app.core.ratelimit import Draw, Limit, LocalBuckets

    roomy, tight = Limit(per_minute=60, burst=10), Limit(per_minute=60, burst=1)
    buckets = LocalBuckets(max_buckets=100)
    both = [Draw("public", "public", roomy), Draw("auth_failure", "failures", tight)]
    assert buckets.draw(both, 100.0) is None
    refused = buckets.draw(both, 100.0)
    assert refused is not None and refused.draw.key == "failures"
    assert buckets.state["public"] == (9.0, 100.0)  # the refused draw took nothing
    look = [Draw("public", "public", roomy), Draw("auth_failure", "failures", tight, cost=0)]
    refused = buckets.draw(look, 100.0)  # a look at an empty bucket is refused too
    assert refused is not None and refused.draw.kind == "auth_failure"
    assert buckets.draw(look, 101.0) is None  # refilled: looking takes nothing from it
    assert buckets.state["failures"] == (0.0, 100.0)
    assert buckets.state["public"] == (9.0, 101.0)


def test_local_buckets_are_bounded_dropping_the_least_recently_used() -> None:
    from app.core.ratelimit import Draw, Limit, LocalBuckets

    limit = Limit(per_minute=60, burst=5)
    buckets = LocalBuckets(max_buckets=3)
    for client in ("a", "b", "c", "a", "d"):  # "b" is the least recently used when "d" comes
        assert buckets.draw([Draw("public", client, limit)], 100.0) is None
    assert list(buckets.state) == ["c", "a", "d"]


def test_defaults_are_generous_and_zero_turns_a_limit_off() -> None:
    defaults = Settings(environment="development")
    assert defaults.rate_public_per_minute >= 600
    assert defaults.rate_write_per_minute >= 600
    assert not defaults.rate_trust_forwarded_for
    assert defaults.rate_public_store == "local"
    off = Settings(environment="development", rate_public_per_minute=0, rate_write_per_minute=0)
    from app.core.ratelimit import limits

    assert limits(off) == (None, None)


EVENT = {"event_id": "rate-1", "dossier_code": "H01-260302-0001", "unit_code": "H01",
         "procedure_code": "P3", "status": 2, "occurred_at": "2026-03-02T08:00:00+07:00",
         "channel": 1}  # fmt: skip


def fake_key() -> dict[str, str]:
    """A well-formed key nobody issued: a guess at a prefix and a secret."""
    return {"Authorization": f"Bearer chiso_{secrets.token_hex(6)}_{secrets.token_urlsafe(24)}"}


@pytest.mark.parametrize("store", ["local", "redis"])
@pytest.mark.parametrize(
    "authorization", ["Bearer junk", "Bearer chiso_0123456789ab_guessed", "Basic YWRtaW46YWRtaW4="]
)
async def test_a_bad_key_is_401_on_public_routes_and_drawn_from_the_anonymous_bucket(
    settings: Settings, clean: None, authorization: str, store: str
) -> None:
    async with (
        limited_app(settings, response_cache_seconds=30, rate_public_store=store) as client_from,
        client_from("203.0.113.20") as poller,
        client_from("198.51.100.20") as other,
    ):
        assert (await other.get("/v1/units")).status_code == 200  # now in the response cache
        junk = {"Authorization": authorization}
        answers = [(await poller.get("/v1/units", headers=junk)).status_code for _ in range(4)]
        assert answers == [401, 401, 401, 429]  # neither the cache nor the app answers a bad key
        assert (await poller.get("/v1/units")).status_code == 429  # the same bucket as no key
        assert (await other.get("/v1/units")).status_code == 200


@pytest.mark.parametrize("store", ["local", "redis"])
async def test_failed_authentications_are_limited_per_address(
    settings: Settings, clean: None, store: str
) -> None:
    three_a_minute = {"rate_public_per_minute": 0, "rate_write_per_minute": 0,
                      "rate_auth_failures_per_minute": 3, "rate_public_store": store}  # fmt: skip
    async with (
        limited_app(settings, **three_a_minute) as client_from,
        client_from("203.0.113.30") as guesser,
        client_from("198.51.100.30") as other,
    ):
        guesses = [await guesser.post("/v1/dossier-events", json=EVENT, headers=fake_key())
                   for _ in range(4)]  # fmt: skip
        assert [r.status_code for r in guesses] == [401, 401, 401, 429]
        refused = guesses[-1]
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["retry-after"] == "20"  # three a minute: one every 20 s
        assert refused.json()["detail"] == (
            "More than 3 failed authentications per minute from this address; retry in 20 s."
        )
        # Until the bucket refills, nothing without a valid key: not even a key-less read.
        assert (await guesser.get("/v1/units")).status_code == 429
        assert (await guesser.get("/v1/api-keys", headers=ADMIN)).status_code == 200
        assert (await other.post("/v1/dossier-events", json=EVENT,
                                 headers=fake_key())).status_code == 401  # fmt: skip


async def test_redis_holds_buckets_of_issued_keys_only(
    settings: Settings, client: httpx.AsyncClient, redis: Redis
) -> None:
    await put_unit(client, "H01", "province")
    key_id, desk = await create_key(client, ["dossiers:write"], "H01")
    await redis.delete(*await redis.keys("chiso:rate:*"))  # the shared app's own buckets
    async with (
        limited_app(settings, rate_public_per_minute=0) as client_from,
        client_from("203.0.113.40") as api,
    ):
        for _ in range(5):
            guess = await api.post("/v1/dossier-events/batch", json={"events": []},
                                   headers=fake_key())  # fmt: skip
            assert guess.status_code == 401
        assert await redis.keys("chiso:rate:*") == []  # nothing for keys nobody issued
        batch = await api.post("/v1/dossier-events/batch", json={"events": []}, headers=desk)
        assert batch.status_code == 200
    assert await redis.keys("chiso:rate:*") == [f"chiso:rate:write:{key_id}".encode()]
    assert 0 < await redis.pttl(f"chiso:rate:write:{key_id}") <= 3000  # a burst of 2 at 1/s


async def test_local_buckets_are_bounded_by_rate_max_buckets(
    settings: Settings, clean: None
) -> None:
    async with limited(settings, rate_max_buckets=100) as (app, client_from):
        for n in range(150):
            async with client_from(f"10.1.{n // 100}.{n % 100}") as poller:
                assert (await poller.get("/v1/no-such-thing")).status_code == 404
        buckets = app.state.rate_limiter.local.state
        assert len(buckets) == 100
        assert "chiso:rate:public:10.1.1.49" in buckets  # the most recent are kept
        assert "chiso:rate:public:10.1.0.0" not in buckets


async def test_ipv6_clients_share_a_bucket_per_64(settings: Settings, clean: None) -> None:
    async with (
        limited_app(settings) as client_from,
        client_from("2001:db8:1:2::1") as first,
        client_from("2001:db8:1:2:ffff:ffff:ffff:ffff") as same_64,
        client_from("2001:db8:1:3::1") as next_64,
    ):
        assert [(await first.get("/v1/units")).status_code for _ in range(3)] == [200] * 3
        assert (await same_64.get("/v1/units")).status_code == 429
        assert (await next_64.get("/v1/units")).status_code == 200


@pytest.mark.parametrize(("trust", "expected"), [(False, [200, 200, 200, 429]), (True, [200] * 4)])
async def test_uvicorn_takes_the_client_from_x_forwarded_for_only_when_told(
    settings: Settings, clean: None, trust: bool, expected: list[int]
) -> None:
    """A real uvicorn with the flags `chiso api` and `chiso run` give it; the client connects
    from 127.0.0.1, which uvicorn trusts by default."""
    from uvicorn.main import main as uvicorn_command

    from app.cli import proxy_flags

    tuned = settings.model_copy(update={**TIGHT, "rate_trust_forwarded_for": trust})
    flags = uvicorn_command.make_context("uvicorn", [*proxy_flags(tuned), "app.main:app"]).params
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(tuned),
            proxy_headers=flags["proxy_headers"],
            forwarded_allow_ips=flags["forwarded_allow_ips"],
            log_config=None,
            access_log=False,
        )
    )
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as spoofer:
            answers = [
                (
                    await spoofer.get("/v1/units", headers={"X-Forwarded-For": f"192.0.2.{n}"})
                ).status_code
                for n in range(4)
            ]
    finally:
        server.should_exit = True
        await serving
        listening.close()
    assert answers == expected
