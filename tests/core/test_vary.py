"""Every response's `Vary` names each request header once, compressed or not, cached or not."""

from __future__ import annotations

import httpx
from asgi_lifespan import LifespanManager

from app.core.http_cache import vary_once
from app.core.settings import Settings
from app.main import create_app

GZIP = {"Accept-Encoding": "gzip"}


def vary_names(response: httpx.Response) -> list[str]:
    return [n.strip() for v in response.headers.get_list("vary") for n in v.split(",")]


async def test_a_compressed_asset_varies_on_accept_encoding_once(
    client: httpx.AsyncClient,
) -> None:
    # rankings.js is larger than the gzip threshold: compressed, and the app already says it
    # varies on Accept and Accept-Encoding.
    asset = await client.get("/dashboard/static/rankings.js", headers=GZIP)
    assert asset.headers["content-encoding"] == "gzip"
    assert asset.headers.get_list("vary") == ["Accept, Accept-Encoding"]
    page = await client.get("/dashboard/rankings", headers=GZIP)
    assert page.headers.get_list("vary") == ["Accept, Accept-Encoding"]
    # Not compressed (the client takes no gzip): the same one header.
    plain = await client.get("/dashboard/static/rankings.js", headers={"Accept-Encoding": ""})
    assert "content-encoding" not in plain.headers
    assert plain.headers.get_list("vary") == ["Accept, Accept-Encoding"]
    # A conditional GET: 304 with the same validators.
    again = await client.get(
        "/dashboard/static/rankings.js", headers={**GZIP, "If-None-Match": asset.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.headers.get_list("vary") == ["Accept, Accept-Encoding"]
    # A response without a Vary of its own gets gzip's, once.
    schema = await client.get("/openapi.json", headers=GZIP)
    assert schema.headers.get_list("vary") == ["Accept-Encoding"]


async def test_answers_from_the_response_cache_vary_once(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"response_cache_seconds": 5}))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://chiso.test") as c:
            miss = await c.get("/dashboard/static/unit.js", headers=GZIP)
            hit = await c.get("/dashboard/static/unit.js", headers=GZIP)
            not_modified = await c.get(
                "/dashboard/static/unit.js", headers={**GZIP, "If-None-Match": hit.headers["etag"]}
            )
    assert hit.content == miss.content
    for response in (miss, hit, not_modified):
        assert vary_names(response) == ["Accept", "Accept-Encoding"], response.headers


def test_vary_headers_merge_into_one_naming_each_header_once() -> None:
    headers = [
        (b"content-type", b"text/plain"),
        (b"vary", b"Accept, Accept-Encoding"),
        (b"etag", b'"x"'),
        (b"Vary", b"accept-encoding, Accept-Language"),
    ]
    assert vary_once(headers) == [
        (b"content-type", b"text/plain"),
        (b"vary", b"Accept, Accept-Encoding, Accept-Language"),
        (b"etag", b'"x"'),
    ]
    assert vary_once([(b"vary", b"Accept"), (b"vary", b"*")]) == [(b"vary", b"*")]
    no_vary = [(b"content-type", b"text/plain")]
    assert vary_once(no_vary) == no_vary
