"""HTTP endpoints for rankings, scorecards, history and period closing.

Rankings are served straight from snapshots: a request costs one primary-key lookup of the
ranking's ETag, and a client that already holds it gets ``304`` with no body.
"""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from app.core import clock
from app.core.auth import Principal
from app.core.database import DbSession
from app.core.exports import EXPORT_CONTENT, ExportQuery
from app.core.http_cache import cache_headers, matches, not_modified
from app.indicators.periods import MAX_PERIODS, PeriodText, parse_period, periods_between
from app.indicators.router import CurrentCatalog
from app.keys.access import national_admin
from app.scores import exports, rankings, refresh, scorecard
from app.scores.schemas import History, PeriodStateOut, Ranking, Scorecard
from app.units.models import UnitLevel
from app.units.schemas import UNIT_CODE_PATTERN

router = APIRouter(tags=["scores"])

PeriodQuery = Annotated[PeriodText, Query()]
PeriodPath = Annotated[PeriodText, Path()]
CodePath = Annotated[str, Path(pattern=UNIT_CODE_PATTERN)]
PeriodAdmin = Annotated[
    Principal, Depends(national_admin("a period's scores and rankings cover every unit"))
]


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
    level: UnitLevel,
    period: PeriodQuery,
    parent: Annotated[str | None, Query(pattern=UNIT_CODE_PATTERN)] = None,
    source: Literal["computed", "official"] = "computed",
) -> Response:
    wanted = parse_period(period)
    settings, at = request.app.state.settings, clock.now(request)
    key = rankings.ranking_key(source, level.value, parent, str(wanted))
    body: bytes | None = None
    etag = await rankings.stored_etag(session, key)
    if etag is None and await refresh.ensure_refreshed(session, settings, catalog, wanted, at):
        await session.commit()  # the first read of a period computes and stores it
        etag = await rankings.stored_etag(session, key)
    if etag is None:
        etag, body = await rankings.empty_ranking(
            session, settings, source=source, level=level.value, parent=parent, period=wanted,
            at=at,
        )  # fmt: skip
    kind = export.format
    if kind == "json" and matches(request, etag):
        return not_modified(etag)
    if body is None:
        body = await rankings.ranking_body(session, key)
    if kind == "json":
        return Response(body, media_type="application/json", headers=cache_headers(etag))
    return await exports.ranking_file(
        orjson.loads(body), export, settings.timezone, level=level.value, parent=parent
    )


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
    period: PeriodQuery,
) -> Response:
    wanted = parse_period(period)
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
    start: Annotated[PeriodText, Query(alias="from")],
    end: Annotated[PeriodText, Query(alias="to")],
    granularity: Literal["month", "quarter", "year"] = "month",
) -> Response:
    periods = periods_between(parse_period(start, "from"), parse_period(end, "to"), granularity)
    etag = await scorecard.history_etag(session, code, periods)
    if matches(request, etag):
        return not_modified(etag)
    history = await scorecard.history(session, code, periods, granularity)
    return Response(
        history.model_dump_json(), media_type="application/json", headers=cache_headers(etag)
    )


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
