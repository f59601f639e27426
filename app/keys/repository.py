"""All SQL about API keys."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence

import asyncpg
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.keys.models import ApiKey
from app.units.repository import subtree_codes


async def insert(
    session: AsyncSession,
    *,
    name: str,
    prefix: str,
    secret_hash: bytes,
    scopes: Sequence[str],
    unit_code: str | None,
    created_by: str | None,
) -> ApiKey:
    key = ApiKey(
        id=uuid.uuid4(),
        name=name,
        prefix=prefix,
        secret_hash=secret_hash,
        scopes=list(scopes),
        unit_code=unit_code,
        created_by=created_by,
    )
    session.add(key)
    await session.flush()
    await session.refresh(key)
    return key


async def active_by_prefix(session: AsyncSession, prefix: str) -> ApiKey | None:
    return await session.scalar(
        select(ApiKey).where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
    )


async def get(session: AsyncSession, key_id: uuid.UUID) -> ApiKey | None:
    return await session.get(ApiKey, key_id)


async def revoke(session: AsyncSession, key_id: uuid.UUID) -> ApiKey | None:
    """Mark revoked (idempotent: an already revoked key keeps its first revocation time)."""
    await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    return await session.get(ApiKey, key_id, populate_existing=True)


async def list_keys(
    session: AsyncSession, *, within: str | None, after: str | None, limit: int
) -> list[ApiKey]:
    """By prefix; ``within``: only keys bound to a unit of that subtree."""
    query = select(ApiKey).order_by(ApiKey.prefix).limit(limit + 1)
    if within is not None:
        query = query.where(ApiKey.unit_code.in_(subtree_codes(within)))
    if after is not None:
        query = query.where(ApiKey.prefix > after)
    return list((await session.scalars(query)).all())


# PostgreSQL announces every change to a key on this channel (migration 0019: a trigger on
# ``api_keys``), with the key's id, or ``*`` for every key.
CHANGES_CHANNEL = "chiso_keys"


async def listen_for_changes(
    listener: asyncpg.Connection, on_change: Callable[[str], None]
) -> None:
    """``LISTEN`` on ``listener`` (a session connection of its own): ``on_change(key id)``."""

    def received(_: object, __: int, ___: str, payload: object) -> None:
        on_change(str(payload))

    await listener.add_listener(CHANGES_CHANNEL, received)


async def listen_for_probes(
    listener: asyncpg.Connection, channel: str, on_probe: Callable[[str], None]
) -> None:
    """``LISTEN`` on this process's own probe ``channel``: ``on_probe(payload)``."""

    def received(_: object, __: int, ___: str, payload: object) -> None:
        on_probe(str(payload))

    await listener.add_listener(channel, received)


async def probe(listener: asyncpg.Connection, channel: str, payload: str, *, within: float) -> None:
    """Send ``payload`` to ``channel`` (which ``listener`` listens on), within ``within`` s.

    PostgreSQL delivers notices to a listener in the order their transactions committed, so
    once the probe comes back, every change committed before it was sent has arrived too."""
    await listener.execute("SELECT pg_notify($1, $2)", channel, payload, timeout=within)
