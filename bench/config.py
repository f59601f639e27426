"""Scales and run options. ``small`` fits CI-like budgets; ``national`` is the issue's figures."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
PROFILES_DIR = RESULTS_DIR / "profiles"
PERFORMANCE_MD = PROJECT_ROOT / "docs" / "PERFORMANCE.md"
# Benchmark-only tools (py-spy) live outside the checkout, never in the project venv.
TOOLS_VENV = Path("/tmp/bench-venv")  # noqa: S108 - a throwaway venv, recreated if missing


@dataclass(frozen=True)
class Scale:
    name: str
    # HTTP scenarios (single POST, rankings polling): seconds per measured run.
    http_seconds: int
    warmup_seconds: int
    connections: int
    # Batch ingestion: events per round, events per request, concurrent requests.
    batch_events: int
    batch_size: int
    batch_concurrency: int
    # Overdue sweep: open dossiers in the small and the large table, newly overdue in each.
    sweep_open: tuple[int, int]
    sweep_newly_overdue: int
    # Score recomputation vs GROUP BY: dossiers finished in one month.
    month_dossiers: int
    # Portal sync: dossiers served by the simulator.
    sync_dossiers: int
    rounds: int = 3


SCALES: dict[str, Scale] = {
    # Seconds, not minutes: `make test` runs every scenario at this scale (tests/test_bench.py)
    # so the benchmark code cannot rot. Its figures mean nothing.
    "smoke": Scale(
        name="smoke",
        http_seconds=1,
        warmup_seconds=1,
        connections=4,
        batch_events=600,
        batch_size=200,
        batch_concurrency=2,
        sweep_open=(300, 600),
        sweep_newly_overdue=20,
        month_dossiers=2_000,
        sync_dossiers=300,
        rounds=1,
    ),
    "small": Scale(
        name="small",
        http_seconds=8,
        warmup_seconds=2,
        connections=16,
        batch_events=60_000,
        batch_size=5_000,
        batch_concurrency=2,
        sweep_open=(100_000, 500_000),
        sweep_newly_overdue=2_000,
        month_dossiers=340_000,
        sync_dossiers=20_000,
    ),
    "national": Scale(
        name="national",
        http_seconds=30,
        warmup_seconds=5,
        connections=32,
        batch_events=1_000_000,
        batch_size=5_000,
        batch_concurrency=2,
        sweep_open=(1_000_000, 5_000_000),
        sweep_newly_overdue=10_000,
        month_dossiers=3_400_000,
        sync_dossiers=1_000_000,
    ),
}

# In run order: the month's dossiers (recompute) go in first, so the HTTP scenarios run against
# a table of realistic size and the rankings polled are those of that month. A scenario whose
# module is not there (bench/scenarios/<name>.py) is left out of the default list.
SCENARIOS = (
    "recompute",
    "sweep",
    "single_post",
    "batch",
    "portal_push",
    "rankings",
    "portal_sync",
)
# Measured once per API process count of ``--workers`` (the API and its baseline restarted
# with that count each time); the others do not use the API.
HTTP_SCENARIOS = frozenset({"single_post", "batch", "portal_push", "rankings"})


def available(name: str) -> bool:
    return (BENCH_DIR / "scenarios" / f"{name}.py").exists()


@dataclass(frozen=True)
class Options:
    scale: Scale
    scenarios: tuple[str, ...] = SCENARIOS
    api_processes: tuple[int, ...] = (2,)  # each HTTP scenario runs once per count, in order
    loadgen: str = "auto"  # auto | wrk | python
    profile: str | None = None  # a scenario whose subject is profiled with py-spy
    keep_database: bool = False
    write_docs: bool = True
    rankings_query: str = ""
    results_dir: Path = RESULTS_DIR
    extra: dict[str, str] = field(default_factory=dict)
    # Each ingestion round, chiso's and its COPY's, begins with a checkpoint (bench/writes.py).
    checkpoint_rounds: bool = False

    @property
    def workers(self) -> int:
        """The last (or only) API process count: the one profiles and one-off figures use."""
        return self.api_processes[-1]

    def with_rounds(self, rounds: int) -> Options:
        return replace(self, scale=replace(self.scale, rounds=rounds))
