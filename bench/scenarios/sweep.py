"""The overdue sweep with a small and a large number of open dossiers, the same number of
them turning overdue (and the same number turning due soon) at the sweep.

Two databases, copies of the bench database made before any dossier exists, hold
``sweep_open[0]`` and ``sweep_open[1]`` open dossiers (realistic mix, see
``datagen.open_dossiers_sql``) and every province subscribes a webhook to overdue and due-soon
notices, so the sweep records deliveries as in production. Each round resets the flags and
deliveries it set, VACUUMs, and runs the worker's own job (``sweep_overdue``) at a fixed
instant, alternating the two sizes. Target: large ≤ 1.5 × small.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from bench.context import Bench
from bench.datagen import bulk_insert, open_dossiers_sql
from bench.infra import log, plain_url, with_database
from bench.model import Figure, ScenarioResult, interleaved, median

TITLE = "Overdue sweep"
TARGET = 1.5
WEBHOOKS = """
    INSERT INTO webhooks (id, unit_code, url, kinds, secret, created_by)
    SELECT gen_random_uuid(), code, 'http://127.0.0.1:9/hook',
           ARRAY['dossier.overdue', 'dossier.due_soon'], 'bench-secret-0123456789', 'bench'
    FROM units WHERE level = 'province'
"""
RESET = (
    "UPDATE dossiers SET overdue_since = NULL WHERE overdue_since = $1",
    "UPDATE dossiers SET due_soon_since = NULL WHERE due_soon_since = $1",
)
EXPLAIN = (
    "EXPLAIN (FORMAT JSON) SELECT code FROM dossiers d "
    "WHERE d.end_at IS NULL AND d.overdue_since IS NULL AND d.overdue_at <= $1",
    "EXPLAIN (FORMAT JSON) SELECT code FROM dossiers d WHERE d.end_at IS NULL "
    "AND d.due_soon_since IS NULL AND d.counted AND d.clock_stopped_at IS NULL "
    "AND d.due_at > $1 AND d.due_at <= $2",
)


def sweep_databases(bench: Bench) -> list[str]:
    return [f"{bench.db_name}_sweep1", f"{bench.db_name}_sweep2"]


def _plan_summary(plan: Any) -> str:
    node = plan[0]["Plan"]
    parts = []
    while node:
        index = f" on {node['Index Name']}" if "Index Name" in node else ""
        parts.append(f"{node['Node Type']}{index}")
        children = node.get("Plans") or []
        node = children[0] if children else None
    return " → ".join(parts)


async def _generate(bench: Bench, url: str, total: int, at: datetime, until: datetime) -> None:
    k = bench.scale.sweep_newly_overdue
    stride = max(2, total // k)
    conn = await asyncpg.connect(plain_url(url))
    try:
        await conn.execute(WEBHOOKS)

        def progress(done: int, all_rows: int) -> None:
            log(f"sweep data: {done:,}/{all_rows:,} open dossiers")

        codes = [p.code for p in bench.procedures]
        await bulk_insert(
            conn,
            "dossiers",
            open_dossiers_sql(),
            total,
            ["S-", stride, at, until, bench.unit_pool, codes],
            progress=progress,
        )
        await conn.execute("VACUUM ANALYZE dossiers")
    finally:
        await conn.close()


async def _explain(url: str, at: datetime, until: datetime) -> list[str]:
    conn = await asyncpg.connect(plain_url(url))
    try:
        overdue = await conn.fetchval(EXPLAIN[0], at)
        due_soon = await conn.fetchval(EXPLAIN[1], at, until)
        import json

        return [_plan_summary(json.loads(overdue)), _plan_summary(json.loads(due_soon))]
    finally:
        await conn.close()


class SweepTarget:
    """One database and the worker's job context on it (an engine kept across rounds, as in
    the worker, so prepared statements and plan caching behave as they would there)."""

    def __init__(self, bench: Bench, url: str, at: datetime) -> None:
        self.bench = bench
        self.url = url
        self.at = at
        self.loop = asyncio.new_event_loop()
        self.ctx: dict[str, Any] = {}

    def _run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def open(self) -> None:
        from app.core.database import create_engine, create_sessionmaker

        async def make() -> None:
            settings = self.bench.settings(self.url)
            engine = create_engine(settings, self.url)
            self.ctx = {
                "engine": engine,
                "sessionmaker": create_sessionmaker(engine),
                "settings": settings,
                "clock": lambda: self.at,
            }

        self._run(make())

    async def _reset(self) -> None:
        conn = await asyncpg.connect(plain_url(self.url))
        try:
            for statement in RESET:
                await conn.execute(statement, self.at)
            await conn.execute("DELETE FROM outbox")
            await conn.execute("DELETE FROM webhook_deliveries")
            await conn.execute("VACUUM dossiers")
        finally:
            await conn.close()

    def sweep(self) -> dict[str, Any]:
        from app.dossiers.jobs import sweep_overdue

        self._run(self._reset())
        started = time.perf_counter()
        out = self._run(sweep_overdue(self.ctx))
        seconds = time.perf_counter() - started
        return {"seconds": round(seconds, 4), **out}

    def close(self) -> None:
        if "engine" in self.ctx:
            self._run(self.ctx["engine"].dispose())
        self.loop.close()


def run(bench: Bench) -> ScenarioResult:
    from app.calendar.service import build_calendar

    scale = bench.scale
    at = datetime.now(UTC).replace(microsecond=0)
    settings = bench.settings()
    until = build_calendar(settings).add_working_time(at, timedelta(hours=settings.due_soon_hours))
    urls = [with_database(bench.servers.database_url, name) for name in sweep_databases(bench)]
    for url, total in zip(urls, scale.sweep_open, strict=True):
        asyncio.run(_generate(bench, url, total, at, until))
    plans = {
        str(n): asyncio.run(_explain(u, at, until))
        for u, n in zip(urls, scale.sweep_open, strict=True)
    }
    small, large = SweepTarget(bench, urls[0], at), SweepTarget(bench, urls[1], at)
    try:
        small.open()
        large.open()
        small.sweep()  # warm-up: caches, prepared statements
        large.sweep()
        bases, subjects = interleaved(
            scale.rounds, lambda _: small.sweep(), lambda _: large.sweep()
        )
    finally:
        small.close()
        large.close()
    n1, n2 = scale.sweep_open
    result = ScenarioResult("sweep", TITLE)
    result.details = {
        "at": at.isoformat(),
        "until": until.isoformat(),
        "plans": plans,
        "newly_overdue": scale.sweep_newly_overdue,
    }
    rounds = [{"baseline": b, "subject": s} for b, s in zip(bases, subjects, strict=True)]
    result.figures = [
        Figure(
            f"sweep time, {n2:,} vs {n1:,} open",
            "s",
            median([s["seconds"] for s in subjects]),
            median([b["seconds"] for b in bases]),
            f"same sweep with {n1:,} open",
            higher_is_better=False,
            target_ratio=TARGET,
            rounds=rounds,
            note=f"{scale.sweep_newly_overdue:,} newly overdue + as many newly due soon",
        ),
    ]
    flagged = {(b["overdue"], s["overdue"]) for b, s in zip(bases, subjects, strict=True)}
    if any(a != scale.sweep_newly_overdue or b != scale.sweep_newly_overdue for a, b in flagged):
        result.message = f"flagged counts differ from the design: {sorted(flagged)}"
    return result
