"""The benchmark harness at its smoke scale: every scenario runs end to end, in seconds.

No figure is asserted (timings mean nothing on a shared machine): only that each scenario ran,
measured something beside its baseline and wrote well-formed results, so the code behind
``make bench`` cannot rot unnoticed. The HTTP scenarios run with 1 and with 2 API processes
(``--workers 1,2``). The report's target table and the option parsing are checked on
hand-made results.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import asyncpg
import pytest

from bench import cpu, report, writes
from bench.config import HTTP_SCENARIOS, SCENARIOS, available
from bench.model import percentile
from bench.run import parse_args
from bench.targets import TARGETS, Target, answers
from tests.conftest import PROJECT_ROOT, Servers, plain_url


def test_every_scenario_runs_at_smoke_scale(servers: Servers, tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CHISO_")},
        "CHISO_BENCH_DATABASE_URL": plain_url(servers.server_url),
        "CHISO_BENCH_REDIS_URL": servers.redis_url,
    }
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--scale", "smoke", "--no-docs", "--loadgen", "python",
         "--workers", "1,2", "--results-dir", str(tmp_path)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    (path,) = tmp_path.glob("*-smoke*.json")
    data = json.loads(path.read_text())
    assert data["scale"] == "smoke"
    assert data["config"]["api_processes"] == [1, 2]
    expected = []
    for name in (n for n in SCENARIOS if available(n)):
        expected += [f"{name}@1", f"{name}@2"] if name in HTTP_SCENARIOS else [name]
    assert list(data["scenarios"]) == expected
    for key, scenario in data["scenarios"].items():
        name, _, count = key.partition("@")
        assert scenario["scenario"] == name
        assert scenario["api_processes"] == (int(count) if count else None)
    # Every target has its row(s) in the printed table: one per API process count for the
    # HTTP scenarios, "not measured" for a scenario whose module is missing.
    printed = run.stdout
    for target in TARGETS.values():
        rows = [ln for ln in printed.splitlines() if ln.startswith(f"| {target.label}")]
        if not available(target.scenario):
            assert len(rows) == 1 and "not measured" in rows[0], target.key
        elif target.scenario in HTTP_SCENARIOS:
            assert [r.split(" | ")[1] for r in rows] == ["1", "2"], target.key
            assert all(" ms | " in r for r in rows), target.key  # p50 / p99 shown
        else:
            assert len(rows) == 1, target.key
    # Each pass sends events of its own: the second stores as many as the first, no duplicate.
    for count in (1, 2):
        (batch,) = [f for f in data["scenarios"][f"batch@{count}"]["figures"]
                    if f["key"] == "batch_copy"]  # fmt: skip
        for r in batch["rounds"]:
            assert r["subject"]["duplicate"] == 0 and r["subject"]["rejected"] == 0, count
            assert r["subject"]["stored"] == r["subject"]["events"], count
    # Both ingestion paths say how much log they write per event, and so does their COPY.
    for name in ("batch@1", "portal_push@1"):
        (wal,) = [f for f in data["scenarios"][name]["figures"]
                  if f["name"] == "write-ahead log per event vs COPY"]  # fmt: skip
        assert wal["value"] > 0 and wal["baseline"] > 0, name
        for r in wal["rounds"] or data["scenarios"][name]["figures"][0]["rounds"]:
            for side in ("subject", "baseline"):
                assert r[side]["writes"]["wal_bytes"] > 0, (name, side)
                assert r[side]["writes"]["checkpoints"] >= 0, (name, side)
    # …and where their CPU goes, theirs and their COPY's: the server runs on this machine.
    for name in ("batch@1", "portal_push@1"):
        for r in data["scenarios"][name]["figures"][0]["rounds"]:
            for side in ("subject", "baseline"):
                spent = r[side]["cpu"]
                assert spent["postgres_s"] is not None and spent["client_s"] >= 0, (name, side)
            assert r["subject"]["cpu"]["api_s"] is not None, name
    # The recomputation says where its time goes: each kind of statement, then the rest.
    spent = data["scenarios"]["recompute"]["details"]["time_by_statement"]
    kinds = [row["what"] for row in spent]
    assert {"scoring statement (every unit's score, rank and snapshot)", "record-based counts",
            "2.1 counts"} <= set(kinds)  # fmt: skip
    assert kinds[-1] == "outside the statements (Python, waiting)"
    assert sum(row["share"] for row in spent) == pytest.approx(1, abs=0.01)
    for name, scenario in data["scenarios"].items():
        assert scenario["status"] == "ok", (name, scenario["message"])
        assert scenario["figures"], name
        for figure in scenario["figures"]:
            assert figure["value"] is not None and figure["value"] > 0, (name, figure["name"])
            if figure["baseline"] is not None:
                expected = figure["value"] / figure["baseline"]
                assert figure["ratio"] == pytest.approx(
                    expected, abs=1e-4
                )  # kept to 4 places, figure["name"]
    # The run cleans up after itself: no bench database is left on the server.
    left = subprocess.run(
        [sys.executable, "-c", LIST_DATABASES, plain_url(servers.server_url)],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split()  # fmt: skip
    assert not [d for d in left if d.startswith(f"chiso_bench_{data['run_id']}")], left


LIST_DATABASES = """
import asyncio, sys
import asyncpg
async def main():
    conn = await asyncpg.connect(sys.argv[1])
    print(" ".join(r[0] for r in await conn.fetch("SELECT datname FROM pg_database")))
    await conn.close()
