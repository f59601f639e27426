"""HTTP endpoints for rankings, scorecards, history, refreshes on request and period closing.

Rankings are served straight from snapshots: a request costs one round trip (the ranking's
ETag and whether inputs of its period are pending, two primary-key lookups), and a client that
already holds that ETag gets ``304`` with no body.
"""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from app.core import clock
from app.core.auth import Principal, Scope, require
from app.core.database import DbSession
from app.core.exports import EXPORT_CONTENT, ExportQuery
from app.core.http_cache import cache_headers, matches, not_modified
from app.core.ratelimit import RATE_LIMITED
from app.core.uow import unit_of_work
from app.indicators.periods import (
    MAX_PERIODS,
    Period,
    PeriodText,
    parse_period,
    periods_between,
)
from app.indicators.router import CurrentCatalog
from app.keys.access import national_admin
from app.scores import exports, rankings, refresh, scorecard
from app.scores.schemas import (
    History,
    PeriodStateOut,
    Ranking,
    RefreshIn,
    RefreshOut,
    Scorecard,
)
from app.units.models import UnitLevel
from app.units.schemas import UNIT_CODE_PATTERN

router = APIRouter(tags=["scores"])

PeriodPath = Annotated[PeriodText, Path()]
CodePath = Annotated[str, Path(pattern=UNIT_CODE_PATTERN)]
# Admins, and keys that submit indicator values (for their own unit's subtree).
Refresher = Annotated[Principal, Depends(require(Scope.indicators_write))]
PeriodAdmin = Annotated[
    Principal, Depends(national_admin("a period's scores and rankings cover every unit"))
]


LATEST = (
    "Default: the latest month with scores (the latest month, up to the running one on the "
    "local calendar, whose scores are stored; else the month before the running one)"
)


async def _period_or_latest(request: Request, session: DbSession, text: str | None) -> Period:
    if text is not None:
        return parse_period(text)
    settings = request.app.state.settings
    return await refresh.latest_scored_month(session, settings, clock.now(request))


@router.get(
    "/v1/rankings",
    response_model=Ranking,
    summary="Units of a level ranked for a period (public; ETag / 304; CSV and XLSX exports)",
    responses={
        200: {"content": EXPORT_CONTENT},
        304: {"description": "Not modified: the ETag sent in If-None-Match is current"},
    },
)
async def get_rankings(
    request: Request,
    session: DbSession,
    catalog: CurrentCatalog,
    export: ExportQuery,
    level: Annotated[UnitLevel, Query(description="Default: province")] = UnitLevel.province,
    period: Annotated[PeriodText | None, Query(description=LATEST)] = None,
    parent: Annotated[str | None, Query(pattern=UNIT_CODE_PATTERN)] = None,
    source: Literal["computed", "official"] = "computed",
) -> Response:
    wanted = await _period_or_latest(request, session, period)
    settings, at = request.app.state.settings, clock.now(request)
    key = rankings.ranking_key(source, level.value, parent, str(wanted))
    body: bytes | None = None
    etag, pending = await rankings.head(session, key, str(wanted))
    if etag is None and await refresh.ensure_refreshed(session, settings, catalog, wanted, at):
        await session.commit()  # the first read of a period computes and stores it
        etag, pending = await rankings.head(session, key, str(wanted))
    elif etag is not None and not rankings.current_format(etag):
        await rankings.upgrade_period(session, str(wanted))  # stored before this format
        await session.commit()
        etag, pending = await rankings.head(session, key, str(wanted))
    if etag is None:
        etag, body = await rankings.empty_ranking(
            session, settings, source=source, level=level.value, parent=parent, period=wanted,
            at=at,
        )  # fmt: skip
    etag = rankings.served_etag(etag, pending)
    kind = export.format
    if kind == "json" and matches(request, etag):
        return not_modified(etag)
    if body is None:
        body = await rankings.ranking_body(session, key)
    body = rankings.served_body(body, pending)
    if kind == "json":
        return Response(body, media_type="application/json", headers=cache_headers(etag))
    return await exports.ranking_file(
        orjson.loads(body), export, settings.timezone, level=level.value, parent=parent
    )


def _months_before(period: Period, months: int) -> Period:
    """The month ``months`` before the first month of ``period``."""
    month = period.months()[0]
    for _ in range(months):
        month = month.previous()
    return month


@router.get(
    "/v1/units/{code}/scorecard",
    response_model=Scorecard,
    summary="A unit's score for a period: groups, metrics, shortfalls, official beside computed",
    responses={304: {"description": "Not modified"}},
)
async def get_scorecard(
    request: Request,
    session: DbSession,
    catalog: CurrentCatalog,
    code: CodePath,
    period: Annotated[PeriodText | None, Query(description=LATEST)] = None,
) -> Response:
    wanted = await _period_or_latest(request, session, period)
    settings = request.app.state.settings
    if await refresh.ensure_refreshed(session, settings, catalog, wanted, clock.now(request)):
        await session.commit()  # the first read of a period computes and stores it
    etag = await scorecard.scorecard_etag(session, code, wanted)
    if matches(request, etag):
        return not_modified(etag)
    card = await scorecard.scorecard(session, catalog, code, wanted)
    return Response(
        card.model_dump_json(), media_type="application/json", headers=cache_headers(etag)
    )


