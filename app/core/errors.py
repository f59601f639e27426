"""One error hierarchy, rendered as RFC 9457 ``application/problem+json`` for every failure.

Domain code raises a :class:`Problem` subclass; framework errors (404/405/422 from routing and
validation) and infrastructure outages (database unreachable → 503) are translated here, so a
client never sees an HTML page or a bare 500 for something it can act on.
"""

from __future__ import annotations

import errno
import logging
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

logger = logging.getLogger("chiso.errors")

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """Base of every error a client can see. Subclasses set status, a type slug and a title."""

    status: int = 500
    slug: str = "internal"
    title: str = "Internal server error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Sequence[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = list(errors) if errors else None
        self.headers = headers or {}
        self.extensions = extensions

    @property
    def type(self) -> str:
        return f"/problems/{self.slug}"

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extensions)
        return body


class BadRequest(Problem):
    status, slug, title = 400, "bad-request", "Bad request"


class InvalidCursor(BadRequest):
    slug, title = "invalid-cursor", "The pagination cursor is not valid"


class Unauthenticated(Problem):
    status, slug, title = 401, "unauthenticated", "Authentication required"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="chiso"'})


class Forbidden(Problem):
    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(Problem):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(Problem):
    status, slug, title = 409, "conflict", "Conflict"


class PayloadTooLarge(Problem):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class Unprocessable(Problem):
    status, slug, title = 422, "validation", "The request is not valid"


class ServiceUnavailable(Problem):
    status, slug, title = 503, "unavailable", "Service temporarily unavailable"

    def __init__(self, detail: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}
_PROBLEM_STATUSES = {
    400: "Malformed request (e.g. a cursor that was not a `next` value)",
    401: "No key, or an unknown or revoked key",
    403: "The key lacks the scope, or the unit is outside the key's unit",
    404: "Not found",
    409: "Conflict",
    413: "Request body or batch too large",
    422: "Invalid input; `errors` point at each problem",
    429: "Rate limited; retry after `Retry-After` seconds",
    503: "A dependency is down; retry after `Retry-After` seconds",
}
# Documented on every operation, so clients (and schema-driven tests) know every answer.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}}}
    for status, text in _PROBLEM_STATUSES.items()
}


def json_pointer(loc: Iterable[str | int]) -> str:
    """``("body", "items", 3, "status")`` → ``"#/items/3/status"`` (RFC 6901 escaping)."""
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[1:]
    escaped = [str(p).replace("~", "~0").replace("/", "~1") for p in parts]
    return "#/" + "/".join(escaped) if escaped else "#"


def validation_errors(raw: Sequence[Any]) -> list[dict[str, Any]]:
    """Translate pydantic/FastAPI error dicts into RFC 9457 ``errors`` members."""
    out: list[dict[str, Any]] = []
    for err in raw:
        loc = tuple(err.get("loc", ()))
        item: dict[str, Any] = {"detail": str(err.get("msg", "invalid"))}
        where = loc[0] if loc else "body"
        if where in ("query", "path", "header", "cookie"):
            item[{"query": "parameter", "path": "parameter"}.get(str(where), str(where))] = (
                str(loc[-1]) if len(loc) > 1 else ""
            )
        else:
            item["pointer"] = json_pointer(loc)
        out.append(item)
    return out


def item_errors(raw_errors: Sequence[Any], prefix: str, index: int) -> list[dict[str, Any]]:
    """Errors of one item of a batch, with pointers rooted at it (``#/events/3/status``)."""
    return [
        {**e, "pointer": e["pointer"].replace("#", f"#{prefix}/{index}", 1)}
        for e in validation_errors(raw_errors)
    ]


# Routes that speak another protocol's error envelope render a problem their way, by path
# prefix: the national portal's `{error_code, message}` under /dvcqg/ (app/portal/envelope.py
# registers it), so even the gate's 413 or 429 there is an answer its clients can read.
PROBLEM_RENDERERS: dict[str, Callable[[Problem, Request], Response]] = {}