asyncio.run(main())
"""


# --- the report, on hand-made results -------------------------------------------------------


def _figure(name: str, value: float, baseline: float | None, **extra: object) -> dict:
    return {
        "name": name, "unit": extra.pop("unit", "req/s"), "value": value, "baseline": baseline,
        "baseline_name": "bare" if baseline else None,
        "ratio": value / baseline if baseline else None, "target": None, "met": None,
        "note": None, "rounds": [], **extra,
    }  # fmt: skip


def _run(scenarios: dict, workers: int | None = None, schema: int = 2) -> dict:
    return {
        "schema": schema, "scale": "small",
        "machine": {"date": "2026-11-30T04:00:00", "cores": 2, "cpu": "x", "memory_gib": 1,
                    "kernel": "6", "python": "3.11"},
        "postgres": {"version": "15", "settings": {}},
        "config": {"rounds": 3, "loadgen": "wrk", "workers": workers, "api_processes": [1, 2],
                   "scale": {"batch_events": 60_000, "month_dossiers": 340_000,
                             "sync_dossiers": 20_000}},
        "seconds": 60.0, "scenarios": scenarios,
    }  # fmt: skip


def _result(name: str, count: int | None, figures: list[dict], status: str = "ok") -> dict:
    return {
        "scenario": name, "api_processes": count, "title": name, "status": status,
        "message": None, "seconds": 1.0, "figures": figures, "details": {},
    }  # fmt: skip


def _rows(table: str, label: str) -> list[list[str]]:
    return [
        [c.strip() for c in line.strip("|").split("|")]
        for line in table.splitlines()
        if line.startswith(f"| {label}")
    ]


def test_target_rows_per_api_process_count_judged_by_the_targets() -> None:
    single = TARGETS["single_post"]
    burst = TARGETS["burst"]
    scenarios = {
        "single_post@1": _result("single_post", 1, [
            _figure("throughput", 600.0, 2000.0, key="single_post",
                    latency_ms={"p50": 20.0, "p99": 90.5},
                    baseline_latency_ms={"p50": 5.0, "p99": 17.24}),
        ]),
        "single_post@2": _result("single_post", 2, [
            _figure("throughput", 1000.0, 2500.0, key="single_post"),
        ]),
        "batch@2": _result("batch", 2, [
            _figure("burst: ingested, then fully derived (events/s)", 25_000.0, 250_000.0,
                    key="burst", unit="events/s", latency_ms={"p50": 7469.8, "p99": 11616.5}),
        ]),
        "recompute": _result("recompute", None, [
            _figure("recompute time", 0.9, 0.3, unit="s", key="recompute"),
        ]),
    }  # fmt: skip
    table = report.targets_table(_run(scenarios))
    one, two = _rows(table, single.label)
    # 600 / 2000 = 0.30 < 0.5: not met; 1000 / 2500 = 0.40 < 0.5: not met.
    assert one == [single.label, "1", "600 req/s", "20.0 / 90.5 ms", "2,000 req/s (bare)",
                   "5.0 / 17.2 ms", "0.30", "≥ 0.5 ×", "**no**"]  # fmt: skip
    assert two[1:4] == ["2", "1,000 req/s", "–"] and two[6:] == ["0.40", "≥ 0.5 ×", "**no**"]
    # 25,000 events/s ≥ 20,000: met, whatever the ratio to COPY (0.10). Sized by the scale.
    (row,) = _rows(table, burst.label)
    assert row[0] == f"{burst.label}: 60,000 events (national: 1,000,000 events)"
    assert row[1:4] == ["2", "25,000 events/s", "7.5 / 11.6 s"]  # past 10 s: seconds
    assert row[6:] == ["0.10", "≥ 20,000 events/s", "yes"]
    # 0.9 / 0.3 = 3.0 ≤ 3: met (a maximum).
    (row,) = _rows(table, TARGETS["recompute"].label)
    assert row[1] == "–" and row[6:] == ["3.00", "≤ 3 ×", "yes"]
    # Not run: one row saying so.
    (row,) = _rows(table, TARGETS["rankings_200"].label)
    assert row[1:3] == ["–", "not measured in this run"]
    (row,) = _rows(table, TARGETS["batch_copy"].label)  # batch ran, without this figure
    assert row[1:3] == ["2", "not measured by that run"]


def test_results_of_one_process_count_per_run_read_with_todays_targets() -> None:
    """Schema 1: scenarios keyed by name, the run's worker count for the HTTP ones, figures
    without keys. The rankings targets were 0.5 / 0.7 then; today's is 1 ×."""
    old = _run(
        {
            "rankings": {**_result("rankings", None, [
                _figure("200 throughput", 900.0, 1000.0, target="≥ 0.5 ×", met=True),
                _figure("200 p99 latency", 5.0, 4.0, unit="ms"),
                _figure("304 throughput", 1100.0, 1000.0, target="≥ 0.7 ×", met=True),
            ])},
            "sweep": _result("sweep", None, [_figure("sweep time", 1.0, 1.0, unit="s")]),
        },
        workers=2,
        schema=1,
    )  # fmt: skip
    for scenario in old["scenarios"].values():
        del scenario["scenario"], scenario["api_processes"]
    data = report.normalize(old)
    assert list(data["scenarios"]) == ["rankings@2", "sweep"]
    assert data["scenarios"]["rankings@2"]["api_processes"] == 2
    assert data["scenarios"]["sweep"]["api_processes"] is None
    table = report.targets_table(old)
    (row,) = _rows(table, TARGETS["rankings_200"].label)
    assert row[1] == "2" and row[6:] == ["0.90", "≥ 1 ×", "**no**"]  # 0.9 < 1
    (row,) = _rows(table, TARGETS["rankings_304"].label)
    assert row[6:] == ["1.10", "≥ 1 ×", "yes"]


