"""Bearer authentication: the admin token or an API key, resolved to a :class:`Principal`.

Keys are the keys domain's (``app.keys``), which sits above this floor: authentication reaches
them through the resolver the composition root registers at startup
(:func:`register_key_resolver`, called by ``app.wiring``), never by importing them.

Each API process keeps the keys it resolved in a :class:`KeyCache` (``app.state.key_cache``),
so a request with a known key costs no database round trip; see the class for how a revoked
key leaves every process's cache within a second.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class _Cached:
    principal: Principal
    loaded_at: float  # monotonic time at which the lookup that found it began


class KeyCache:
    """The API keys this process resolved, by SHA-256 of the token, least recently used first
    dropped past ``max_keys``. Only keys found active are kept: an unknown or revoked token is
    looked up every time (the failed-authentication bucket limits how often), so no client can
    fill the cache with tokens of its own making.

    A change to a key (revocation; any update or deletion of its row) is announced by
    PostgreSQL on the ``chiso_keys`` channel; every process listens on one connection of its
    own (``app.keys.listener``) and evicts the key (:meth:`evict`). Four times a second that
    listener sends itself a probe notice and, once it is back, confirms (:meth:`confirm`):
    notices arrive in commit order, so every change committed before the probe was sent has
    been heard by then. So an entry is
    served only while the last confirmation is younger than ``stale_after`` seconds; while the
    listener is down or silent, an entry is served only within ``stale_after`` of its lookup,
    so a revocation takes effect within ``stale_after`` everywhere even when a notification is
    lost. No entry lives past ``max_age`` seconds, whatever the listener says.
    """

    def __init__(self, max_keys: int, *, stale_after: float = 1.0, max_age: float = 60.0) -> None:
        self.max_keys = max_keys
        self.stale_after = stale_after
        self.max_age = max_age
        self.entries: OrderedDict[bytes, _Cached] = OrderedDict()
        self.by_key_id: dict[str, bytes] = {}
        self.confirmed_at = float("-inf")  # when the last successful confirmation was sent
        self.generation = 0  # bumped by every eviction: a lookup racing one is not stored

    @staticmethod
    def digest(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def get(self, digest: bytes, now: float) -> Principal | None:
        entry = self.entries.get(digest)
        if entry is None:
            return None
        age = now - entry.loaded_at
        listening = now - self.confirmed_at < self.stale_after
        if age >= self.max_age or not (listening or age < self.stale_after):
            self._drop(digest)
            return None
        self.entries.move_to_end(digest)
        return entry.principal

    def put(self, digest: bytes, principal: Principal, loaded_at: float, generation: int) -> None:
        """Keep ``principal``, looked up from ``loaded_at`` on, unless a key was evicted since
        the lookup began (``generation`` differs): its answer may predate a revocation."""
        if self.max_keys <= 0 or generation != self.generation or principal.key_id is None:
            return
        previous = self.by_key_id.get(principal.key_id)
        if previous is not None and previous != digest:
            self._drop(previous)
        self.entries[digest] = _Cached(principal, loaded_at)
        self.entries.move_to_end(digest)
        self.by_key_id[principal.key_id] = digest
        while len(self.entries) > self.max_keys:
            self._drop(next(iter(self.entries)))

    def evict(self, key_id: str) -> None:
        """Forget the key ``key_id`` (``*``: every key), as announced by PostgreSQL."""
        self.generation += 1
        if key_id == "*":
            self.entries.clear()
            self.by_key_id.clear()
            return
        digest = self.by_key_id.get(key_id)
        if digest is not None:
            self._drop(digest)

    def clear(self) -> None:
        self.evict("*")

    def confirm(self, sent_at: float) -> None:
        """The listener is connected: a query it sent at ``sent_at`` was answered."""
        self.confirmed_at = max(self.confirmed_at, sent_at)

    def listener_down(self) -> None:
        self.confirmed_at = float("-inf")

    def _drop(self, digest: bytes) -> None:
        entry = self.entries.pop(digest, None)
        key_id = entry.principal.key_id if entry is not None else None
        if key_id is not None and self.by_key_id.get(key_id) == digest:
            del self.by_key_id[key_id]

    async def resolve(self, session: AsyncSession, token: str) -> Principal | None:
        digest = self.digest(token)
        now = time.monotonic()
        principal = self.get(digest, now)
        if principal is not None:
            return principal
        generation = self.generation
        principal = await _key_principal(session, token)
        if principal is not None:
            self.put(digest, principal, now, generation)
        return principal


def forget_key(request: Request, key_id: str) -> None:
    """Evict ``key_id`` from this process's cache (its change is committed)."""
    cache: KeyCache | None = getattr(request.app.state, "key_cache", None)
    if cache is not None:
        cache.evict(key_id)


def caller_in_memory(request: Request) -> Principal | None:
    """The caller when this process knows it without the database: the admin token, or a key
    its cache holds (see :class:`KeyCache` for how long). None when no key was sent or the key
    must be looked up (:func:`authenticate`); Unauthenticated for a malformed header."""
    token = bearer_token(request)
    if token is None:
        return None
    admin_token = request.app.state.settings.admin_token
    if admin_token is not None and hmac.compare_digest(
        token.encode(), admin_token.get_secret_value().encode()
    ):
        return ADMIN
    cache: KeyCache | None = getattr(request.app.state, "key_cache", None)
    return None if cache is None else cache.get(cache.digest(token), time.monotonic())


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
    cache: KeyCache | None = getattr(request.app.state, "key_cache", None)
    if cache is not None:
        principal = await cache.resolve(session, token)
    else:
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
