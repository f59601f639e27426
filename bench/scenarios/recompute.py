"""Score and ranking recomputation for one month, every unit, vs one bare ``GROUP BY``.

The month's dossiers (``month_dossiers`` of them, resolved in the previous calendar month,
spread over every unit with the realistic outcome mix) are generated in SQL. The baseline is
one ``GROUP BY unit_code`` over the same rows counting what indicator 2.1 needs.

The subject is the index's recomputation as the worker runs it (``ENTRY_POINTS``: mark the
month changed, run ``app.scores.jobs.refresh_scores``), which recomputes every unit's score
and every ranking of the month. If the module is missing the subject is reported as skipped
and the baseline is still measured.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg

from bench.context import Bench
from bench.datagen import bulk_insert, month_bounds, month_dossiers_sql
from bench.infra import log, plain_url
from bench.model import Figure, ScenarioResult, interleaved, median

TITLE = "Score recomputation (one month)"
TARGET = 3.0  # ≤ 3 × the bare GROUP BY
# The bare floor: one pass over the month's dossiers, grouped by their own unit, counting what
# indicator 2.1 needs (the same predicate as the index, without the unit-tree roll-up).
GROUP_BY = """
    SELECT unit_code,
           count(*) AS denominator,
           count(*) FILTER (WHERE (end_at <= $2 AND outcome IN ('early', 'on_time'))
                            OR ((end_at IS NULL OR end_at > $2) AND due_at >= $2)) AS numerator
    FROM dossiers
    WHERE counted AND due_at IS NOT NULL AND received_at <= $2
      AND (end_at IS NULL OR end_at >= $1)
    GROUP BY unit_code
"""


async def _refresh_scores(ctx: dict[str, Any], period: str) -> Any:
    """The index's worker path: mark the month changed, then run ``refresh_scores``."""
    from app.scores import jobs, refresh
    from app.wiring import wire

    wire()  # what scores gets from the domains above it

    async with ctx["sessionmaker"]() as session:
        await refresh.mark_changed(session, [period], "dossiers")
        await session.commit()
    return await jobs.refresh_scores(ctx)


# Adapters to the app's recomputation, first importable wins: (module needed, adapter).
ENTRY_POINTS: tuple[tuple[str, Callable[..., Awaitable[Any]]], ...] = (
    ("app.scores.jobs", _refresh_scores),
)


def find_subject() -> tuple[str, Callable[..., Awaitable[Any]]] | None:
    for module_name, adapter in ENTRY_POINTS:
        try:
            importlib.import_module(module_name)
        except ImportError:
            continue
        return module_name, adapter
    return None


async def _generate(bench: Bench, start: datetime, end: datetime) -> None:
    conn = await asyncpg.connect(plain_url(bench.db_url))
    try:
        codes = [p.code for p in bench.procedures]

        def progress(done: int, total: int) -> None:
            log(f"recompute data: {done:,}/{total:,} dossiers")

        await bulk_insert(
            conn,
            "dossiers",
            month_dossiers_sql(),
            bench.scale.month_dossiers,
            ["M-", start, end, bench.unit_pool, codes],
            progress=progress,
        )
    finally:
        await conn.close()


async def _group_by(bench: Bench, start: datetime, end: datetime) -> tuple[float, int]:
    conn = await asyncpg.connect(plain_url(bench.db_url))
    try:
        started = time.perf_counter()
        rows = await conn.fetch(GROUP_BY, start, end)
        return time.perf_counter() - started, len(rows)
    finally:
        await conn.close()


async def _record_counts(bench: Bench, start: datetime, end: datetime) -> tuple[float, int]:
    """The record-based indicators' counts (1.4, 3.3, 3.6, 4.1–4.5) for every unit subtree: the
    one statement ``refresh_scores`` runs per period under catalog 766-2026, timed alone so that
    its cost shows whichever catalog version the bench's month falls under."""
    from app.core.database import create_engine, create_sessionmaker
    from app.scores import repository

    engine = create_engine(bench.settings(), bench.db_url)
    try:
        async with create_sessionmaker(engine)() as session:
            started = time.perf_counter()
            rows = await repository.record_counts(session, start, end)
            return time.perf_counter() - started, len(rows)
    finally:
        await engine.dispose()


