"""``chiso worker``: derivation, schedules and the arq queue in one process that outlives Redis.

Derivation and the schedules that need only PostgreSQL run whatever Redis does. The arq
worker (queued jobs, the cron table) is torn down when Redis goes away and started again,
after a capped and jittered backoff, once Redis answers; a worker started without Redis
waits for it. While arq is down the same cron table (minus the jobs that only feed Redis)
runs in-process. A heartbeat file tells ``chiso worker --check`` the worker is alive and
which part is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from arq.cron import CronJob
from arq.worker import Worker
from prometheus_client import Counter, Gauge, start_http_server
from redis.exceptions import RedisError

from app.core import repository as core_repository
from app.core.jobs import relay_outbox
from app.core.observability import configure_logging
from app.core.queue import create_queue
from app.core.settings import Settings
from app.dossiers.jobs import keep_deriving
from worker.heartbeat import HEARTBEAT_EVERY_SECONDS, heartbeat_path, write_heartbeat
from worker.settings import (
    JOB_TIMEOUT_SECONDS,
    in_process_cron_table,
    queue_options,
    worker_context,
)

logger = logging.getLogger("chiso.worker")

QUEUE_CONNECTED = Gauge(
    "chiso_worker_queue_connected", "1 while the worker's arq side is connected to Redis"
)
QUEUE_STARTS = Counter(
    "chiso_worker_queue_starts_total", "arq workers started (the first, then one per recovery)"
)

BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 15.0
# A queue worker that ran this long was healthy: the next failure starts the backoff over.
STABLE_AFTER_SECONDS = 60.0
PROBE_TIMEOUT_SECONDS = 3.0
# Jobs of a torn-down queue worker may finish (their result may not reach Redis: arq then
# runs them again); shutdown does not wait longer than this for the ones it cancels.
SHUTDOWN_GRACE_SECONDS = 5.0
# Errors that mean "Redis is unreachable", as opposed to a fault in arq or a job.
REDIS_DOWN = (RedisError, OSError, TimeoutError)


def _now() -> datetime:
    return datetime.now(UTC)


def _jittered(delay: float) -> float:
    # Several workers restarted by one outage must not knock on Redis in lockstep.
    return delay * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


class Part:
    """Up or down, since when, and why: one dependency as the heartbeat reports it."""

    def __init__(self) -> None:
        self.state = "unknown"
        self.since = _now()
        self.error: str | None = None

    def set(self, state: str, error: str | None = None) -> bool:
        """Record the state; True when it changed (the caller logs changes, not attempts)."""
        self.error = error
        if state == self.state:
            return False
        self.state, self.since = state, _now()
        return True

    def as_json(self) -> dict[str, Any]:
        return {"state": self.state, "since": self.since.isoformat(), "error": self.error}


class QueueWorker(Worker):
    """An arq worker that tells the supervisor each time it has polled Redis and run cron."""

    def __init__(self, on_beat: Callable[[QueueWorker], None], **options: Any) -> None:
        super().__init__(**options)
        self._on_beat = on_beat

    async def heart_beat(self) -> None:
        await super().heart_beat()
        self._on_beat(self)

    @property
    def cron_lookahead(self) -> timedelta:
        # arq enqueues cron instants up to two poll windows ahead (Worker.heart_beat).
        return timedelta(seconds=max(self.poll_delay_s, 0.5) * 2)


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        redis_url: str,
        ctx: dict[str, Any],
        heartbeat_file: Path,
        schedules: Callable[[Settings], list[CronJob]] = in_process_cron_table,
    ) -> None:
        self.settings = settings
        self.schedules = schedules  # what runs in-process while the queue worker is down
        self.redis_url = redis_url
        self.ctx = ctx
        self.heartbeat_file = heartbeat_file
        self.redis = Part()
        self.postgres = Part()
        self.derived_at: datetime | None = None
        self.derive_failing_since: datetime | None = None
        self.derive_error: str | None = None
        self.queue: QueueWorker | None = None
        self.last_beat: datetime | None = None  # the running queue worker's last cron pass
        self.in_process: asyncio.Task[None] | None = None
        # Set when the queue worker is back: in-process schedules stop before this instant.
        self.in_process_until: datetime | None = None
        self._handover = asyncio.Event()
        self.background: set[asyncio.Task[Any]] = set()  # in-process jobs, retiring workers
        self.stopping = asyncio.Event()
        self._heartbeat_failed = False

    # --- the process ---------------------------------------------------------------------

    async def run(self, handle_signals: bool = True) -> int:
        """Until SIGTERM/SIGINT (or ``stopping`` is set); returns the exit code."""
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM) if handle_signals else ()
        for signum in signals:
            loop.add_signal_handler(signum, self.stopping.set)
        loops = [
            asyncio.create_task(keep_deriving(self.ctx, self._derived), name="keep-deriving"),
            asyncio.create_task(self._beat(), name="heartbeat"),
            asyncio.create_task(self._run_queue(), name="queue"),
        ]
        stop = asyncio.create_task(self.stopping.wait(), name="stop")
        done, _ = await asyncio.wait([stop, *loops], return_when=asyncio.FIRST_COMPLETED)
        code = 0
        for task in done - {stop}:
            # These loops run until cancelled; one that ended is a bug. Exit non-zero (after a
            # clean shutdown) so the orchestrator starts a fresh process.
            error = None if task.cancelled() else task.exception()
            logger.critical(
                "worker loop %s ended; stopping", task.get_name(), exc_info=error or None
            )
            code = 1
        logger.info("worker stopping")
        await self._shutdown(loops, stop)
        for signum in signals:
            loop.remove_signal_handler(signum)
        return code

    async def _shutdown(self, loops: list[asyncio.Task[Any]], stop: asyncio.Task[Any]) -> None:
        queue_loop = loops[-1]
        queue_loop.cancel()  # closes the queue worker as arq does on SIGTERM
        await asyncio.gather(queue_loop, return_exceptions=True)
        others = [stop, *loops, *self.background]
        if self.in_process is not None:
            others.append(self.in_process)
        for task in others:
            task.cancel()
        await asyncio.wait(others, timeout=SHUTDOWN_GRACE_SECONDS)
        with contextlib.suppress(OSError):
            self.heartbeat_file.unlink()  # a stopped worker is not alive: the probe says so

    # --- derivation and the heartbeat -----------------------------------------------------

    def _derived(self, error: Exception | None) -> None:
        """keep_deriving's report of each pass."""
        if error is None:
            self.derived_at, self.derive_failing_since, self.derive_error = _now(), None, None
            self._postgres("up")
        else:
            self.derive_failing_since = self.derive_failing_since or _now()
            self.derive_error = _describe(error)

    def _postgres(self, state: str, error: str | None = None) -> None:
        if self.postgres.set(state, error):
            if state == "up":
                logger.info("postgres reachable")
            else:
                logger.warning(
                    "postgres unreachable (%s): derivation and schedules wait for it",
                    error,
                    extra={"error": error},
                )
            self._write_heartbeat()  # a change is worth telling at once

    async def _beat(self) -> None:
        while True:
            self._write_heartbeat()
            try:
                async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                    async with self.ctx["engine"].connect() as conn:
                        await core_repository.ping(conn)
            except Exception as exc:  # whatever the driver raises, PostgreSQL is not usable
                self._postgres("down", _describe(exc))
            else:
                self._postgres("up")
            await asyncio.sleep(HEARTBEAT_EVERY_SECONDS)

    def heartbeat(self) -> dict[str, Any]:
        def iso(at: datetime | None) -> str | None:
            return at.isoformat() if at else None

        return {
            "pid": os.getpid(),
            "written_at": _now().isoformat(),
            "redis": self.redis.as_json(),
            "postgres": self.postgres.as_json(),
            "derivation": {
                "last_pass_at": iso(self.derived_at),
                "failing_since": iso(self.derive_failing_since),
                "error": self.derive_error,
            },
            # Who runs the cron table: the arq worker, or this process while arq is down.
            "schedules": "queue" if self.in_process is None else "in-process",
            "queue_worker": None if self.queue is None else repr(self.queue),
        }

    def _write_heartbeat(self) -> None:
        try:
            write_heartbeat(self.heartbeat_file, self.heartbeat())
        except OSError as exc:
            # Without a heartbeat the probe reports this worker dead: say why, once.
            if not self._heartbeat_failed:
                logger.error(
                    "cannot write the heartbeat file; set CHISO_WORKER_HEARTBEAT_FILE",
                    extra={"path": str(self.heartbeat_file), "error": _describe(exc)},
                )
            self._heartbeat_failed = True
        else:
            self._heartbeat_failed = False

    # --- the arq side ---------------------------------------------------------------------

    async def _run_queue(self) -> None:
        delay = BACKOFF_FIRST_SECONDS
        while True:
            problem = await self._probe_redis()
            if problem is None:
                started = asyncio.get_running_loop().time()
                problem = await self._run_queue_worker()
                if asyncio.get_running_loop().time() - started >= STABLE_AFTER_SECONDS:
                    delay = BACKOFF_FIRST_SECONDS
            self._queue_down(problem)
            await asyncio.sleep(_jittered(delay))
            delay = min(delay * 2, BACKOFF_MAX_SECONDS)

    async def _probe_redis(self) -> str | None:
        probe = create_queue(self.redis_url)
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                await probe.ping()
        except REDIS_DOWN as exc:
            logger.debug("redis still unreachable", extra={"error": _describe(exc)})
            return _describe(exc)
        finally:
            with contextlib.suppress(*REDIS_DOWN):
                await probe.aclose(close_connection_pool=True)
        return None

    async def _run_queue_worker(self) -> str | None:
        """Run an arq worker until it fails; returns why when Redis is the cause."""

        async def startup(ctx: dict[str, Any]) -> None:
            try:
                await relay_outbox(ctx)  # jobs recorded while no queue worker ran
            except Exception:  # PostgreSQL down: the every-minute relay catches up
                logger.exception("relaying the outbox at queue start failed")

        worker = QueueWorker(
            self._queue_beat,
            **queue_options(self.settings),
            # A pool with socket timeouts: a Redis that stops answering fails the poll
            # instead of hanging it.
            redis_pool=create_queue(self.redis_url),
            ctx=dict(self.ctx),
            on_startup=startup,
            handle_signals=False,
        )
        self.queue, self.last_beat = worker, None
        QUEUE_STARTS.inc()
        worker.main_task = asyncio.create_task(worker.main(), name="arq-worker")
        try:
            await asyncio.shield(worker.main_task)
            logger.error("the queue worker stopped; starting a new one")  # only burst mode does
            self._retire_in_background(worker)
            return None
        except asyncio.CancelledError:
            await self._retire(worker, cancel_jobs=True)  # shutting down
            raise
        except REDIS_DOWN as exc:
            self._retire_in_background(worker)
            return _describe(exc)
        except Exception:  # a fault in arq or in our wiring: restart, with the same backoff
            logger.exception("the queue worker failed; starting a new one")
            self._retire_in_background(worker)
            return None
        finally:
            self.queue = None

    def _queue_beat(self, worker: QueueWorker) -> None:
        """After each successful poll and cron pass of the queue worker."""
        first = self.last_beat is None
        self.last_beat = _now()
        if not first:
            return
        was_down = self.redis.state == "down"
        down_for = (self.last_beat - self.redis.since).total_seconds()
        if self.redis.set("up"):
            if was_down:
                logger.info(
                    "redis reachable again after %.0f s: the queue worker runs jobs and schedules",
                    down_for,
                    extra={"down_s": round(down_for, 1)},
                )
            else:
                logger.info("redis reachable: the queue worker runs jobs and schedules")
        QUEUE_CONNECTED.set(1)
        if self.in_process is not None:
            # arq's first pass scheduled from the next cron window on: the instants before
            # it are still ours.
            self.in_process_until = self.last_beat + worker.cron_lookahead
            self._handover.set()
        self._write_heartbeat()

    def _queue_down(self, problem: str | None) -> None:
        """The queue worker is gone: because of Redis (``problem``), or of a fault already
        logged (None). Either way the schedules go on in-process."""
        if problem is not None and self.redis.set("down", problem):
            logger.warning(
                "redis unreachable (%s): queued jobs wait; derivation and PostgreSQL-only "
                "schedules go on; reconnecting with backoff",
                problem,
                extra={"error": problem},
            )
        QUEUE_CONNECTED.set(0)
        if self.in_process is not None:
            self.in_process_until = None  # a hand-over that did not last: keep going
        else:
            # The failed queue worker enqueued the cron instants up to its last pass plus its
            # lookahead (they run when Redis is back); calculate_next(last_beat) starts after.
            since = _now() if self.last_beat is None else self.last_beat
            self.in_process_until = None
            self.in_process = asyncio.create_task(
                self._run_schedules_in_process(since), name="in-process-schedules"
            )
        self._write_heartbeat()

    def _in_background(self, work: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(work, name=name)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

    def _retire_in_background(self, worker: QueueWorker) -> None:
        self._in_background(self._retire(worker, cancel_jobs=False), "retire-queue-worker")

    async def _retire(self, worker: QueueWorker, *, cancel_jobs: bool) -> None:
        """Stop a queue worker: polling at once; its running jobs are cancelled (shutdown, as
        arq does on SIGTERM: they run again later) or allowed to finish (their results reach
        Redis if it is back by then); then its connections are closed."""
        if worker.main_task is not None and not worker.main_task.done():
            worker.main_task.cancel()
            await asyncio.wait([worker.main_task], timeout=SHUTDOWN_GRACE_SECONDS)
        jobs = [t for t in worker.tasks.values() if not t.done()]
        try:
            if jobs and not cancel_jobs:
                await asyncio.wait(jobs, timeout=JOB_TIMEOUT_SECONDS + 10)
        finally:  # also when shutdown cancels the wait
            for job in jobs:
                job.cancel()
            if jobs:
                await asyncio.wait(jobs, timeout=SHUTDOWN_GRACE_SECONDS)
            if cancel_jobs:
                with contextlib.suppress(*REDIS_DOWN):
                    await worker.pool.delete(worker.health_check_key)
            with contextlib.suppress(*REDIS_DOWN):
                await worker.pool.aclose(close_connection_pool=True)

    # --- schedules while arq is down ------------------------------------------------------

    async def _run_schedules_in_process(self, since: datetime) -> None:
        """The cron table, run by this process until the queue worker has taken over.

        Each job takes its PostgreSQL advisory lock, so a schedule never runs twice at once
        across workers; a job whose previous run has not finished is skipped, as arq's unique
        cron ids would.
        """
        zone = ZoneInfo(self.settings.timezone)
        table = self.schedules(self.settings)
        for job in table:
            job.calculate_next(since.astimezone(zone))  # instants from since + 1 s
        running: dict[str, asyncio.Task[None]] = {}
        logger.info("running the schedules in-process while redis is down")
        try:
            while True:
                until = self.in_process_until
                ours = [j for j in table if j.next_run and (until is None or j.next_run < until)]
                if not ours:
                    logger.info("the queue worker runs the schedules again")
                    return
                upcoming = min(j.next_run for j in ours if j.next_run)
                wait = (upcoming - datetime.now(zone)).total_seconds()
                if wait > 0:
                    self._handover.clear()
                    with contextlib.suppress(TimeoutError):  # woken early by a hand-over
                        await asyncio.wait_for(self._handover.wait(), wait)
                    continue
                now = datetime.now(zone)
                for job in ours:
                    if job.next_run is None or job.next_run > now:
                        continue
                    scheduled = job.next_run
                    job.calculate_next(max(now, scheduled))  # missed instants are not replayed
                    previous = running.get(job.name)
                    if previous is not None and not previous.done():
                        logger.warning("skipping a schedule: its previous run is still going",
                                       extra={"job": job.name})  # fmt: skip
                        continue
                    running[job.name] = self._in_background(
                        self._run_in_process(job, scheduled), job.name
                    )
        finally:
            self.in_process = None
            self._write_heartbeat()

    async def _run_in_process(self, job: CronJob, scheduled: datetime) -> None:
        ms = int(scheduled.timestamp() * 1000)
        ctx = {
            **self.ctx,
            "redis": None,  # jobs check: notices wait in the outbox until the queue is back
            "job_id": f"in-process:{job.name}:{ms}",
            "job_try": 1,
            "enqueue_time": scheduled,
            "score": ms,
        }
        try:
            async with asyncio.timeout(job.timeout_s or JOB_TIMEOUT_SECONDS):
                await job.coroutine(ctx)
        except Exception:
            logger.exception("scheduled job failed (run in-process)", extra={"job": job.name})


async def supervise(settings: Settings, database_url: str, redis_url: str) -> int:
    configure_logging(settings.log_level, settings.log_json)
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port)
    async with worker_context(settings, database_url) as ctx:
        supervisor = Supervisor(settings, redis_url, ctx, heartbeat_path(settings, create=True))
        return await supervisor.run()


def run(settings: Settings, database_url: str, redis_url: str) -> int:
    """``chiso worker``: returns the exit code (0 after SIGTERM/SIGINT)."""
    return asyncio.run(supervise(settings, database_url, redis_url))
