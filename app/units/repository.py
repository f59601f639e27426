"""All SQL about units, including the recursive tree queries other domains reuse."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Select, func, literal, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.units.models import Unit
from app.units.schemas import UnitRecord

_UPSERT_COLUMNS = ("name", "level", "parent_code", "valid_from", "valid_to", "successor_code")


def subtree_codes(root: str) -> Select[tuple[str]]:
    """``SELECT code`` of ``root`` and all its descendants, for ``unit_code IN (...)`` filters."""
    tree = select(Unit.code.label("code")).where(Unit.code == root).cte("subtree", recursive=True)
    child = select(Unit.code).join(tree, Unit.parent_code == tree.c.code)
    tree = tree.union_all(child)
    return select(tree.c.code)


async def get(session: AsyncSession, code: str) -> Unit | None:
    return await session.get(Unit, code)


async def existing_codes(session: AsyncSession, codes: Sequence[str]) -> set[str]:
    if not codes:
        return set()
    rows = await session.scalars(select(Unit.code).where(Unit.code.in_(set(codes))))
    return set(rows)


async def ancestors(session: AsyncSession, code: str) -> list[Unit]:
    """Parent chain of ``code``, nearest first (bounded depth guards against corrupt cycles)."""
    chain = (
        select(Unit.parent_code.label("code"), literal(1).label("depth"))
        .where(Unit.code == code)
        .cte("chain", recursive=True)
    )
    step = (
        select(Unit.parent_code, chain.c.depth + 1)
        .join(chain, Unit.code == chain.c.code)
        .where(chain.c.depth < 32)
    )
    chain = chain.union_all(step)
    rows = await session.execute(
        select(Unit).join(chain, Unit.code == chain.c.code).order_by(chain.c.depth)
    )
    return list(rows.scalars())


async def is_within(session: AsyncSession, code: str, root: str) -> bool:
    """True when ``code`` is ``root`` or one of its descendants."""
    if code == root:
        return True
    return any(unit.code == root for unit in await ancestors(session, code))


async def children_count(session: AsyncSession, code: str) -> int:
    return int(await session.scalar(select(func.count()).where(Unit.parent_code == code)) or 0)


async def list_units(
    session: AsyncSession,
    *,
    level: str | None,
    parent_code: str | None,
    valid_at: date | None,
    after: str | None,
    limit: int,
) -> list[Unit]:
    query = select(Unit).order_by(Unit.code).limit(limit + 1)
    if level is not None:
        query = query.where(Unit.level == level)
    if parent_code is not None:
        query = query.where(Unit.parent_code == parent_code)
    if valid_at is not None:
        query = query.where(
            (Unit.valid_from.is_(None) | (Unit.valid_from <= valid_at))
            & (Unit.valid_to.is_(None) | (Unit.valid_to >= valid_at))
        )
    if after is not None:
        query = query.where(Unit.code > after)
    return list((await session.scalars(query)).all())


async def upsert(session: AsyncSession, records: Sequence[UnitRecord]) -> dict[str, bool]:
    """Insert or update units in one statement; returns ``{code: created}`` for changed rows.

    Rows whose values are unchanged are not touched (``updated_at`` stays), which makes a
    repeated upsert a true no-op. Parents and children may arrive in the same statement:
    PostgreSQL checks the foreign keys at the end of it.
    """
    if not records:
        return {}
    values: list[dict[str, Any]] = [r.model_dump(mode="python") for r in records]
    for value in values:
        value["level"] = str(value["level"])
    stmt = insert(Unit).values(values)
    excluded = stmt.excluded
    changed = func.row(*(getattr(Unit, c) for c in _UPSERT_COLUMNS)).is_distinct_from(
        func.row(*(getattr(excluded, c) for c in _UPSERT_COLUMNS))
    )
    upsert_stmt = stmt.on_conflict_do_update(
        index_elements=[Unit.code],
        set_={**{c: getattr(excluded, c) for c in _UPSERT_COLUMNS}, "updated_at": func.now()},
        where=changed,
    ).returning(Unit.code, text("(xmax = 0) AS created"))
    rows = await session.execute(upsert_stmt)
    return {code: bool(created) for code, created in rows}


async def codes_in_cycles(session: AsyncSession, codes: Sequence[str]) -> list[str]:
    """Units among ``codes`` that are their own ancestor (an upsert must never create one)."""
    if not codes:
        return []
    rows = await session.execute(
        text(
            """
            WITH RECURSIVE walk(start, code, depth) AS (
                SELECT u.code, u.parent_code, 1 FROM units u WHERE u.code = ANY(:codes)
                UNION ALL
                SELECT w.start, u.parent_code, w.depth + 1
                FROM walk w JOIN units u ON u.code = w.code
                WHERE w.code IS NOT NULL AND w.code <> w.start AND w.depth < 64
            )
            SELECT DISTINCT start FROM walk WHERE code = start ORDER BY start
            """
        ),
        {"codes": list(codes)},
    )
    return [r[0] for r in rows]