def test_a_scenario_with_one_target_answers_it_with_its_first_targeted_figure() -> None:
    """The portal push scenario may name its figure as it likes: with one target, its first
    figure that has a target answers it."""
    target = TARGETS["portal_push"]
    figures = [
        _figure("requests", 10.0, None, key=None),
        _figure("records/s", 5.0, 25.0, target="≥ 0.2 ×", key=None),
    ]
    assert answers(target, figures) is figures[1]
    # Results from before keys (no "key" at all) are matched by name only: the recompute
    # figure of a run without the record-based metrics does not answer today's target.
    old = [_figure("recompute time", 2.7, 0.8, unit="s", target="≤ 3 ×")]
    assert answers(TARGETS["recompute"], old) is None
    assert target.met(5.0, 25.0) is True  # 0.2 ≥ 0.2
    assert target.met(4.0, 25.0) is False
    assert target.met(4.0, None) is None


def test_targets_with_a_ratio_and_a_minimum_need_both() -> None:
    both = Target("t", "batch", "t", ratio=0.25, value=50_000, unit="events/s")
    assert both.met(60_000, 200_000) is True  # 0.30 and 60,000
    assert both.met(60_000, 300_000) is False  # 0.20
    assert both.met(40_000, 100_000) is False  # 0.40 but 40,000
    assert both.text == "≥ 0.25 × and ≥ 50,000 events/s"


