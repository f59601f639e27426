"""Creating, checking and revoking API keys.

A key reads ``chiso_<prefix>_<secret>``. The prefix finds the row; the secret is compared by
SHA-256 digest in constant time. Keys are 192-bit random, so a fast digest is safe here (unlike
passwords) and keeps authentication cheap on hot polling paths.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.errors import NotFound, Unprocessable
from app.core.principal import Principal
from app.keys import repository
from app.keys.models import ApiKey
from app.keys.schemas import ApiKeyCreated, ApiKeyIn, ApiKeyOut
from app.units import repository as units
from app.units.service import ensure_admin_over

KEY_PREFIX = "chiso"
_DUMMY_HASH = hashlib.sha256(b"no such key").digest()


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _split(token: str) -> tuple[str, str] | None:
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


async def create_key(
    session: AsyncSession, data: ApiKeyIn, created_by: Principal | str = "cli"
) -> ApiKeyCreated:
    """A unit-bound admin creates keys for units of its subtree only, with any scopes: a key it
    makes can never reach beyond its own subtree, so no scope there is an escalation."""
    if data.unit_code is not None and await units.get(session, data.unit_code) is None:
        raise Unprocessable(
            f"unknown unit {data.unit_code!r}",
            errors=[{"pointer": "#/unit_code", "detail": f"unknown unit {data.unit_code!r}"}],
        )
    if isinstance(created_by, Principal):
        await ensure_admin_over(session, created_by, data.unit_code)
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)
    key = await repository.insert(
        session,
        name=data.name,
        prefix=prefix,
        secret_hash=_digest(secret),
        scopes=sorted({s.value for s in data.scopes}),
        unit_code=data.unit_code,
        created_by=created_by if isinstance(created_by, str) else created_by.name,
    )
    out = ApiKeyOut.model_validate(key)
    await audit.record(
        session, created_by, "api_key.create", str(key.id), unit_code=key.unit_code, after=out
    )
    return ApiKeyCreated(**out.model_dump(), key=f"{KEY_PREFIX}_{prefix}_{secret}")


async def revoke_key(
    session: AsyncSession, key_id: uuid.UUID, by: Principal | str = "cli"
) -> ApiKeyOut:
    """Revoke (idempotent); a unit-bound admin revokes keys bound within its subtree only."""
    key = await repository.get(session, key_id)
    if key is None:
        raise NotFound(f"No API key with id {key_id}.")
    if isinstance(by, Principal):
        await ensure_admin_over(session, by, key.unit_code)
    revoked = await repository.revoke(session, key_id)
    if revoked is None:  # keys are never deleted; kept for the type
        raise NotFound(f"No API key with id {key_id}.")
    out = ApiKeyOut.model_validate(revoked)
    await audit.record(
        session, by, "api_key.revoke", str(key_id), unit_code=revoked.unit_code, after=out
    )
    return out


async def list_keys(
    session: AsyncSession, principal: Principal | None, *, after: str | None, limit: int
) -> list[ApiKey]:
    """Every key for a national admin; a unit-bound admin sees the keys of its subtree."""
    within = principal.unit_code if principal is not None else None
    return await repository.list_keys(session, within=within, after=after, limit=limit)


async def principal_for_key(session: AsyncSession, token: str) -> Principal | None:
    parts = _split(token)
    key = await repository.active_by_prefix(session, parts[0]) if parts else None
    # Compare even when no row matched, so timing does not reveal which prefixes exist.
    expected = key.secret_hash if key is not None else _DUMMY_HASH
    ok = hmac.compare_digest(_digest(parts[1] if parts else token), expected)
    if key is None or not ok:
        return None
    return Principal(
        name=key.name,
        scopes=frozenset(key.scopes),
        unit_code=key.unit_code,
        key_id=str(key.id),
    )
