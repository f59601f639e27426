"""A webhook subscriber on a real port, served by uvicorn inside the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.faults.conftest import free_port


class Subscriber:
    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[bytes] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def hook(self, request: Request) -> PlainTextResponse:
        self.received.append(await request.body())
        return PlainTextResponse("ok")


@contextlib.asynccontextmanager
async def subscriber() -> AsyncIterator[Subscriber]:
    sub = Subscriber()
    app = Starlette(routes=[Route("/hook", sub.hook, methods=["POST"])])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=sub.port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield sub
    finally:
        server.should_exit = True
        await task
