"""Texts for people follow Accept-Language (Vietnamese unless English is asked for), and the
response cache keeps one answer per language, never handing one language's to the other."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from app.core import language
from app.core.response_cache import ResponseCache, ResponseCacheMiddleware


@pytest.mark.parametrize(
    ("header", "chosen"),
    [
        (None, "vi"),
        ("", "vi"),
        ("vi", "vi"),
        ("en", "en"),
        ("en-US,en;q=0.9", "en"),  # an English browser
        ("vi-VN,vi;q=0.9,en-US;q=0.8,en;q=0.7", "vi"),  # a Vietnamese one
        ("en-GB;q=0.5, vi;q=0.8", "vi"),  # the higher weight wins, wherever it stands
        ("fr-FR,fr;q=0.9,en;q=0.3", "en"),  # English is the only one it takes of the two
        ("fr-FR,de", "vi"),  # neither: Vietnamese
        ("*", "vi"),
        ("en;q=0", "vi"),  # "not English"
        ("en, vi", "en"),  # a tie: the first listed
        ("en;q=abc, vi;q=0.1", "vi"),  # a broken weight counts for nothing
        ("EN-us", "en"),
    ],
)
def test_the_language_of_an_accept_language_header(header: str | None, chosen: str) -> None:
    assert language.negotiate(header) == chosen
    if header is not None:
        assert language.negotiate(header.encode()) == chosen


def greeting_app() -> tuple[FastAPI, dict[str, int]]:
    """A public, cacheable answer written in the request's language, counting its calls."""
    calls = {"n": 0}
    app = FastAPI()
    app.state.response_cache = ResponseCache(30)
    app.add_middleware(ResponseCacheMiddleware, cache=app.state.response_cache)

    @app.get("/greeting")
    async def greeting(request: Request) -> Response:
        calls["n"] += 1
        lang = language.of_request(request)
        text = "Xin chào" if lang == "vi" else "Hello"
        return Response(
            f'{{"text": "{text}", "answered": {calls["n"]}}}',
            media_type="application/json",
            headers={
                "ETag": f'"{lang}"', "Cache-Control": "public, max-age=30",
                **language.headers(lang),
            },
        )  # fmt: skip

    return app, calls


async def test_the_response_cache_keeps_one_answer_per_language() -> None:
    app, calls = greeting_app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

        async def get(accept_language: str | None) -> httpx.Response:
            headers = {"Accept-Language": accept_language} if accept_language is not None else {}
            return await client.get("/greeting", headers=headers)

        vi = await get(None)
        en = await get("en-US,en;q=0.9")
        assert (vi.json(), en.json()) == (
            {"text": "Xin chào", "answered": 1}, {"text": "Hello", "answered": 2},
        )  # fmt: skip
        # Other spellings of the same choice are served from memory, in their language.
        assert (await get("vi-VN,vi;q=0.9")).json() == {"text": "Xin chào", "answered": 1}
        assert (await get("fr")).json() == {"text": "Xin chào", "answered": 1}
        assert (await get("en")).json() == {"text": "Hello", "answered": 2}
        again = await get("en-GB")
        assert again.headers["content-language"] == "en"
        assert again.headers["vary"] == "Accept-Language"
        assert calls["n"] == 2
