"""The in-process response cache follows shared-cache rules: what it stores, for whom, how long."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx
from fastapi import FastAPI, Request, Response

from app.core.response_cache import ResponseCache, ResponseCacheMiddleware


def make_app(seconds: float = 30) -> tuple[FastAPI, dict[str, int]]:
    """A counter app: each body says how many times the app itself answered."""
    calls = {"n": 0}
    app = FastAPI()
    app.state.response_cache = ResponseCache(seconds)
    app.add_middleware(ResponseCacheMiddleware, cache=app.state.response_cache)

    def counted(request: Request, control: str, etag: bool = True) -> Response:
        calls["n"] += 1
        headers = {"Cache-Control": control}
        if etag:
            headers["ETag"] = '"v1"'
        if request.headers.get("if-none-match") == '"v1"':
            return Response(status_code=304, headers=headers)
        return Response(f'{{"answered": {calls["n"]}}}', media_type="application/json",
                        headers=headers)  # fmt: skip

    @app.get("/public")
    async def public(request: Request) -> Response:
        return counted(request, "public, max-age=30, must-revalidate")

    @app.get("/private")
    async def private(request: Request) -> Response:
        return counted(request, "private, max-age=30")

    @app.get("/no-etag")
    async def no_etag(request: Request) -> Response:
        return counted(request, "public, max-age=30", etag=False)

    @app.get("/short")
    async def short(request: Request) -> Response:
        return counted(request, "public, max-age=0")

    return app, calls


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_a_public_answer_is_served_from_memory_with_its_headers() -> None:
    app, calls = make_app()
    async with client_for(app) as client:
        first = await client.get("/public", params={"a": "1"})
        second = await client.get("/public", params={"a": "1"})
    assert first.json() == {"answered": 1}
    assert second.json() == {"answered": 1}  # the app was not asked again
    assert second.headers["etag"] == '"v1"'
    assert second.headers["cache-control"] == "public, max-age=30, must-revalidate"
    assert second.headers["content-type"] == "application/json"
    assert calls["n"] == 1


async def test_a_conditional_poll_fills_the_cache_and_gets_304_from_it() -> None:
    app, calls = make_app()
    async with client_for(app) as client:
        polls = [await client.get("/public", headers={"If-None-Match": '"v1"'}) for _ in range(3)]
        plain = await client.get("/public")
    assert [p.status_code for p in polls] == [304, 304, 304]
    assert all(p.content == b"" and p.headers["etag"] == '"v1"' for p in polls)
    # The miss asked the app without the conditional, so the body was there for the next one.
    assert plain.json() == {"answered": 1}
    assert calls["n"] == 1


async def test_a_stale_etag_gets_the_body() -> None:
    app, _ = make_app()
    async with client_for(app) as client:
        await client.get("/public")
        answer = await client.get("/public", headers={"If-None-Match": '"v0", W/"old"'})
    assert answer.status_code == 200
    assert answer.json() == {"answered": 1}


async def test_urls_accept_headers_and_keyed_callers_are_kept_apart() -> None:
    app, calls = make_app()
    async with client_for(app) as client:
        await client.get("/public", params={"a": "1"})
        other_query = await client.get("/public", params={"a": "2"})
        other_accept = await client.get(
            "/public", params={"a": "1"}, headers={"Accept": "text/csv"}
        )
        keyed = await client.get(
            "/public", params={"a": "1"}, headers={"Authorization": "Bearer k"}
        )
        with_cookie = await client.get("/public", params={"a": "1"}, headers={"Cookie": "s=1"})
    assert other_query.json() == {"answered": 2}
    assert other_accept.json() == {"answered": 3}
    assert keyed.json() == {"answered": 4}
    assert with_cookie.json() == {"answered": 5}
    assert calls["n"] == 5


async def test_private_unvalidated_and_expired_answers_are_never_stored() -> None:
    app, calls = make_app()
    async with client_for(app) as client:
        for path in ("/private", "/no-etag", "/short"):
            one = await client.get(path)
            two = await client.get(path)
            assert two.json()["answered"] == one.json()["answered"] + 1, path
    assert calls["n"] == 6


async def test_after_the_configured_seconds_the_app_is_asked_again() -> None:
    app, calls = make_app(seconds=30)
    cache: ResponseCache = app.state.response_cache
    async with client_for(app) as client:
        await client.get("/public")
        (key,) = cache.entries
        cache.entries[key] = replace(cache.entries[key], expires=0.0)  # its time is up
        stale = await client.get("/public")  # answered at once, refreshed behind it
        while key in cache.filling:
            await asyncio.sleep(0.01)
        again = await client.get("/public")
    assert stale.json() == {"answered": 1}
    assert again.json() == {"answered": 2}
    assert calls["n"] == 2


def gated_app() -> tuple[FastAPI, dict[str, int], asyncio.Event]:
    """Each answer waits for the gate, as a slow database would make it."""
    calls = {"n": 0}
    gate = asyncio.Event()
    app = FastAPI()
    app.state.response_cache = ResponseCache(30)
    app.add_middleware(ResponseCacheMiddleware, cache=app.state.response_cache)

    @app.get("/slow")
    async def slow() -> Response:
        calls["n"] += 1
        answer = calls["n"]
        await gate.wait()
        headers = {"ETag": f'"v{answer}"', "Cache-Control": "public, max-age=30"}
        return Response(f'{{"answered": {answer}}}', media_type="application/json", headers=headers)

    return app, calls, gate


async def test_concurrent_misses_cost_one_trip_to_the_app() -> None:
    app, calls, gate = gated_app()
    async with client_for(app) as client:
        polls = [asyncio.create_task(client.get("/slow")) for _ in range(5)]
        await asyncio.sleep(0.05)
        gate.set()
        answers = [(await p).json() for p in polls]
    assert answers == [{"answered": 1}] * 5
    assert calls["n"] == 1


async def test_an_expired_answer_is_served_at_once_and_refreshed_in_the_background() -> None:
    app, calls, gate = gated_app()
    cache: ResponseCache = app.state.response_cache
    async with client_for(app) as client:
        gate.set()
        await client.get("/slow")
        (key,) = cache.entries
        cache.entries[key] = replace(cache.entries[key], expires=0.0)  # due for a refresh
        gate.clear()  # the database is slow now
        stale = await asyncio.wait_for(client.get("/slow"), 1)  # not held up by it
        again = await asyncio.wait_for(client.get("/slow"), 1)  # one refresh, not two
        assert calls["n"] == 2
        gate.set()
        while key in cache.filling:  # the background refresh finishing
            await asyncio.sleep(0.01)
        fresh = await client.get("/slow")
    assert stale.json() == again.json() == {"answered": 1}
    assert fresh.json() == {"answered": 2}
    assert calls["n"] == 2


async def test_past_its_max_age_an_answer_is_not_served_stale() -> None:
    app, _, gate = gated_app()
    cache: ResponseCache = app.state.response_cache
    async with client_for(app) as client:
        gate.set()
        await client.get("/slow")
        (key,) = cache.entries
        cache.entries[key] = replace(cache.entries[key], expires=0.0, stale_until=0.0)
        fresh = await client.get("/slow")
    assert fresh.json() == {"answered": 2}
