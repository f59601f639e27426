"""PostgreSQL refusing a connection for want of slots (SQLSTATE 53300, "too many connections")
is an overload: the client is told to come back (503 with Retry-After), never a server fault."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.settings import Settings
from app.main import create_app


@pytest.fixture
async def limited_role(engine: AsyncEngine) -> AsyncIterator[str]:
    """A login role allowed no connection at all: every connection it asks for is refused
    with 53300, as when the server's slots are all taken."""
    role = f"chiso_limited_{uuid.uuid4().hex[:8]}"
    async with engine.connect() as conn:
        await conn.execute(text(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0"))
        await conn.commit()
    try:
        yield role
    finally:
        async with engine.connect() as conn:
            await conn.execute(text(f"DROP ROLE {role}"))
            await conn.commit()


async def test_no_connection_slot_left_answers_503(
    settings: Settings, limited_role: str, admin: dict[str, str]
) -> None:
    assert settings.database_url is not None
    url = make_url(settings.database_url).set(username=limited_role, password=None)
    app = create_app(
        settings.model_copy(update={"database_url": url.render_as_string(hide_password=False)})
    )
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://chiso.test") as c:
            read = await c.get("/v1/units", headers=admin)
            # The single event goes through the direct pool, not the engine: the same answer.
            write = await c.post(
                "/v1/dossier-events",
                headers=admin,
                json={
                    "event_id": "e-1", "dossier_code": "D-1", "unit_code": "H26",
                    "procedure_code": "1.001", "status": 2, "channel": 1,
                    "occurred_at": "2026-10-08T08:30:00+07:00",
                },
            )  # fmt: skip
    for response in (read, write):
        assert response.status_code == 503, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert int(response.headers["retry-after"]) > 0
