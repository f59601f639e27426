"""Recording administrative changes in the caller's transaction, and reading them back.

Every domain records with one call, before its unit of work commits: the entry commits (or
rolls back) with the change it describes, so the log never claims a change that did not
happen nor misses one that did.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import repository
from app.audit.models import AuditEntry
from app.core.auth import Principal


def _json(value: Any) -> Any:
    """Pydantic models, dates, decimals and UUIDs as plain JSON values (JSONB-ready)."""
    if value is None:
        return None
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return orjson.loads(orjson.dumps(value, default=str))


def _actor(by: Principal | str) -> tuple[str, uuid.UUID | None]:
    if isinstance(by, Principal):
        return by.name, uuid.UUID(by.key_id) if by.key_id else None
    return by, None


async def record(
    session: AsyncSession,
    by: Principal | str,
    action: str,
    target: str,
    *,
    before: Any = None,
    after: Any = None,
) -> None:
    """Add one entry to the caller's transaction (no commit here)."""
    actor, key_id = _actor(by)
    repository.add(
        session,
        actor=actor,
        actor_key_id=key_id,
        action=action,
        target=target,
        before=_json(before),
        after=_json(after),
    )


async def record_indicator_revisions(
    session: AsyncSession, by: Principal | str, revision_ids: Sequence[int]
) -> None:
    actor, key_id = _actor(by)
    await repository.add_indicator_revisions(session, revision_ids, actor, key_id)


async def entries(
    session: AsyncSession,
    *,
    action: str | None,
    target: str | None,
    before_id: int | None,
    limit: int,
) -> list[AuditEntry]:
    return await repository.entries(
        session, action=action, target=target, before_id=before_id, limit=limit
    )
