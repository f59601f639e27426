"""Bearer authentication: the admin token or an API key, resolved to a :class:`Principal`.

Keys are the keys domain's (``app.keys``), which sits above this floor: authentication reaches
them through the resolver the composition root registers at startup
(:func:`register_key_resolver`, called by ``app.wiring``), never by importing them.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import DbSession
from app.core.errors import Forbidden, Unauthenticated

# Re-exported: routes name the caller and the scopes with the dependencies that check them.
from app.core.principal import ADMIN as ADMIN
from app.core.principal import Principal as Principal
from app.core.principal import Scope as Scope


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Send the key as `Authorization: Bearer <key>`.")
    return token.strip()


# Where the gate (app/core/gate.py) leaves the caller it resolved from the headers, before the
# body was read; ``authenticate`` reuses it, so a key is looked up once per request.
PRINCIPAL_STATE = "principal"

# The dependencies made by ``require``: the gate refuses an anonymous body to a route that
# depends on one of them (directly or through another dependency) without reading it.
KEY_REQUIREMENTS: set[Callable[..., Awaitable[Principal]]] = set()


async def own_credentials() -> None:
    """Dependency marking a route that authenticates its caller itself, from the body or a
    header of its own protocol (the national portal's login and sessions, under ``/dvcqg/``).

    The gate neither refuses such a route's anonymous body nor charges it to the anonymous
    bucket; it only refuses an address whose buckets are empty. The route charges the outcome
    through ``app.state.rate_limiter``: ``keyed`` for a caller it accepts, ``failed`` else.
    """


# Bearer credentials other than keys, accepted on the routes under a path prefix (the portal
# protocol's sessions under /dvcqg/, registered by app/portal/dvcqg.py). Tried only when the
# token is no key; a resolver returns None for a token it does not know.
BearerResolver = Callable[[Request, AsyncSession, str], Awaitable["Principal | None"]]
BEARER_ALTERNATIVES: dict[str, BearerResolver] = {}

# The caller an API key names (None: no such active key), registered at startup.
KeyResolver = Callable[[AsyncSession, str], Awaitable[Principal | None]]
_key_resolver: KeyResolver | None = None


def register_key_resolver(resolver: KeyResolver) -> None:
    """Make ``resolver`` the way bearer tokens are looked up as API keys (``app.wiring``)."""
    global _key_resolver
    _key_resolver = resolver


async def _key_principal(session: AsyncSession, token: str) -> Principal | None:
    if _key_resolver is None:
        raise RuntimeError("no API key resolver registered: call app.wiring.wire() at startup")
    return await _key_resolver(session, token)


async def authenticate(request: Request, session: AsyncSession) -> Principal | None:
    state = request.scope.get("state")
    if state is not None and PRINCIPAL_STATE in state:
        resolved: Principal | None = state[PRINCIPAL_STATE]
        return resolved
    token = bearer_token(request)
    if token is None:
        return None
    admin_token = request.app.state.settings.admin_token
    if admin_token is not None and hmac.compare_digest(
        token.encode(), admin_token.get_secret_value().encode()
    ):
        return ADMIN
    principal = await _key_principal(session, token)
    if principal is None:
        path = request.scope["path"]
        for prefix, resolve in BEARER_ALTERNATIVES.items():
            if path.startswith(prefix) and (principal := await resolve(request, session, token)):
                return principal
        raise Unauthenticated("The key is unknown or revoked.")
    return principal


# Declares the scheme in the OpenAPI (each keyed operation lists it); the key itself is read by
# the gate before the body, so this never raises.
BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="An API key (or the admin token) as `Authorization: Bearer <key>`",
)


def require(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """Dependency: 401 without a valid key, 403 when the key lacks ``scope``."""

    async def dependency(
        request: Request,
        session: DbSession,
        _: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)] = None,
    ) -> Principal:
        principal = await authenticate(request, session)
        if principal is None:
            raise Unauthenticated()
        if not principal.has(scope):
            raise Forbidden(f"This key lacks the {scope.value!r} scope.")
        return principal

    KEY_REQUIREMENTS.add(dependency)
    return dependency


AdminPrincipal = Annotated[Principal, Depends(require(Scope.admin))]
