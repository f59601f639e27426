"""Rate limits: token buckets per client address (requests without a valid key, and failed
authentications) and per key (writes). The gate (``app/core/gate.py``) decides which buckets a
request draws from; this module keeps the buckets.

A request draws from one or more buckets at once, all or nothing: a request with a bad key takes
a token from its address's anonymous bucket *and* from its failed-authentication bucket, and a
request without a key takes one from the anonymous bucket and must find the failure bucket not
empty (an address that keeps failing is refused everything it does without a valid key).

Write buckets are kept per key id (never by a token a client made up) in each API process and
reconciled with Redis in the background (:class:`SharedBuckets`): a write costs no network
round trip, and every ``CHISO_RATE_SYNC_MS`` (200 ms; 0: after each write is answered) each
process adds the writes it let through to the key's shared bucket in Redis (one Lua script,
atomic, with Redis' own clock) and takes the shared level as its own. Between two
reconciliations a process spends at most what its bucket held at the last one plus one
interval's refill, so over N processes a key gets at most its limit plus (N - 1) x (burst +
one interval's refill); that overshoot is then owed by the shared bucket (it goes below
zero), so over any longer window the limit holds.
Per-address buckets live in each API process by default (``CHISO_RATE_PUBLIC_STORE=local``), at
most ``CHISO_RATE_MAX_BUCKETS`` of them (write buckets included), the least recently used
dropped first: a poll then costs no network round trip, and a client spreading its
connections over N processes gets at most N times its limit; ``redis`` shares them, at one
Redis round trip per request. IPv6 clients are counted per /64, the block one subscriber gets,
so rotating addresses does not buy new buckets.

Limits in Redis fail open: when Redis is unreachable the request is served, a warning is logged
and ``chiso_rate_limit_fail_open_total`` counts it; after a failure the limiter stays out of the
way for a few seconds instead of paying a timeout per request. Write buckets then hold per
process only; the writes no reconciliation could report are counted the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.types import Scope

from app.core.errors import Problem
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

# Both scripts read Redis's clock once, then each bucket ``i`` of KEYS with its ARGV triple
# (rate in tokens a second, capacity, and a third value the script names) and refill it to now.
_NOW = """local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""


def _refilled(third: str) -> str:
    """Lua, inside ``for i = 1, #KEYS``: ``rate``, ``capacity``, ``{third}`` and ``tokens``
    (the bucket refilled to ``now``; full when it does not exist)."""
    return f"""  local rate = tonumber(ARGV[3 * i - 2])
  local capacity = tonumber(ARGV[3 * i - 1])
  local {third} = tonumber(ARGV[3 * i])
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'ts')
  local tokens = tonumber(state[1])
  local ts = tonumber(state[2])
  if tokens == nil or ts == nil then
    tokens = capacity
    ts = now
  end
  tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
"""


# KEYS: the buckets; ARGV: rate (tokens a second), capacity and cost of each bucket in turn.
# A cost of 0 only asks that the bucket not be empty. Tokens are taken only when every bucket
# has enough, and only buckets that pay are written (a look creates no key). Returns
# {index of the bucket that refused (0: none), seconds until it would accept}.
BUCKETS_SCRIPT = (
    _NOW
    + """local levels = {}
local refused, wait = 0, 0
for i = 1, #KEYS do
"""
    + _refilled("cost")
    + """  levels[i] = tokens
  local need = math.max(cost, 1)
  if tokens < need and (need - tokens) / rate > wait then
    refused = i
    wait = (need - tokens) / rate
  end
end
if refused == 0 then
  for i = 1, #KEYS do
    local rate = tonumber(ARGV[3 * i - 2])
    local capacity = tonumber(ARGV[3 * i - 1])
    local cost = tonumber(ARGV[3 * i])
    if cost > 0 then
      redis.call('HSET', KEYS[i], 'tokens', tostring(levels[i] - cost), 'ts', tostring(now))
      redis.call('PEXPIRE', KEYS[i], math.ceil(capacity / rate * 1000) + 1000)
    end
  end
end
return {refused, tostring(wait)}
"""
)

