"""All SQL about portal protocol sessions (``portal_sessions``)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.keys.models import ApiKey
from app.portal.models import PortalSession

# last_used_at is bookkeeping for operators, not a security control: written at most this
# often per session, so concurrent calls of one session rarely touch its row at all.
TOUCH_EVERY = timedelta(minutes=1)


async def insert_session(
    session: AsyncSession,
    *,
    token_hash: bytes,
    key_id: uuid.UUID,
    username: str,
    created_at: datetime,
    expires_at: datetime,
) -> None:
    await session.execute(
        insert(PortalSession).values(
            token_hash=token_hash,
            key_id=key_id,
            username=username,
            created_at=created_at,
            expires_at=expires_at,
            last_used_at=created_at,
        )
    )


async def drop_expired(session: AsyncSession, key_id: uuid.UUID, now: datetime) -> int:
    """Delete the key's sessions that have expired (a login sweeps its own key's)."""
    result = await session.execute(
        delete(PortalSession).where(PortalSession.key_id == key_id, PortalSession.expires_at <= now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def live(session: AsyncSession, token_hash: bytes, now: datetime) -> Any:
    """The session with this digest if it has not expired and its key is not revoked, with
    the key's name, scopes and unit (a row; None when there is none)."""
    result = await session.execute(
        select(
            PortalSession.id,
            PortalSession.last_used_at,
            ApiKey.id.label("key_id"),
            ApiKey.name,
            ApiKey.scopes,
            ApiKey.unit_code,
        )
        .join(ApiKey, ApiKey.id == PortalSession.key_id)
        .where(
            PortalSession.token_hash == token_hash,
            PortalSession.expires_at > now,
            ApiKey.revoked_at.is_(None),
        )
    )
    return result.one_or_none()


async def touch(session: AsyncSession, session_id: int, now: datetime) -> None:
    """Record a use, unless one was recorded within :data:`TOUCH_EVERY` or another call of the
    same session holds the row right now (never waits for it)."""
    stale = (
        select(PortalSession.id)
        .where(PortalSession.id == session_id, PortalSession.last_used_at <= now - TOUCH_EVERY)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    await session.execute(
        update(PortalSession).where(PortalSession.id == stale).values(last_used_at=now)
    )
