"""The migration creates ``indicator_values`` exactly as the model describes it."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Table
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import Base


def _table_of(diff: Any) -> str | None:
    """The table an autogenerate difference is about (its shapes vary by kind)."""
    if isinstance(diff, list):  # column modifications come grouped
        diff = diff[0]
    kind, *rest = diff
    if kind.endswith("_column") or kind.startswith("modify_"):
        return str(rest[1])  # (kind, schema, table name, ...)
    target = rest[0]
    table = target if isinstance(target, Table) else getattr(target, "table", None)
    return str(table.name) if table is not None else None


async def test_migration_matches_the_model(engine: AsyncEngine) -> None:
    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with engine.connect() as connection:
        diffs = await connection.run_sync(differences)
    ours = [d for d in diffs if _table_of(d) == "indicator_values"]
    assert ours == []
