"""Score and ranking recomputation for one month, every unit, vs one bare ``GROUP BY``.

The month's dossiers (``month_dossiers`` of them, resolved in the previous calendar month,
spread over every unit with the realistic outcome mix) are generated in SQL. The baseline is
one ``GROUP BY unit_code`` over the same rows counting what indicator 2.1 needs.

The subject is the index's recomputation as the worker runs it (``ENTRY_POINTS``: mark the
month changed, run ``app.scores.jobs.refresh_scores``), which recomputes every unit's score
and every ranking of the month. If the module is missing the subject is reported as skipped
and the baseline is still measured.

Record-based metrics included (the target, ``bench/targets.py``: ≤ 3 × the ``GROUP BY``): the
month is scored under the latest catalog version with record-fed metrics (766-2026), made in
force from the bench's month when the shipped catalog would use an older one (the month is
always the previous one), and 70 % of the month's dossiers get index facts (papers, fees,
results, as portal records state them) for those metrics to count.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from bench.context import Bench
from bench.datagen import bulk_insert, month_bounds, month_dossiers_sql
from bench.infra import log, plain_url
from bench.model import Figure, ScenarioResult, interleaved, median
from bench.targets import TARGETS, figure

TITLE = "Score recomputation (one month)"
# Index facts for 70 % of the month's dossiers, spread deterministically.
FACTS = """
    INSERT INTO dossier_facts (dossier_code, papers_total, papers_with_file, papers_digitised,
        papers_reused, papers_from_national_store, fees_count, fees_total, fees_all_zero,
        results_total, results_with_file, databases, vneid_verified, payment_code)
    SELECT code, 1 + h % 5, h % 4, h % 3, h / 5 % 2, h / 7 % 2, h / 3 % 2,
           CASE WHEN h / 3 % 2 = 1 THEN 50000 ELSE 0 END, h / 3 % 2 = 0,
           1, h / 11 % 2, CASE WHEN h % 5 = 0 THEN ARRAY['1'] END, h % 9 = 0,
           CASE WHEN h % 4 = 0 THEN '1' WHEN h % 4 = 1 THEN '0' END
    FROM (SELECT code, abs(hashtext(code)) AS h FROM dossiers WHERE code LIKE 'M-%') d
    WHERE h % 10 < 7
"""
# The generated dossiers are states as the derivation writes them: with the flags their facts
# give and the record-based counts those flags and their procedure put them in (a facts write
# queues its dossiers for the derivation to set both; set here at once, in one pass, and the
# queue left as it was). The database keeps the counts per unit and month from this write.
FACT_FLAGS = """
    UPDATE dossiers d SET record_facts = x.flags,
        record_mask = chiso_record_mask(d.counted, d.received_at, d.channel, d.paid_online,
            d.has_digitized_parts, x.flags, x.paper_result, x.has_fees)
    FROM (
        SELECT m.code, p.paper_result, p.has_fees,
               CASE WHEN f.dossier_code IS NOT NULL THEN chiso_record_facts(f) END AS flags
        FROM dossiers m JOIN procedures p ON p.code = m.procedure_code
        LEFT JOIN dossier_facts f ON f.dossier_code = m.code
        WHERE m.code LIKE 'M-%'
    ) x
    WHERE x.code = d.code
