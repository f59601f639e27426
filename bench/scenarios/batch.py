"""Batch ingestion (``POST /v1/dossier-events/batch``) vs raw asyncpg ``COPY`` of the same rows.

Each round posts fresh whole dossier histories (a province re-syncing after an outage) in
batches of ``batch_size`` with ``batch_concurrency`` requests in flight; the baseline COPYs the
very same rows, batch by batch with the same concurrency, into a copy of ``dossier_events``
with the same indexes. Bodies and rows are built before the clock starts.

Targets (``bench/targets.py``): ≥ 0.25 × raw COPY, and ≥ 50,000 events/s. Latencies: p50 and
p99 of the batch requests (each ``batch_size`` events) and of the baseline's ``COPY`` of a batch.

The API stores events and queues their dossiers; the worker derives them afterwards. So that
the figure hides nothing, each round then drains that backlog with the worker's own job
(``derive_dossiers``, one process: this one) and reports it. That makes each round a **burst**:
``batch_events`` events (1,000,000 at national scale, proportionally fewer below) posted and
then every dossier they touch derived, events / (posting time + derivation time), one after
the other on the same cores. Target: ≥ 20,000 events/s; its latencies are p50 and p99, over
the burst's dossiers, of the time from storing a dossier's last event to deriving it. Whatever
an earlier scenario left queued is derived before each round, outside the clock.

Run once per API process count of ``--workers``; the round drained by two derivation
processes (which does not depend on the API) only in the last pass.
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

from bench import metering
from bench.config import PROJECT_ROOT
from bench.context import Bench
from bench.datagen import EVENT_COLUMNS, copy_record, histories
from bench.infra import log, plain_url, project_python
from bench.metering import metered
from bench.model import Figure, RoundData, ScenarioResult, interleaved, median, percentile
from bench.targets import figure

TITLE = "Batch ingestion"
COPY_TABLE = "bench_copy_events"
# Per dossier of the burst: stored (its last event's transaction) → derived (the derivation's).
STORED_TO_DERIVED = """
    SELECT percentile_disc(ARRAY[0.5, 0.99]) WITHIN GROUP (
               ORDER BY extract(epoch FROM d.updated_at - e.stored) * 1000)
    FROM dossiers d
    JOIN (SELECT dossier_code, max(recorded_at) AS stored FROM dossier_events
          WHERE dossier_code = ANY($1::text[]) GROUP BY dossier_code) e
      ON e.dossier_code = d.code
"""

Prepared = tuple[list[bytes], list[list[tuple[Any, ...]]], int, list[str]]


def _prepare(bench: Bench, tag: str) -> Prepared:
    """Request bodies, COPY rows, the number of events and the dossier codes of one round."""
    scale = bench.scale
    now = datetime.now(UTC)
    events = list(histories(tag, scale.batch_events, bench.unit_pool, bench.procedures, now))
    bodies, rows = [], []
    for i in range(0, len(events), scale.batch_size):
        chunk = events[i : i + scale.batch_size]
        bodies.append(orjson.dumps({"events": chunk}))
        rows.append([copy_record(e) for e in chunk])
    codes = list(dict.fromkeys(e["dossier_code"] for e in events))
    return bodies, rows, len(events), codes


async def _stored_to_derived(bench: Bench, codes: list[str]) -> tuple[float | None, float | None]:
    conn = await asyncpg.connect(plain_url(bench.db_url))
    try:
        found = await conn.fetchval(STORED_TO_DERIVED, codes)
    finally:
        await conn.close()
    return (float(found[0]), float(found[1])) if found else (None, None)


async def _post_all(bench: Bench, bodies: list[bytes]) -> dict[str, Any]:
    """Post every body, ``batch_concurrency`` at a time: the answers' totals, and each
    request's latency in ms under ``latencies``."""
    queue = list(reversed(bodies))
    totals = {"stored": 0, "duplicate": 0, "rejected": 0}
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {bench.api_key}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=bench.api_url, timeout=600, headers=headers) as client:

        async def worker() -> None:
            while queue:
                body = queue.pop()
                started = time.perf_counter()
                response = await client.post("/v1/dossier-events/batch", content=body)
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(f"batch: HTTP {response.status_code} {response.text[:500]}")
                data = response.json()
                for key in totals:
                    totals[key] += data[key]

        await asyncio.gather(*(worker() for _ in range(bench.scale.batch_concurrency)))
    return {**totals, "latencies": latencies}


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


async def _copy_all(bench: Bench, rows: list[list[tuple[Any, ...]]]) -> list[float]:
    """COPY every chunk, ``batch_concurrency`` at a time; each chunk's latency in ms."""
    queue = list(reversed(rows))
    latencies: list[float] = []
    columns = [*EVENT_COLUMNS, "source"]
    pool = await asyncpg.create_pool(
        plain_url(bench.db_url), min_size=1, max_size=bench.scale.batch_concurrency
    )
    try:

        async def worker() -> None:
            while queue:
                chunk = queue.pop()
                started = time.perf_counter()
                async with pool.acquire() as conn:
                    await conn.copy_records_to_table(COPY_TABLE, records=chunk, columns=columns)
                latencies.append((time.perf_counter() - started) * 1000)

        await asyncio.gather(*(worker() for _ in range(bench.scale.batch_concurrency)))
    finally:
        await pool.close()
    return latencies


def _latencies(values: list[float]) -> dict[str, float | None]:
    return {"p50": percentile(values, 0.5), "p99": percentile(values, 0.99)}


