"""Portal sync throughput and the worker's memory over one full sync.

The simulator (``bench/portal_sim.py``: the app's simulator, bench-side fast paging) serves
``sync_dossiers`` dossiers; the real worker (``chiso worker``) runs its ``sync_portal`` job,
enqueued through arq, against the bench database. Its duration comes from arq (start → finish);
its memory is sampled from /proc while the sync progresses.

Baseline: the app's own ``PortalClient`` paging through the same simulator without storing
anything (transport + JSON only), before and after the sync. One sync per run: a second one
would only see duplicates. The sync stores events and queues their dossiers; the same worker's
derivation loop derives them meanwhile, and the scenario waits until the queue is empty, so a
second figure is dossiers synced *and derived* per second.

Memory (the issue's target): the worker's RSS, sampled every half second, at its highest
during the whole sync and derivation vs its RSS once 10,000 dossiers were synced (1 % of the
sync at smaller scales): ≤ 1.5 × (``bench/targets.py``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import httpx

from bench.context import Bench
from bench.infra import free_port, log, plain_url, project_python, rss_kib, wait_http
from bench.model import Figure, ScenarioResult, median
from bench.targets import figure

TITLE = "Portal sync"
SOURCE = "default"
EARLY_RECORDS = 10_000


async def _fetch_only(base_url: str, page_size: int) -> dict[str, Any]:
    from app.portal.client import PortalClient, PortalSource

    async with httpx.AsyncClient() as http:
        client = PortalClient(
            PortalSource(SOURCE, base_url, "chiso", "chiso-sim", page_size=page_size), http
        )
        cursor: str | None = None
        records = pages = 0
        started = time.perf_counter()
        while True:
            page = await client.changed_dossiers(cursor)
            records += len(page.records)
            pages += 1
            cursor = page.next_cursor
            if not page.records or page.remaining == 0:
                break
        seconds = time.perf_counter() - started
    return {
        "records": records,
        "pages": pages,
        "seconds": round(seconds, 3),
        "per_s": records / seconds,
    }


async def _wait_worker(bench: Bench, wait_seconds: float = 60) -> None:
    from redis.asyncio import Redis

    from worker.settings import HEALTH_KEY

    redis = Redis.from_url(bench.servers.redis_url)
    try:
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            if await redis.exists(HEALTH_KEY):
                return
            await asyncio.sleep(0.25)
        raise RuntimeError("the worker did not report healthy")
    finally:
        await redis.aclose()


async def _sync(bench: Bench, worker_pid: int, expected: int) -> dict[str, Any]:
    from arq import create_pool

    from app.core.queue import QUEUE_NAME, redis_settings

    pool = await create_pool(redis_settings(bench.servers.redis_url), default_queue_name=QUEUE_NAME)
    conn = await asyncpg.connect(plain_url(bench.db_url))
    samples: list[dict[str, Any]] = []
    try:
        idle_rss, _ = rss_kib(worker_pid)
        job = await pool.enqueue_job("sync_portal", _job_id=f"bench-sync-{bench.run_id}")
        assert job is not None
        started = time.perf_counter()
        info = None
        while True:
            synced = await conn.fetchval(
                "SELECT records_synced FROM portal_sync_state WHERE source = $1", SOURCE
            )
            rss, hwm = rss_kib(worker_pid)
            samples.append(
                {
                    "t": round(time.perf_counter() - started, 2),
                    "records": int(synced or 0),
                    "rss_kib": rss,
                    "hwm_kib": hwm,
                }
            )
            if info is None:
                info = await job.result_info()
            elif not await conn.fetchval("SELECT count(*) FROM dossier_backlog"):
                break  # synced, and every synced dossier derived
            if time.perf_counter() - started > 6 * 3600:
                raise RuntimeError("sync did not finish in 6 hours")
            await asyncio.sleep(0.5)
        derived_seconds = time.perf_counter() - started
        _, peak = rss_kib(worker_pid)
        seconds = (info.finish_time - info.start_time).total_seconds()
        return {
            "idle_rss_kib": idle_rss,
            "peak_kib": peak,
            "seconds": seconds,
            "derived_seconds": derived_seconds,
            "success": info.success,
            "result": info.result,
            "samples": samples,
            "expected": expected,
        }
    finally:
        await conn.close()
        await pool.aclose()


def _rss_at(samples: list[dict[str, Any]], records: int) -> int | None:
    """The worker's RSS at the first sample with at least ``records`` dossiers synced."""
    for sample in samples:
        if sample["records"] >= records:
            return int(sample["rss_kib"])
    return None