# The reconciliation of write buckets. KEYS: the buckets; ARGV: rate, capacity and the tokens
# this process spent since its last report, for each bucket in turn. Adds the spending to each
# shared bucket (which may go below zero: an overshoot across processes is owed, then refilled)
# and returns each bucket's level.
SYNC_SCRIPT = (
    _NOW
    + """local levels = {}
for i = 1, #KEYS do
"""
    + _refilled("spent")
    + """  tokens = tokens - spent
  if spent > 0 then
    redis.call('HSET', KEYS[i], 'tokens', tostring(tokens), 'ts', tostring(now))
    local refill = (capacity - math.min(tokens, 0)) / rate
    redis.call('PEXPIRE', KEYS[i], math.ceil(refill * 1000) + 1000)
  end
  levels[i] = tostring(tokens)
end
return levels
"""
)

BucketKind = Literal["public", "write", "auth_failure", "refresh"]


class TooManyRequests(Problem):
    status, slug, title = 429, "rate-limited", "Too many requests"


@dataclass(frozen=True, slots=True)
class Limit:
    per_minute: int
    burst: int

    @property
    def per_second(self) -> float:
        return self.per_minute / 60


@dataclass(frozen=True, slots=True)
class Draw:
    """What a request takes from one bucket: ``cost`` tokens (0: it must merely not be empty)."""

    kind: BucketKind
    key: str
    limit: Limit
    cost: int = 1


@dataclass(frozen=True, slots=True)
class Refusal:
    draw: Draw
    retry_after: float

    def problem(self) -> TooManyRequests:
        seconds = max(1, math.ceil(self.retry_after))
        limit = self.draw.limit.per_minute
        if self.draw.kind == "auth_failure":
            detail = (
                f"More than {limit} failed authentications per minute from this address; "
                f"retry in {seconds} s."
            )
        else:
            detail = f"More than {limit} requests per minute; retry in {seconds} s."
        return TooManyRequests(detail, headers={"Retry-After": str(seconds)})


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


def bucket_address(address: str) -> str:
    """The name of a client's bucket: its IPv4 address, or the /64 holding its IPv6 address."""
    if ":" not in address:
        return address
    try:
        ip = ipaddress.IPv6Address(address)
    except ValueError:
        return address[:64]
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, 64), strict=False))


class LocalBuckets:
    """The buckets of :data:`BUCKETS_SCRIPT`, in this process's memory, at most ``max_buckets``.

    The least recently charged bucket is dropped first; a dropped bucket starts full again,
    which only ever lets a client through, so the bound costs some strictness, never a refusal.
    """

    def __init__(self, max_buckets: int) -> None:
        self.max_buckets = max_buckets
        self.state: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def draw(self, draws: Sequence[Draw], now: float) -> Refusal | None:
        levels: list[float] = []
        refusal: Refusal | None = None
        for draw in draws:
            rate, capacity = draw.limit.per_second, float(draw.limit.burst)
            tokens, at = self.state.get(draw.key, (capacity, now))
            level = min(capacity, tokens + max(0.0, now - at) * rate)
            levels.append(level)
            need = max(draw.cost, 1)
            if level < need and (refusal is None or (need - level) / rate > refusal.retry_after):
                refusal = Refusal(draw, (need - level) / rate)
        if refusal is not None:
            return refusal
        for draw, level in zip(draws, levels, strict=True):
            if draw.cost:
                self.state[draw.key] = (level - draw.cost, now)
                self.state.move_to_end(draw.key)
        while len(self.state) > self.max_buckets:
            self.state.popitem(last=False)
        return None

    def set(self, key: str, tokens: float, now: float) -> None:
        """The level of ``key`` is ``tokens`` (as learnt from the shared bucket)."""
        self.state[key] = (tokens, now)
        self.state.move_to_end(key)
        while len(self.state) > self.max_buckets:
            self.state.popitem(last=False)


@dataclass(slots=True)
class _Watched:
    draw: Draw
    spent: int  # tokens taken here and not reported yet
    drawn_at: float