def _with_records(period: str) -> Any:
    """The shipped catalog with its latest version (766-2026: the record-based indicators) in
    force from the bench's month on, so that the recomputation does all of its work whichever
    version the calendar puts the month under."""
    from datetime import date, timedelta

    from app.indicators.catalog import build_catalog, shipped_catalog

    first = date.fromisoformat(f"{period}-01")
    *earlier, latest = shipped_catalog().versions
    if latest.valid_from <= first:
        return shipped_catalog()
    kept = [v for v in earlier if v.valid_from < first]
    if kept:
        kept[-1] = kept[-1].model_copy(update={"valid_to": first - timedelta(days=1)})
    return build_catalog([*kept, latest.model_copy(update={"valid_from": first})])


async def _recompute(
    bench: Bench, job: Callable[..., Awaitable[Any]], period: str
) -> tuple[float, Any]:
    from app.core.database import create_engine, create_sessionmaker

    settings = bench.settings()
    engine = create_engine(settings, bench.db_url)
    try:
        ctx = {
            "sessionmaker": create_sessionmaker(engine),
            "settings": settings,
            "clock": lambda: datetime.now(UTC),
            "catalog": _with_records(period),
        }
        started = time.perf_counter()
        out = await job(ctx, period)
        return time.perf_counter() - started, out
    finally:
        await engine.dispose()


def run(bench: Bench) -> ScenarioResult:
    bench.stop_http()  # the bulk load rebuilds the dossiers table's indexes
    start, end = month_bounds(datetime.now(UTC))
    period = f"{(start + (end - start) / 2).astimezone(UTC):%Y-%m}"
    asyncio.run(_generate(bench, start, end))
    result = ScenarioResult("recompute", TITLE)
    found = find_subject()
    asyncio.run(_group_by(bench, start, end))  # warm the cache for both

    def baseline(_: int) -> dict[str, Any]:
        seconds, groups = asyncio.run(_group_by(bench, start, end))
        return {"seconds": round(seconds, 4), "groups": groups}

    def subject(_: int) -> dict[str, Any]:
        if found is None:
            return {}
        seconds, out = asyncio.run(_recompute(bench, found[1], period))
        return {"seconds": round(seconds, 4), "result": str(out)[:200]}

    def records(_: int) -> dict[str, Any]:
        seconds, units = asyncio.run(_record_counts(bench, start, end))
        return {"seconds": round(seconds, 4), "units": units}

    bases, subjects = interleaved(bench.scale.rounds, baseline, subject)
    base_time = median([b["seconds"] for b in bases])
    subject_time = median([s["seconds"] for s in subjects if s]) if found else None
    record_bases, record_runs = interleaved(bench.scale.rounds, baseline, records)
    result.details = {
        "period": period,
        "dossiers": bench.scale.month_dossiers,
        "subject": found[0] if found else None,
    }
    result.figures = [
        Figure(
            "recompute time",
            "s",
            subject_time,
            base_time,
            f"one GROUP BY over {bench.scale.month_dossiers:,} dossiers",
            higher_is_better=False,
            target_ratio=TARGET,
            rounds=[{"baseline": b, "subject": s} for b, s in zip(bases, subjects, strict=True)],
        ),
        Figure(
            "record-based counts",
            "s",
            median([r["seconds"] for r in record_runs]),
            median([b["seconds"] for b in record_bases]),
            f"one GROUP BY over {bench.scale.month_dossiers:,} dossiers",
            higher_is_better=False,
            target_ratio=TARGET,
            rounds=[
                {"baseline": b, "subject": r}
                for b, r in zip(record_bases, record_runs, strict=True)
            ],
            note="1.4, 3.3, 3.6, 4.1–4.5 for every unit subtree in one statement "
            "(part of the recomputation from catalog 766-2026)",
        ),
    ]
    if found is None:
        result.status = "skipped"
        modules = ", ".join(m for m, _ in ENTRY_POINTS)
        result.message = f"no recomputation job yet (looked for {modules}); baseline measured"
    return result