def run(bench: Bench) -> ScenarioResult:
    bench.start_http()
    scale = bench.scale
    data: RoundData[Prepared] = RoundData(lambda r: _prepare(bench, bench.tag(f"B{r}")))

    def subject(r: int) -> dict[str, Any]:
        bodies, _, count, codes = data(r)
        leftover = asyncio.run(_derive_all(bench))  # queued before the burst: not its work
        totals, seconds, readings = metered(
            bench, count, lambda: asyncio.run(_post_all(bench, bodies))
        )
        started = time.perf_counter()
        dossiers = asyncio.run(_derive_all(bench))
        derive_seconds = time.perf_counter() - started
        p50, p99 = asyncio.run(_stored_to_derived(bench, codes))
        log(
            f"batch round {r} ({bench.api_processes} API processes): {count:,} events in "
            f"{seconds:.1f}s ({count / seconds:,.0f}/s); {dossiers:,} dossiers derived in "
            f"{derive_seconds:.1f}s"
        )
        latencies = totals.pop("latencies")
        return {
            "events": count,
            "seconds": round(seconds, 3),
            "events_per_s": count / seconds,
            "requests": len(bodies),
            "request_ms": _latencies(latencies),
            "leftover_derived_first": leftover,
            "dossiers": len(codes),
            "dossiers_derived": dossiers,
            "derive_seconds": round(derive_seconds, 3),
            "derived_events_per_s": count / derive_seconds,
            "sustained_events_per_s": count / (seconds + derive_seconds),
            "stored_to_derived_ms": {"p50": p50, "p99": p99},
            **totals,
            **readings,
        }

    def baseline(r: int) -> dict[str, Any]:
        _, rows, count, _ = data(r)
        latencies, seconds, readings = metered(
            bench, count, lambda: asyncio.run(_copy_all(bench, rows))
        )
        return {
            "events": count,
            "seconds": round(seconds, 3),
            "events_per_s": count / seconds,
            "chunk_ms": _latencies(latencies),
            **readings,
        }

    bases, subjects = interleaved(scale.rounds, baseline, subject)
    data.clear()

    def med(runs: list[dict[str, Any]], field: str, q: str) -> float | None:
        return median([v for r in runs if (v := r[field][q]) is not None])

    rejected = sum(s["rejected"] for s in subjects)
    result = ScenarioResult("batch", TITLE)
    rounds = [{"baseline": b, "subject": s} for b, s in zip(bases, subjects, strict=True)]
    value = median([s["events_per_s"] for s in subjects])
    copy = median([b["events_per_s"] for b in bases])
    copy_latency = {
        "baseline_p50_ms": med(bases, "chunk_ms", "p50"),
        "baseline_p99_ms": med(bases, "chunk_ms", "p99"),
    }
    request_latency = {
        "p50_ms": med(subjects, "request_ms", "p50"),
        "p99_ms": med(subjects, "request_ms", "p99"),
    }
    note = (
        f"{scale.batch_events:,} events/round, batches of {scale.batch_size:,}, "
        f"{scale.batch_concurrency} in flight, {bench.api_processes} API processes"
    )
    derived = median([s["derived_events_per_s"] for s in subjects])
    result.figures = [
        figure(
            "batch_copy",
            "events/s vs COPY",
            "events/s",
            value,
            baseline=copy,
            baseline_name="raw asyncpg COPY, same rows",
            rounds=rounds,
            note=note,
            **request_latency,
            **copy_latency,
        ),
        figure(
            "batch_absolute",
            "events/s (absolute)",
            "events/s",
            value,
            note=note,
            **request_latency,
        ),
        Figure(
            "derivation by the worker (events/s)",
            "events/s",
            derived,
            note="the round's queued dossiers, drained by derive_dossiers after the posts",
        ),
        figure(
            "burst",
            "burst: ingested, then fully derived (events/s)",
            "events/s",
            median([s["sustained_events_per_s"] for s in subjects]),
            baseline=copy,
            baseline_name="raw asyncpg COPY, same rows",
            p50_ms=med(subjects, "stored_to_derived_ms", "p50"),
            p99_ms=med(subjects, "stored_to_derived_ms", "p99"),
            **copy_latency,
            note=f"{scale.batch_events:,} events posted, then every dossier they touch derived "
            "by one derive_dossiers: events / (posting time + derivation time); latency: "
            "a dossier's last event stored → derived",
        ),
        *metering.figures(subjects, bases),
    ]

    if bench.last_pass:
        # Scaling out the worker: one more round's events, drained by two worker processes
        # at once (each claims its chunks with SKIP LOCKED), beside the rounds' one.
        bodies, _, extra_count, _ = _prepare(bench, bench.tag("B2W"))
        asyncio.run(_post_all(bench, bodies))
        two_dossiers, two_seconds = _derive_in_processes(bench, 2)
        log(f"batch: {two_dossiers:,} dossiers derived by 2 processes in {two_seconds:.1f}s")
        two_workers = {"events": extra_count, "dossiers": two_dossiers, "seconds": two_seconds}
        result.figures.append(
            Figure(
                "derivation by 2 worker processes (events/s)",
                "events/s",
                extra_count / two_seconds,
                derived,
                "derivation by 1 (the rounds above)",
                rounds=[{"two_workers": two_workers}],
                note="one more round of events, drained by two processes sharing the queue",
            )
        )

    profiler = bench.profiler("batch", bench.api_worker_pids(), 600)
    if profiler is not None:
        bodies, _, _, _ = _prepare(bench, bench.tag("BP"))
        profiler.start()
        asyncio.run(_post_all(bench, bodies))
        profiler.stop()
        bench.profiles["batch"] = profiler.summary()

    if rejected:
        result.message = f"{rejected} events rejected: the generator disagrees with validation"
    return result