class SharedBuckets:
    """Write buckets: drawn from in this process (:class:`LocalBuckets`, no round trip), and
    reconciled with their shared state in Redis by :meth:`sync`, which the limiter runs in the
    background every ``CHISO_RATE_SYNC_MS`` and once more when the process stops.

    A sync sends, for each bucket drawn from in the last ``WATCH_SECONDS``, the tokens this
    process took since the last sync; the script adds them to the shared bucket and answers its
    level, which becomes this process's level (less what was taken while the answer travelled).
    So a key in use here sees what the other processes took within one interval. Redis
    unreachable: the spending is dropped, counted in ``chiso_rate_limit_fail_open_total``, and
    buckets hold per process.
    """

    WATCH_SECONDS = 10.0

    def __init__(self, local: LocalBuckets, redis_buckets: RedisBuckets) -> None:
        self.local = local
        self.redis_buckets = redis_buckets
        self.watched: dict[str, _Watched] = {}
        self.unreported = 0
        self._lock = asyncio.Lock()

    def draw(self, draw: Draw, now: float) -> Refusal | None:
        refusal = self.local.draw([draw], now)
        watched = self.watched.get(draw.key)
        if watched is None:
            watched = self.watched[draw.key] = _Watched(draw, 0, now)
        watched.drawn_at = now
        if refusal is None:
            watched.spent += draw.cost
            self.unreported += draw.cost
        return refusal

    async def sync(self, redis: Redis) -> None:
        async with self._lock:
            now = time.monotonic()
            for key, watched in list(self.watched.items()):
                if not watched.spent and now - watched.drawn_at > self.WATCH_SECONDS:
                    del self.watched[key]
            if not self.watched:
                return
            keys: list[str] = []
            arguments: list[str] = []
            for key, watched in self.watched.items():
                limit = watched.draw.limit
                keys.append(key)
                arguments += [str(limit.per_second), str(limit.burst), str(watched.spent)]
                watched.spent = 0
            unreported, self.unreported = self.unreported, 0
            if now < self.redis_buckets.skip_until:
                FAIL_OPEN.inc(unreported)
                return
            try:
                levels = await redis.eval(  # type: ignore[misc]
                    SYNC_SCRIPT, len(keys), *keys, *arguments
                )
            except (RedisError, OSError, TimeoutError) as exc:
                self.redis_buckets.failed(exc)
                FAIL_OPEN.inc(unreported)
                return
            now = time.monotonic()
            for key, level in zip(keys, levels, strict=True):
                still = self.watched.get(key)
                since = still.spent if still is not None else 0
                self.local.set(key, float(level) - since, now)


class RedisBuckets:
    """The buckets in Redis, shared by every API process; failing open while Redis is down."""

    def __init__(self) -> None:
        self.skip_until = 0.0

    def failed(self, exc: BaseException) -> None:
        self.skip_until = time.monotonic() + _BACKOFF_SECONDS
        logger.warning(
            "rate limits off: Redis unreachable; failing open",
            extra={"error": repr(exc), "retry_in_seconds": _BACKOFF_SECONDS},
        )

    async def draw(self, redis: Redis, draws: Sequence[Draw]) -> Refusal | None:
        if time.monotonic() < self.skip_until:
            FAIL_OPEN.inc()
            return None
        arguments: list[str] = []
        for draw in draws:
            arguments += [str(draw.limit.per_second), str(draw.limit.burst), str(draw.cost)]
        try:
            refused, retry = await redis.eval(  # type: ignore[misc]
                BUCKETS_SCRIPT, len(draws), *(d.key for d in draws), *arguments
            )
        except (RedisError, OSError, TimeoutError) as exc:
            self.failed(exc)
            FAIL_OPEN.inc()
            return None
        index = int(refused)
        return Refusal(draws[index - 1], float(retry)) if index else None


