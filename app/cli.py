"""The ``chiso`` command: run the service, migrate, load reference data, manage keys."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import create_engine, create_sessionmaker
from app.core.embedded import service_urls, stop_all
from app.core.errors import Problem
from app.core.migrations import upgrade
from app.core.settings import Settings, get_settings
from app.core.uow import unit_of_work

T = TypeVar("T")


@contextlib.contextmanager
def _services(settings: Settings) -> Iterator[tuple[str, str]]:
    database_url, redis_url, embedded = service_urls(
        settings.database_url, settings.redis_url, settings.data_dir
    )
    try:
        yield database_url, redis_url
    finally:
        stop_all(embedded)


def _in_session(
    settings: Settings, database_url: str, work: Callable[[AsyncSession], Awaitable[T]]
) -> T:
    async def main() -> T:
        engine = create_engine(settings, database_url)
        try:
            return await unit_of_work(create_sessionmaker(engine), work)
        finally:
            await engine.dispose()

    return asyncio.run(main())


async def load_reference_data(session: AsyncSession, effective: date | None = None) -> str:
    """The 34 provinces, their communes and the sample procedures (see docs/UNITS.md)."""
    from app.procedures.service import SAMPLE_CSV, load_procedures_csv
    from app.units.reference import load_divisions

    provinces, communes = await load_divisions(session, effective=effective)
    procedures = await load_procedures_csv(session, read_csv(SAMPLE_CSV))
    return (
        f"reference data: {provinces} provinces and {len(procedures)} procedures changed; "
        f"{communes.summary()}"
    )


async def load_simulator_units(session: AsyncSession) -> str:
    from app.portal.simulator import SIMULATOR_UNITS_CSV
    from app.units.service import load_units_csv

    units = await load_units_csv(session, read_csv(SIMULATOR_UNITS_CSV))
    return f"simulator units: {len(units)} changed (their identifiers resolve the simulator's)"


def read_csv(path: Path) -> str:
    return path.read_text(encoding="utf-8-sig")


def _print_problem(problem: Problem) -> int:
    print(f"error: {problem.detail or problem.title}", file=sys.stderr)
    for err in problem.errors or []:
        print(f"  {err.get('pointer', '')} {err['detail']}", file=sys.stderr)
    return 2


# --- commands ---------------------------------------------------------------------------


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    with _services(settings) as (database_url, _):
        upgrade(database_url, args.revision)
    print(f"migrated to {args.revision}")
    return 0


def cmd_reference(args: argparse.Namespace, settings: Settings) -> int:
    with _services(settings) as (database_url, _):
        print(
            _in_session(
                settings, database_url, lambda s: load_reference_data(s, effective=args.effective)
            )
        )
    return 0


def cmd_units_load(args: argparse.Namespace, settings: Settings) -> int:
    from app.units.service import load_units

    with _services(settings) as (database_url, _):
        loaded = _in_session(
            settings, database_url, lambda s: load_units(s, read_csv(Path(args.file)))
        )
    changed = loaded.changed
    print(f"{len(changed)} units created or changed ({sum(changed.values())} new)")
    if loaded.released:
        # The worker ingests them (within a minute: the outbox relay runs every minute).
        print(
            f"quarantined portal records wait for {len(loaded.released)} of these identifiers "
            f"or codes: their release is queued ({', '.join(loaded.released[:10])}"
            f"{', ...' if len(loaded.released) > 10 else ''})"
        )
    return 0


def cmd_procedures_load(args: argparse.Namespace, settings: Settings) -> int:
    from app.procedures.service import load_procedures_csv

    with _services(settings) as (database_url, _):
        changed = _in_session(
            settings, database_url, lambda s: load_procedures_csv(s, read_csv(Path(args.file)))
        )
    print(f"{len(changed)} procedures created or changed ({sum(changed.values())} new)")
    return 0


def cmd_keys_create(args: argparse.Namespace, settings: Settings) -> int:
    from app.core.principal import Scope
    from app.keys.schemas import ApiKeyIn
    from app.keys.service import create_key

    data = ApiKeyIn(name=args.name, scopes=[Scope(s) for s in args.scope], unit_code=args.unit)
    with _services(settings) as (database_url, _):
        created = _in_session(settings, database_url, lambda s: create_key(s, data, "cli"))
    print(f"id:     {created.id}\nscopes: {', '.join(created.scopes)}")
    print(f"unit:   {created.unit_code or '(all units)'}")
    print(f"key:    {created.key}\n(shown once: store it now)")
    return 0


def cmd_keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from app.keys.service import revoke_key

    with _services(settings) as (database_url, _):
        revoked = _in_session(settings, database_url, lambda s: revoke_key(s, uuid.UUID(args.id)))
    print(f"revoked {revoked.id} at {revoked.revoked_at}")
    return 0


def proxy_flags(settings: Settings) -> list[str]:
    """uvicorn's handling of X-Forwarded-For/-Proto, exactly as CHISO_RATE_TRUST_FORWARDED_FOR says.

    Left to itself uvicorn rewrites the client address from X-Forwarded-For whenever the peer
    is 127.0.0.1, so anything on the host could pick its own rate-limit bucket. Behind a
    trusted proxy the first address is the client's, the rule the rate limiter follows too.
    """
    if settings.rate_trust_forwarded_for:
        return ["--proxy-headers", "--forwarded-allow-ips", "*"]
    return ["--no-proxy-headers"]


def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    """Production entry point: uvicorn with the app factory."""
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "app.main:app_from_env",
        "--host", args.host, "--port", str(args.port), "--workers", str(args.workers),
        *proxy_flags(settings), "--no-server-header", "--timeout-graceful-shutdown", "20",
    ]  # fmt: skip
    os.execv(sys.executable, command)  # noqa: S606 - replaces this process on purpose


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """The worker: derivation, schedules, and jobs handed over through the outbox."""
    from worker import supervisor
    from worker.heartbeat import check_liveness

    if args.check:
        # Liveness: the worker's heartbeat file is fresh, whatever Redis and PostgreSQL say
        # (a restart would not bring them back); the line says which part is down.
        code, line = check_liveness(settings)
        print(line, file=sys.stdout if code == 0 else sys.stderr)
        return code
    with _services(settings) as (database_url, redis_url):
        return supervisor.run(settings, database_url, redis_url)


def cmd_portal_sim(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the portal simulator (development, demos, tests)."""
    import uvicorn

    from app.portal.client import AdapterProtocol
    from app.portal.simulator import SIMULATOR_UNITS_CSV, Faults, PortalSimulator

    # A socket handed over by `chiso run` (bound there, so its port is known before this
    # starts and no one can take it meanwhile), else the port asked for.
    if args.fd is not None:
        sock = socket.socket(fileno=args.fd)
    else:
        sock = listen(args.host, args.port, "the portal simulator", "--port")
    host, port = sock.getsockname()[:2]
    faults = Faults(
        latency=args.latency, error_rate=args.error_rate, burst_every=args.burst_every,
        session_calls=args.session_calls, malformed_rate=args.malformed_rate,
        unmapped_rate=args.unmapped_rate, repeat_page_at=args.repeat_page_at,
    )  # fmt: skip
    # The same protocol settings as the worker's (CHISO_PORTAL_*), so that `make run` matches.
    protocol = AdapterProtocol(
        auth_path=args.auth_path or settings.portal_auth_path,
        integration_path=args.integration_path or settings.portal_integration_path,
        list_service=args.list_service or settings.portal_list_service,
        cursor_field=settings.portal_cursor_field,
        page_size_field=settings.portal_page_size_field,
        remaining_field=settings.portal_remaining_field,
        records_field=settings.portal_records_field,
    )
    simulator = PortalSimulator(
        dossiers=args.dossiers, seed=args.seed, faults=faults, protocol=protocol,
        units_file=args.units_file or SIMULATOR_UNITS_CSV,
    )  # fmt: skip
    print(
        f"portal simulator: {args.dossiers} dossiers on http://{host}:{port} "
        f"(login {protocol.auth_path}, services {protocol.integration_path}, "
        f"listing {protocol.list_service})",
        flush=True,
    )
    server = uvicorn.Server(uvicorn.Config(simulator.app(), log_level="warning"))
    server.run(sockets=[sock])
    return 0


