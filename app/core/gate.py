"""The gate: who is calling, whether they may call now, and how much they may send — decided
from the headers alone, before a byte of the body is read.

FastAPI reads and parses a body before it solves dependencies such as ``require(scope)``, so
without the gate an anonymous 32 MB body was read into memory only to be answered 401. Here one
pure-ASGI middleware, for every request:

1. resolves the bearer key (the admin token or an API key) once, in the session the request
   then works in (``app.core.database.get_session`` hands it on: one connection checkout),
   and leaves the caller in the request's state, where ``app.core.auth.authenticate`` picks
   it up (no second lookup). Keys come from the process's cache (``app.core.auth.KeyCache``),
   which a revocation in any process clears within a second;
2. answers a bad key (unknown, revoked, malformed header) 401 on every route, public ones
   included, and charges it to the address's anonymous and failed-authentication buckets
   (429 once either is empty); a request without a key is charged to the anonymous bucket;
   writes with a valid key to the key's own bucket (see ``app.core.ratelimit``);
3. refuses, unread, an anonymous body sent to a route that wants a key (401), and a body over
   the route's cap (413, from ``Content-Length`` or counted while it streams);
4. hands a keyed request to its route's *lane*, when it has one and no query string: a
   function that answers the route's common case itself, below the layers and the routing
   that a request of any route passes through (``POST /v1/dossier-events``: a third of its
   Python, profiled). The lane reads the caller and the body the gate has; what it declines
   goes on to the app, body replayed, and the declared route answers it; what it raises is
   answered by the app's exception handlers, as the app's own exception layer would.

A key this process's cache holds costs no session: the gate opens one only to look a key up.

A refused body is never read; uvicorn drops what still arrives of it, a cheap copy, and keeps
the connection: closing it with unread data in flight would reset it, and the client would
never read its 401 or 413.

Routes that take credentials in the body (the portal protocol's login and session calls under
``/dvcqg/``) depend on ``app.core.auth.own_credentials`` instead of a ``require``: without an
``Authorization`` header their bodies are read, within the cap, and they check the credentials
and charge the outcome themselves; the gate only refuses, unread, an address whose anonymous or
failure bucket is empty. With the header they are gated like any route (a portal session is a
bearer credential there: ``app.core.auth.BEARER_ALTERNATIVES``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.auth import (
    KEY_REQUIREMENTS,
    PRINCIPAL_STATE,
    Principal,
    authenticate,
    caller_in_memory,
    own_credentials,
)
from app.core.database import SESSION_STATE, closing
from app.core.errors import (
    PayloadTooLarge,
    Problem,
    ServiceUnavailable,
    Unauthenticated,
    is_outage,
    problem_response,
)
from app.core.ratelimit import EXEMPT_PATHS, RATE_LIMITED, RateLimiter, Refusal
from app.core.settings import Settings

logger = logging.getLogger("chiso.gate")

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


# A route's common case answered from the gate (see ``GateMiddleware``): called with the
# caller, the request's scope, its whole body and ``send``; True once it has answered, False
# (having sent nothing) to leave the request to the app.
Lane = Callable[[Principal, Scope, bytes, Send], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class BodyRule:
    """How large a route's body may be, and whether only a caller with a key may send one."""

    cap: int
    needs_key: bool
    own_credentials: bool = False


def _needs_key(dependant: Dependant) -> bool:
    return any(dep.call in KEY_REQUIREMENTS or _needs_key(dep) for dep in dependant.dependencies)


def _own_credentials(dependant: Dependant) -> bool:
    return any(dep.call is own_credentials for dep in dependant.dependencies)


