"""An in-process shared cache for public responses: what a caching proxy would do, built in.

Mobile clients poll the same few rankings thousands of times a minute, and a ranking changes at
most once a minute (``refresh_scores``). Each API process therefore keeps, for a few seconds,
every ``200`` response the app marked ``Cache-Control: public`` with an ``ETag``, and answers
later anonymous ``GET``s for the same URL from memory — ``304`` when ``If-None-Match`` holds the
ETag — without routing, dependencies, PostgreSQL or Redis.

The rules are those of a shared HTTP cache (RFC 9111), narrowed to be safe:

- only ``GET`` without ``Authorization`` or ``Cookie``: a keyed caller always reaches the app;
- only ``200`` responses with an ``ETag`` and ``public`` (not ``private``/``no-store``/
  ``no-cache``), without ``Set-Cookie``, of at most :data:`MAX_BODY` bytes;
- entries live ``min(seconds, max-age)``; the key holds the path, the query string, the
  request's ``Accept`` and ``Accept-Encoding``, and the language its ``Accept-Language`` picks
  (what our responses ``Vary`` on): an answer written for people in Vietnamese or English
  (``app/core/language.py``) is stored once per language, never per spelling of the header
  (``vi-VN,vi;q=0.9`` and ``vi`` share an entry);
- on a miss the request goes to the app *unconditionally* (``If-None-Match`` removed), so a
  poll from a client that already holds the ETag still fills the cache; the conditional is then
  answered here;
- an expired entry still within the response's own ``max-age`` is answered at once and
  refreshed in the background (RFC 5861's stale-while-revalidate), one refresh per key at a
  time: no poll ever waits for the database once a key has been served;
- a key never served yet is filled by the first request; polls arriving meanwhile wait for
  that one answer instead of each asking the app.

It sits inside the observability and rate-limit middleware, so a hit is still logged, counted
and limited, and outside gzip, so a compressed body is stored compressed (the key tells them
apart).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.language import negotiate

logger = logging.getLogger("chiso.response_cache")

MAX_BODY = 1 << 20
MAX_ENTRIES = 2048

CACHE_LOOKUPS = Counter(
    "chiso_response_cache_total", "Public GETs looked up in the response cache", ["result"]
)
_HITS = CACHE_LOOKUPS.labels("hit")
_MISSES = CACHE_LOOKUPS.labels("miss")

_MAX_AGE = re.compile(rb"max-age=(\d+)")
_UNCACHEABLE = (b"private", b"no-store", b"no-cache")


@dataclass(frozen=True, slots=True)
class Entry:
    expires: float
    stale_until: float  # the response's own max-age: served while a refill is in flight
    etag: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    validators: list[tuple[bytes, bytes]]  # what a 304 repeats: ETag, Cache-Control, Vary
    route: object  # the matched route, so metrics and logs name a hit by its template


class ResponseCache:
    """The store: bounded, per process, cleared whole rather than grown past its bound."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.entries: dict[tuple[bytes, ...], Entry] = {}
        self.filling: dict[tuple[bytes, ...], asyncio.Event] = {}

    def get(self, key: tuple[bytes, ...], now: float) -> Entry | None:
        entry = self.entries.get(key)
        if entry is None or entry.expires <= now:
            return None
        return entry

    def put(self, key: tuple[bytes, ...], entry: Entry) -> None:
        if len(self.entries) >= MAX_ENTRIES:
            self.entries.clear()
        self.entries[key] = entry

    def clear(self) -> None:
        self.entries.clear()


def _etag_matches(header: bytes, etag: bytes) -> bool:
    for candidate in header.split(b","):
        candidate = candidate.strip()
        if candidate in (etag, b"*") or candidate.removeprefix(b"W/") == etag:
            return True
    return False


def _lifetime(
    headers: list[tuple[bytes, bytes]], seconds: float
) -> tuple[bytes, float, float] | None:
    """(ETag, seconds to keep, max-age) when a response may be stored, else None."""
    etag = b""
    control = b""
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"etag":
            etag = value
        elif lowered == b"cache-control":
            control = value.lower()
        elif lowered == b"set-cookie":
            return None
    if not etag or b"public" not in control or any(d in control for d in _UNCACHEABLE):
        return None
    found = _MAX_AGE.search(control)
    max_age = float(found.group(1)) if found is not None else seconds
    seconds = min(seconds, max_age)
    return (etag, seconds, max_age) if seconds > 0 else None


