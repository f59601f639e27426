"""All SQL about units, including the recursive tree queries other domains reuse."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Select, func, literal, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.units.models import Unit
from app.units.schemas import UnitRecord

_UPSERT_COLUMNS = ("name", "level", "parent_code", "valid_from", "valid_to", "successor_code")
# Advisory lock buckets for unit tokens (see lock_tokens): few enough that a load of thousands
# of units holds a bounded number of locks, many enough that unrelated tokens rarely wait.
_TOKEN_LOCK_BUCKETS = 64
_IDENTIFIER_UNIQUE = "uq_units_identifier"


class IdentifierTaken(Exception):
    """A concurrent transaction gave one of the upserted identifiers to another unit."""


def subtree_codes(root: str) -> Select[tuple[str]]:
    """``SELECT code`` of ``root`` and all its descendants, for ``unit_code IN (...)`` filters."""
    tree = select(Unit.code.label("code")).where(Unit.code == root).cte("subtree", recursive=True)
    child = select(Unit.code).join(tree, Unit.parent_code == tree.c.code)
    tree = tree.union_all(child)
    return select(tree.c.code)


# Every unit paired with itself (depth 0) and with each of its ancestors (1: its parent, …), as
# ``unit_pairs(code, ancestor, depth)``: the tree for statements about every unit at once, where
# subtree_codes() and ancestors() answer for one unit — rolling per-unit figures up to every
# subtree (``GROUP BY ancestor``), listing each unit's ancestors (``ORDER BY depth``). A recursive
# CTE for raw SQL (the statement starts ``WITH RECURSIVE``); the bounded depth guards against
# corrupt cycles. Walking up by primary key keeps its estimates close to the real row count.
def ancestors_cte(name: str, seeds: str) -> str:
    """``name(code, ancestor, depth)``: each code ``seeds`` selects (one text column) paired with
    itself (depth 0) and with each of its ancestors (1: its parent, …) — THE walk of the unit
    tree in raw SQL, for a statement that starts ``WITH RECURSIVE``. Rolling figures up to
    subtrees is ``GROUP BY ancestor``; a unit's chain is ``ORDER BY depth``; a subtree of ``r`` is
    ``WHERE ancestor = r``. The bounded depth guards against a corrupt cycle; walking up by
    primary key keeps the planner's estimates close to the real row count."""
    return f"""
    {name}(code, ancestor, depth) AS (
        SELECT s.code, s.code, 0 FROM ({seeds}) AS s(code)
        UNION ALL
        SELECT p.code, u.parent_code, p.depth + 1
        FROM {name} p JOIN units u ON u.code = p.ancestor
        WHERE u.parent_code IS NOT NULL AND p.depth < {MAX_TREE_DEPTH}
    )
"""  # noqa: S608 - names and sub-selects written in code, never a client's text


