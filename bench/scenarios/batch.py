"""Batch ingestion (``POST /v1/dossier-events/batch``) vs raw asyncpg ``COPY`` of the same rows.

Each round posts fresh whole dossier histories (a province re-syncing after an outage) in
batches of ``batch_size`` with ``batch_concurrency`` requests in flight; the baseline COPYs the
very same rows, batch by batch with the same concurrency, into a copy of ``dossier_events``
with the same indexes. Bodies and rows are built before the clock starts.

Targets: ≥ 0.25 × raw COPY, and ≥ 50,000 events/s on 2 cores.

The API stores events and queues their dossiers; the worker derives them afterwards. So that
the figure hides nothing, each round then drains that backlog with the worker's own job
(``derive_dossiers``) and reports it: derivation throughput, and the events/s of ingestion and
derivation one after the other (what 2 cores sustain when both run).
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import orjson

from bench.config import PROJECT_ROOT
from bench.context import Bench
from bench.datagen import EVENT_COLUMNS, copy_record, histories
from bench.infra import log, plain_url, project_python
from bench.model import Figure, ScenarioResult, interleaved, median

TITLE = "Batch ingestion"
COPY_TABLE = "bench_copy_events"
TARGET_RATIO = 0.25
TARGET_EVENTS_PER_SECOND = 50_000


def _prepare(bench: Bench, tag: str) -> tuple[list[bytes], list[list[tuple[Any, ...]]], int]:
    scale = bench.scale
    now = datetime.now(UTC)
    events = list(histories(tag, scale.batch_events, bench.unit_pool, bench.procedures, now))
    bodies, rows = [], []
    for i in range(0, len(events), scale.batch_size):
        chunk = events[i : i + scale.batch_size]
        bodies.append(orjson.dumps({"events": chunk}))
        rows.append([copy_record(e) for e in chunk])
    return bodies, rows, len(events)


async def _post_all(bench: Bench, bodies: list[bytes]) -> dict[str, int]:
    queue = list(reversed(bodies))
    totals = {"stored": 0, "duplicate": 0, "rejected": 0}
    headers = {"Authorization": f"Bearer {bench.api_key}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=bench.api_url, timeout=600, headers=headers) as client:

        async def worker() -> None:
            while queue:
                body = queue.pop()
                response = await client.post("/v1/dossier-events/batch", content=body)
                if response.status_code != 200:
                    raise RuntimeError(f"batch: HTTP {response.status_code} {response.text[:500]}")
                data = response.json()
                for key in totals:
                    totals[key] += data[key]

        await asyncio.gather(*(worker() for _ in range(bench.scale.batch_concurrency)))
    return totals


DERIVE_SCRIPT = """
import asyncio, sys
from datetime import UTC, datetime
from pydantic import SecretStr
from app.core.database import create_engine, create_sessionmaker
from app.core.settings import Settings
from app.dossiers.jobs import derive_dossiers
from app.wiring import wire

async def main() -> None:
    wire()  # a worker-like process: derived dossiers mark their scores stale, as in the worker
    settings = Settings(environment="production", database_url=sys.argv[1],
                        redis_url=sys.argv[2], admin_token=SecretStr(sys.argv[3]))
    engine = create_engine(settings, sys.argv[1])
    try:
        ctx = {"sessionmaker": create_sessionmaker(engine), "settings": settings}
        print(await derive_dossiers(ctx))
    finally:
        await engine.dispose()

asyncio.run(main())
"""


def _derive_in_processes(bench: Bench, processes: int) -> tuple[int, float]:
    """``processes`` worker-like processes drain the backlog together: (dossiers, seconds)."""
    command = [project_python(), "-c", DERIVE_SCRIPT, bench.db_url,
               bench.servers.redis_url, bench.admin_token]  # fmt: skip
    started = time.perf_counter()
    procs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, cwd=PROJECT_ROOT)  # noqa: S603
        for _ in range(processes)
    ]
    outputs = [p.communicate(timeout=6 * 3600)[0] for p in procs]
    seconds = time.perf_counter() - started
    if any(p.returncode for p in procs):
        raise RuntimeError(f"a derivation process failed: {[p.returncode for p in procs]}")
    return sum(int(o.split()[-1]) for o in outputs), seconds


async def _derive_all(bench: Bench) -> int:
    """The worker's job, in this process, until the backlog is empty."""
    from app.core.database import create_engine, create_sessionmaker
    from app.dossiers.jobs import derive_dossiers

    settings = bench.settings()
    engine = create_engine(settings, bench.db_url)
    try:
        return await derive_dossiers(
            {"sessionmaker": create_sessionmaker(engine), "settings": settings}
        )
    finally:
        await engine.dispose()


