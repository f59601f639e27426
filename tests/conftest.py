"""Test fixtures: real PostgreSQL and Redis, a fresh migrated database, the app over ASGI.

``CHISO_TEST_DATABASE_URL`` / ``CHISO_TEST_REDIS_URL`` point the suite at existing servers;
without them it starts the embedded ones under ``.data/test``. Either way the suite creates
its own database (``chiso_test``) from the migrations and empties every table between tests.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import app.models
from app.core.database import Base, async_url
from app.core.embedded import service_urls, stop_all
from app.core.migrations import upgrade
from app.core.settings import PROJECT_ROOT, Settings
from app.main import create_app
from app.wiring import wire

T = TypeVar("T")

# Tests call services and jobs directly, not only through the app: wire them as the app does.
wire()

ADMIN_TOKEN = "test-admin-token-0123456789"
# One database per test run, so two runs on one server never trip over each other.
TEST_DATABASE = f"chiso_test_{os.getpid()}"


@dataclass(frozen=True)
class Servers:
    server_url: str
    redis_url: str


def with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def plain_url(url: str) -> str:
    """asyncpg.connect wants ``postgresql://``; keep a socket ``host`` query parameter working."""
    parsed = make_url(url).set(drivername="postgresql")
    host = parsed.query.get("host")
    rendered = parsed.set(query={}).render_as_string(hide_password=False)
    return f"{rendered}?host={host}" if host else rendered


async def recreate_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(plain_url(with_database(server_url, "postgres")))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    # Embedded servers get a folder of their own per run: two runs at once (a developer's
    # and an editor's, say) must never stop each other's servers.
    data_dir = PROJECT_ROOT / ".data" / "test" / str(os.getpid())
    database_url, redis_url, embedded = service_urls(
        os.environ.get("CHISO_TEST_DATABASE_URL"), os.environ.get("CHISO_TEST_REDIS_URL"), data_dir
    )
    try:
        yield Servers(server_url=database_url, redis_url=redis_url)
    finally:
        stop_all(embedded)
        shutil.rmtree(data_dir, ignore_errors=True)


def in_thread(fn: Callable[[], T]) -> T:
    """Run blocking setup (which may call ``asyncio.run``) outside the test event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


async def drop_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(plain_url(with_database(server_url, "postgres")))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def database_url(servers: Servers) -> Iterator[str]:
    url = with_database(servers.server_url, TEST_DATABASE)
    in_thread(lambda: asyncio.run(recreate_database(servers.server_url, TEST_DATABASE)))
    in_thread(lambda: upgrade(url))
    yield url
    in_thread(lambda: asyncio.run(drop_database(servers.server_url, TEST_DATABASE)))


@pytest.fixture(scope="session")
def settings(database_url: str, servers: Servers) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        redis_url=servers.redis_url,
        admin_token=SecretStr(ADMIN_TOKEN),
        data_dir=PROJECT_ROOT / ".data" / "test",
        log_json=False,
        # Tests look at a ranking right after refreshing it: no per-process memory of it.
        response_cache_seconds=0,
        # The suite sends bad keys on purpose, hundreds per run from one address; the limit on
        # failed authentications is tested on apps of its own (tests/security/test_rate_limit.py).
        rate_auth_failures_per_minute=0,
        # Write buckets are reconciled with Redis as each write is answered, not in the
        # background: no reconciliation lands in the next test's Redis state.
        rate_sync_ms=0,
    )


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(async_url(database_url))
    yield eng
    await eng.dispose()


@pytest.fixture(scope="session")
async def redis(servers: Servers) -> AsyncIterator[Redis]:
    client: Redis = Redis.from_url(servers.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def clean(engine: AsyncEngine, redis: Redis) -> None:
    """Empty tables and an empty Redis database: every test that touches state starts here."""
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        # As a migrated database has it: counts kept under the default zone and limit.
        defaults = Settings()
        await conn.execute(
            text("SELECT chiso_rebuild_kept_counts(:zone, :max_supp)"),
            {"zone": defaults.timezone, "max_supp": defaults.max_supplement_requests},
        )
    await redis.flushdb()


@pytest.fixture
async def client(app: FastAPI, clean: None) -> AsyncIterator[httpx.AsyncClient]:
    app.state.rate_limiter.local.state.clear()  # full buckets, as Redis' are after `clean`
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://chiso.test") as c:
        yield c


@pytest.fixture
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def clock(app: FastAPI) -> Iterator[Callable[[datetime], None]]:
    """Freeze the app's "now": ``clock(datetime(...))``. Restored after the test."""
    original = app.state.clock

    def set_now(instant: datetime) -> None:
        app.state.clock = lambda: instant

    yield set_now
    app.state.clock = original


@pytest.fixture
def configure(app: FastAPI) -> Iterator[Callable[..., None]]:
    """Change settings of the running app for one test: ``configure(store_notes=True)``."""
    original = app.state.settings

    def set_settings(**updates: object) -> None:
        app.state.settings = original.model_copy(update=updates)

    yield set_settings
    app.state.settings = original
