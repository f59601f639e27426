"""Fault-test plumbing: a private PostgreSQL and Redis per test, real `chiso` processes.

Each test gets its own embedded servers in a short temporary directory (never the suite's or
the machine's), and every process it starts is stopped by PID when the test ends, pass or
fail. The counts each test measures are gathered in a JSON file (``FAULT_RESULTS``) and
printed at the end of the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.cli import load_reference_data, load_simulator_units
from app.core.database import async_url, create_sessionmaker
from app.core.embedded import EmbeddedPostgres, EmbeddedRedis
from app.core.migrations import upgrade
from app.core.settings import PROJECT_ROOT
from tests.conftest import ADMIN_TOKEN, in_thread, plain_url, with_database

FAULT_RESULTS = Path(tempfile.gettempdir()) / f"chiso-fault-results-{os.getpid()}.json"
DATABASE = "chiso"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def record_result(name: str, counts: dict[str, Any]) -> None:
    """Keep a fault test's measured counts (for docs/RELIABILITY.md) and print them."""
    results = json.loads(FAULT_RESULTS.read_text()) if FAULT_RESULTS.exists() else {}
    results[name] = counts
    FAULT_RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True))
    print(f"\nfault result {name}: {json.dumps(counts, sort_keys=True)}")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FAULT_RESULTS.exists():
        terminalreporter.write_sep("-", f"fault-test counts ({FAULT_RESULTS})")
        terminalreporter.write_line(FAULT_RESULTS.read_text())


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as in a crash or an OOM kill."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self) -> None:
        if not self.alive():
            return
        os.kill(self.pid, signal.SIGTERM)
        try:
            self.popen.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.popen.wait(10)

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


@dataclass
class Stack:
    """Embedded PostgreSQL and Redis of one test, and the chiso processes it runs."""

    root: Path
    pg: EmbeddedPostgres
    redis: EmbeddedRedis
    server_url: str
    processes: list[Process] = field(default_factory=list)

    @property
    def database_url(self) -> str:
        return with_database(self.server_url, DATABASE)

    def url_of(self, database: str) -> str:
        return with_database(self.server_url, database)

    @property
    def redis_url(self) -> str:
        return self.redis.url

    def env(self, database: str = DATABASE, **settings: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHISO_")}
        env.update(
            CHISO_ENVIRONMENT="test",
            CHISO_DATABASE_URL=self.url_of(database),
            CHISO_REDIS_URL=self.redis_url,
            CHISO_ADMIN_TOKEN=ADMIN_TOKEN,
            CHISO_DATA_DIR=str(self.root / "data"),
            CHISO_LOG_LEVEL="WARNING",
            CHISO_RATE_PUBLIC_PER_MINUTE="0",
            CHISO_RATE_WRITE_PER_MINUTE="0",
            # The fault tests' webhook receivers listen on loopback: the operator's own range.
            CHISO_WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
            PYTHONUNBUFFERED="1",
        )
        env.update({f"CHISO_{k.upper()}": v for k, v in settings.items()})
        return env

    def spawn(self, name: str, args: list[str], env: dict[str, str], port: int | None) -> Process:
        log = self.root / f"{name}-{len(self.processes)}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "app.cli", *args],
                cwd=PROJECT_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = Process(name, popen, log, port)
        self.processes.append(process)
        return process

    async def start_api(self, port: int | None = None, **settings: str) -> Process:
        port = port or free_port()
        api = self.spawn(
            "api", ["api", "--host", "127.0.0.1", "--port", str(port)], self.env(**settings), port
        )
        await wait_http(api, f"http://127.0.0.1:{port}/healthz")
        return api

    def start_worker(self, database: str = DATABASE, **settings: str) -> Process:
        return self.spawn("worker", ["worker"], self.env(database, **settings), None)

    async def start_portal_sim(self, *args: str) -> Process:
        port = free_port()
        sim = self.spawn("portal-sim", ["portal-sim", "--port", str(port), *args], self.env(), port)
        await wait_http(sim, f"http://127.0.0.1:{port}/service-results", method="GET")
        return sim

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            with contextlib.suppress(Exception):
                process.stop()
        with contextlib.suppress(Exception):
            self.redis.stop()
        with contextlib.suppress(Exception):
            self.pg.stop()


async def wait_http(process: Process, url: str, method: str = "GET", timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            if not process.alive():
                raise RuntimeError(f"{process.name} exited:\n{process.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.request(method, url)).status_code < 500:
                    return
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{process.name} did not answer {url}:\n{process.tail()}")


async def create_database(server_url: str, name: str, template: str | None = None) -> None:
    conn = await asyncpg.connect(plain_url(with_database(server_url, "postgres")))
    try:
        suffix = f' TEMPLATE "{template}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{suffix}')
    finally:
        await conn.close()


async def prepare_database(server_url: str, name: str = DATABASE) -> None:
    """A migrated database with the shipped reference data (provinces, sample procedures)
    and the portal simulator's units, as ``make run`` loads them."""
    await create_database(server_url, name)
    url = with_database(server_url, name)
    await asyncio.to_thread(in_thread, lambda: upgrade(url))
    engine = create_async_engine(async_url(url))
    try:
        async with create_sessionmaker(engine)() as session:
            await load_reference_data(session)
            await load_simulator_units(session)
            await session.commit()
    finally:
        await engine.dispose()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    # Unix socket paths must stay short: a directory directly in the temp dir.
    root = Path(tempfile.mkdtemp(prefix="chf-"))
    pg = EmbeddedPostgres(root / "pg")
    redis = EmbeddedRedis(root / "redis")
    stack = Stack(root=root, pg=pg, redis=redis, server_url="")
    try:
        stack.server_url = pg.start()
        redis.start()
        yield stack
    finally:
        stack.stop_all()
        if request.node.stash.get(_FAILED, False):
            for process in stack.processes:  # what the processes said, to see why
                print(f"\n--- {process.name} (pid {process.pid}) log tail ---\n{process.tail()}")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def engine(stack: Stack) -> AsyncIterator[AsyncEngine]:
    """The test's own view of its database (shadows the suite's engine fixture)."""
    await prepare_database(stack.server_url)
    eng = create_async_engine(async_url(stack.database_url), pool_pre_ping=True)
    yield eng
    await eng.dispose()