def test_api_process_counts_option() -> None:
    assert parse_args(["--workers", "1,2"]).api_processes == (1, 2)
    assert parse_args(["--api-processes", "2"]).api_processes == (2,)
    assert parse_args(["--workers", "2,1"]).workers == 1  # the last count
    for bad in ("0", "1,1", "x"):
        with pytest.raises(SystemExit):
            parse_args(["--workers", bad])


def test_checkpoint_rounds_option() -> None:
    assert parse_args([]).checkpoint_rounds is False
    assert parse_args(["--checkpoint-rounds"]).checkpoint_rounds is True


def test_a_round_started_with_checkpoint_rounds_starts_after_a_checkpoint(
    servers: Servers,
) -> None:
    url = plain_url(servers.server_url)
    last = "SELECT checkpoint_lsn FROM pg_control_checkpoint()"
    bench = SimpleNamespace(db_url=url, options=SimpleNamespace(checkpoint_rounds=True))
    before = _fetch(url, last)
    start = writes.start(cast(Any, bench))
    after = _fetch(url, last)
    assert int(after) > int(before)  # a checkpoint since (asyncpg reads an LSN as bytes)
    assert start.wal >= int(after)  # and the round's reading was taken after it


def _fetch(url: str, sql: str) -> str:
    async def fetch() -> str:
        conn = await asyncpg.connect(url)
        try:
            return str(await conn.fetchval(sql))
        finally:
            await conn.close()

    return asyncio.run(fetch())


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1 … 100
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([], 0.5) is None


def test_writes_are_the_log_between_two_readings_per_event() -> None:
    before, after = writes.Reading(wal=1_000, checkpoints=3), writes.Reading(9_192, 4)
    assert writes.written(before, after, 4) == {
        "wal_bytes": 8_192, "wal_bytes_per_event": 2_048.0, "checkpoints": 1,
    }  # fmt: skip
    assert writes.written(before, before, 0)["wal_bytes_per_event"] is None


def test_the_log_figure_sets_chiso_s_median_against_the_copy_s() -> None:
    def rounds(*per_event: float) -> list[dict]:
        return [{"writes": {"wal_bytes_per_event": v}} for v in per_event]

    wal = writes.wal_figure(rounds(3_000, 5_000, 4_000), rounds(1_000, 2_000, 1_500))
    assert (wal.value, wal.baseline) == (4_000, 1_500)
    assert wal.ratio == pytest.approx(8 / 3)
    assert wal.higher_is_better is False and wal.target_ratio is None


def test_the_report_names_the_servers_checkpoint_settings() -> None:
    data = _run({})
    data["postgres"]["settings"] = {
        "shared_buffers": "128MB", "synchronous_commit": "on", "max_wal_size": "1GB",
        "checkpoint_timeout": "5min", "wal_compression": "off", "work_mem": "4MB",
    }  # fmt: skip
    header = report.section(data, PROJECT_ROOT / "bench" / "results" / "x.json").splitlines()[2]
    assert ("(shared_buffers 128MB, synchronous_commit on, max_wal_size 1GB, "
            "checkpoint_timeout 5min, wal_compression off)") in header  # fmt: skip
    data["postgres"]["settings"] = {"shared_buffers": "128MB"}  # an older result's
    header = report.section(data, PROJECT_ROOT / "bench" / "results" / "x.json").splitlines()[2]
    assert "(shared_buffers 128MB)" in header
    data["config"]["checkpoint_rounds"] = True  # --checkpoint-rounds
    header = report.section(data, PROJECT_ROOT / "bench" / "results" / "x.json").splitlines()[2]
    assert ("(shared_buffers 128MB; each ingestion round, chiso's and its COPY's, began with a "
            "checkpoint)") in header  # fmt: skip


