"""All SQL about the audit log."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEntry


def add(
    session: AsyncSession,
    *,
    actor_kind: str,
    actor_key_id: uuid.UUID | None,
    actor_name: str,
    action: str,
    target: str,
    unit_code: str | None,
    before: Any,
    after: Any,
) -> None:
    session.add(
        AuditEntry(
            actor_kind=actor_kind,
            actor_key_id=actor_key_id,
            actor_name=actor_name,
            action=action,
            target=target,
            unit_code=unit_code,
            before=before,
            after=after,
        )
    )


async def add_indicator_revisions(
    session: AsyncSession,
    ids: Sequence[int],
    actor_kind: str,
    actor_key_id: uuid.UUID | None,
    actor_name: str,
) -> None:
    """One entry per new revision, with the revision it replaces, in one statement."""
    if not ids:
        return
    await session.execute(
        text(
            """
            INSERT INTO audit_log
                (actor_kind, actor_key_id, actor_name, action, target, unit_code, before, after)
            SELECT CAST(:kind AS text), CAST(:key_id AS uuid), CAST(:name AS text),
                   'indicator.revision', v.unit_code || ':' || v.period || ':' || v.metric_code,
                   v.unit_code,
                   CASE WHEN p.id IS NULL THEN NULL ELSE jsonb_build_object(
                       'revision', p.revision, 'numerator', p.numerator,
                       'denominator', p.denominator) END,
                   jsonb_build_object('revision', v.revision, 'numerator', v.numerator,
                                      'denominator', v.denominator)
            FROM indicator_values v
            LEFT JOIN indicator_values p
              ON (p.unit_code, p.period, p.metric_code, p.revision)
               = (v.unit_code, v.period, v.metric_code, v.revision - 1)
            WHERE v.id = ANY(CAST(:ids AS bigint[]))
            ORDER BY v.id
            """
        ),
        {"kind": actor_kind, "key_id": actor_key_id, "name": actor_name, "ids": list(ids)},
    )


async def entries(
    session: AsyncSession,
    *,
    within: Select[tuple[str]] | None,
    action: str | None,
    target: str | None,
    before_id: int | None,
    limit: int,
) -> list[AuditEntry]:
    """Newest first; ``limit + 1`` rows so the caller knows whether a next page exists.

    ``within``: only entries about the units whose codes it selects (a unit subtree, built by
    the caller: the audit log lies below the units).
    """
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
    if within is not None:
        query = query.where(AuditEntry.unit_code.in_(within))
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if target is not None:
        query = query.where(AuditEntry.target == target)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return list((await session.scalars(query)).all())
