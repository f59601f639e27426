"""The application factory: one FastAPI app whose lifespan owns the engine and the queue client."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute

from app.audit.router import router as audit_router
from app.calendar.router import router as calendar_router
from app.core.auth import KeyCache
from app.core.clock import system_clock
from app.core.database import create_engine, create_sessionmaker
from app.core.direct import DirectPool
from app.core.docs import install_docs
from app.core.embedded import service_urls, stop_all
from app.core.errors import PROBLEM_RESPONSES, install_error_handlers
from app.core.gate import GateMiddleware
from app.core.health import router as health_router
from app.core.http_cache import GZipMiddleware
from app.core.migrations import head_revisions
from app.core.observability import ObservabilityMiddleware, configure_logging
from app.core.query_params import KnownQueryMiddleware
from app.core.queue import create_queue
from app.core.ratelimit import RateLimiter
from app.core.response_cache import ResponseCache, ResponseCacheMiddleware
from app.core.settings import Settings, get_settings
from app.dashboard.router import router as dashboard_router
from app.dossiers.router import event_lane
from app.dossiers.router import router as dossiers_router
from app.indicators.router import router as indicators_router
from app.insights.router import router as insights_router
from app.keys.listener import KeyChangeListener
from app.keys.router import router as keys_router
from app.portal.dvcqg import BULK_PATHS as DVCQG_BULK_PATHS
from app.portal.dvcqg import router as dvcqg_router
from app.portal.router import router as portal_router
from app.portal.unmapped_router import router as unmapped_router
from app.procedures.router import router as procedures_router
from app.scores.router import router as scores_router
from app.units.router import router as units_router
from app.webhooks.router import router as webhooks_router
from app.wiring import wire

API_DESCRIPTION = """
chiso follows how public administrations handle citizens' dossiers (hồ sơ) and how they
score on the national service index (Decision 766/QĐ-TTg).

Errors are RFC 9457 `application/problem+json`. Lists share one envelope,
`{"items": [...], "next": cursor-or-null}`. Send keys as `Authorization: Bearer <key>`.
"""

# Routes whose bodies may reach CHISO_MAX_BODY_BYTES; every other body is capped at
# CHISO_MAX_SMALL_BODY_BYTES (a single event, a subscription, a unit: a few hundred bytes).
BULK_ROUTES = (
    "/v1/dossier-events/batch",
    "/v1/indicator-values/batch",
    "/v1/portal/dossiers",
    *DVCQG_BULK_PATHS,
)
SMALL_BODY_TOO_LARGE = {
    **PROBLEM_RESPONSES[413],
    "description": "The body exceeds CHISO_MAX_SMALL_BODY_BYTES (16 KB by default)",
}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    wire()  # keys resolve, portal sessions authenticate, events reach their subscribers

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database_url, redis_url, embedded = service_urls(
            settings.database_url, settings.redis_url, settings.data_dir
        )
        engine = create_engine(settings, database_url)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        # The single-event write's own connections: one statement in autocommit, no ORM.
        app.state.direct = DirectPool(settings, database_url)
        app.state.queue = create_queue(redis_url)
        app.state.migration_heads = head_revisions()
        # Keys resolved once per process, forgotten when PostgreSQL announces a change.
        listener: KeyChangeListener | None = None
        if settings.key_cache_size > 0:
            app.state.key_cache = KeyCache(settings.key_cache_size)
            listener = KeyChangeListener(
                app.state.key_cache, settings.listen_database_url or database_url
            )
            listener.start()
        limiter: RateLimiter = app.state.rate_limiter
        limiter.start(app.state.queue)
        # What start-up built lives as long as the process: kept out of the collector's sight,
        # a full collection walks only what requests left (a 10,000-event batch leaves many).
        gc.freeze()
        thresholds = gc.get_threshold()
        if settings.api_gc_threshold:
            # A portal call of 1,000 records allocates a few hundred thousand objects, alive
            # until it is answered: at Python's 700 the collector walks them again and again.
            gc.set_threshold(settings.api_gc_threshold, *thresholds[1:])
        try:
            yield
        finally:
            gc.set_threshold(*thresholds)
            await limiter.stop()  # the writes let through since the last reconciliation
            if listener is not None:
                await listener.stop()
            await app.state.queue.aclose()
            await app.state.direct.close()
            await engine.dispose()
            stop_all(embedded)

    app = FastAPI(
        title="chiso",
        version="0.4.7",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # chiso reports through its own metrics (/metrics) and logs. FastAPI's OpenTelemetry
        # hooks would ask the global providers whether to trace on every request (~4 % of a
        # single event's Python, profiled) and find none: they are off.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    # Swagger UI (/docs) and ReDoc (/redoc) with the assets fastapi-offline ships: the docs
    # render on a network that reaches nothing but this service.
    install_docs(app)
    app.state.settings = settings
    app.state.clock = system_clock
    install_error_handlers(app)
    # A /v1/ route refuses query parameters it does not take (400 naming them).
    app.add_middleware(KnownQueryMiddleware, routes=app.router.routes)
    # Large lists (rankings, exports) are compressed for clients that accept gzip. Level 6,
    # zlib's default: level 9 took 17 ms for a 10,000-item batch answer, for 7 % fewer bytes.
    app.add_middleware(GZipMiddleware, minimum_size=1000, compresslevel=6)
    # Polled public answers (rankings, scorecards) from memory for a few seconds; see the module.
    app.state.response_cache = ResponseCache(settings.response_cache_seconds)
    if settings.response_cache_seconds > 0:
        app.add_middleware(ResponseCacheMiddleware, cache=app.state.response_cache)
    # Keys, rate limits and body caps are settled from the headers, before any body is read.
    app.state.rate_limiter = RateLimiter(settings)
    # A single event's common case is answered by its lane, from the gate (see the gate).
    app.add_middleware(
        GateMiddleware,
        settings=settings,
        limiter=app.state.rate_limiter,
        bulk_routes=BULK_ROUTES,
        lanes={("POST", "/v1/dossier-events"): event_lane},
    )
    app.add_middleware(ObservabilityMiddleware)
    # Routes are matched in order, one by one: the hot ones (event ingestion, rankings) first.
    # They are added to the app's own router rather than through include_router(), whose
    # nested matching costs about a third of a small request's CPU on this FastAPI version.
    for router in (
        dossiers_router,
        scores_router,
        health_router,
        units_router,
        procedures_router,
        keys_router,
        calendar_router,
        indicators_router,
        portal_router,
        unmapped_router,
        webhooks_router,
        insights_router,
        audit_router,
        dashboard_router,
    ):
        for route in router.routes:
            if isinstance(route, APIRoute):
                route.responses = {**PROBLEM_RESPONSES, **route.responses}
                takes_body = bool((route.methods or set()) & {"POST", "PUT", "PATCH"})
                if takes_body and route.path not in BULK_ROUTES:
                    route.responses[413] = SMALL_BODY_TOO_LARGE
            app.router.routes.append(route)
    # The national portal's protocol answers in its own envelope (never problem+json), so its
    # routes are documented as they are, without the shared problem responses.
    app.router.routes.extend(dvcqg_router.routes)
    return app


def app_from_env() -> FastAPI:
    """Entry point for ``uvicorn --factory app.main:app_from_env``."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    return create_app(settings)
