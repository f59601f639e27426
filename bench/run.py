"""``python -m bench``: set up a bench database, run the scenarios, write the results.

    python -m bench [--scale small|national] [--scenarios a,b] [--workers N[,M…]] [--rounds N]
                    [--loadgen auto|wrk|python] [--profile SCENARIO] [--keep-database]
                    [--no-docs] [--rankings-query QUERY]

PostgreSQL: ``CHISO_BENCH_DATABASE_URL``, else postgresql://postgres@127.0.0.1:5432/postgres
when it answers, else the embedded server in .data/bench. Redis likewise with
``CHISO_BENCH_REDIS_URL`` (default redis://127.0.0.1:6379/13). The run creates its own
databases (``chiso_bench`` and two sweep copies) from the migrations and drops them at the end.

``--workers 1,2`` (alias ``--api-processes``) runs each HTTP scenario (single POST, batch,
portal push, rankings) once with 1 and once with 2 API processes, the baselines with the same
count each time; the report shows both.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import asyncpg

from bench import report
from bench.config import HTTP_SCENARIOS, RESULTS_DIR, SCALES, SCENARIOS, Options, available
from bench.context import Bench
from bench.datagen import load_reference, weighted_units
from bench.infra import (
    create_database,
    drop_database,
    ensure_wrk,
    log,
    machine_info,
    plain_url,
    postgres_info,
    resolve_servers,
    wrk_version,
)
from bench.loadgen import LoadGenerator
from bench.model import ScenarioResult
from bench.scenarios import runner

DATABASE = "chiso_bench"  # + the run id: two runs (or a run and the test suite) never collide


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    present = [n for n in SCENARIOS if available(n)]
    parser.add_argument(
        "--scenarios",
        default=",".join(present),
        help=f"comma-separated subset of {','.join(present)}",
    )
    default_workers = os.environ.get("WEB_CONCURRENCY", str(len(os.sched_getaffinity(0))))
    parser.add_argument(
        "--workers",
        "--api-processes",
        dest="workers",
        default=default_workers,
        help="uvicorn workers (processes) of the API and the baselines; a comma-separated list "
        "(e.g. 1,2) measures every HTTP scenario with each count in turn (default: "
        "WEB_CONCURRENCY, else the number of cores)",
    )
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument(
        "--profile",
        choices=["single_post", "batch", "portal_push", "rankings", "portal_sync"],
        help="profile this scenario's subject with py-spy (one extra run)",
    )
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument(
        "--checkpoint-rounds",
        action="store_true",
        help="begin each ingestion round (batch, portal records; chiso's and the COPY's) with "
        "a CHECKPOINT, off the clock, so that both sides start from the same server state "
        "(needs a superuser or pg_checkpoint)",
    )
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/PERFORMANCE.md")
    parser.add_argument("--rankings-query", default="")
    parser.add_argument(
        "--results-dir", type=Path, default=RESULTS_DIR, help="where the JSON results go"
    )
    parser.add_argument(
        "--api-env",
        action="append",
        default=[],
        metavar="CHISO_X=VALUE",
        help="extra environment of the API and worker (try a configuration)",
    )
    args = parser.parse_args(argv)
    names = tuple(n.strip() for n in args.scenarios.split(",") if n.strip())
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(unknown)}")
    missing = sorted(n for n in names if not available(n))
    if missing:
        parser.error(f"no module bench/scenarios/<name>.py for: {', '.join(missing)}")
    options = Options(
        scale=SCALES[args.scale],
        scenarios=tuple(n for n in SCENARIOS if n in names),
        api_processes=_counts(parser, args.workers),
        loadgen=args.loadgen,
        profile=args.profile,
        keep_database=args.keep_database,
        checkpoint_rounds=args.checkpoint_rounds,
        write_docs=not args.no_docs,
        rankings_query=args.rankings_query,
        results_dir=args.results_dir,
        extra=dict(_pair(v) for v in args.api_env),
    )
    return options.with_rounds(args.rounds) if args.rounds else options


def _counts(parser: argparse.ArgumentParser, text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(n) for n in text.split(",") if n.strip())
    except ValueError:
        parser.error(f"--workers wants N or N,M,…, got {text!r}")
    if not counts or min(counts) < 1 or len(set(counts)) != len(counts):
        parser.error(f"--workers wants distinct counts ≥ 1, got {text!r}")
    return counts


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.startswith("CHISO_"):
        raise SystemExit(f"--api-env wants CHISO_NAME=VALUE, got {text!r}")
    return key, value


# --- setup -------------------------------------------------------------------------------


async def _create_key(bench: Bench) -> str:
    from app.core.auth import Scope
    from app.core.database import create_engine, create_sessionmaker
    from app.keys.schemas import ApiKeyIn
    from app.keys.service import create_key

    settings = bench.settings()
    engine = create_engine(settings, bench.db_url)
    try:
        async with create_sessionmaker(engine)() as session:
            created = await create_key(
                session, ApiKeyIn(name="bench", scopes=[Scope.dossiers_write]), "bench"
            )
            await session.commit()
            return created.key
    finally:
        await engine.dispose()


async def _reference(bench: Bench) -> None:
    from app.cli import load_reference_data
    from app.core.database import create_engine, create_sessionmaker

    engine = create_engine(bench.settings(), bench.db_url)
    try:
        async with create_sessionmaker(engine)() as session:
            await load_reference_data(session)  # the shipped provinces and procedures
            await session.commit()
    finally:
        await engine.dispose()
    conn = await asyncpg.connect(plain_url(bench.db_url))
    try:
        bench.units, bench.procedures = await load_reference(conn)
        for table in ("bench_bare_events", "bench_copy_events"):
            await conn.execute(f"CREATE TABLE {table} (LIKE dossier_events INCLUDING ALL)")
    finally:
        await conn.close()


def setup(bench: Bench) -> None:
    from app.core.migrations import upgrade

    server = bench.servers.database_url
    bench.db_name = f"{DATABASE}_{bench.run_root}"
    bench.db_url = asyncio.run(create_database(server, bench.db_name))
    bench.databases.append(bench.db_name)
    log(f"database {bench.db_name}: migrating")
    upgrade(bench.db_url)
    asyncio.run(_reference(bench))
    bench.unit_pool = weighted_units(bench.units)
    bench.api_key = asyncio.run(_create_key(bench))
    log(f"reference data: {len(bench.units) + 34:,} units, {len(bench.procedures)} procedures")
    if "sweep" in bench.options.scenarios:
        from bench.scenarios.sweep import sweep_databases

        for name in sweep_databases(bench):  # copies made before any dossier exists
            asyncio.run(create_database(server, name, template=bench.db_name))
            bench.databases.append(name)


def teardown(bench: Bench) -> None:
    for proc in list(bench.processes):
        bench.stop(proc)
    if not bench.options.keep_database:
        for name in bench.databases:
            try:
                asyncio.run(drop_database(bench.servers.database_url, name))
            except Exception as exc:  # keep tearing down the rest
                log(f"could not drop {name}: {exc}")
    bench.servers.stop()


# --- the run -----------------------------------------------------------------------------


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def result_key(name: str, api_processes: int | None) -> str:
    """The key of a scenario's result in the run's JSON: ``single_post@2`` for an HTTP
    scenario measured with 2 API processes, the bare name for the others."""
    return name if api_processes is None else f"{name}@{api_processes}"


def _run_one(bench: Bench, name: str) -> ScenarioResult:
    title, scenario = runner(name)
    count = bench.api_processes
    plural = "es" if count != 1 else ""
    where = f" with {count} API process{plural}" if name in HTTP_SCENARIOS else ""
    log(f"scenario {name}: {title}{where}")
    began = time.perf_counter()
    load_before = os.getloadavg()[0]
    try:
        result = scenario(bench)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        traceback.print_exc()
        result = ScenarioResult(name, title, status="failed", message=f"{exc!r}"[:500])
    result.seconds = time.perf_counter() - began
    # Other work on the machine shows here: a 1-minute load above the core count means the
    # figures of this scenario were taken on a contended machine.
    result.details["load_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    log(
        f"scenario {name}: {result.status} in {result.seconds:.0f}s"
        + (f" ({result.message})" if result.message else "")
    )
    return result


def run(options: Options) -> dict[str, Any]:
    started = time.perf_counter()
    # Only this run's settings reach the processes under test.
    for key in [
        k for k in os.environ if k.startswith("CHISO_") and not k.startswith("CHISO_BENCH")
    ]:
        del os.environ[key]
    machine = machine_info()
    wrk, why = ensure_wrk(options.loadgen)
    log(f"{machine['cores']} cores, {machine['memory_gib']} GiB; load generator: {why}")
    servers = resolve_servers()
    run_id = "r" + secrets.token_hex(3)
    work_dir = Path(tempfile.mkdtemp(prefix=f"chiso-bench-{run_id}-"))
    loadgen = LoadGenerator(wrk, work_dir, options.scale.connections, threads=2)
    bench = Bench(
        options=options, servers=servers, run_id=run_id, work_dir=work_dir, loadgen=loadgen
    )
    results: dict[str, ScenarioResult] = {}
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        pg = asyncio.run(postgres_info(servers.database_url))
        setup(bench)
        for name in options.scenarios:
            counts = options.api_processes if name in HTTP_SCENARIOS else (None,)
            for count in counts:
                if count is not None:
                    bench.use_api_processes(count)
                result = _run_one(bench, name)
                result.api_processes = count
                results[result_key(name, count)] = result
    finally:
        teardown(bench)
    data = {
        "schema": 2,
        "run_id": run_id,
        "scale": options.scale.name,
        "machine": machine,
        "postgres": pg,
        "config": {
            "api_processes": list(options.api_processes),
            "rounds": options.scale.rounds,
            "loadgen": wrk_version(wrk) if wrk else "python (bench.pyload) — lower bound",
            "loadgen_why": why,
            "api_env": options.extra,
            "checkpoint_rounds": options.checkpoint_rounds,
            "scale": vars(options.scale),
            "servers": {"notes": servers.notes, "redis": servers.redis_url.split("@")[-1]},
        },
        "seconds": round(time.perf_counter() - started, 1),
        "scenarios": {name: r.as_json() for name, r in results.items()},
        "profiles": bench.profiles,
    }
    if any(r.status == "failed" for r in results.values()):
        log(f"logs of the processes under test kept in {work_dir}")
    else:
        shutil.rmtree(work_dir, ignore_errors=True)
    return data


def main(argv: list[str] | None = None) -> int:
    from app.wiring import wire

    options = parse_args(argv)
    wire()  # scenarios call chiso's services and jobs in this process, as the app would
    try:
        data = run(options)
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    path = report.write_json(data, options.results_dir)
    if options.write_docs and not options.extra and data["scale"] != "smoke":
        report.update_doc(data, path)  # each scenario's latest run at this scale
    elif options.write_docs:
        log("smoke run or configuration trial: docs/PERFORMANCE.md left as it is")
    print()
    print(report.targets_table(data))
    print()
    print(report.table(data))
    print(f"\nresults: {path}")
    failed = [n for n, s in data["scenarios"].items() if s["status"] == "failed"]
    return 1 if failed else 0
