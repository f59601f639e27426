"""The benchmark harness at its smoke scale: every scenario runs end to end, in seconds.

No figure is asserted (timings mean nothing on a shared machine): only that each scenario ran,
measured something beside its baseline and wrote well-formed results, so the code behind
``make bench`` cannot rot unnoticed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.config import SCENARIOS
from tests.conftest import PROJECT_ROOT, Servers, plain_url


def test_every_scenario_runs_at_smoke_scale(servers: Servers, tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CHISO_")},
        "CHISO_BENCH_DATABASE_URL": plain_url(servers.server_url),
        "CHISO_BENCH_REDIS_URL": servers.redis_url,
    }
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--scale", "smoke", "--no-docs", "--loadgen", "python",
         "--workers", "1", "--results-dir", str(tmp_path)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    (path,) = tmp_path.glob("*-smoke*.json")
    data = json.loads(path.read_text())
    assert data["scale"] == "smoke"
    assert list(data["scenarios"]) == list(SCENARIOS)
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
