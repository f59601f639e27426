"""The state one bench run shares between scenarios: servers, databases, processes, data."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bench import cpu
from bench.config import PROFILES_DIR, Options
from bench.datagen import Procedure, Unit
from bench.infra import (
    EMBEDDED_DIR,
    Proc,
    Servers,
    children_of,
    free_port,
    log,
    project_python,
    wait_http,
)
from bench.loadgen import LoadGenerator
from bench.profiling import Profiler

UNLIMITED = 1_000_000_000  # requests per minute


@dataclass
class Bench:
    options: Options
    servers: Servers
    run_id: str
    work_dir: Path
    loadgen: LoadGenerator
    db_name: str = ""
    db_url: str = ""
    admin_token: str = field(default_factory=lambda: "bench-" + secrets.token_hex(16))
    api_key: str = ""
    units: list[Unit] = field(default_factory=list)
    procedures: list[Procedure] = field(default_factory=list)
    unit_pool: list[str] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)  # created by this run, dropped at the end
    processes: list[Proc] = field(default_factory=list)
    api: Proc | None = None
    api_url: str = ""
    baseline: Proc | None = None
    baseline_url: str = ""
    profiles: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    api_processes: int = 0  # the count the HTTP servers run (or will next run) with
    run_root: str = ""  # the run's id; ``run_id`` carries the pass when there are several

    def __post_init__(self) -> None:
        self.api_processes = self.api_processes or self.options.workers
        self.run_root = self.run_root or self.run_id

    @property
    def last_pass(self) -> bool:
        """True in the last (or only) pass of an HTTP scenario over the API process counts:
        what does not depend on the count (profiles, the worker-scaling round) runs once."""
        return self.api_processes == self.options.api_processes[-1]

    def tag(self, name: str) -> str:
        """A prefix for generated event and dossier ids, unique to this run and this pass over
        the API process counts (a second pass must not re-send the first one's events)."""
        return f"{self.run_id}{name}"

    def use_api_processes(self, count: int) -> None:
        """Run the HTTP servers with ``count`` processes from now on (restarting them if up).
        With several counts, ``run_id`` becomes the pass's (``<run id>p<count>``), so that ids
        a scenario derives from it differ between passes."""
        if count != self.api_processes:
            self.stop_http()
        self.api_processes = count
        several = len(self.options.api_processes) > 1
        self.run_id = f"{self.run_root}p{count}" if several else self.run_root

    @property
    def scale(self) -> Any:
        return self.options.scale

    def chiso_env(self, database_url: str | None = None, **extra: str) -> dict[str, str]:
        """The environment of a production chiso process (API or worker) for this run."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHISO_")}
        env.update(
            CHISO_ENVIRONMENT="production",
            CHISO_DATABASE_URL=database_url or self.db_url,
            CHISO_REDIS_URL=self.servers.redis_url,
            CHISO_ADMIN_TOKEN=self.admin_token,
            CHISO_LOG_LEVEL="WARNING",
            CHISO_DATA_DIR=str(EMBEDDED_DIR),
            # Rate limits stay on (their Redis round trip is part of every request's cost)
            # but are set high enough never to answer 429: the bench measures capacity.
            CHISO_RATE_PUBLIC_PER_MINUTE=str(UNLIMITED),
            CHISO_RATE_WRITE_PER_MINUTE=str(UNLIMITED),
        )
        env.update(self.options.extra)  # --api-env: a configuration under trial
        env.update(extra)
        return env

    def settings(self, database_url: str | None = None) -> Any:
        from app.core.settings import Settings

        return Settings(
            environment="production",
            database_url=database_url or self.db_url,
            redis_url=self.servers.redis_url,
            admin_token=SecretStr(self.admin_token),
            data_dir=EMBEDDED_DIR,
            log_level="WARNING",
        )

    def start(self, name: str, command: list[str], env: dict[str, str]) -> Proc:
        proc = Proc(name, command, env, self.work_dir)
        self.processes.append(proc)
        return proc

    def stop(self, proc: Proc | None) -> None:
        if proc is not None:
            proc.stop()
            if proc in self.processes:
                self.processes.remove(proc)

    # --- the HTTP servers under test -----------------------------------------------------

    def start_http(self) -> None:
        """chiso's API as in production (``chiso api --workers N``) and the bare baseline app
        on the same uvicorn with the same worker count."""
        if self.api is not None:
            return
        workers = str(self.api_processes)
        port = free_port()
        self.api = self.start(
            "api",
            [
                project_python(),
                "-m",
                "app.cli",
                "api",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                workers,
            ],
            self.chiso_env(),
        )
        self.api_url = f"http://127.0.0.1:{port}"
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHISO_")}
        env["BENCH_DATABASE_URL"] = self.db_url
        self.baseline = self.start(
            "baseline",
            [
                project_python(),
                "-m",
                "uvicorn",
                "--factory",
                "bench.baseline:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                workers,
                "--no-server-header",
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env,
        )
        self.baseline_url = f"http://127.0.0.1:{port}"
        wait_http(f"{self.api_url}/readyz", 90, self.api)
        wait_http(f"{self.baseline_url}/healthz", 60, self.baseline)
        plural = "es" if self.api_processes != 1 else ""
        log(
            f"API {self.api_url} and baseline {self.baseline_url} up "
            f"({workers} process{plural} each)"
        )

    def stop_http(self) -> None:
        self.stop(self.api)
        self.stop(self.baseline)
        self.api = self.baseline = None

    def api_worker_pids(self) -> list[int]:
        assert self.api is not None
        return children_of(self.api.pid) or [self.api.pid]

    @cached_property
    def postmaster_pid(self) -> int | None:
        """The database server's postmaster when it runs on this machine (else None)."""
        return cpu.postmaster(self.db_url)

    def cpu_usage(self) -> cpu.Usage:
        """CPU spent so far by the API (if it runs), the database server and this process."""
        return cpu.usage(self.api.pid if self.api is not None else None, self.postmaster_pid)

    def profiler(self, scenario: str, pids: list[int], seconds: int) -> Profiler | None:
        if self.options.profile != scenario or not self.last_pass:
            return None
        return Profiler(f"{self.run_id}-{scenario}", pids, seconds, PROFILES_DIR)
