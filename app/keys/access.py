"""Dependencies of admin routes: which admins may call them, and who the audit log names.

Every route that needs the ``admin`` scope takes one of these, never ``require(Scope.admin)``
directly (a test walks the routes to keep it so):

- :data:`UnitAdmin` — any admin. The route or its service then checks the unit it touches with
  ``app.units.service.ensure_admin_over``, so a key bound to a unit acts within its subtree.
- :func:`national_admin` — an admin bound to no unit (or the admin token); a bound admin gets
  403 with the reason. The rules themselves live in ``app/units/service.py``.

Both bind the caller to the unit of work, so every audit entry it causes names the key (id and
name) or the admin token, not a name passed along with the call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends

from app.audit import service as audit
from app.core.auth import Principal, Scope, require
from app.core.database import DbSession
from app.units.service import ensure_national_admin

_admin_scope = require(Scope.admin)


async def require_admin(
    session: DbSession,
    principal: Annotated[Principal, Depends(_admin_scope)],
) -> Principal:
    """401/403 like any scoped route; then the caller is the actor of this unit of work."""
    audit.act_as(session, principal)
    return principal


UnitAdmin = Annotated[Principal, Depends(require_admin)]


def national_admin(why: str) -> Callable[..., Awaitable[Principal]]:
    """Dependency for national actions; ``why`` completes "This admin key is bound to unit X;
    <why>, so this needs an admin key bound to no unit or the admin token."."""

    async def require_national_admin(principal: UnitAdmin) -> Principal:
        ensure_national_admin(principal, why)
        return principal

    return require_national_admin
