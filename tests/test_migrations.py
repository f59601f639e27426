"""Migrations are the only way the schema is made: from empty to head, and back."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

import app.models  # noqa: F401 - every table in Base.metadata
from app.core.database import Base
from app.core.migrations import downgrade, head_revisions, upgrade
from tests.conftest import (
    TEST_DATABASE,
    Servers,
    drop_database,
    in_thread,
    plain_url,
    recreate_database,
    with_database,
)

EXPECTED_TABLES = {
    "alembic_version", "api_keys", "procedures", "units",
    "calendar_days", "outbox", "dossier_events", "dossiers", "webhooks", "webhook_deliveries",
    "portal_sync_state", "portal_quarantine", "official_scores", "indicator_values",
    "period_states", "score_snapshots", "ranking_snapshots", "score_dirty_periods",
    "period_amendments",
}  # fmt: skip


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(plain_url(url))
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


async def _version(url: str) -> set[str]:
    conn = await asyncpg.connect(plain_url(url))
    try:
        return {r[0] for r in await conn.fetch("SELECT version_num FROM alembic_version")}
    finally:
        await conn.close()


async def test_migrations_run_from_empty_to_head_and_back(servers: Servers) -> None:
    name = f"{TEST_DATABASE}_migrations"
    await recreate_database(servers.server_url, name)
    url = with_database(servers.server_url, name)

    await asyncio.to_thread(upgrade, url)
    assert await _tables(url) >= EXPECTED_TABLES
    assert await _version(url) == head_revisions()

    await asyncio.to_thread(downgrade, url, "base")
    assert await _tables(url) == {"alembic_version"}

    # And forward again: downgrades leave nothing behind that blocks a re-upgrade.
    in_thread(lambda: upgrade(url))
    assert await _tables(url) >= EXPECTED_TABLES
    await drop_database(servers.server_url, name)


def test_there_is_exactly_one_head() -> None:
    assert len(head_revisions()) == 1


async def test_the_migrated_schema_matches_the_models(engine: AsyncEngine) -> None:
    """Every table, column, type, index and constraint the models declare is what the
    migrations made: one check for the whole schema, so a model and its migration never drift."""

    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_dossiers_with_an_inferred_time_are_queued_to_be_derived_again(
    servers: Servers,
) -> None:
    """0025: a dossier whose receipt chiso placed is no longer counted; the ones stored before
    are derived again by the worker — those with an inferred time, and only those."""
    name = f"{TEST_DATABASE}_inferred"
    await recreate_database(servers.server_url, name)
    url = with_database(servers.server_url, name)
    await asyncio.to_thread(upgrade, url, "0024_on_time_steps")
    conn = await asyncpg.connect(plain_url(url))
    try:
        await conn.execute(
            "INSERT INTO dossier_events (dossier_code, event_id, status, occurred_at, channel, "
            "unit_code, procedure_code, source, time_inferred) VALUES "
            "('D1', 'portal:D1:2', 2, now(), 1, 'U', 'P', 'portal', true), "
            "('D1', 'portal:D1:9', 9, now(), 1, 'U', 'P', 'portal', false), "
            "('D2', 'portal:D2:2', 2, now(), 1, 'U', 'P', 'portal', false)"
        )
        await asyncio.to_thread(upgrade, url)
        queued = await conn.fetch("SELECT dossier_code FROM dossier_backlog")
        assert [r[0] for r in queued] == ["D1"]
    finally:
        await conn.close()
    await drop_database(servers.server_url, name)
