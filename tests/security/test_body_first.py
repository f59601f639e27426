"""The key is checked before the body is read, and every route caps its body.

An unauthenticated write must cost nothing: no byte of its body is read. httpx's ASGI transport
pulls a streamed body lazily, one chunk per ``receive()``, so counting the chunks a generator
yields counts what the server read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import Depends, FastAPI
from sqlalchemy import event
from starlette.types import Message

from app.core.auth import Principal, Scope, require
from app.core.gate import GateMiddleware
from app.core.ratelimit import RateLimiter
from app.core.settings import Settings
from app.main import create_app
from tests.helpers import ADMIN, create_key, put_unit

MB = 1024 * 1024
SMALL = 16 * 1024  # the default CHISO_MAX_SMALL_BODY_BYTES


class Upload:
    """A body streamed in ``chunks`` chunks of ``size`` bytes; counts what was pulled."""

    def __init__(self, chunks: int, size: int = 64 * 1024) -> None:
        self.chunks, self.size, self.pulled = chunks, size, 0

    @property
    def length(self) -> int:
        return self.chunks * self.size

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.pulled += 1
            yield b" " * self.size


def declared(upload: Upload, headers: dict[str, str] | None = None) -> dict[str, str]:
    return {"content-type": "application/json", "content-length": str(upload.length),
            **(headers or {})}  # fmt: skip


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status


@pytest.mark.parametrize("length", ["declared", "streamed"])
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer chiso_0123456789ab_unknownsecret", "Bearer junk", "Basic YWRtaW46YWRtaW4="],
)
async def test_a_write_without_a_valid_key_is_refused_before_its_body_is_read(
    client: httpx.AsyncClient, length: str, authorization: str | None
) -> None:
    upload = Upload(chunks=320)  # 20 MB
    headers = {"content-type": "application/json"}
    if length == "declared":
        headers = declared(upload)  # else httpx streams it chunked, of unknown length
    if authorization:
        headers["authorization"] = authorization
    response = await client.post("/v1/dossier-events/batch", content=upload, headers=headers)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert upload.pulled == 0


async def test_the_key_is_looked_up_once_and_in_the_request_s_own_session(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await put_unit(client, "H01", "province")
    _, headers = await create_key(client, ["admin"], "H01")
    statements: list[str] = []
    checkouts: list[object] = []

    def executed(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    def checked_out(*args: Any) -> None:
        checkouts.append(args)

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", executed)
    event.listen(engine.pool, "checkout", checked_out)
    try:
        body = {"name": "Tỉnh An Giang", "level": "province"}
        assert (await client.put("/v1/units/H01", json=body, headers=headers)).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", executed)
        event.remove(engine.pool, "checkout", checked_out)
    assert sum("FROM api_keys" in s for s in statements) == 1, statements
    assert len(checkouts) == 1  # the gate's lookup and the update share one connection


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/dossier-events"),
        ("POST", "/v1/indicator-values"),
        ("POST", "/v1/webhooks"),
        ("POST", "/v1/api-keys"),
        ("PUT", "/v1/units/H01"),
        ("PUT", "/v1/procedures/P3"),
        ("PUT", "/v1/calendar/days/2026-03-03"),
    ],
)
async def test_small_routes_refuse_a_body_over_the_small_cap_unread(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    upload = Upload(chunks=17, size=1024)  # 17 KB, one KB over the cap
    response = await client.request(method, path, content=upload, headers=declared(upload, ADMIN))
    assert_problem(response, 413)
    assert (
        response.json()["detail"]
        == f"The request body exceeds {SMALL} bytes, this endpoint's limit."
    )
    assert upload.pulled == 0  # told by Content-Length


async def test_a_streamed_body_is_counted_and_never_buffered_past_the_cap(
    client: httpx.AsyncClient,
) -> None:
    upload = Upload(chunks=100, size=1024)  # 100 KB of unknown length
    headers = ADMIN | {"content-type": "application/json"}
    response = await client.post("/v1/dossier-events", content=upload, headers=headers)
    assert_problem(response, 413)
    assert upload.pulled == 17  # 16 KB is the cap: the 17th KB is the one that overflows


@pytest.mark.parametrize("path", ["/v1/dossier-events/batch", "/v1/portal/dossiers"])
async def test_batches_keep_the_large_cap(client: httpx.AsyncClient, path: str) -> None:
    # 200 KB of whitespace around an empty batch: far over the small cap, well within the large.
    empty = b'{"events": []}' if path.endswith("batch") else b"[]"
    body = b" " * (200 * 1024) + empty
    headers = ADMIN | {"content-type": "application/json"}
    response = await client.post(path, content=body, headers=headers)
    assert response.status_code in (200, 422), response.text[:300]  # parsed, not refused 413


Admin = Annotated[Principal, Depends(require(Scope.admin))]


def gated_app(settings: Settings) -> FastAPI:
    """Two routes behind the gate: one wants a key, one (like a login) takes its body as is."""
    app = FastAPI()

    @app.post("/keyed")
    async def keyed(_: Admin, body: dict[str, Any]) -> dict[str, int]:
        return {"fields": len(body)}

    @app.post("/login")
    async def login(body: dict[str, Any]) -> dict[str, int]:
        return {"fields": len(body)}

    app.add_middleware(
        GateMiddleware, settings=settings, limiter=RateLimiter(settings), bulk_routes=()
    )
    return app


async def call(app: FastAPI, path: str, body: bytes) -> tuple[int, int]:
    """POST ``body`` in 1 KB messages straight to the ASGI app: (status, receive() calls)."""
    pieces = [body[i : i + 1024] for i in range(0, len(body), 1024)]
    calls = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal calls
        calls += 1
        if calls > len(pieces):
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": pieces[calls - 1], "more_body": calls < len(pieces)}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": b"", "client": ("203.0.113.5", 5000), "server": ("chiso.test", 80),
        "headers": [(b"host", b"chiso.test"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    }  # fmt: skip
    await app(scope, receive, send)
    return sent[0]["status"], calls


async def test_the_gate_reads_only_bodies_it_should(settings: Settings) -> None:
    app = gated_app(settings)
    body = b'{"user": "chiso", "password": "' + b"x" * 4000 + b'"}'
    assert await call(app, "/keyed", body) == (401, 0)  # a route that wants a key: unread
    assert await call(app, "/login", body) == (200, 4)  # credentials in the body: read
    assert await call(app, "/login", b'{"x": "' + b"y" * SMALL + b'"}') == (413, 0)


async def test_a_key_checked_while_the_database_is_down_is_503(settings: Settings) -> None:
    down = settings.model_copy(update={"database_url": "postgresql://chiso@127.0.0.1:1/chiso"})
    app = create_app(down)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://chiso.test") as client:
            response = await client.post(
                "/v1/dossier-events",
                json={"event_id": "e1"},
                headers={"Authorization": "Bearer chiso_0123456789ab_somesecret"},
            )
    assert_problem(response, 503)
    assert response.headers["retry-after"] == "1"


async def test_the_schema_states_each_route_s_cap(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    single = paths["/v1/dossier-events"]["post"]["responses"]["413"]["description"]
    assert single == "The body exceeds CHISO_MAX_SMALL_BODY_BYTES (16 KB by default)"
    batch = paths["/v1/dossier-events/batch"]["post"]["responses"]["413"]["description"]
    assert "CHISO_MAX_SMALL_BODY_BYTES" not in batch
