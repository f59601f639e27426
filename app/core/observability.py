"""Structured JSON logs, request ids and Prometheus metrics.

One pure-ASGI middleware does all three, so every request pays for a single wrapper. Body
sizes are capped per route by the gate (``app/core/gate.py``), after the key is checked.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import describe_error, redact_record

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)

HTTP_REQUESTS = Counter(
    "chiso_http_requests_total",
    "HTTP requests by method, route template and status",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "chiso_http_request_duration_seconds",
    "HTTP request latency by method and route template",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id_var.get()
        if rid:
            entry["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = describe_error(value) if isinstance(value, BaseException) else value
        if record.exc_info:
            # exc_text is the redacted traceback when the error's message quotes values.
            entry["exc"] = record.exc_text or self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class _RedactingRecordFactory:
    """Wraps the record factory so that every record, whichever library logs it (arq's job
    failures, uvicorn's "Exception in ASGI application", our own ``logger.exception``) and
    whichever handler formats it, carries no database error message: those quote SQL
    parameters and stored values (see :func:`app.core.errors.redact_record`)."""

    def __init__(self, inner: Callable[..., logging.LogRecord]) -> None:
        self.inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.inner(*args, **kwargs)
        redact_record(record)
        return record


def install_log_redaction() -> None:
    """Idempotent: make every log record of this process safe (see the factory above)."""
    current = logging.getLogRecordFactory()
    if not isinstance(current, _RedactingRecordFactory):
        logging.setLogRecordFactory(_RedactingRecordFactory(current))


def configure_logging(
    level: str = "INFO", json_logs: bool = True, stream: TextIO | None = None
) -> None:
    install_log_redaction()
    handler = logging.StreamHandler(stream or sys.stderr)
    if json_logs:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's own access log would duplicate ours.
    logging.getLogger("uvicorn.access").handlers[:] = []
    logging.getLogger("uvicorn.access").propagate = False


def route_template(scope: Scope) -> str:
    """The matched route's template (``/v1/units/{code}``), never the raw path: bounded labels.

    The router records the matched route in the (shared) scope while handling the request.
    """
    route = scope.get("route")
    return str(getattr(route, "path", "unmatched"))


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = logging.getLogger("chiso.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        supplied = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = supplied if _REQUEST_ID_OK.match(supplied) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status_holder = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            method = scope.get("method", "GET")
            HTTP_REQUESTS.labels(method, route, str(status_holder[0])).inc()
            HTTP_LATENCY.labels(method, route).observe(elapsed)
            if route not in ("/metrics", "/healthz"):
                self.log.info(
                    "request",
                    extra={
                        "method": method,
                        "path": scope.get("path"),
                        "route": route,
                        "status": status_holder[0],
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
            request_id_var.reset(token)


def metrics_response() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


# --- worker metrics (served by `chiso worker` on CHISO_WORKER_METRICS_PORT) ---------------

JOB_RUNS = Counter("chiso_job_runs_total", "Worker job runs by job and outcome", ["job", "outcome"])
JOB_SECONDS = Histogram(
    "chiso_job_duration_seconds",
    "Worker job duration by job",
    ["job"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800),
)
SYNC_LAG = Gauge(
    "chiso_portal_sync_lag_seconds", "Seconds since the last successful sync", ["source"]
)
SYNC_RECORDS = Counter(
    "chiso_portal_sync_records_total", "Portal records by source and result", ["source", "result"]
)


def instrumented(job: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Count runs and failures and time a worker job; keeps the name arq registers it under."""
    name = job.__name__

    @functools.wraps(job)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            result = await job(*args, **kwargs)
        except BaseException:
            JOB_RUNS.labels(name, "failed").inc()
            raise
        finally:
            JOB_SECONDS.labels(name).observe(time.perf_counter() - started)
        JOB_RUNS.labels(name, "ok").inc()
        return result

    return wrapper
