"""Rate limits: a token bucket per client for public requests and per key for writes.

Write buckets live in Redis and are updated by one Lua script (atomic, with Redis' own clock),
so every API process shares them. Public buckets (anonymous polls of rankings and lists) live in
each API process by default (``CHISO_RATE_PUBLIC_STORE=local``): a poll then costs no network
round trip, and a client spreading its connections over N processes gets at most N times its
limit; ``redis`` shares them like write buckets, at one Redis round trip per request.

Limits in Redis fail open: when Redis is unreachable the request is served, a warning is logged
and ``chiso_rate_limit_fail_open_total`` counts it; after a failure the limiter stays out of the
way for a few seconds instead of paying a timeout per request.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.errors import Problem, problem_response
from app.core.settings import Settings

logger = logging.getLogger("chiso.ratelimit")

RATE_LIMITED = Counter(
    "chiso_rate_limited_total", "Requests answered 429, by bucket kind", ["bucket"]
)
FAIL_OPEN = Counter(
    "chiso_rate_limit_fail_open_total",
    "Requests served without a rate-limit check because Redis was unreachable",
)

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_BACKOFF_SECONDS = 5.0

# KEYS[1] bucket; ARGV[1] tokens per second, ARGV[2] capacity. Returns {allowed, retry_after}.
BUCKET_SCRIPT = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local retry = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return {allowed, tostring(retry)}
"""


class TooManyRequests(Problem):
    status, slug, title = 429, "rate-limited", "Too many requests"


@dataclass(frozen=True, slots=True)
class Limit:
    per_minute: int
    burst: int

    @property
    def per_second(self) -> float:
        return self.per_minute / 60


def limits(settings: Settings) -> tuple[Limit | None, Limit | None]:
    """(public limit, write limit); None where the setting is 0 (off)."""
    public = settings.rate_public_per_minute
    write = settings.rate_write_per_minute
    return (
        Limit(public, settings.rate_public_burst or public) if public else None,
        Limit(write, settings.rate_write_burst or write) if write else None,
    )


def client_address(scope: Scope, trust_forwarded_for: bool) -> str:
    """The first X-Forwarded-For address behind a trusted proxy, else the peer address."""
    if trust_forwarded_for:
        for name, value in scope.get("headers") or []:
            if name == b"x-forwarded-for":
                first: str = value.decode("latin-1").split(",")[0].strip()
                if first:
                    return first[:64]
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers") or []:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer":
                return None
            return token.strip() or None
    return None


class LocalBuckets:
    """The same token bucket as :data:`BUCKET_SCRIPT`, in this process's memory."""

    MAX_CLIENTS = 100_000

    def __init__(self, limit: Limit) -> None:
        self.limit = limit
        self.state: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str, now: float) -> float | None:
        rate, capacity = self.limit.per_second, float(self.limit.burst)
        tokens, at = self.state.get(key, (capacity, now))
        tokens = min(capacity, tokens + max(0.0, now - at) * rate)
        if tokens >= 1:
            if len(self.state) >= self.MAX_CLIENTS:
                self._forget_full(now)
            self.state[key] = (tokens - 1, now)
            return None
        self.state[key] = (tokens, now)
        return (1 - tokens) / rate

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled: forgetting them changes no answer."""
        rate, capacity = self.limit.per_second, self.limit.burst
        self.state = {
            k: (t, at) for k, (t, at) in self.state.items() if t + (now - at) * rate < capacity
        }


class RateLimitMiddleware:
    """Pure ASGI: requests without a key are limited per client, writes with a key per key.

    Reads made with a key are not limited here (their cost is bounded by pagination and
    caching); operations endpoints never are.
    """

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.public, self.write = limits(settings)
        self.trust_forwarded_for = settings.rate_trust_forwarded_for
        self.local = (
            LocalBuckets(self.public)
            if self.public is not None and settings.rate_public_store == "local"
            else None
        )
        self._skip_until = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        bucket = self._bucket(scope)
        if bucket is not None:
            kind, key, limit = bucket
            if kind == "public" and self.local is not None:
                retry_after = self.local.take(key, time.monotonic())
            else:
                retry_after = await self._take(scope, key, limit)
            if retry_after is not None:
                RATE_LIMITED.labels(kind).inc()
                seconds = max(1, math.ceil(retry_after))
                problem = TooManyRequests(
                    f"More than {limit.per_minute} requests per minute; retry in {seconds} s.",
                    headers={"Retry-After": str(seconds)},
                )
                response = problem_response(problem, Request(scope, receive))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _bucket(self, scope: Scope) -> tuple[str, str, Limit] | None:
        token = _bearer(scope)
        if token is None:
            if self.public is None:
                return None
            client = client_address(scope, self.trust_forwarded_for)
            return "public", f"chiso:rate:public:{client}", self.public
        if self.write is None or scope.get("method") not in WRITE_METHODS:
            return None
        # Never the key itself in Redis: a digest names the bucket.
        digest = hashlib.sha256(token.encode()).hexdigest()[:32]
        return "write", f"chiso:rate:write:{digest}", self.write

    async def _take(self, scope: Scope, key: str, limit: Limit) -> float | None:
        """Seconds to wait when the bucket is empty; None when the request may go ahead."""
        if time.monotonic() < self._skip_until:
            FAIL_OPEN.inc()
            return None
        redis: Redis = scope["app"].state.queue
        try:
            allowed, retry = await redis.eval(  # type: ignore[misc]
                BUCKET_SCRIPT, 1, key, str(limit.per_second), str(limit.burst)
            )
        except (RedisError, OSError, TimeoutError) as exc:
            self._skip_until = time.monotonic() + _BACKOFF_SECONDS
            FAIL_OPEN.inc()
            logger.warning(
                "rate limits off: Redis unreachable; failing open",
                extra={"error": repr(exc), "retry_in_seconds": _BACKOFF_SECONDS},
            )
            return None
        return None if int(allowed) else float(retry)