"""
UNQUEUE = "DELETE FROM dossier_backlog WHERE dossier_code LIKE 'M-%'"
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
        await conn.execute(FACTS)
        await conn.execute(FACT_FLAGS)
        await conn.execute(UNQUEUE)
        await conn.execute("ANALYZE dossier_facts")
        # Rewritten without the row versions the flags' update left: the pass over the month
        # reads as many pages as before (the baseline's too).
        await conn.execute("VACUUM (FULL, ANALYZE) dossiers")
    finally:
        await conn.close()


def record_fed_catalog(first_day: date) -> tuple[Any, str]:
    """The catalog to score the month with so that record-based metrics are included, and the
    version used: the shipped catalog if its version for the month has record-fed metrics,
    else the latest such version, in force from ``first_day`` (a catalog of its own)."""
    from app.indicators.catalog import build_catalog, shipped_catalog
    from app.scores.records import record_fed_codes

    shipped = shipped_catalog()
    current = shipped.in_force(first_day)
    if current is not None and record_fed_codes(current):
        return shipped, current.version
    fed = [v for v in shipped.versions if record_fed_codes(v)]
    if not fed:
        return shipped, current.version if current else "none"
    latest = max(fed, key=lambda v: v.valid_from)
    trial = latest.model_copy(update={"valid_from": first_day, "valid_to": None})
    return build_catalog([trial]), f"{latest.version} (in force from {first_day} here)"


async def _group_by(bench: Bench, start: datetime, end: datetime) -> tuple[float, int]:
    conn = await asyncpg.connect(plain_url(bench.db_url))
    try:
        started = time.perf_counter()
        rows = await conn.fetch(GROUP_BY, start, end)
        return time.perf_counter() - started, len(rows)
    finally:
        await conn.close()


async def _record_counts(bench: Bench, month: date) -> tuple[float, int]:
    """The record-based indicators' counts (1.4, 3.3, 3.6, 4.1–4.5) for every unit subtree: what
    ``refresh_scores`` reads per period under catalog 766-2026 (the month's kept counts,
    compacted and summed), timed alone so that its cost shows whichever catalog version the
    bench's month falls under."""
    from app.core.database import create_engine, create_sessionmaker
    from app.scores import repository

    engine = create_engine(bench.settings(), bench.db_url)
    try:
        async with create_sessionmaker(engine)() as session:
            started = time.perf_counter()
            await repository.compact_kept_counts(session, month, month)
            columns = await repository.record_columns(session, month, month)
            took = time.perf_counter() - started
            await session.commit()
            return took, len(columns["unit_code"])
    finally:
        await engine.dispose()


async def _recompute(
    bench: Bench,
    job: Callable[..., Awaitable[Any]],
    period: str,
    catalog: Any,
    spent: dict[str, list[float]] | None = None,
) -> tuple[float, Any]:
    """One recomputation, timed; with ``spent``, each statement's time is added to it by
    kind (:func:`_statement_kind`): [calls, seconds]."""
    from app.core.database import create_engine, create_sessionmaker

    settings = bench.settings()
    engine = create_engine(settings, bench.db_url)
    if spent is not None:
        _time_statements(engine, spent)
    try:
        ctx = {
            "sessionmaker": create_sessionmaker(engine),
            "settings": settings,
            "clock": lambda: datetime.now(UTC),
            "catalog": catalog,
        }
        started = time.perf_counter()
        out = await job(ctx, period)
        return time.perf_counter() - started, out
    finally:
        await engine.dispose()


# What the statements of a refresh are, by what their text holds (the first that matches).
STATEMENT_KINDS = (
    ("scoring statement (every unit's score, rank and snapshot)", "WITH units AS"),
    ("kept counts compacted", "chiso_compact_kept_counts"),
    ("record-based counts", " AS received"),
    ("2.1 counts", " AS numerator"),
    ("rankings saved", "INSERT INTO ranking_snapshots"),
    ("unit tree", "WITH RECURSIVE unit_pairs"),
    ("previous snapshots deleted", "DELETE FROM score_snapshots"),
)


def _statement_kind(statement: str) -> str:
    text = " ".join(statement.split())
    for kind, marker in STATEMENT_KINDS:
        if marker in text:  # in this order: the scoring statement names the others' columns
            return kind
    return "other statements"


def _time_statements(engine: Any, spent: dict[str, list[float]]) -> None:
    from sqlalchemy import event

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        conn.info["bench_started"] = time.perf_counter()

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        took = time.perf_counter() - conn.info.pop("bench_started")
        entry = spent.setdefault(_statement_kind(statement), [0, 0.0])
        entry[0] += 1
        entry[1] += took