def test_cpu_spent_is_each_side_s_time_between_two_readings_per_1000_events() -> None:
    before = cpu.Usage(api=10.0, postgres=20.0, client=1.0, busy=100.0)
    after = cpu.Usage(api=12.5, postgres=21.0, client=1.5, busy=104.0)
    assert cpu.spent(before, after, 2.0, 50_000) == {
        "api_s": 2.5, "postgres_s": 1.0, "client_s": 0.5,
        "api_ms_per_1000": 50.0, "postgres_ms_per_1000": 20.0, "client_ms_per_1000": 10.0,
        "busy_cores": 2.0,
    }  # fmt: skip
    # A server elsewhere has no reading; a side that spent less than a tick is not measured.
    elsewhere = cpu.spent(
        cpu.Usage(None, None, 1.0, 100.0), cpu.Usage(None, None, 1.0, 101.0), 0.5, 1_000
    )
    assert (elsewhere["postgres_s"], elsewhere["postgres_ms_per_1000"]) == (None, None)
    assert (elsewhere["client_s"], elsewhere["client_ms_per_1000"]) == (0.0, None)
    assert elsewhere["busy_cores"] == 2.0


def test_the_cpu_figures_set_chiso_s_medians_against_the_copy_s() -> None:
    def rounds(*sides: tuple[float, float, float]) -> list[dict]:
        names = ("api_ms_per_1000", "postgres_ms_per_1000", "client_ms_per_1000")
        return [{"cpu": {**dict(zip(names, side, strict=True)), "busy_cores": 1.5}}
                for side in sides]  # fmt: skip

    subjects = rounds((40, 30, 3), (36, 34, 3), (38, 31, 2))
    bases = rounds((0, 6, 3), (0, 8, 4), (0, 7, 3))
    database, api = cpu.cpu_figures(subjects, bases)
    assert (database.value, database.baseline) == (31, 7)
    assert (api.value, api.baseline) == (38, 3)
    assert database.higher_is_better is False and database.target_ratio is None
    assert "busy cores: 1.50 of" in (database.note or "")


def test_cpu_of_a_process_tree_counts_its_children_live_and_ended() -> None:
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass\n"
    me = os.getpid()
    before = cpu.tree_seconds(me)
    subprocess.run([sys.executable, "-c", burn], check=True)  # ended, waited for: cutime
    ended = cpu.tree_seconds(me)
    assert before is not None and ended is not None and ended - before >= 0.35
    child = subprocess.Popen([sys.executable, "-c", burn + "print(1, flush=True)\ntime.sleep(60)"],
                             stdout=subprocess.PIPE)  # fmt: skip
    try:
        assert child.stdout is not None and child.stdout.readline() == b"1\n"  # burnt, alive
        live = cpu.tree_seconds(me)
        assert live is not None and live - ended >= 0.35
    finally:
        child.kill()
        child.wait()
    assert cpu.tree_seconds(2**22 + 1) is None  # no such process (above pid_max's default)


def test_the_database_server_s_cpu_is_read_when_it_runs_here(servers: Servers) -> None:
    url = plain_url(servers.server_url)
    postmaster = cpu.postmaster(url)
    assert postmaster is not None  # the tests' server runs on this machine
    before = cpu.tree_seconds(postmaster)
    _fetch(url, "SELECT count(*) FROM generate_series(1, 3000000)")
    after = cpu.tree_seconds(postmaster)
    assert before is not None and after is not None and after - before >= 0.1
