"""`chiso run` (what `make run` starts) and its ports: the API on PORT, the portal simulator on a
free port unless one is given, and a taken port said in one line with exit status 3."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx

from tests.conftest import Servers, plain_url, with_database

EXIT_PORT_IN_USE = 3


@contextlib.contextmanager
def held_port(port: int = 0) -> Iterator[int]:
    """A port someone else is listening on, for the length of the block."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        yield sock.getsockname()[1]


def free_port() -> int:
    with held_port() as port:
        return port


def run_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without any chiso setting, so nothing leaks in from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHISO_") and k != "PORT"}
    return {**env, "CHISO_DATA_DIR": str(data_dir), "CHISO_LOG_JSON": "false", **extra}


def chiso_run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def assert_one_clear_line(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == EXIT_PORT_IN_USE, result.stderr
    assert result.stderr.splitlines() == [expected], result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "API " not in result.stdout  # no banner: nothing was started


def test_a_taken_api_port_stops_chiso_run_at_once_in_one_line(tmp_path: Path) -> None:
    with held_port() as port:
        started = time.monotonic()
        result = chiso_run(run_env(tmp_path, PORT=str(port)), "run")
    assert_one_clear_line(
        result,
        f"error: the API cannot listen on 127.0.0.1:{port} (PORT={port}): Address already in "
        "use; stop what holds it or choose another port",
    )
    assert time.monotonic() - started < 20  # before any server was started…
    assert not (tmp_path / "postgres").exists()  # …not even the embedded PostgreSQL


def test_a_taken_simulator_port_given_in_the_settings_is_one_line(tmp_path: Path) -> None:
    with held_port() as taken:
        result = chiso_run(
            run_env(tmp_path, PORT=str(free_port()), CHISO_SIMULATOR_PORT=str(taken)), "run"
        )
    assert_one_clear_line(
        result,
        f"error: the portal simulator cannot listen on 127.0.0.1:{taken} "
        "(CHISO_SIMULATOR_PORT): Address already in use; stop what holds it or choose another "
        "port",
    )


def test_a_port_that_is_no_port_is_one_line(tmp_path: Path) -> None:
    result = chiso_run(run_env(tmp_path, PORT="80OO"), "run")
    assert_one_clear_line(
        result,
        "error: the API cannot listen on 127.0.0.1:80OO (PORT=80OO): not a port number; "
        "stop what holds it or choose another port",
    )


def test_the_standalone_simulator_on_a_taken_port_is_one_line(tmp_path: Path) -> None:
    with held_port() as taken:
        result = chiso_run(run_env(tmp_path), "portal-sim", "--port", str(taken))
    assert_one_clear_line(
        result,
        f"error: the portal simulator cannot listen on 127.0.0.1:{taken} (--port): Address "
        "already in use; stop what holds it or choose another port",
    )


async def _fresh_database(server_url: str, name: str, drop_only: bool = False) -> None:
    conn = await asyncpg.connect(plain_url(with_database(server_url, "postgres")))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def _banner(process: subprocess.Popen[str], timeout: float = 240) -> dict[str, str]:
    """The banner's `Name  value` lines, read off the running command's output."""
    assert process.stdout is not None
    lines: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"chiso run ended (status {process.poll()}) before its banner")
        if found := re.match(r"^  (\w+) +(.+)$", line):
            lines[found[1]] = found[2]
        if "Ctrl-C stops everything" in line:
            return lines
    raise AssertionError("no banner from chiso run")


async def _answers(url: str, timeout: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=5) as http:
        while True:
            try:
                return await http.get(url)
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)


async def _synced(api: str, token: str, timeout: float = 180) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=5, headers={"Authorization": f"Bearer {token}"}) as http:
        while time.monotonic() < deadline:
            items = (await http.get(f"{api}/v1/portal/sync-status")).json()["items"]
            if items and items[0]["last_success_at"]:
                return dict(items[0])
            await asyncio.sleep(1)
    raise AssertionError(f"no successful sync from the simulator: {items}")


async def test_chiso_run_moves_the_simulator_off_a_taken_port_and_serves_everything(
    servers: Servers, tmp_path: Path
) -> None:
    # 8100, the simulator's port before it took a free one, held by someone else (when this
    # machine lets us; the point stands with any port held).
    try:
        holder = contextlib.ExitStack()
        taken = holder.enter_context(held_port(8100))
    except OSError:
        holder, taken = contextlib.ExitStack(), 8100
    database = f"chiso_run_{os.getpid()}"
    await _fresh_database(servers.server_url, database)
    port = free_port()
    # PostgreSQL: a fresh database on the suite's server; Redis: the embedded one, in the
    # run's own data folder (a worker of its own must not share the suite's Redis).
    env = run_env(tmp_path, PORT=str(port),
                  CHISO_DATABASE_URL=with_database(servers.server_url, database))  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "run"], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        with holder:
            banner = await asyncio.to_thread(_banner, process)
            assert banner["API"] == f"http://127.0.0.1:{port}"
            assert banner["Docs"] == f"http://127.0.0.1:{port}/docs"
            simulator = re.match(r"http://127\.0\.0\.1:(\d+) ", banner["Portal"])
            assert simulator is not None, banner["Portal"]
            sim_port = int(simulator[1])
            assert sim_port not in (taken, port)
            assert banner["Redis"].startswith("unix://")
            assert f"/{database}" in banner["Database"]

            assert (await _answers(f"http://127.0.0.1:{port}/healthz")).status_code == 200
            ready = await _answers(f"http://127.0.0.1:{port}/readyz")
            assert ready.status_code == 200, ready.text
            # The simulator answers on its port: a login with a wrong password is refused in
            # the portal's envelope.
            async with httpx.AsyncClient(timeout=5) as http:
                wrong = {"username": "chiso", "password": "wrong"}
                login = await http.post(f"http://127.0.0.1:{sim_port}/login", json=wrong)
            assert login.status_code < 500
            # The worker was pointed at that port: its first sync pulls the simulator's dossiers.
            token = banner["Admin"].split()[2]
            status = await _synced(f"http://127.0.0.1:{port}", token)
            assert status["source"] == "default"
            assert status["records_synced"] > 0
            assert process.poll() is None
    finally:
        process.send_signal(signal.SIGINT)
        try:
            output, _ = await asyncio.to_thread(process.communicate, timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
        await _fresh_database(servers.server_url, database, drop_only=True)
    assert process.returncode == 0, output
    assert "stopped." in output
    assert "Traceback" not in output
