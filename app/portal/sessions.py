"""Sessions of the portal protocol: a one-stop system logs in with an API key as its password
and gets a token to name in its calls, for ``CHISO_PORTAL_SESSION_HOURS``.

The token is 256-bit random and only its SHA-256 digest is stored (like keys: a fast digest is
safe for a random secret). A session stands for its key and nothing more: each use re-reads
the key, so a revoked key's sessions are refused at once, and its scopes and unit are the key's.
Neither the token nor the password is ever logged.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.core.principal import Principal
from app.core.settings import Settings
from app.portal import sessions_repository as repository

logger = logging.getLogger("chiso.portal.sessions")

# Where a request authenticated by a bearer session keeps it (to record its use).
SESSION_STATE = "portal_session"
# token_urlsafe(32) is 43 characters; anything much longer is no token of ours (not hashed).
_MAX_TOKEN = 128


@dataclass(frozen=True, slots=True)
class SessionCaller:
    session_id: int
    principal: Principal
    last_used_at: datetime


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def open_session(
    session: AsyncSession, settings: Settings, principal: Principal, username: str, now: datetime
) -> str:
    """A new session for the key behind ``principal``; returns its token (shown once)."""
    if principal.key_id is None:  # the admin token is no key: the caller checks before
        raise ValueError("sessions stand for API keys only")
    key_id = uuid.UUID(principal.key_id)
    await repository.drop_expired(session, key_id, now)
    token = secrets.token_urlsafe(32)
    await repository.insert_session(
        session,
        token_hash=_digest(token),
        key_id=key_id,
        username=username,
        created_at=now,
        expires_at=now + timedelta(hours=settings.portal_session_hours),
    )
    logger.info("portal session opened", extra={"key_id": principal.key_id, "username": username})
    return token


async def caller_for_token(
    session: AsyncSession, token: object, now: datetime
) -> SessionCaller | None:
    """The caller a token stands for; None when it is no live session of an active key."""
    if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN:
        return None
    row = await repository.live(session, _digest(token), now)
    if row is None:
        return None
    principal = Principal(
        name=row.name,
        scopes=frozenset(row.scopes),
        unit_code=row.unit_code,
        key_id=str(row.key_id),
    )
    return SessionCaller(session_id=row.id, principal=principal, last_used_at=row.last_used_at)


async def record_use(session: AsyncSession, caller: SessionCaller, now: datetime) -> None:
    """Keep ``last_used_at``, at most once a minute (most calls write nothing); call it last
    in the unit of work, so the row is held only while it commits."""
    if caller.last_used_at <= now - repository.TOUCH_EVERY:
        await repository.touch(session, caller.session_id, now)


async def bearer_session(request: Request, session: AsyncSession, token: str) -> Principal | None:
    """``Authorization: Bearer <session>`` on /dvcqg/ routes, where a key is also accepted
    (``app.core.auth.BEARER_ALTERNATIVES``); the session is left in the request's state."""
    caller = await caller_for_token(session, token, clock.now(request))
    if caller is None:
        return None
    request.scope.setdefault("state", {})[SESSION_STATE] = caller
    return caller.principal
