"""Servers, databases, child processes and tools the benchmark needs.

Everything started here is stopped here, by process id; databases created here are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from bench.config import PROJECT_ROOT, TOOLS_VENV

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# A Redis database of its own, so a developer's worker on db 0 never picks up bench jobs.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
EMBEDDED_DIR = PROJECT_ROOT / ".data" / "bench"


def log(message: str) -> None:
    stamp = datetime.now().strftime("%H:%M:%S")
    print(f"[bench {stamp}] {message}", flush=True)


# --- the machine -------------------------------------------------------------------------


def _meminfo_gib() -> float:
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    return {
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": _meminfo_gib(),
        "cpu": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# --- PostgreSQL and Redis ----------------------------------------------------------------


def with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def plain_url(url: str) -> str:
    """A URL asyncpg accepts (``postgresql://``), keeping a socket ``host`` query parameter."""
    parsed = make_url(url).set(drivername="postgresql")
    host = parsed.query.get("host")
    rendered = parsed.set(query={}).render_as_string(hide_password=False)
    return f"{rendered}?host={host}" if host else rendered


async def _pg_answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(plain_url(url), timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


def _redis_answers(url: str) -> bool:
    parsed = make_url(url.replace("redis://", "postgresql://", 1))
    try:
        with socket.create_connection((parsed.host or "127.0.0.1", parsed.port or 6379), 1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class Servers:
    database_url: str  # the server's maintenance database; bench databases go beside it
    redis_url: str
    embedded: list[Any] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def stop(self) -> None:
        from app.core.embedded import stop_all

        stop_all(self.embedded)


def resolve_servers() -> Servers:
    """``CHISO_BENCH_DATABASE_URL`` / ``CHISO_BENCH_REDIS_URL``, the local defaults if they
    answer, else the embedded servers in ``.data/bench``."""
    from app.core.embedded import EmbeddedPostgres, EmbeddedRedis

    servers = Servers(database_url="", redis_url="")
    configured_db = os.environ.get("CHISO_BENCH_DATABASE_URL")
    if configured_db:
        if not asyncio.run(_pg_answers(configured_db)):
            raise SystemExit(f"CHISO_BENCH_DATABASE_URL does not answer: {configured_db}")
        servers.database_url = configured_db
    elif asyncio.run(_pg_answers(DEFAULT_DATABASE_URL)):
        servers.database_url = DEFAULT_DATABASE_URL
    else:
        pg = EmbeddedPostgres(EMBEDDED_DIR / "postgres")
        servers.database_url = pg.start()
        servers.embedded.append(pg)
        servers.notes.append("embedded PostgreSQL (.data/bench): figures are not comparable")
    configured_redis = os.environ.get("CHISO_BENCH_REDIS_URL")
    if configured_redis:
        servers.redis_url = configured_redis
    elif _redis_answers(DEFAULT_REDIS_URL):
        servers.redis_url = DEFAULT_REDIS_URL
    else:
        redis = EmbeddedRedis(EMBEDDED_DIR / "redis")
        servers.redis_url = redis.start()
        servers.embedded.append(redis)
    return servers


async def postgres_info(url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(plain_url(url))
    try:
        version = await conn.fetchval("SHOW server_version")
        names = [
            "shared_buffers",
            "work_mem",
            "synchronous_commit",
            "max_connections",
            "effective_io_concurrency",
            "fsync",
            "wal_level",
            "max_wal_size",
            "checkpoint_timeout",
            "wal_compression",
            "full_page_writes",
        ]
        rows = await conn.fetch(
            "SELECT name, current_setting(name) AS value FROM unnest($1::text[]) AS name", names
        )
        return {"version": version, "settings": {r["name"]: r["value"] for r in rows}}
    finally:
        await conn.close()


async def create_database(server_url: str, name: str, template: str | None = None) -> str:
    conn = await asyncpg.connect(plain_url(server_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        clause = f' TEMPLATE "{template}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{clause}')
    finally:
        await conn.close()
    return with_database(server_url, name)


async def drop_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(plain_url(server_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


# --- child processes ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            found.extend(int(c) for c in text)
    return found


def rss_kib(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of a process in KiB, from /proc (0, 0 once it is gone)."""
    rss = hwm = 0
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


class Proc:
    """A child process with its output in a log file; stopped by pid (and its children)."""

    def __init__(
        self, name: str, command: Sequence[str], env: dict[str, str], log_dir: Path
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(  # noqa: S603 - fixed commands built by the bench
            list(command),
            env=env,
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""

    def stop(self, timeout: float = 20) -> None:
        if self.alive():
            kids = children_of(self.pid)
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
            for kid in kids:  # workers a killed supervisor could not stop
                with contextlib.suppress(ProcessLookupError):
                    os.kill(kid, signal.SIGKILL)
        self._log.close()


def wait_http(url: str, timeout: float, proc: Proc | None = None) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}: {response.text[:300]}"
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.25)
    tail = proc.tail() if proc is not None else ""
    raise RuntimeError(f"{url} not ready after {timeout}s ({last})\n{tail}")


def project_python() -> str:
    return sys.executable


# --- tools -------------------------------------------------------------------------------


def ensure_wrk(mode: str) -> tuple[str | None, str]:
    """The wrk binary, installing it with apt-get when root; else (None, why)."""
    if mode == "python":
        return None, "python load generator requested (--loadgen python)"
    found = shutil.which("wrk")
    if found:
        return found, "wrk found"
    apt = shutil.which("apt-get")
    if os.geteuid() == 0 and apt:
        log("wrk missing: installing it with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([apt, "update", "-qq"], check=False, env=env)  # noqa: S603
        subprocess.run([apt, "install", "-y", "-qq", "wrk"], check=False, env=env)  # noqa: S603
        found = shutil.which("wrk")
        if found:
            return found, "wrk installed with apt-get"
    why = "wrk unavailable (not root or no apt-get): using the Python load generator"
    if mode == "wrk":
        raise SystemExit(why)
    return None, why


def wrk_version(path: str) -> str:
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)  # noqa: S603
    text = (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else ""
    return text.split(" Copyright")[0].strip()


def ensure_py_spy() -> str:
    """py-spy in a throwaway venv (``/tmp/bench-venv``), never in the project's."""
    binary = TOOLS_VENV / "bin" / "py-spy"
    if binary.exists():
        return str(binary)
    log(f"installing py-spy into {TOOLS_VENV}")
    subprocess.run([sys.executable, "-m", "venv", str(TOOLS_VENV)], check=True)  # noqa: S603
    subprocess.run(  # noqa: S603
        [str(TOOLS_VENV / "bin" / "pip"), "install", "--quiet", "py-spy"], check=True
    )
    return str(binary)