class BodyRules:
    """The rule of every route that takes a body, matched the way the router matches."""

    def __init__(
        self, routes: Collection[Any], *, small: int, large: int, bulk: Collection[str]
    ) -> None:
        self.default = BodyRule(small, needs_key=False)
        self.rules: list[tuple[re.Pattern[str], frozenset[str], BodyRule]] = []
        for route in routes:
            if not isinstance(route, APIRoute) or not (route.methods or set()) & _BODY_METHODS:
                continue
            cap = large if route.path in bulk else small
            rule = BodyRule(
                cap,
                needs_key=_needs_key(route.dependant),
                own_credentials=_own_credentials(route.dependant),
            )
            self.rules.append((route.path_regex, frozenset(route.methods or ()), rule))

    def for_request(self, scope: Scope) -> BodyRule:
        path, method = scope["path"], scope["method"]
        for pattern, methods, rule in self.rules:
            if method in methods and pattern.match(path):
                return rule
        return self.default  # no such route: the router answers 404/405 without reading it


class GateMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        limiter: RateLimiter,
        bulk_routes: Collection[str],
        lanes: Mapping[tuple[str, str], Lane] | None = None,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.small = settings.max_small_body_bytes
        self.large = settings.max_body_bytes
        self.bulk_routes = frozenset(bulk_routes)
        self.lanes = dict(lanes or {})
        self._rules: BodyRules | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        if not any(name == b"authorization" for name, _ in scope["headers"]):
            if scope["method"] in _BODY_METHODS and self._body_rule(scope).own_credentials:
                refusal = await self.limiter.may_try(scope)  # the route charges the outcome
            else:
                refusal = await self.limiter.anonymous(scope)
            if refusal is not None:
                await _refuse(_limited(refusal), scope, send)
                return
            state[PRINCIPAL_STATE] = None
            await self._admit(None, scope, receive, send)
            return
        request = Request(scope)
        try:
            principal = caller_in_memory(request)
        except Unauthenticated as failed:
            refusal = await self.limiter.failed(scope)
            await _refuse(_limited(refusal) if refusal else failed, scope, send)
            return
        if principal is not None:  # no session: the route opens one if it needs it
            await self._keyed(principal, scope, receive, send)
        else:
            # The key is looked up in the session the request then works in: one checkout.
            async with closing(scope["app"].state.sessionmaker()) as session:
                try:
                    principal = await self._resolve(request, session)
                except Unauthenticated as failed:
                    refusal = await self.limiter.failed(scope)
                    await _refuse(_limited(refusal) if refusal else failed, scope, send)
                    return
                except ServiceUnavailable as down:
                    await _refuse(down, scope, send)
                    return
                state[SESSION_STATE] = session
                await self._keyed(principal, scope, receive, send)
        await self.limiter.settle()

    async def _keyed(
        self, principal: Principal, scope: Scope, receive: Receive, send: Send
    ) -> None:
        refusal = await self.limiter.keyed(scope, principal.key_id or principal.name)
        if refusal is not None:
            await _refuse(_limited(refusal), scope, send)
            return
        scope["state"][PRINCIPAL_STATE] = principal
        await self._admit(principal, scope, receive, send)

    async def _admit(
        self, principal: Principal | None, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Pass the request on, its body refused unread if it may not send one or is too big."""
        if not _has_body(scope["headers"]):
            await self.app(scope, receive, send)
            return
        rule = self._body_rule(scope)
        if rule.needs_key and principal is None:
            await _refuse(Unauthenticated(), scope, send)
            return
        lane = self.lanes.get((scope["method"], scope["path"]))
        if lane is not None and principal is not None and not scope["query_string"]:
            await self._in_lane(lane, principal, rule.cap, scope, receive, send)
            return
        await self._within_cap(rule.cap, scope, receive, send)

    async def _in_lane(
        self, lane: Lane, principal: Principal, cap: int, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """The body read (within ``cap``) and offered to ``lane``; what it declines goes on
        to the app with the body replayed. What it raises is answered by the app's exception
        handlers, as the app's own exception layer would answer it."""
        declared = _content_length(scope["headers"])
        try:
            if declared is not None and declared > cap:
                raise _BodyTooLarge
            messages = await _read(receive, cap)
        except _BodyTooLarge:
            await _refuse(_too_large(cap), scope, send)
            return
        watched = _Watched(send)
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        try:
            if await lane(principal, scope, body, watched):
                return
        except Exception as exc:
            if watched.started:
                raise
            await _handled(exc, scope, send)
            return
        await self.app(scope, _replayed(messages, receive), send)

    async def _resolve(self, request: Request, session: AsyncSession) -> Principal:
        """The caller named by the Authorization header; Unauthenticated when it names none."""
        try:
            principal = await authenticate(request, session)
        except Unauthenticated:
            raise
        except Exception as exc:
            if not is_outage(exc):
                raise
            logger.warning("database unavailable", extra={"error": repr(exc)})
            raise ServiceUnavailable("The database is unreachable; retry shortly.") from exc
        if principal is None:  # an empty header: no key where one was announced
            raise Unauthenticated("Send the key as `Authorization: Bearer <key>`.")
        return principal

    def _body_rule(self, scope: Scope) -> BodyRule:
        if self._rules is None:  # routes are complete once the app serves its first request
            self._rules = BodyRules(
                scope["app"].router.routes,
                small=self.small,
                large=self.large,
                bulk=self.bulk_routes,
            )
        return self._rules.for_request(scope)

    async def _within_cap(self, cap: int, scope: Scope, receive: Receive, send: Send) -> None:
        declared = _content_length(scope["headers"])
        if declared is not None and declared > cap:
            await _refuse(_too_large(cap), scope, send)
            return
        watched = _Watched(send)
        try:
            if declared is None:
                # A body of unknown length is read, up to the cap, before the app sees it: an
                # overflow found while the framework parses it would be answered 400.
                receive = await _buffered(receive, cap)
            await self.app(scope, _counted(receive, cap), watched)
        except _BodyTooLarge:
            if watched.started:
                raise
            await _refuse(_too_large(cap), scope, send)


class _BodyTooLarge(Exception):
    pass


class _Watched:
    """``send``, noting whether the answer has begun (after which no other can be sent)."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        self.started = self.started or message["type"] == "http.response.start"
        await self.send(message)


def _limited(refusal: Refusal) -> Problem:
    RATE_LIMITED.labels(refusal.draw.kind).inc()
    return refusal.problem()


def _has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
        if name == b"transfer-encoding":
            return True
    return False


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _too_large(cap: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body exceeds {cap} bytes, this endpoint's limit.")


async def _buffered(receive: Receive, cap: int) -> Receive:
    """Read the whole body (raising ``_BodyTooLarge`` past ``cap``), then replay it."""
    return _replayed(await _read(receive, cap), receive)


async def _read(receive: Receive, cap: int) -> list[Message]:
    """The body's messages, up to its last (raising ``_BodyTooLarge`` past ``cap``)."""
    messages: list[Message] = []
    seen = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages
        seen += len(message.get("body", b""))
        if seen > cap:
            raise _BodyTooLarge
        if not message.get("more_body", False):
            return messages


def _replayed(messages: list[Message], receive: Receive) -> Receive:
    """``messages`` received again, then what ``receive`` still has."""
    replay: Iterator[Message] = iter(messages)

    async def replayed() -> Message:
        return next(replay, None) or await receive()

    return replayed


def _counted(receive: Receive, cap: int) -> Receive:
    """Refuse a body that grows past ``cap`` (a server that does not hold to Content-Length)."""
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > cap:
                raise _BodyTooLarge
        return message

    return counted


async def _handled(exc: Exception, scope: Scope, send: Send) -> None:
    """``exc`` answered by the app's handler for its class (the nearest in its MRO), as
    Starlette's exception layer answers what a route raises; without one, raised on."""
    handlers: dict[Any, Callable[..., Awaitable[Response]]] = scope["app"].exception_handlers
    handler = next((handlers[c] for c in type(exc).__mro__ if c in handlers), None)
    if handler is None:
        raise exc
    response = await handler(Request(scope), exc)

    async def nothing() -> Message:
        return {"type": "http.disconnect"}

    await response(scope, nothing, send)


async def _refuse(problem: Problem, scope: Scope, send: Send) -> None:
    """Answer ``problem`` without reading the request's body."""
    response = problem_response(problem, Request(scope))

    async def nothing() -> Message:
        return {"type": "http.disconnect"}

    await response(scope, nothing, send)