MAX_TREE_DEPTH = 32
UNIT_PAIRS_CTE = ancestors_cte("unit_pairs", "SELECT code FROM units")


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
    identifier: str | None = None,
) -> list[Unit]:
    query = select(Unit).order_by(Unit.code).limit(limit + 1)
    if identifier is not None:
        query = query.where(Unit.identifier == identifier)
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
    PostgreSQL checks the foreign keys (and the identifiers' uniqueness) at the end of it.
    The records either all give their identifier (a CSV with the column) or none does (then
    stored identifiers stay as they are).
    """
    if not records:
        return {}
    given = {r.sets_identifier for r in records}
    if len(given) > 1:
        raise ValueError("either every record gives its identifier or none does")
    columns = (*_UPSERT_COLUMNS, "identifier") if given == {True} else _UPSERT_COLUMNS
    values: list[dict[str, Any]] = [r.model_dump(mode="python") for r in records]
    for value in values:
        value["level"] = str(value["level"])
    stmt = insert(Unit).values(values)
    excluded = stmt.excluded
    changed = func.row(*(getattr(Unit, c) for c in columns)).is_distinct_from(
        func.row(*(getattr(excluded, c) for c in columns))
    )
    upsert_stmt = stmt.on_conflict_do_update(
        index_elements=[Unit.code],
        set_={**{c: getattr(excluded, c) for c in columns}, "updated_at": func.now()},
        where=changed,
    ).returning(Unit.code, text("(xmax = 0) AS created"))
    try:
        # A savepoint, so that losing the identifier to a concurrent writer leaves the
        # transaction usable for finding out who has it.
        async with session.begin_nested():
            rows = (await session.execute(upsert_stmt)).all()
    except IntegrityError as exc:
        if _constraint(exc) == _IDENTIFIER_UNIQUE:
            raise IdentifierTaken from exc
        raise
    return {code: bool(created) for code, created in rows}


def _constraint(exc: BaseException) -> str | None:
    """The name of the constraint a (wrapped) asyncpg error violated."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return None
        name = getattr(seen, "constraint_name", None)
        if isinstance(name, str):
            return name
        seen = getattr(seen, "orig", None) or seen.__cause__
    return None


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


# --- identifiers --------------------------------------------------------------------------------


async def resolve(session: AsyncSession, tokens: Collection[str]) -> dict[str, str]:
    """``{token: unit code}`` for the tokens naming a unit: by identifier, else by code."""
    if not tokens:
        return {}
    rows = await session.execute(
        text(
            """
            SELECT t.token, coalesce(by_identifier.code, by_code.code) AS code
            FROM unnest(CAST(:tokens AS text[])) AS t(token)
            LEFT JOIN units by_identifier ON by_identifier.identifier = t.token
            LEFT JOIN units by_code ON by_code.code = t.token
            WHERE by_identifier.code IS NOT NULL OR by_code.code IS NOT NULL
            """
        ),
        {"tokens": sorted(set(tokens))},
    )
    return {token: code for token, code in rows}


async def token_holders(
    session: AsyncSession, *, excluding: Collection[str], tokens: Collection[str]
) -> list[Unit]:
    """Units outside ``excluding`` whose identifier or code is one of ``tokens``, by code."""
    if not tokens:
        return []
    wanted = sorted(set(tokens))
    query = (
        select(Unit)
        .where(
            Unit.code.not_in(set(excluding)), Unit.identifier.in_(wanted) | Unit.code.in_(wanted)
        )
        .order_by(Unit.code)
    )
    return list((await session.scalars(query)).all())


async def lock_tokens(session: AsyncSession, tokens: Collection[str]) -> None:
    """Serialise, until the end of the transaction, changes to what ``tokens`` resolve to with
    the records that wait for them (``portal_unmapped``): whichever of the two commits second
    sees the other's work, so a record quarantined while its identifier is being mapped is
    released, not stranded. Tokens share a bounded set of lock buckets, taken in order."""
    if not tokens:
        return
    await session.execute(
        text(
            """
            SELECT pg_advisory_xact_lock(hashtext('unit-token'), b.bucket)
            FROM (SELECT DISTINCT abs(hashtext(t) % :buckets) AS bucket
                  FROM unnest(CAST(:tokens AS text[])) AS t ORDER BY 1) b
            """
        ),
        {"tokens": sorted(set(tokens)), "buckets": _TOKEN_LOCK_BUCKETS},
    )


# --- the shipped communes (see app/units/reference.py) --------------------------------------


async def any_unit_matches(session: AsyncSession, pattern: str) -> bool:
    """True when some commune's code matches the regular expression ``pattern``."""
    found = await session.scalar(
        text("SELECT EXISTS (SELECT 1 FROM units WHERE level = 'commune' AND code ~ :pattern)"),
        {"pattern": pattern},
    )
    return bool(found)


async def identifier_holders(session: AsyncSession, codes: Sequence[str]) -> list[Unit]:
    """Units whose identifier is one of ``codes`` but not their own code, by code."""
    if not codes:
        return []
    query = text(
        "SELECT * FROM units WHERE identifier = ANY(CAST(:codes AS text[])) "
        "AND identifier <> code ORDER BY code"
    ).bindparams(codes=list(codes))
    rows = await session.scalars(select(Unit).from_statement(query))
    return list(rows.all())


async def upsert_communes(
    session: AsyncSession,
    *,
    codes: Sequence[str],
    names: Sequence[str],
    parents: Sequence[str],
    valid_from: date,
) -> list[Any]:
    """Insert the communes that are new (valid from ``valid_from``) and set name, level and
    parent where they differ, in one statement; identifiers, validity and successors of
    existing units stay. Returns the written rows: ``code, created``, the values before
    (``old_name, old_level, old_parent``) and after (``name, level, parent_code``)."""
    if not codes:
        return []
    rows = await session.execute(
        text(
            """
            WITH incoming AS (
                SELECT i.code, i.name, i.parent_code
                FROM unnest(CAST(:codes AS text[]), CAST(:names AS text[]),
                            CAST(:parents AS text[])) AS i(code, name, parent_code)
                ORDER BY i.code
            ),
            old AS (
                SELECT u.code, u.name, u.level, u.parent_code
                FROM units u JOIN incoming i ON i.code = u.code
            ),
            written AS (
                INSERT INTO units AS u (code, name, level, parent_code, valid_from)
                SELECT code, name, 'commune', parent_code, CAST(:valid_from AS date)
                FROM incoming
                ON CONFLICT (code) DO UPDATE
                    SET name = EXCLUDED.name, level = EXCLUDED.level,
                        parent_code = EXCLUDED.parent_code, updated_at = now()
                    WHERE (u.name, u.level, u.parent_code)
                          IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.level, EXCLUDED.parent_code)
                RETURNING u.code, u.name, u.level, u.parent_code, (u.xmax = 0) AS created
            )
            SELECT w.code, w.created, o.name AS old_name, o.level AS old_level,
                   o.parent_code AS old_parent, w.name, w.level, w.parent_code
            FROM written w LEFT JOIN old o ON o.code = w.code
            ORDER BY w.code
            """
        ),
        {"codes": list(codes), "names": list(names), "parents": list(parents),
         "valid_from": valid_from},
    )  # fmt: skip
    return list(rows)


async def close_communes_not_in(
    session: AsyncSession, *, pattern: str, listed: Sequence[str], effective: date
) -> list[Any]:
    """Close, in one statement, the open communes whose code matches ``pattern`` but is not
    ``listed``: valid until the day before ``effective`` (never before their ``valid_from``).
    A listed code with the same last part (the statistics-office code, under another
    province) becomes the successor of one that has none. Returns ``code, valid_to,
    old_successor, successor_code`` by code."""
    rows = await session.execute(
        text(
            """
            WITH gone_codes AS (  -- a set difference: linear, whatever the statistics say
                SELECT code FROM units
                WHERE level = 'commune' AND code ~ :pattern AND valid_to IS NULL
                EXCEPT
                SELECT unnest(CAST(:listed AS text[]))
            ),
            gone AS (
                SELECT u.code, u.successor_code AS old_successor,
                       (SELECT min(l.code) FROM unnest(CAST(:listed AS text[])) AS l(code)
                        WHERE split_part(l.code, '.', 2) = split_part(u.code, '.', 2))
                           AS moved_to
                FROM units u JOIN gone_codes g ON g.code = u.code
                ORDER BY u.code
                FOR UPDATE OF u
            )
            UPDATE units u
            SET valid_to = greatest(u.valid_from, CAST(:effective AS date) - 1),
                successor_code = coalesce(u.successor_code, g.moved_to),
                updated_at = now()
            FROM gone g
            WHERE u.code = g.code
            RETURNING u.code, u.valid_to, g.old_successor, u.successor_code
            """
        ),
        {"listed": list(listed), "pattern": pattern, "effective": effective},
    )
    return sorted(rows, key=lambda r: str(r.code))


async def closed_among(session: AsyncSession, codes: Sequence[str]) -> list[str]:
    """The units among ``codes`` that have a ``valid_to``, by code."""
    if not codes:
        return []
    rows = await session.scalars(
        text(
            "SELECT code FROM units WHERE code = ANY(CAST(:codes AS text[])) "
            "AND valid_to IS NOT NULL ORDER BY code"
        ),
        {"codes": list(codes)},
    )
    return list(rows)


async def analyze(session: AsyncSession) -> None:
    """Fresh planner statistics for ``units`` (after a load that multiplied its rows)."""
    await session.execute(text("ANALYZE units"))


async def lock_reference_load(session: AsyncSession) -> None:
    """Serialise loads of the shipped units until the end of the transaction."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('chiso-reference-units'))"))
