"""Bare baselines: the ceilings chiso's figures are compared with, on the same machine.

``uvicorn --factory bench.baseline:create_app`` (same uvicorn, same worker count as the API):

- ``POST /events``: parse one JSON event and insert it as one row (asyncpg, no ORM, no auth,
  no validation, no re-derivation) into ``bench_bare_events``, a copy of ``dossier_events``
  with the same indexes;
- ``GET /constant?bytes=N``: a constant JSON body of N bytes with an ``ETag``; a matching
  ``If-None-Match`` gets ``304``.

Raw ``COPY`` (the batch baseline) needs no server: see ``bench/scenarios/batch.py``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from functools import lru_cache
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request, Response

from bench.infra import plain_url

BARE_TABLE = "bench_bare_events"
_TIMES = (
    "occurred_at",
    "due_at",
    "received_at",
    "supplement_supplied_at",
    "supplement_new_due_at",
    "fee_paid_at",
    "apology_issued_at",
    "apology_new_due_at",
)
_COLUMNS = (
    "event_id",
    "dossier_code",
    "unit_code",
    "procedure_code",
    "status",
    "channel",
    "note",
    "applicant_kind",
    "paid_online",
    "has_digitized_parts",
    *_TIMES,
)
INSERT = (
    f"INSERT INTO {BARE_TABLE} ({', '.join(_COLUMNS)}, source) "  # noqa: S608
    f"VALUES ({', '.join(f'${i + 1}' for i in range(len(_COLUMNS)))}, 'bare')"
)


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


@lru_cache(maxsize=64)
def constant_body(size: int) -> tuple[bytes, str]:
    """A JSON document of exactly ``size`` bytes (at least 16) and its ETag."""
    size = max(size, 16)
    padding = "x" * (size - len('{"items":[""]}'))
    body = orjson.dumps({"items": [padding]})
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def create_app() -> FastAPI:
    database_url = os.environ["BENCH_DATABASE_URL"]
    state: dict[str, asyncpg.Pool] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Same pool size as the API's default (CHISO_DB_POOL_SIZE + overflow).
        state["pool"] = await asyncpg.create_pool(plain_url(database_url), min_size=2, max_size=20)
        try:
            yield
        finally:
            await state["pool"].close()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    @app.post("/events", status_code=201)
    async def insert_event(request: Request) -> Response:
        event = orjson.loads(await request.body())
        values = [event.get(c) for c in _COLUMNS[: len(_COLUMNS) - len(_TIMES)]]
        values += [_time(event.get(c)) for c in _TIMES]
        await state["pool"].execute(INSERT, *values)
        return Response(
            orjson.dumps({"event_id": event["event_id"], "result": "stored"}),
            status_code=201,
            media_type="application/json",
        )

    @app.get("/constant")
    async def constant(request: Request, bytes: int = 1024) -> Response:
        body, etag = constant_body(bytes)
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        return Response(body, media_type="application/json", headers={"ETag": etag})

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return app