def time_by_statement(seconds: float, spent: dict[str, list[float]]) -> list[dict[str, Any]]:
    """Where one recomputation's time went: each kind of statement (calls, seconds, share),
    most first, then the rest (Python: the rankings rendered, the rows read, the loop)."""
    rows = [
        {"what": kind, "calls": int(calls), "seconds": round(took, 4),
         "share": round(took / seconds, 3)}
        for kind, (calls, took) in sorted(spent.items(), key=lambda item: -item[1][1])
    ]  # fmt: skip
    rest = seconds - sum(took for _, took in spent.values())
    rows.append(
        {"what": "outside the statements (Python, waiting)", "calls": None,
         "seconds": round(rest, 4), "share": round(rest / seconds, 3)}
    )  # fmt: skip
    return rows


def run(bench: Bench) -> ScenarioResult:
    bench.stop_http()  # the bulk load rebuilds the dossiers table's indexes
    start, end = month_bounds(datetime.now(UTC))
    period = f"{(start + (end - start) / 2).astimezone(UTC):%Y-%m}"
    asyncio.run(_generate(bench, start, end))
    result = ScenarioResult("recompute", TITLE)
    found = find_subject()
    first_day = (start + (end - start) / 2).date().replace(day=1)
    catalog, version = record_fed_catalog(first_day)
    asyncio.run(_group_by(bench, start, end))  # warm the cache for both

    def baseline(_: int) -> dict[str, Any]:
        seconds, groups = asyncio.run(_group_by(bench, start, end))
        return {"seconds": round(seconds, 4), "groups": groups}

    def subject(_: int) -> dict[str, Any]:
        if found is None:
            return {}
        seconds, out = asyncio.run(_recompute(bench, found[1], period, catalog))
        return {"seconds": round(seconds, 4), "result": str(out)[:200]}

    def records(_: int) -> dict[str, Any]:
        seconds, units = asyncio.run(_record_counts(bench, first_day))
        return {"seconds": round(seconds, 4), "units": units}

    bases, subjects = interleaved(bench.scale.rounds, baseline, subject)
    base_time = median([b["seconds"] for b in bases])
    subject_time = median([s["seconds"] for s in subjects if s]) if found else None
    record_bases, record_runs = interleaved(bench.scale.rounds, baseline, records)
    result.details = {
        "period": period,
        "dossiers": bench.scale.month_dossiers,
        "subject": found[0] if found else None,
        "catalog_version": version,
    }
    if found is not None:
        # One more recomputation, each statement timed: where the time goes.
        spent: dict[str, list[float]] = {}
        seconds, _ = asyncio.run(_recompute(bench, found[1], period, catalog, spent))
        result.details["time_by_statement"] = time_by_statement(seconds, spent)
        for row in result.details["time_by_statement"]:
            log(f"recompute: {row['seconds']:.3f} s ({row['share']:.0%}) {row['what']}")
    result.figures = [
        figure(
            "recompute",
            "recompute time",
            "s",
            subject_time,
            baseline=base_time,
            baseline_name=f"one GROUP BY over {bench.scale.month_dossiers:,} dossiers",
            rounds=[{"baseline": b, "subject": s} for b, s in zip(bases, subjects, strict=True)],
            note=f"catalog {version}",
        ),
        Figure(
            "record-based counts",
            "s",
            median([r["seconds"] for r in record_runs]),
            median([b["seconds"] for b in record_bases]),
            f"one GROUP BY over {bench.scale.month_dossiers:,} dossiers",
            higher_is_better=False,
            target_ratio=TARGETS["recompute"].ratio,
            rounds=[
                {"baseline": b, "subject": r}
                for b, r in zip(record_bases, record_runs, strict=True)
            ],
            note="1.4, 3.3, 3.6, 4.1–4.5 for every unit subtree, from the counts kept per unit "
            "and month (part of the recomputation from catalog 766-2026)",
        ),
    ]
    if found is None:
        result.status = "skipped"
        modules = ", ".join(m for m, _ in ENTRY_POINTS)
        result.message = f"no recomputation job yet (looked for {modules}); baseline measured"
    return result
