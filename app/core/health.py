"""Liveness, readiness and metrics endpoints for orchestrators and monitoring."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.core import repository
from app.core.errors import PROBLEM_JSON
from app.core.observability import metrics_response

router = APIRouter(tags=["operations"])

_CHECK_TIMEOUT = 2.0


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _database(request: Request) -> tuple[str, str]:
    """Returns (database state, migrations state)."""
    async with request.app.state.engine.connect() as conn:
        current = await repository.migration_versions(conn)
    heads: set[str] = request.app.state.migration_heads
    return "ok", "ok" if current == heads else f"at {sorted(current)}, head is {sorted(heads)}"


async def _redis(request: Request) -> str:
    await request.app.state.queue.ping()
    return "ok"


@router.get(
    "/readyz",
    summary="Database reachable, migrations at head, Redis reachable",
    responses={503: {"description": "A dependency is down; the failing part is named"}},
)
async def readyz(request: Request) -> Response:
    checks: dict[str, str] = {}
    try:
        checks["database"], checks["migrations"] = await asyncio.wait_for(
            _database(request), _CHECK_TIMEOUT
        )
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
        checks["migrations"] = "unknown"
    try:
        checks["redis"] = await asyncio.wait_for(_redis(request), _CHECK_TIMEOUT)
    except Exception as exc:
        checks["redis"] = f"unreachable: {type(exc).__name__}"
    failing = [name for name, state in checks.items() if state != "ok"]
    if not failing:
        return Response(
            orjson.dumps({"status": "ready", "checks": checks}), media_type="application/json"
        )
    body: dict[str, Any] = {
        "type": "/problems/not-ready",
        "title": "Service not ready",
        "status": 503,
        "detail": "failing: " + ", ".join(failing),
        "checks": checks,
    }
    return Response(orjson.dumps(body), status_code=503, media_type=PROBLEM_JSON)


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics() -> Response:
    return metrics_response()