@router.get(
    "/v1/units/{code}/history",
    response_model=History,
    summary="A unit's total, grade, rank and group scores per period, for charts",
    responses={304: {"description": "Not modified"}},
    openapi_extra={
        "x-rules": [
            "`to` is not before `from` (422)",
            f"at most {MAX_PERIODS} periods of the granularity between them (422)",
        ]
    },
)
async def get_history(
    request: Request,
    session: DbSession,
    code: CodePath,
    start: Annotated[
        PeriodText | None,
        Query(
            alias="from",
            description="Default: 11 months before the first month of `to` (12 months in all)",
        ),
    ] = None,
    end: Annotated[PeriodText | None, Query(alias="to", description=LATEST)] = None,
    granularity: Literal["month", "quarter", "year"] = "month",
) -> Response:
    if end is not None:
        until = parse_period(end, "to")
    else:
        until = await _period_or_latest(request, session, None)
    since = parse_period(start, "from") if start is not None else _months_before(until, 11)
    periods = periods_between(since, until, granularity)
    etag = await scorecard.history_etag(session, code, periods)
    if matches(request, etag):
        return not_modified(etag)
    history = await scorecard.history(session, code, periods, granularity)
    return Response(
        history.model_dump_json(), media_type="application/json", headers=cache_headers(etag)
    )


@router.post(
    "/v1/scores/refresh",
    response_model=RefreshOut,
    summary="Recompute a period's scores and rankings now (admin, or `indicators:write` for "
    "the key's unit)",
    responses={429: {"description": "More refreshes than CHISO_RATE_REFRESH_PER_MINUTE"}},
    openapi_extra={
        "x-rules": [
            "a key bound to a unit names `unit`, that unit or one below it (422 without it, "
            "403 outside its subtree)",
            "`unit` is a known unit (422)",
            "the period has started on the local calendar and a catalog version scores it (422)",
            "at most CHISO_RATE_REFRESH_PER_MINUTE refreshes per key and minute (429)",
            "requests for a period that arrive while it is being refreshed wait for that "
            "refresh and answer with its result (`recomputed: false`)",
        ]
    },
)
async def refresh_scores(
    request: Request,
    session: DbSession,
    catalog: CurrentCatalog,
    caller: Refresher,
    body: RefreshIn,
) -> RefreshOut:
    period = Period.parse(body.period)
    await refresh.may_refresh(session, caller, body.unit)
    limiter, settings = request.app.state.rate_limiter, request.app.state.settings
    refusal = await limiter.refresh(request.scope, caller.key_id or caller.name, settings)
    if refusal is not None:
        RATE_LIMITED.labels(refusal.draw.kind).inc()
        raise refusal.problem()
    at = clock.now(request)
    refresh.ensure_refreshable(settings, catalog, period, at)
    seen = await refresh.seen_version(session, period)
    maker = request.app.state.sessionmaker
    taken = False

    async def take_mark() -> None:
        nonlocal taken
        taken = await unit_of_work(maker, lambda s: refresh.take_mark(s, period))

    try:
        recomputed = await refresh.refresh_on_request(
            session, settings, catalog, period, at, seen=seen, take_mark=take_mark
        )
        await session.commit()
    except Exception:
        await session.rollback()
        if taken:  # the worker's next run refreshes it instead
            await unit_of_work(maker, lambda s: refresh.put_back_mark(s, period))
        raise
    return await refresh.refreshed(session, period, recomputed)


@router.get("/v1/periods/{period}", response_model=PeriodStateOut, summary="A period's state")
async def get_period(session: DbSession, period: PeriodPath) -> PeriodStateOut:
    return await refresh.period_state(session, parse_period(period))


@router.post(
    "/v1/periods/{period}/close",
    response_model=PeriodStateOut,
    summary="Publish a period: its scores and rankings become an immutable snapshot (admin "
    "bound to no unit)",
    openapi_extra={"x-rules": ["the period has ended (422 before its last day is over)"]},
)
async def close_period(
    request: Request,
    session: DbSession,
    catalog: CurrentCatalog,
    admin: PeriodAdmin,
    period: PeriodPath,
) -> PeriodStateOut:
    wanted = parse_period(period)
    await refresh.close(
        session, request.app.state.settings, catalog, wanted, admin.name, clock.now(request)
    )
    await session.commit()
    return await refresh.period_state(session, wanted)


@router.post(
    "/v1/periods/{period}/reopen",
    response_model=PeriodStateOut,
    summary="Re-open a closed period as a new revision and apply pending amendments (admin "
    "bound to no unit)",
    openapi_extra={"x-rules": ["the period is closed (422 otherwise)"]},
)
async def reopen_period(
    request: Request,
    session: DbSession,
    catalog: CurrentCatalog,
    admin: PeriodAdmin,
    period: PeriodPath,
) -> PeriodStateOut:
    wanted = parse_period(period)
    await refresh.reopen(
        session, request.app.state.settings, catalog, wanted, clock.now(request), by=admin.name
    )
    await session.commit()
    return await refresh.period_state(session, wanted)