def run(bench: Bench) -> ScenarioResult:
    bench.stop_http()
    scale = bench.scale
    count = scale.sync_dossiers
    result = ScenarioResult("portal_sync", TITLE)
    units_file = bench.work_dir / "sim-units.txt"
    units_file.write_text("\n".join(sorted(set(bench.unit_pool))))
    port = free_port()
    sim = bench.start(
        "portal-sim",
        [
            project_python(),
            "-m",
            "bench.portal_sim",
            "--dossiers",
            str(count),
            "--port",
            str(port),
            "--units-file",
            str(units_file),
        ],
        bench.chiso_env(),
    )
    sim_url = f"http://127.0.0.1:{port}"
    worker = None
    try:
        wait_http(f"{sim_url}/healthz", 3600, sim)
        settings = bench.settings()
        page_size = settings.portal_page_size
        fetches = [asyncio.run(_fetch_only(sim_url, page_size))]
        log(f"sync baseline (fetch only): {fetches[0]['per_s']:,.0f} dossiers/s")
        env = bench.chiso_env(
            CHISO_PORTAL_BASE_URL=sim_url,
            CHISO_PORTAL_USERNAME="chiso",
            CHISO_PORTAL_PASSWORD="chiso-sim",  # noqa: S106 - simulator's
            CHISO_SYNC_EVERY_MINUTES="1440",
        )
        worker = bench.start("worker", [project_python(), "-m", "app.cli", "worker"], env)
        asyncio.run(_wait_worker(bench))
        profiler = bench.profiler("portal_sync", [worker.pid], 6 * 3600)
        if profiler is not None:
            profiler.start()
        sync = asyncio.run(_sync(bench, worker.pid, count))
        if profiler is not None:
            profiler.stop()
            bench.profiles["portal_sync"] = profiler.summary()
        fetches.append(asyncio.run(_fetch_only(sim_url, page_size)))
    finally:
        bench.stop(worker)
        bench.stop(sim)
    reports = sync["result"] if isinstance(sync["result"], list) else []
    report = reports[0] if reports else {}
    records = int(report.get("records", 0))
    per_s = records / sync["seconds"] if sync["seconds"] else None
    early = min(EARLY_RECORDS, max(1, (records or count) // 100))
    early_rss = _rss_at(sync["samples"], early)
    top_rss = max((s["rss_kib"] for s in sync["samples"]), default=None)
    log(
        f"sync: {records:,} dossiers in {sync['seconds']:.1f}s; "
        f"peak RSS {sync['peak_kib'] / 1024:.0f} MiB"
    )
    result.details = {
        "report": report,
        "success": sync["success"],
        "page_size": page_size,
        "memory_samples": sync["samples"][:: max(1, len(sync["samples"]) // 60)],
        "idle_rss_mib": round(sync["idle_rss_kib"] / 1024, 1),
        "fetch_only": fetches,
    }
    peak_mib = sync["peak_kib"] / 1024
    result.figures = [
        Figure(
            "sync throughput",
            "dossiers/s",
            per_s,
            median([f["per_s"] for f in fetches]),
            "fetch only (PortalClient, no storage)",
            note=f"{records:,} dossiers, pages of {page_size}",
        ),
        Figure(
            "synced and derived",
            "dossiers/s",
            records / sync["derived_seconds"] if sync["derived_seconds"] else None,
            median([f["per_s"] for f in fetches]),
            "fetch only (PortalClient, no storage)",
            note="until the derivation queue was empty",
        ),
        figure(
            "sync_rss",
            f"worker RSS, highest vs after {early:,} dossiers",
            "MiB",
            top_rss / 1024 if top_rss else None,
            baseline=early_rss / 1024 if early_rss else None,
            baseline_name=f"worker RSS after {early:,} dossiers synced",
            note=f"peak (VmHWM) {peak_mib:,.0f} MiB",
        ),
    ]
    if not sync["success"] or report.get("error") or records != count:
        result.status = "failed"
        result.message = f"sync incomplete: {records:,}/{count:,} records, report {report}"
    return result