async def _copy_all(bench: Bench, rows: list[list[tuple[Any, ...]]]) -> None:
    queue = list(reversed(rows))
    columns = [*EVENT_COLUMNS, "source"]
    pool = await asyncpg.create_pool(
        plain_url(bench.db_url), min_size=1, max_size=bench.scale.batch_concurrency
    )
    try:

        async def worker() -> None:
            while queue:
                chunk = queue.pop()
                async with pool.acquire() as conn:
                    await conn.copy_records_to_table(COPY_TABLE, records=chunk, columns=columns)

        await asyncio.gather(*(worker() for _ in range(bench.scale.batch_concurrency)))
    finally:
        await pool.close()


def run(bench: Bench) -> ScenarioResult:
    bench.start_http()
    scale = bench.scale
    prepared: dict[int, tuple[list[bytes], list[list[tuple[Any, ...]]], int]] = {}

    def data(r: int) -> tuple[list[bytes], list[list[tuple[Any, ...]]], int]:
        if r not in prepared:
            prepared.clear()
            prepared[r] = _prepare(bench, f"{bench.run_id}B{r}")
        return prepared[r]

    def subject(r: int) -> dict[str, Any]:
        bodies, _, count = data(r)
        started = time.perf_counter()
        totals = asyncio.run(_post_all(bench, bodies))
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        dossiers = asyncio.run(_derive_all(bench))
        derive_seconds = time.perf_counter() - started
        log(
            f"batch round {r}: {count:,} events in {seconds:.1f}s ({count / seconds:,.0f}/s); "
            f"{dossiers:,} dossiers derived in {derive_seconds:.1f}s"
        )
        return {
            "events": count,
            "seconds": round(seconds, 3),
            "events_per_s": count / seconds,
            "requests": len(bodies),
            "dossiers_derived": dossiers,
            "derive_seconds": round(derive_seconds, 3),
            "derived_events_per_s": count / derive_seconds,
            "sustained_events_per_s": count / (seconds + derive_seconds),
            **totals,
        }

    def baseline(r: int) -> dict[str, Any]:
        _, rows, count = data(r)
        started = time.perf_counter()
        asyncio.run(_copy_all(bench, rows))
        seconds = time.perf_counter() - started
        return {"events": count, "seconds": round(seconds, 3), "events_per_s": count / seconds}

    bases, subjects = interleaved(scale.rounds, baseline, subject)

    # Scaling out the worker: one more round's events, drained by two worker processes at once
    # (each claims its chunks with SKIP LOCKED), beside the rounds' one.
    bodies, _, extra_count = _prepare(bench, f"{bench.run_id}B2W")
    asyncio.run(_post_all(bench, bodies))
    two_dossiers, two_seconds = _derive_in_processes(bench, 2)
    log(f"batch: {two_dossiers:,} dossiers derived by 2 processes in {two_seconds:.1f}s")
    two_workers = {"events": extra_count, "dossiers": two_dossiers, "seconds": two_seconds}

    profiler = bench.profiler("batch", bench.api_worker_pids(), 600)
    if profiler is not None:
        bodies, _, _ = _prepare(bench, f"{bench.run_id}BP")
        profiler.start()
        asyncio.run(_post_all(bench, bodies))
        profiler.stop()
        bench.profiles["batch"] = profiler.summary()

    rejected = sum(s["rejected"] for s in subjects)
    result = ScenarioResult("batch", TITLE)
    rounds = [{"baseline": b, "subject": s} for b, s in zip(bases, subjects, strict=True)]
    value = median([s["events_per_s"] for s in subjects])
    note = (
        f"{scale.batch_events:,} events/round, batches of {scale.batch_size:,}, "
        f"{scale.batch_concurrency} in flight"
    )
    result.figures = [
        Figure(
            "events/s vs COPY",
            "events/s",
            value,
            median([b["events_per_s"] for b in bases]),
            "raw asyncpg COPY, same rows",
            target_ratio=TARGET_RATIO,
            rounds=rounds,
            note=note,
        ),
        Figure(
            "events/s (absolute)",
            "events/s",
            value,
            target_value=TARGET_EVENTS_PER_SECOND,
            note=f"on {bench.options.workers} API workers",
        ),
        Figure(
            "derivation by the worker (events/s)",
            "events/s",
            median([s["derived_events_per_s"] for s in subjects]),
            note="the round's queued dossiers, drained by derive_dossiers after the posts",
        ),
        Figure(
            "derivation by 2 worker processes (events/s)",
            "events/s",
            extra_count / two_seconds,
            median([s["derived_events_per_s"] for s in subjects]),
            "derivation by 1 (the rounds above)",
            rounds=[{"two_workers": two_workers}],
            note="one more round of events, drained by two processes sharing the queue",
        ),
        Figure(
            "ingest then derive (events/s)",
            "events/s",
            median([s["sustained_events_per_s"] for s in subjects]),
            median([b["events_per_s"] for b in bases]),
            "raw asyncpg COPY, same rows",
            note="events / (posting time + derivation time): both on the same 2 cores",
        ),
    ]
    if rejected:
        result.message = f"{rejected} events rejected: the generator disagrees with validation"
    return result