class ResponseCacheMiddleware:
    def __init__(self, app: ASGIApp, *, cache: ResponseCache) -> None:
        self.app = app
        self.cache = cache
        self._refreshing: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        accept = encoding = conditional = languages = b""
        for name, value in scope["headers"]:
            if name == b"authorization" or name == b"cookie":
                await self.app(scope, receive, send)
                return
            if name == b"accept":
                accept = value
            elif name == b"accept-encoding":
                encoding = value
            elif name == b"if-none-match":
                conditional = value
            elif name == b"accept-language":
                languages = value
        language = negotiate(languages).encode()
        key = (scope["path"].encode(), scope["query_string"], accept, encoding, language)
        now = time.monotonic()
        entry = self.cache.get(key, now) or self._stale_while_revalidating(scope, key, now)
        if entry is None:
            entry = await self._filled_meanwhile(key)
        if entry is None:
            _MISSES.inc()
            with self._filling(key):
                entry = await self._fill(scope, receive, send, key, now)
            if entry is None:
                return  # not storable: the app's own answer has been sent
        else:
            _HITS.inc()
            scope["route"] = entry.route
        if conditional and _etag_matches(conditional, entry.etag):
            await send({"type": "http.response.start", "status": 304, "headers": entry.validators})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": entry.headers})
        await send({"type": "http.response.body", "body": entry.body})

    def _stale_while_revalidating(
        self, scope: Scope, key: tuple[bytes, ...], now: float
    ) -> Entry | None:
        """An expired entry within its max-age, with a background refresh started (once)."""
        previous = self.cache.entries.get(key)
        if previous is None or now >= previous.stale_until:
            return None
        if key not in self.cache.filling:
            filling = self._filling(key)  # claimed now, before the task starts
            task = asyncio.create_task(self._refresh({**scope, "state": {}}, key, filling))
            self._refreshing.add(task)
            task.add_done_callback(self._refreshing.discard)
        return previous

    def _filling(self, key: tuple[bytes, ...]) -> contextlib.AbstractContextManager[None]:
        """Mark ``key`` as being filled until the block ends; waiters are woken then."""
        done = self.cache.filling[key] = asyncio.Event()

        @contextlib.contextmanager
        def until_done() -> Iterator[None]:
            try:
                yield
            finally:
                if self.cache.filling.get(key) is done:
                    del self.cache.filling[key]
                done.set()

        return until_done()

    async def _refresh(
        self, scope: Scope, key: tuple[bytes, ...], filling: contextlib.AbstractContextManager[None]
    ) -> None:
        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def discard(message: Message) -> None:
            return None

        with filling:
            try:
                await self._fill(scope, receive, discard, key, time.monotonic())
            except Exception:  # the stale entry stays; the next poll after it tries again
                logger.exception("refreshing a cached response failed")

    async def _filled_meanwhile(self, key: tuple[bytes, ...]) -> Entry | None:
        """A key being filled by another request: its answer, once there."""
        filling = self.cache.filling.get(key)
        if filling is None:
            return None
        await filling.wait()
        return self.cache.get(key, time.monotonic())

    async def _fill(
        self, scope: Scope, receive: Receive, send: Send, key: tuple[bytes, ...], now: float
    ) -> Entry | None:
        """Ask the app without the conditional; store a storable answer, else pass it through."""
        scope["headers"] = [(n, v) for n, v in scope["headers"] if n != b"if-none-match"]
        start: Message | None = None
        chunks: list[bytes] = []
        storable: tuple[bytes, float, float] | None = None
        passing = False

        async def capture(message: Message) -> None:
            nonlocal start, storable, passing
            if passing:
                await send(message)
                return
            if message["type"] == "http.response.start":
                start = message
                if message["status"] == 200:
                    storable = _lifetime(list(message.get("headers", [])), self.cache.seconds)
                if storable is None:
                    passing = True
                    await send(message)
                return
            chunks.append(message.get("body", b""))
            if sum(map(len, chunks)) > MAX_BODY:
                passing = True
                await send(start or message)
                await send({**message, "body": b"".join(chunks)})
                return

        await self.app(scope, receive, capture)
        if passing or start is None or storable is None:
            return None
        etag, seconds, max_age = storable
        response_headers = list(start.get("headers", []))
        validators = [
            (n, v) for n, v in response_headers if n.lower() in (b"etag", b"cache-control", b"vary")
        ]
        entry = Entry(
            expires=now + seconds,
            stale_until=now + max_age,
            etag=etag,
            headers=response_headers,
            body=b"".join(chunks),
            validators=validators,
            route=scope.get("route"),
        )
        self.cache.put(key, entry)
        return entry
