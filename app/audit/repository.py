"""All SQL about the audit log."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEntry


def add(
    session: AsyncSession,
    *,
    actor: str,
    actor_key_id: uuid.UUID | None,
    action: str,
    target: str,
    before: Any,
    after: Any,
) -> None:
    session.add(
        AuditEntry(
            actor=actor,
            actor_key_id=actor_key_id,
            action=action,
            target=target,
            before=before,
            after=after,
        )
    )


async def add_indicator_revisions(
    session: AsyncSession, ids: Sequence[int], actor: str, actor_key_id: uuid.UUID | None
) -> None:
    """One entry per new revision, with the revision it replaces, in one statement."""
    if not ids:
        return
    await session.execute(
        text(
            """
            INSERT INTO audit_log (actor, actor_key_id, action, target, before, after)
            SELECT CAST(:actor AS text), CAST(:key_id AS uuid), 'indicator.revision',
                   v.unit_code || ':' || v.period || ':' || v.metric_code,
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
        {"actor": actor, "key_id": actor_key_id, "ids": list(ids)},
    )


async def entries(
    session: AsyncSession,
    *,
    action: str | None,
    target: str | None,
    before_id: int | None,
    limit: int,
) -> list[AuditEntry]:
    """Newest first; ``limit + 1`` rows so the caller knows whether a next page exists."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if target is not None:
        query = query.where(AuditEntry.target == target)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return list((await session.scalars(query)).all())