async def _enqueue(redis_url: str, function: str) -> None:
    from app.core.queue import create_queue

    queue = create_queue(redis_url)
    try:
        await queue.enqueue_job(function)
    finally:
        await queue.aclose()


def dev_admin_token(settings: Settings) -> tuple[str, str]:
    """The admin token of ``chiso run``, and how its banner shows it.

    A token from CHISO_ADMIN_TOKEN is the operator's (perhaps shared with other machines) and
    is never printed; one chiso made for development is, with the file that keeps it.
    """
    if settings.admin_token is not None:
        return settings.admin_token.get_secret_value(), "Bearer <the token from CHISO_ADMIN_TOKEN>"
    path = settings.data_dir / "dev-admin-token"
    if path.exists():
        token = path.read_text().strip()
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        token = "dev-" + secrets.token_urlsafe(24)
        path.write_text(token + "\n")
        path.chmod(0o600)
    return token, f"Bearer {token}  (development token, kept in {path})"


# `chiso run` binds everything it serves to the loopback interface.
RUN_HOST = "127.0.0.1"
# Exit status of a command that could not listen on a port it was told to use.
EXIT_PORT_IN_USE = 3


class PortInUse(Exception):
    """A port someone asked for is taken: said in one line, never as a traceback."""

    def __init__(self, what: str, host: str, port: int | str, source: str, reason: str) -> None:
        super().__init__(
            f"error: {what} cannot listen on {host}:{port} ({source}): {reason}; "
            "stop what holds it or choose another port"
        )


