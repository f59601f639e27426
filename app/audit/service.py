"""Recording administrative changes in the caller's transaction, and reading them back.

Every domain records with one call, before its unit of work commits: the entry commits (or
rolls back) with the change it describes, so the log never claims a change that did not
happen nor misses one that did.

Who acted is taken from authentication, never from a name a caller passes along: an admin
route binds its authenticated principal to the unit of work (:func:`act_as`), and an entry
recorded in that unit of work names that principal — the key's id and name, or the admin
token as such — whatever string the domain code hands over for its own ``*_by`` columns.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import repository
from app.audit.models import ActorKind, AuditEntry
from app.core.principal import Principal

ADMIN_TOKEN_NAME = "admin token"  # noqa: S105 - how the log names it, not the token
_BOUND_ACTOR = "chiso.audit.actor"


@dataclass(frozen=True, slots=True)
class Actor:
    kind: ActorKind
    key_id: uuid.UUID | None
    name: str


def act_as(session: AsyncSession, principal: Principal) -> None:
    """Name ``principal`` as the actor of every entry recorded in this unit of work."""
    session.info[_BOUND_ACTOR] = principal


def actor_of(session: AsyncSession, by: Principal | str) -> Actor:
    """The authenticated principal wins over a bare name: a name alone is only trusted outside
    a request (the command line), where nobody else could have supplied it."""
    bound = session.info.get(_BOUND_ACTOR)
    principal = by if isinstance(by, Principal) else bound
    if isinstance(principal, Principal):
        if principal.is_admin:
            return Actor(ActorKind.admin_token, None, ADMIN_TOKEN_NAME)
        if principal.key_id is not None:
            return Actor(ActorKind.api_key, uuid.UUID(principal.key_id), principal.name)
        return Actor(ActorKind.system, None, principal.name)
    return Actor(ActorKind.cli, None, str(by))


def _json(value: Any) -> Any:
    """Pydantic models, dates, decimals and UUIDs as plain JSON values (JSONB-ready)."""
    if value is None:
        return None
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return orjson.loads(orjson.dumps(value, default=str))


async def record(
    session: AsyncSession,
    by: Principal | str,
    action: str,
    target: str,
    *,
    unit_code: str | None = None,
    before: Any = None,
    after: Any = None,
) -> None:
    """Add one entry to the caller's transaction (no commit here).

    ``unit_code`` is the unit the change is about; leave it ``None`` for national things —
    only unbound admins read those entries.
    """
    actor = actor_of(session, by)
    repository.add(
        session,
        actor_kind=actor.kind,
        actor_key_id=actor.key_id,
        actor_name=actor.name,
        action=action,
        target=target,
        unit_code=unit_code,
        before=_json(before),
        after=_json(after),
    )


async def record_indicator_revisions(
    session: AsyncSession, by: Principal | str, revision_ids: Sequence[int]
) -> None:
    actor = actor_of(session, by)
    await repository.add_indicator_revisions(
        session, revision_ids, actor.kind, actor.key_id, actor.name
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
    """Newest first; ``within``: only the entries about the units it selects (the caller's
    subtree, ``app.units.service.reach``), ``None``: every entry."""
    return await repository.entries(
        session,
        within=within,
        action=action,
        target=target,
        before_id=before_id,
        limit=limit,
    )
