"""The listener that keeps this process's key cache honest (``app.core.auth.KeyCache``).

One asyncpg connection per API process, outside the pool, ``LISTEN``s on ``chiso_keys``: every
change to a key is announced there when its transaction commits (migration 0019), and the key
is evicted at once. Four times a second the listener sends a probe notice on a channel of its
own and waits for it to come back: notices arrive in commit order, so once it is back nothing
announced before it was sent is missing, and the listener confirms the cache. The cache serves
an entry only while that confirmation is recent (see ``KeyCache``), so a dead or silent
connection — or one whose ``LISTEN`` went elsewhere, as through a transaction-mode PgBouncer —
turns the cache into one of at most a second's memory, never a stale one. The
connection is remade in the background, and the cache emptied once it listens again (notices
sent meanwhile are lost).

``LISTEN`` needs a session of its own on PostgreSQL itself: behind PgBouncer in transaction
mode, point ``CHISO_LISTEN_DATABASE_URL`` straight at PostgreSQL (docs/SCALING.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time

import asyncpg
from sqlalchemy.engine import make_url

from app.core.auth import KeyCache
from app.keys import repository

logger = logging.getLogger("chiso.keys")

CONFIRM_EVERY_SECONDS = 0.25  # a probe notice sent and back, four times a second
_RETRY_FIRST, _RETRY_MAX = 0.2, 5.0


def asyncpg_url(url: str) -> str:
    """asyncpg wants ``postgresql://``; accept the ``postgresql+asyncpg://`` form as well."""
    parsed = make_url(url).set(drivername="postgresql")
    host = parsed.query.get("host")
    rendered = parsed.set(query={}).render_as_string(hide_password=False)
    return f"{rendered}?host={host}" if host else rendered


class KeyChangeListener:
    def __init__(
        self, cache: KeyCache, database_url: str, *, every: float = CONFIRM_EVERY_SECONDS
    ) -> None:
        self.cache = cache
        self.url = asyncpg_url(database_url)
        self.every = every
        self.connection: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = False
        self.probe_channel = f"chiso_keys_probe_{secrets.token_hex(6)}"
        self._expected = ""
        self._returned = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="chiso-key-listener")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        # Cancelled again until it ends: a cancellation that lands as an await completes can
        # be absorbed, and the loop would run on.
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.1)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            task.result()
        if self.connection is not None:
            self.connection.terminate()

    async def _run(self) -> None:
        retry_in = _RETRY_FIRST
        while True:
            self._connected = False
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # whatever failed: reconnect, never give up
                logger.warning(
                    "key change listener down; a cached key lives at most %.1f s meanwhile",
                    self.cache.stale_after,
                    extra={"error": repr(exc), "retry_in_seconds": retry_in},
                )
            finally:
                self.cache.listener_down()
            retry_in = _RETRY_FIRST if self._connected else min(retry_in * 2, _RETRY_MAX)
            await asyncio.sleep(retry_in)

    async def _listen(self) -> None:
        timeout = self.cache.stale_after
        connection = await asyncpg.connect(
            self.url,
            timeout=max(timeout, 5.0),
            server_settings={"application_name": "chiso-keys"},
        )
        self.connection = connection
        try:
            await repository.listen_for_changes(connection, self.cache.evict)
            await repository.listen_for_probes(connection, self.probe_channel, self._probed)
            # Notices sent while nobody listened are lost: forget what was cached before.
            self.cache.clear()
            sequence = 0
            while True:
                sequence += 1
                self._expected = str(sequence)
                self._returned.clear()
                sent = time.monotonic()
                async with asyncio.timeout(timeout):
                    await repository.probe(
                        connection, self.probe_channel, self._expected, within=timeout
                    )
                    await self._returned.wait()
                self.cache.confirm(sent)
                if not self._connected:
                    logger.info("key change listener connected")
                    self._connected = True
                await asyncio.sleep(self.every)
        finally:
            self.connection = None
            connection.terminate()

    def _probed(self, payload: str) -> None:
        if payload == self._expected:
            self._returned.set()
