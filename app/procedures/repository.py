"""All SQL about procedures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import case, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.procedures.models import Procedure
from app.procedures.schemas import ProcedureRecord

_UPSERT_COLUMNS = (
    "name", "field_code", "field_name", "limit_value", "limit_unit", "has_fees", "full_online",
    "online_allowed", "paper_result", "for_citizens", "verified",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Learnable:
    """A procedure code as a record sent it, its national form and what the record says of it."""

    raw: str
    national: str
    name: str
    field_code: str | None
    field_name: str | None


async def get(session: AsyncSession, code: str) -> Procedure | None:
    return await session.get(Procedure, code)


async def resolve(session: AsyncSession, national: str, raw: str) -> Procedure | None:
    """The procedure named by its national code, else by the code as sent."""
    query = (
        select(Procedure)
        .where(Procedure.code.in_({national, raw}))
        .order_by(case((Procedure.code == national, 0), else_=1))
        .limit(1)
    )
    return (await session.scalars(query)).first()


async def list_procedures(
    session: AsyncSession,
    *,
    field_code: str | None,
    full_online: bool | None,
    verified: bool | None,
    after: str | None,
    limit: int,
) -> list[Procedure]:
    query = select(Procedure).order_by(Procedure.code).limit(limit + 1)
    if field_code is not None:
        query = query.where(Procedure.field_code == field_code)
    if full_online is not None:
        query = query.where(Procedure.full_online == full_online)
    if verified is not None:
        query = query.where(Procedure.verified == verified)
    if after is not None:
        query = query.where(Procedure.code > after)
    return list((await session.scalars(query)).all())


class StoredRules(NamedTuple):
    """What the derivation and the index read of a stored procedure."""

    limit: tuple[Decimal | None, str | None]  # its limit and unit: every deadline
    counted: tuple[bool, bool]  # paper_result, has_fees: the record-based counts


async def rules_of(session: AsyncSession, codes: Sequence[str]) -> dict[str, StoredRules]:
    rows = await session.execute(
        select(
            Procedure.code, Procedure.limit_value, Procedure.limit_unit, Procedure.paper_result,
            Procedure.has_fees,
        ).where(Procedure.code.in_(list(codes)))
    )  # fmt: skip
    return {
        code: StoredRules((value, unit), (paper_result, has_fees))
        for code, value, unit, paper_result, has_fees in rows
    }


async def upsert(session: AsyncSession, records: Sequence[ProcedureRecord]) -> dict[str, bool]:
    """One-statement upsert; unchanged rows are left alone. Returns ``{code: created}``.

    What an operator stores is vouched for: the procedure becomes (or stays) verified, and a
    learned one keeps the time it was learned.
    """
    if not records:
        return {}
    values: list[dict[str, Any]] = [r.model_dump(mode="python") for r in records]
    for value in values:
        value["limit_unit"] = str(value["limit_unit"])
        value["verified"] = True
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


_LEARN = text(
    """
    WITH seen AS (
        SELECT * FROM unnest(CAST(:raw AS text[]), CAST(:national AS text[]),
                             CAST(:name AS text[]), CAST(:field_code AS text[]),
                             CAST(:field_name AS text[]))
            WITH ORDINALITY AS s(raw, national, name, field_code, field_name, ord)
    ),
    resolved AS (
        SELECT s.*, coalesce(pn.code, pr.code) AS existing
        FROM seen s
        LEFT JOIN procedures pn ON pn.code = s.national
        LEFT JOIN procedures pr ON pr.code = s.raw
    ),
    learned AS (
        -- The first record naming a code describes it; inserts go in code order, so two
        -- batches learning overlapping codes wait for each other instead of deadlocking. A
        -- concurrent learner's row makes ours a no-op (it waits for that one to commit).
        INSERT INTO procedures (code, name, field_code, field_name, verified, learned_at,
                                has_fees, full_online)
        SELECT national, name, field_code, field_name, false, now(), false, false
        FROM (SELECT DISTINCT ON (national) * FROM resolved WHERE existing IS NULL
              ORDER BY national, ord) firsts
        ORDER BY national
        ON CONFLICT (code) DO NOTHING
        RETURNING code
    )
    -- Not known before the statement: the national form exists now, ours or a concurrent one.
    SELECT r.raw, coalesce(r.existing, r.national) AS code,
           r.existing IS NULL AND r.national IN (SELECT code FROM learned) AS learned
    FROM resolved r ORDER BY r.ord
    """
)


async def resolve_or_learn(
    session: AsyncSession, seen: Sequence[Learnable]
) -> list[tuple[str, str, bool]]:
    """``(raw code, procedure code, learned by this call)`` for each of ``seen``; one
    statement for the whole batch."""
    if not seen:
        return []
    rows = await session.execute(
        _LEARN,
        {
            "raw": [s.raw for s in seen],
            "national": [s.national for s in seen],
            "name": [s.name for s in seen],
            "field_code": [s.field_code for s in seen],
            "field_name": [s.field_name for s in seen],
        },
    )
    return [(raw, code, bool(learned)) for raw, code, learned in rows]


async def queue_open_dossiers(session: AsyncSession, procedure_codes: Sequence[str]) -> int:
    """Queue the open dossiers of these procedures for derivation, their limit having changed
    (their deadlines follow it). A change of what the record-based counts read of a procedure
    (``paper_result``, ``has_fees``) queues every one of its dossiers too, by the database
    itself, whoever writes it (migration 0023).

    The worker's derivation loop drains the queue; the upsert mirrors ingestion's (waits for a
    worker's claim on a row to end, then queues the dossier again), so a derivation that read
    the old procedure is followed by one that reads the new.
    """
    if not procedure_codes:
        return 0
    rows = await session.execute(
        text(
            """
            INSERT INTO dossier_backlog (dossier_code)
            SELECT code FROM dossiers
            WHERE procedure_code = ANY(CAST(:codes AS text[])) AND end_at IS NULL
            ORDER BY code
            ON CONFLICT (dossier_code) DO UPDATE SET queued_at = dossier_backlog.queued_at
            RETURNING dossier_code
            """
        ),
        {"codes": sorted(procedure_codes)},
    )
    return len(rows.all())
