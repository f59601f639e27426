"""Operations endpoints and the error contract, against real PostgreSQL and Redis."""

from __future__ import annotations

import httpx
from asgi_lifespan import LifespanManager

from app.core.settings import Settings
from app.main import create_app


async def test_healthz_is_alive(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_every_dependency_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "redis": "ok"},
    }


async def test_readyz_names_redis_when_it_is_unreachable(settings: Settings) -> None:
    # A real connection attempt to a port where nothing listens.
    broken = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    app = create_app(broken)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/readyz")
            units = await client.get("/v1/units")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("unreachable")
    assert body["detail"] == "failing: redis"
    # Reads do not need Redis.
    assert units.status_code == 200


async def test_readyz_names_the_database_when_it_is_unreachable(settings: Settings) -> None:
    broken = settings.model_copy(
        update={"database_url": "postgresql://postgres@127.0.0.1:1/nothing"}
    )
    app = create_app(broken)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            ready = await client.get("/readyz")
            units = await client.get("/v1/units")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"].startswith("unreachable")
    assert ready.json()["checks"]["redis"] == "ok"
    # A request needing the database gets a 503 problem, not a 500 or a hang.
    assert units.status_code == 503
    assert units.headers["content-type"] == "application/problem+json"
    assert units.headers["retry-after"] == "1"


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    generated = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert len(generated.headers["x-request-id"]) == 32


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/v1/units/NOPE-1")
    await client.get("/v1/units/NOPE-2")
    text = (await client.get("/metrics")).text
    assert 'chiso_http_requests_total{method="GET",route="/v1/units/{code}",status="404"}' in text
    assert "NOPE-1" not in text
    assert "chiso_http_request_duration_seconds_bucket" in text


async def test_unknown_route_is_problem_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404
    assert response.json()["type"] == "/problems/not-found"


async def test_wrong_method_is_problem_json(client: httpx.AsyncClient) -> None:
    response = await client.delete("/v1/units")
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Method Not Allowed"


async def test_body_over_the_limit_is_413(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    body = b'{"name": "' + b"x" * (33 * 1024 * 1024) + b'"}'
    response = await client.put(
        "/v1/units/H99", content=body, headers={**admin, "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


async def test_openapi_and_docs_are_served(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert "/v1/units/{code}" in schema["paths"]
    assert (await client.get("/docs")).status_code == 200
