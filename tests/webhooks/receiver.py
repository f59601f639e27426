"""A webhook receiver on a real port of 127.0.0.1 (uvicorn in the test's event loop): it
answers from a script and keeps every request it got, as its server saw it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Got:
    host: str  # the Host header
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LocalReceiver:
    replies: list[Reply] = field(default_factory=list)
    default: Reply = field(default_factory=Reply)
    got: list[Got] = field(default_factory=list)
    port: int = 0
    scheme: str = "http"

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    async def answer(self, request: Request) -> Response:
        self.got.append(
            Got(
                host=request.headers.get("host", ""),
                path=request.url.path,
                headers=dict(request.headers),
                body=await request.body(),
            )
        )
        reply = self.replies.pop(0) if self.replies else self.default
        return Response(reply.body, status_code=reply.status, headers=reply.headers)


@contextlib.asynccontextmanager
async def local_receiver(
    *replies: Reply,
    default: Reply | None = None,
    certificate: tuple[Path, Path] | None = None,
) -> AsyncIterator[LocalReceiver]:
    """Serve on a free port of 127.0.0.1; ``certificate`` (cert, key) serves https."""
    receiver = LocalReceiver(
        replies=list(replies),
        default=default or Reply(),
        scheme="https" if certificate else "http",
    )
    app = Starlette(routes=[Route("/{path:path}", receiver.answer, methods=["POST", "GET"])])
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        ssl_certfile=str(certificate[0]) if certificate else None,
        ssl_keyfile=str(certificate[1]) if certificate else None,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises what stopped the server from starting
        await asyncio.sleep(0.01)
    receiver.port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task
