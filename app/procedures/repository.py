"""All SQL about procedures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.procedures.models import Procedure
from app.procedures.schemas import ProcedureRecord

_UPSERT_COLUMNS = (
    "name", "field_code", "limit_value", "limit_unit", "has_fees", "full_online", "online_allowed",
)  # fmt: skip


async def get(session: AsyncSession, code: str) -> Procedure | None:
    return await session.get(Procedure, code)


async def list_procedures(
    session: AsyncSession,
    *,
    field_code: str | None,
    full_online: bool | None,
    after: str | None,
    limit: int,
) -> list[Procedure]:
    query = select(Procedure).order_by(Procedure.code).limit(limit + 1)
    if field_code is not None:
        query = query.where(Procedure.field_code == field_code)
    if full_online is not None:
        query = query.where(Procedure.full_online == full_online)
    if after is not None:
        query = query.where(Procedure.code > after)
    return list((await session.scalars(query)).all())


async def upsert(session: AsyncSession, records: Sequence[ProcedureRecord]) -> dict[str, bool]:
    """One-statement upsert; unchanged rows are left alone. Returns ``{code: created}``."""
    if not records:
        return {}
    values: list[dict[str, Any]] = [r.model_dump(mode="python") for r in records]
    for value in values:
        value["limit_unit"] = str(value["limit_unit"])
    stmt = insert(Procedure).values(values)
    excluded = stmt.excluded
    changed = func.row(*(getattr(Procedure, c) for c in _UPSERT_COLUMNS)).is_distinct_from(
        func.row(*(getattr(excluded, c) for c in _UPSERT_COLUMNS))
    )
    upsert_stmt = stmt.on_conflict_do_update(
        index_elements=[Procedure.code],
        set_={**{c: getattr(excluded, c) for c in _UPSERT_COLUMNS}, "updated_at": func.now()},
        where=changed,
    ).returning(Procedure.code, text("(xmax = 0) AS created"))
    rows = await session.execute(upsert_stmt)
    return {code: bool(created) for code, created in rows}