def problem_response(problem: Problem, request: Request | None = None) -> Response:
    if request is not None and PROBLEM_RENDERERS:
        path: str = request.scope["path"]
        for prefix, render in PROBLEM_RENDERERS.items():
            if path.startswith(prefix):
                return render(problem, request)
    instance = request.url.path if request is not None else None
    return Response(
        orjson.dumps(problem.body(instance)),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


_HTTP_PROBLEMS: dict[int, type[Problem]] = {
    400: BadRequest,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: Unprocessable,
}


class _HttpStatus(Problem):
    """A plain HTTP status raised by the framework (405, 406, ...)."""

    slug = "http"

    def __init__(self, status: int, title: str, detail: str | None) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title

    @property
    def type(self) -> str:
        return "about:blank"


_METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path, in a conventional order.

    Starlette answers 405 from the first route whose path matches and names only that route's
    methods, so a path served by separately registered routes (GET and PUT of a unit) would
    advertise just one of them.
    """
    probe = {
        "type": "http",
        "path": request.scope["path"],
        "root_path": request.scope.get("root_path", ""),
        "method": request.method,
    }
    methods: set[str] = set()
    for route in request.app.router.routes:
        served = getattr(route, "methods", None)
        if served and route.matches(probe)[0] is not Match.NONE:
            methods.update(served)
    order = {method: i for i, method in enumerate(_METHOD_ORDER)}
    return sorted(methods, key=lambda m: (order.get(m, len(order)), m))


def _method_not_allowed(request: Request, exc: StarletteHTTPException) -> Problem:
    methods = allowed_methods(request)
    if not methods and exc.headers and exc.headers.get("Allow"):
        methods = [m.strip() for m in exc.headers["Allow"].split(",") if m.strip()]
    detail = (
        f"{request.method} is not allowed on {request.url.path}; it allows {', '.join(methods)}."
        if methods
        else f"{request.method} is not allowed on {request.url.path}."
    )
    problem = _HttpStatus(405, "Method Not Allowed", detail)
    problem.headers["Allow"] = ", ".join(methods)
    return problem


_OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.QueryCanceledError,
    # The driver found its connection in a state no statement can start from: the server
    # ended the session between two statements (its FATAL read, the close not yet), e.g. a
    # COPY on a raw connection the instant the server shuts down. Only a retry helps.
    asyncpg.exceptions.InternalClientError,
    # 53300: no connection slot left (the server's or the role's); come back, as for an outage.
    asyncpg.exceptions.TooManyConnectionsError,
)


_SOCKET_ERRNOS = frozenset(
    {errno.ENOENT, errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH,
     errno.ENETUNREACH, errno.ETIMEDOUT, errno.EPIPE}
)  # fmt: skip


def is_outage(exc: BaseException) -> bool:
    """True when the error means "the database is unreachable or overloaded right now"."""
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        return is_outage(exc.orig) if exc.orig is not None else False
    if isinstance(exc, sa_exc.TimeoutError | sa_exc.InterfaceError):
        return True
    if isinstance(exc, _OUTAGE_ERRORS):
        return True
    if isinstance(exc, OSError) and exc.filename is None and exc.errno in _SOCKET_ERRNOS:
        return True  # e.g. the server's Unix socket is gone while it restarts (ENOENT)
    cause = exc.__cause__
    return cause is not None and cause is not exc and is_outage(cause)


# PostgreSQL data exceptions that only a request's own values cause: a NUL character in text
# or JSON, an untranslatable character, a number or date beyond the column's range, text
# longer than its column. They are the client's to fix (422), not a server fault.
_INPUT_SQLSTATES = frozenset({"22021", "22P05", "22003", "22008", "22007", "22P02", "22001"})


# deadlock_detected, serialization_failure: the transaction was chosen to give way.
CONTENTION_SQLSTATES = frozenset({"40P01", "40001"})


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE behind a (wrapped) database error, if any."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return None
        code = getattr(seen, "sqlstate", None)
        if isinstance(code, str):
            return code
        seen = getattr(seen, "orig", None) or seen.__cause__
    return None


# --- error text that is safe to log --------------------------------------------------------
# A database error quotes the values of the statement that failed: PostgreSQL's DETAIL line
# ("Key (event_id)=(...)", "Failing row contains (...)"), messages such as "invalid input
# syntax for type integer: ...", and SQLAlchemy's "[parameters: ...]". A validation error
# quotes the input. Logs keep their type, SQLSTATE, constraint and the statement's text (bound
# parameters only, never values), and never the message.

_DATABASE_MODULES = ("asyncpg", "sqlalchemy.dialects.", "sqlalchemy.connectors.")
_MAX_STATEMENT = 600
_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def quotes_values(exc: BaseException) -> bool:
    """True for errors whose message may quote stored or submitted values."""
    if isinstance(exc, sa_exc.StatementError | asyncpg.PostgresError | asyncpg.InterfaceError):
        return True
    if isinstance(exc, ValidationError):
        return True
    return type(exc).__module__.startswith(_DATABASE_MODULES)


def _chain(exc: BaseException) -> list[tuple[BaseException, str]]:
    """``exc`` and the exceptions behind it, innermost first, each with the line that
    introduces the next one (as Python prints them)."""
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    link = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, _CONTEXT
        else:
            current = None
    return chain[::-1]


def any_quotes_values(exc: BaseException) -> bool:
    return any(quotes_values(e) for e, _ in _chain(exc)) or (
        isinstance(exc, BaseExceptionGroup) and any(any_quotes_values(e) for e in exc.exceptions)
    )


def describe_error(exc: BaseException) -> str:
    """One line naming ``exc``: its message, unless the message may quote values."""
    name = type(exc).__qualname__
    module = type(exc).__module__
    if module not in ("builtins", "__main__"):
        name = f"{module}.{name}"
    if isinstance(exc, ValidationError):
        where = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False, include_context=False)
        )
        return f"{name}: {exc.title}: {where}"
    if not quotes_values(exc):
        return traceback.format_exception_only(type(exc), exc)[-1].rstrip("\n")
    facts = []
    if code := sqlstate(exc):
        facts.append(f"SQLSTATE {code}")
    origin = _postgres_error(exc)
    for attribute in ("table_name", "column_name", "constraint_name"):
        if value := getattr(origin, attribute, None):
            facts.append(f"{attribute.removesuffix('_name')} {value}")
    text = f"{name}: {', '.join(facts) or 'database error'} (message withheld: it quotes values)"
    statement = getattr(exc, "statement", None)
    if isinstance(statement, str):
        statement = " ".join(statement.split())
        if len(statement) > _MAX_STATEMENT:
            statement = statement[:_MAX_STATEMENT] + " ..."
        text += f" [SQL: {statement}]"
    return text


def _postgres_error(exc: BaseException) -> BaseException | None:
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None or isinstance(seen, asyncpg.PostgresError):
            return seen
        seen = getattr(seen, "orig", None) or seen.__cause__
    return None


def format_exception_safely(exc: BaseException) -> str:
    """The traceback Python would print for ``exc`` (chained causes included), with the
    message of every error that may quote values replaced by :func:`describe_error`."""
    parts: list[str] = []
    for current, link in _chain(exc):
        if current.__traceback__ is not None:
            parts.append("Traceback (most recent call last):\n")
            parts.extend(traceback.format_tb(current.__traceback__))
        parts.append(describe_error(current) + "\n")
        if isinstance(current, BaseExceptionGroup):
            for number, member in enumerate(current.exceptions, 1):
                nested = format_exception_safely(member).replace("\n", "\n  | ")
                parts.append(f"  +---------------- {number} ----------------\n  | {nested}\n")
        parts.append(link)
    return "".join(parts).rstrip("\n")


def redact_record(record: logging.LogRecord) -> None:
    """Make a log record safe for any formatter: a safe traceback pre-rendered (formatters use
    ``exc_text`` when it is set) and errors among the message's arguments (``"%s failed: %s",
    exc``, as arq logs job failures) reduced to :func:`describe_error`."""
    error = record.exc_info[1] if record.exc_info else None
    if error is not None and not record.exc_text and any_quotes_values(error):
        record.exc_text = format_exception_safely(error)
    if isinstance(record.args, tuple):
        record.args = tuple(_loggable(arg) for arg in record.args)
    elif isinstance(record.args, dict):
        record.args = {key: _loggable(arg) for key, arg in record.args.items()}


def _loggable(value: object) -> object:
    if isinstance(value, BaseException) and quotes_values(value):
        return describe_error(value)
    return value


class RedactValues(logging.Filter):
    """:func:`redact_record` as a filter, for loggers whose records must be safe even where
    :func:`app.core.observability.configure_logging` did not run (an embedded app, tests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


logger.addFilter(RedactValues())


def install_error_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        if exc.status >= 500:
            logger.error("problem", extra={"problem": exc.slug, "detail": exc.detail})
        return problem_response(exc, request)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else None
        cls = _HTTP_PROBLEMS.get(exc.status_code)
        problem: Problem
        if exc.status_code == 405:
            # RFC 9110: a 405 lists every method the target supports, in `Allow`.
            return problem_response(_method_not_allowed(request, exc), request)
        if cls is not None:
            problem = cls(detail)
        else:
            from http import HTTPStatus

            try:
                title = HTTPStatus(exc.status_code).phrase
            except ValueError:
                title = "Error"
            problem = _HttpStatus(exc.status_code, title, detail)
        if exc.headers:
            problem.headers.update(exc.headers)
        return problem_response(problem, request)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = validation_errors(exc.errors())
        first = errors[0] if errors else {}
        where = first.get("pointer") or first.get("parameter") or first.get("header") or ""
        detail = f"{where}: {first.get('detail')}" if errors else "invalid request"
        return problem_response(Unprocessable(detail, errors=errors), request)

    async def on_infrastructure(request: Request, exc: Exception) -> Response:
        if sqlstate(exc) in _INPUT_SQLSTATES:
            logger.info("value refused by the database", extra={"sqlstate": sqlstate(exc)})
            detail = (
                "A value in the request cannot be stored: a NUL character, or a number, "
                "date or text beyond what the field holds."
            )
            return problem_response(Unprocessable(detail), request)
        if sqlstate(exc) in CONTENTION_SQLSTATES:
            # A deadlock or serialization failure outside a retried unit of work: the
            # client's retry succeeds, so it is told to retry (never a 500).
            logger.warning("transaction gave way", extra={"sqlstate": sqlstate(exc)})
            return problem_response(
                ServiceUnavailable("Concurrent writes got in the way; retry shortly."), request
            )
        if not is_outage(exc):
            raise exc  # a genuine bug: let the server-error layer log it and answer 500
        logger.warning("database unavailable", extra={"error": describe_error(exc)})
        return problem_response(
            ServiceUnavailable("The database is unreachable; retry shortly."), request
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # Type and traceback; a database error's message (it quotes the statement's values)
        # is withheld by redact_record.
        logger.exception("unhandled error", exc_info=exc, extra={"error": describe_error(exc)})
        return problem_response(Problem(), request)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    # Outages are handled inside the app (a 503 the client retries), not as server errors.
    for exc_type in (sa_exc.DBAPIError, sa_exc.TimeoutError, *_OUTAGE_ERRORS, OSError):
        app.add_exception_handler(exc_type, on_infrastructure)
    app.add_exception_handler(Exception, on_unexpected)
