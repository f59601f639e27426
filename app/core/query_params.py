"""Query parameters a route does not take are refused (400, naming them), not ignored.

A misspelt filter (``?recieved_from=``) silently ignored answers the unfiltered list, which a
client takes for the filtered one. Every JSON API route (under ``/v1/``) therefore answers
400 problem+json naming each parameter it does not take, and the ones it does. The national
portal's protocol (``/dvcqg/``) and the dashboard's pages stay lenient: producers of the
portal's shapes add parameters of their own.

The names a route takes come from its declared parameters, its dependencies' included, read
once, at the first request. Routes without path
parameters are found by a dictionary lookup; the others by their path pattern, in route order
(the way the router matches). A request without a query string costs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.errors import BadRequest, problem_response

STRICT_PREFIX = "/v1/"


class UnknownQueryParameter(BadRequest):
    slug, title = "unknown-query-parameter", "Unknown query parameter"


def _query_names(dependant: Dependant) -> set[str]:
    names: set[str] = set()
    for field in dependant.query_params:
        model = field.field_info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):  # a query parameter model
            names.update(info.alias or name for name, info in model.model_fields.items())
        else:
            names.add(field.alias)
    for dependency in dependant.dependencies:
        names |= _query_names(dependency)
    return names


class KnownQueryParameters:
    """The query parameters each ``/v1/`` route takes, by method and path."""

    def __init__(self, routes: Iterable[Any]) -> None:
        self.static: dict[tuple[str, str], frozenset[str]] = {}
        self.patterned: list[tuple[re.Pattern[str], frozenset[str], frozenset[str]]] = []
        for route in routes:
            if not isinstance(route, APIRoute) or not route.path.startswith(STRICT_PREFIX):
                continue
            names = frozenset(_query_names(route.dependant))
            methods = frozenset(route.methods or ())
            if "{" in route.path:
                self.patterned.append((route.path_regex, methods, names))
            else:
                for method in methods:
                    self.static.setdefault((method, route.path), names)

    def taken(self, method: str, path: str) -> frozenset[str] | None:
        """The names the matching route takes; None when no route matches (the router then
        answers 404 or 405 itself)."""
        names = self.static.get((method, path))
        if names is not None:
            return names
        for pattern, methods, names in self.patterned:
            if method in methods and pattern.match(path):
                return names
        return None


def unknown_names(query_string: bytes, taken: frozenset[str]) -> list[str]:
    seen: dict[str, None] = {}
    for name, _ in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name not in taken:
            seen.setdefault(name, None)
    return list(seen)


def unknown_problem(unknown: list[str], taken: frozenset[str]) -> UnknownQueryParameter:
    named = ", ".join(repr(name) for name in unknown)
    takes = ", ".join(sorted(taken)) if taken else "no query parameters"
    noun = "parameter" if len(unknown) == 1 else "parameters"
    return UnknownQueryParameter(
        f"Unknown query {noun} {named}; this route takes: {takes}.",
        errors=[
            {"in": "query", "name": name, "detail": "This route does not take this parameter."}
            for name in unknown
        ],
    )


class KnownQueryMiddleware:
    """Answers 400 to a ``/v1/`` request naming a query parameter its route does not take."""

    def __init__(self, app: ASGIApp, *, routes: Iterable[Any]) -> None:
        self.app = app
        self._routes = routes
        self._known: KnownQueryParameters | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not scope.get("query_string")
            or not scope["path"].startswith(STRICT_PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        if self._known is None:  # routes are complete once the first request arrives
            self._known = KnownQueryParameters(self._routes)
        method = "GET" if scope["method"] == "HEAD" else scope["method"]
        taken = self._known.taken(method, scope["path"])
        if taken is not None and (unknown := unknown_names(scope["query_string"], taken)):
            request = Request(scope, receive)
            response = problem_response(unknown_problem(unknown, taken), request)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