def listen(host: str, port: int, what: str, source: str) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one chosen by the system).

    SO_REUSEADDR as uvicorn sets it: connections of a previous run in TIME_WAIT do not count
    as a conflict, a live listener does.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise PortInUse(what, host, port, source, exc.strerror or str(exc)) from None
        raise
    return sock


def _requested_port(args: argparse.Namespace) -> tuple[int, str]:
    """The API's port for `chiso run` and where it came from: --port, else PORT, else 8000."""
    if args.port is not None:
        text, source = str(args.port), "--port"
    elif "PORT" in os.environ:
        text, source = os.environ["PORT"], "PORT"
    else:
        return 8000, "the default; PORT= chooses another"
    port = int(text) if text.strip().isdigit() else -1
    if not 0 < port < 65536:
        raise PortInUse("the API", RUN_HOST, text, f"{source}={text}", "not a port number")
    return port, f"{source}={port}"


def dev_processes(
    port: int, settings: Settings, simulator_fd: int | None = None
) -> dict[str, list[str]]:
    """What ``chiso run`` starts beside the embedded servers.

    The simulator serves the socket ``chiso run`` bound for it (``simulator_fd``), so it
    never races anyone for its port.
    """
    simulator = ["--fd", str(simulator_fd)] if simulator_fd is not None else ["--port", "0"]
    return {
        "portal-sim": [sys.executable, "-m", "app.cli", "portal-sim", "--host", RUN_HOST,
                       *simulator],
        "api": [
            sys.executable, "-m", "uvicorn", "--factory", "app.main:app_from_env",
            "--host", RUN_HOST, "--port", str(port), *proxy_flags(settings),
        ],
        "worker": [sys.executable, "-m", "app.cli", "worker"],
    }  # fmt: skip