class RateLimiter:
    """The limits of one API process: which buckets each kind of request draws from.

    - no key: the address's anonymous bucket, and its failure bucket must not be empty;
    - a key that fails (unknown, revoked, malformed header): the anonymous bucket and the
      failure bucket, one token each;
    - a valid key: for writes, the key's own bucket (by key id), in this process and
      reconciled with Redis in the background (:class:`SharedBuckets`); reads are not limited
      here (their cost is bounded by pagination and caching).
    """

    def __init__(self, settings: Settings) -> None:
        self.public, self.write = limits(settings)
        failures = settings.rate_auth_failures_per_minute
        self.failures = Limit(failures, failures) if failures else None
        self.trust_forwarded_for = settings.rate_trust_forwarded_for
        self.addresses_in_redis = settings.rate_public_store == "redis"
        self.local = LocalBuckets(settings.rate_max_buckets)
        self.redis = RedisBuckets()
        self.shared = SharedBuckets(self.local, self.redis)
        self.sync_seconds = settings.rate_sync_ms / 1000
        self._queue: Redis | None = None
        self._syncing: asyncio.Task[None] | None = None

    def start(self, queue: Redis) -> None:
        """Reconcile write buckets with ``queue`` (Redis) from now on, in the background."""
        self._queue = queue
        if self.write is not None and self.sync_seconds > 0:
            self._syncing = asyncio.create_task(self._sync_forever(), name="chiso-rate-sync")

    async def stop(self) -> None:
        """Stop reconciling, after reporting what was spent since the last reconciliation."""
        task, self._syncing = self._syncing, None
        if task is not None:
            while not task.done():  # cancelled again until it ends (see KeyChangeListener)
                task.cancel()
                await asyncio.wait({task}, timeout=0.1)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                task.result()
        await self.flush()

    async def flush(self) -> None:
        """Reconcile write buckets now (also the hook for tests that want it deterministic)."""
        if self._queue is not None:
            await self.shared.sync(self._queue)

    async def settle(self) -> None:
        """Once a keyed request is answered: with ``CHISO_RATE_SYNC_MS=0``, reconcile now (the
        answer is sent; the next request of this connection waits, none of the others)."""
        if self.sync_seconds == 0 and self.shared.unreported:
            await self.flush()

    async def _sync_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sync_seconds)
            try:
                await self.flush()
            except Exception:  # never let the loop die: the buckets would stop being shared
                logger.exception("rate limits: reconciling write buckets failed")

    async def anonymous(self, scope: Scope) -> Refusal | None:
        return await self._by_address(scope, failure_cost=0)

    async def failed(self, scope: Scope) -> Refusal | None:
        return await self._by_address(scope, failure_cost=1)

    async def may_try(self, scope: Scope) -> Refusal | None:
        """For a route that authenticates its caller itself (``app.core.auth.own_credentials``):
        refused while the address's anonymous or failure bucket is empty; nothing is taken,
        the route charges the outcome (``keyed`` or ``failed``)."""
        return await self._by_address(scope, failure_cost=0, public_cost=0)

    async def keyed(self, scope: Scope, holder: str) -> Refusal | None:
        """``holder`` names the key's bucket: its id, or ``admin`` for the admin token."""
        if self.write is None or scope["method"] not in WRITE_METHODS:
            return None
        draw = Draw("write", f"chiso:rate:write:{holder}", self.write)
        return self.shared.draw(draw, time.monotonic())

    async def refresh(self, scope: Scope, holder: str, settings: Settings) -> Refusal | None:
        """A requested score refresh costs far more than a write: its own bucket per key
        (``CHISO_RATE_REFRESH_PER_MINUTE``), drawn by the route once the caller may ask."""
        per_minute = settings.rate_refresh_per_minute
        if not per_minute:
            return None
        limit = Limit(per_minute, settings.rate_refresh_burst or per_minute)
        draw = Draw("refresh", f"chiso:rate:refresh:{holder}", limit)
        return await self.redis.draw(scope["app"].state.queue, [draw])

    async def _by_address(
        self, scope: Scope, *, failure_cost: int, public_cost: int = 1
    ) -> Refusal | None:
        if self.public is None and self.failures is None:
            return None
        address = bucket_address(client_address(scope, self.trust_forwarded_for))
        draws: list[Draw] = []
        if self.public is not None:
            key = f"chiso:rate:public:{address}"
            draws.append(Draw("public", key, self.public, public_cost))
        if self.failures is not None:
            key = f"chiso:rate:auth-failures:{address}"
            draws.append(Draw("auth_failure", key, self.failures, failure_cost))
        if self.addresses_in_redis:
            return await self.redis.draw(scope["app"].state.queue, draws)
        return self.local.draw(draws, time.monotonic())