def _masked(url: str) -> str:
    """A URL for the banner: any password replaced."""
    from sqlalchemy.engine import make_url

    if url.startswith("postgres"):
        parsed = make_url(url)
        return parsed.render_as_string(hide_password=bool(parsed.password))
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if at and ":" in credentials:
        return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}"
    return url


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """Development: embedded servers, migrations, reference data, then API (and friends).

    The API listens on PORT (or --port, 8000 by default); the portal simulator on
    CHISO_SIMULATOR_PORT or else a free port; the embedded PostgreSQL and Redis on Unix
    sockets in the checkout's data folder. So two checkouts run side by side with two PORTs,
    and a port that is taken stops the command at once, in one line, with exit status 3.
    """
    port, port_source = _requested_port(args)
    # Every port is settled before anything starts. The API's is only checked here (uvicorn
    # binds it itself); the simulator's socket is kept and handed over.
    listen(RUN_HOST, port, "the API", port_source).close()
    if settings.worker_metrics_port:
        # The worker serves its metrics on every interface (prometheus_client's default).
        listen("0.0.0.0", settings.worker_metrics_port, "the worker's metrics",  # noqa: S104
               "CHISO_WORKER_METRICS_PORT").close()  # fmt: skip
    simulator_socket = listen(
        RUN_HOST,
        settings.simulator_port or 0,
        "the portal simulator",
        "CHISO_SIMULATOR_PORT" if settings.simulator_port else "a free port",
    )
    sim_port: int = simulator_socket.getsockname()[1]
    token, shown_token = dev_admin_token(settings)
    with contextlib.ExitStack() as stack:
        stack.callback(simulator_socket.close)
        database_url, redis_url = stack.enter_context(_services(settings))
        upgrade(database_url)
        print(_in_session(settings, database_url, load_reference_data))
        # Demo data for the simulator only: its units, whose identifiers its dossiers carry.
        print(_in_session(settings, database_url, load_simulator_units))
        portal_url = os.environ.get("CHISO_PORTAL_BASE_URL", f"http://{RUN_HOST}:{sim_port}")
        env = {
            **os.environ,
            "CHISO_DATABASE_URL": database_url,
            "CHISO_REDIS_URL": redis_url,
            "CHISO_ADMIN_TOKEN": token,
            # The worker pulls from the bundled portal simulator unless told otherwise.
            "CHISO_PORTAL_BASE_URL": portal_url,
            "CHISO_PORTAL_USERNAME": os.environ.get("CHISO_PORTAL_USERNAME", "chiso"),
            "CHISO_PORTAL_PASSWORD": os.environ.get("CHISO_PORTAL_PASSWORD", "chiso-sim"),
        }
        children: dict[str, subprocess.Popen[bytes]] = {}
        commands = dev_processes(port, settings, simulator_socket.fileno())
        for name, command in commands.items():
            handed = (simulator_socket.fileno(),) if name == "portal-sim" else ()
            children[name] = subprocess.Popen(command, env=env, pass_fds=handed)  # noqa: S603
        simulator_socket.close()  # the simulator holds it now
        # Don't wait for the schedule: pull the simulator's dossiers as soon as a worker is up.
        asyncio.run(_enqueue(redis_url, "sync_portal"))
        metrics = settings.worker_metrics_port
        print(
            f"\n  API       http://{RUN_HOST}:{port}\n"
            f"  Docs      http://{RUN_HOST}:{port}/docs\n"
            f"  Dashboard http://{RUN_HOST}:{port}/dashboard/rankings\n"
            f"  Ready     http://{RUN_HOST}:{port}/readyz\n"
            f"  Portal    http://{RUN_HOST}:{sim_port} (simulator; the worker syncs from "
            f"{portal_url})\n"
            + (f"  Metrics   http://{RUN_HOST}:{metrics}/metrics (worker)\n" if metrics else "")
            + f"  Database  {_masked(database_url)}\n"
            f"  Redis     {_masked(redis_url)}\n"
            f"  Admin     Authorization: {shown_token}\n"
            f"  Data      {settings.data_dir}\n\n  Ctrl-C stops everything.\n",
            flush=True,
        )
        stopping = False

        def stop(*_: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        exit_code = 0
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    print(f"{name} exited with {child.returncode}; stopping", file=sys.stderr)
                    stopping, exit_code = True, 1
            time.sleep(0.2)
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children.values():
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()
        print("stopped.")
    return exit_code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chiso", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="development: embedded servers + API, Ctrl-C stops all")
    run.add_argument("--port", type=int, default=None, help="API port (default: $PORT or 8000)")
    run.set_defaults(func=cmd_run)

    api = sub.add_parser("api", help="run the API with uvicorn (production)")
    api.add_argument("--host", default="0.0.0.0")  # noqa: S104 - containers listen on all
    # A text default is converted only when `api` runs: a bad PORT is then argparse's one line.
    api.add_argument("--port", type=int, default=os.environ.get("PORT", "8000"))
    api.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "1")))
    api.set_defaults(func=cmd_api)

    worker = sub.add_parser("worker", help="run the worker (derivation, jobs, schedules)")
    worker.add_argument(
        "--check",
        action="store_true",
        help="liveness probe: exit 0 while the worker's heartbeat is fresh (Redis down or not)",
    )
    worker.set_defaults(func=cmd_worker)

    sim = sub.add_parser("portal-sim", help="serve the dichvucong-style portal simulator")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8100, help="0: a free port")
    sim.add_argument("--fd", type=int, default=None, help=argparse.SUPPRESS)
    sim.add_argument("--dossiers", type=int, default=2000)
    sim.add_argument("--seed", type=int, default=2026)
    sim.add_argument("--latency", type=float, default=0.0, help="seconds added per request")
    sim.add_argument("--error-rate", type=float, default=0.0, help="share of 5xx answers")
    sim.add_argument("--burst-every", type=int, default=0, help="a 429 burst every N requests")
    sim.add_argument("--session-calls", type=int, default=0, help="session expires after N")
    sim.add_argument("--malformed-rate", type=float, default=0.0, help="share of bad records")
    sim.add_argument(
        "--unmapped-rate", type=float, default=0.0,
        help="share of records from a unit identifier the units file does not list",
    )  # fmt: skip
    sim.add_argument("--repeat-page-at", type=int, default=0, help="repeat the N-th page")
    sim.add_argument(
        "--units-file", type=Path, default=None,
        help="units CSV (code,name,level,parent_code,identifier; default: the bundled one)",
    )  # fmt: skip
    sim.add_argument("--auth-path", help="login path (default: CHISO_PORTAL_AUTH_PATH)")
    sim.add_argument("--integration-path", help="services path (CHISO_PORTAL_INTEGRATION_PATH)")
    sim.add_argument("--list-service", help="listing service (CHISO_PORTAL_LIST_SERVICE)")
    sim.set_defaults(func=cmd_portal_sim)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("--revision", default="head")
    migrate.set_defaults(func=cmd_migrate)

    reference = sub.add_parser(
        "reference",
        help="load the shipped reference data: the 34 provinces, their communes, sample "
        "procedures (idempotent; `run` does it on every start)",
    )
    reference.add_argument(
        "--effective", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD",
        help="the day the changes a newer list brings took effect (default: the list's date)",
    )  # fmt: skip
    reference.set_defaults(func=cmd_reference)

    units = sub.add_parser("units", help="administrative units").add_subparsers(
        dest="units_command", required=True
    )
    units_load = units.add_parser(
        "load",
        help="upsert units from a CSV file (code,name,level,parent_code,valid_from,valid_to,"
        "successor_code[,identifier])",
    )
    units_load.add_argument("file")
    units_load.set_defaults(func=cmd_units_load)

    procedures = sub.add_parser("procedures", help="procedures").add_subparsers(
        dest="procedures_command", required=True
    )
    procedures_load = procedures.add_parser("load", help="upsert procedures from a CSV file")
    procedures_load.add_argument("file")
    procedures_load.set_defaults(func=cmd_procedures_load)

    keys = sub.add_parser("keys", help="API keys").add_subparsers(
        dest="keys_command", required=True
    )
    create = keys.add_parser("create", help="create a key and print its secret once")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--scope", action="append", required=True,
        choices=["dossiers:write", "dossiers:read", "indicators:write", "admin"],
    )  # fmt: skip
    create.add_argument("--unit", default=None, help="limit the key to this unit's subtree")
    create.set_defaults(func=cmd_keys_create)
    revoke = keys.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id")
    revoke.set_defaults(func=cmd_keys_revoke)
    return parser


def main(argv: list[str] | None = None) -> int:
    from app.wiring import wire

    args = build_parser().parse_args(argv)
    wire()  # the command line is a composition root: keys resolve, events reach subscribers
    settings = get_settings()
    try:
        result: int = args.func(args, settings)
        return result
    except Problem as problem:
        return _print_problem(problem)
    except PortInUse as taken:
        print(taken, file=sys.stderr)
        return EXIT_PORT_IN_USE


if __name__ == "__main__":
    sys.exit(main())
