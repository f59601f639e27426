"""HTTP endpoints for the indicator catalog and indicator submissions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Depends, FastAPI, Path, Query, Request, Response, status

from app.core import clock
from app.core.auth import Principal, Scope, authenticate, require
from app.core.database import DbSession
from app.core.errors import PayloadTooLarge, Unauthenticated, Unprocessable
from app.core.pagination import (
    INT32_MAX,
    Integer,
    Page,
    PageParams,
    Text,
    encode_cursor,
    page_params,
)
from app.core.params import IsoDate
from app.indicators import service
from app.indicators.catalog import Catalog, CatalogVersion, shipped_catalog
from app.indicators.periods import PeriodText
from app.indicators.schemas import (
    MAX_BATCH,
    METRIC_CODE_PATTERN,
    IndicatorBatchResult,
    IndicatorValueIn,
    IndicatorValueOut,
    SubmissionResult,
)
from app.units.schemas import UNIT_CODE_PATTERN


@asynccontextmanager
async def load_catalog(app: FastAPI) -> AsyncIterator[None]:
    """Validate the shipped catalog at start-up: a broken file stops the service."""
    app.state.indicator_catalog = shipped_catalog()
    yield


router = APIRouter(tags=["indicators"], lifespan=load_catalog)

Writer = Annotated[Principal, Depends(require(Scope.indicators_write))]


async def current_catalog(request: Request) -> Catalog:
    catalog: Catalog | None = getattr(request.app.state, "indicator_catalog", None)
    return catalog if catalog is not None else shipped_catalog()


CurrentCatalog = Annotated[Catalog, Depends(current_catalog)]


def _today(request: Request) -> date:
    return clock.now(request).astimezone(ZoneInfo(request.app.state.settings.timezone)).date()


async def any_key(request: Request, session: DbSession) -> Principal:
    """Any valid key (its unit scope applies) or the admin token; 401 without one."""
    principal = await authenticate(request, session)
    if principal is None:
        raise Unauthenticated()
    return principal


Reader = Annotated[Principal, Depends(any_key)]


@router.get(
    "/v1/indicators",
    response_model=CatalogVersion,
    summary="The indicator catalog version in force (public)",
)
async def get_catalog(
    request: Request,
    catalog: CurrentCatalog,
    at: Annotated[IsoDate | None, Query(description="Date asked about; default today")] = None,
) -> CatalogVersion:
    return service.version_in_force(catalog, at or _today(request))


@router.post(
    "/v1/indicator-values",
    response_model=SubmissionResult,
    status_code=status.HTTP_201_CREATED,
    summary="Submit one value (201 new revision; 200 identical to the latest revision)",
    responses={200: {"model": SubmissionResult, "description": "Unchanged: no new revision"}},
)
async def post_value(
    request: Request,
    session: DbSession,
    principal: Writer,
    catalog: CurrentCatalog,
    value: IndicatorValueIn,
    response: Response,
) -> SubmissionResult:
    out, stored = await service.submit_one(
        session, principal, catalog, value, today=_today(request)
    )
    await session.commit()
    if not stored:
        response.status_code = status.HTTP_200_OK
    return SubmissionResult(**out.model_dump(), result="stored" if stored else "unchanged")


@router.post(
    "/v1/indicator-values/batch",
    response_model=IndicatorBatchResult,
    summary=f"Submit up to {MAX_BATCH:,} values; each item gets its own result",
    responses={413: {"description": f"More than {MAX_BATCH:,} values"}},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": {
                        "required": ["values"],
                        # Items are checked one by one: a bad one is rejected in its result.
                        "properties": {
                            "values": {
                                "type": "array",
                                "items": {},
                                "maxItems": MAX_BATCH,
                                "description": "Values shaped like the body of POST "
                                "/v1/indicator-values (IndicatorValueIn); an item that is not "
                                "is `rejected` in its result, the others are stored. More than "
                                f"{MAX_BATCH:,}: 413.",
                            }
                        },
                    }
                }
            }
        }
    },
)
async def post_batch(
    request: Request,
    session: DbSession,
    principal: Writer,
    catalog: CurrentCatalog,
    body: Annotated[dict[str, Any], Body(examples=[{"values": []}])],
) -> IndicatorBatchResult:
    raw = body.get("values")
    if not isinstance(raw, list):
        raise Unprocessable(
            "`values` must be an array",
            errors=[{"pointer": "#/values", "detail": "must be an array of values"}],
        )
    if len(raw) > MAX_BATCH:
        raise PayloadTooLarge(f"A batch holds at most {MAX_BATCH:,} values; got {len(raw):,}.")
    items = service.parse_items(raw, "/values")
    outcome = await service.submit(session, principal, catalog, items, today=_today(request))
    await session.commit()
    return IndicatorBatchResult(
        stored=outcome.count("stored"),
        unchanged=outcome.count("unchanged"),
        rejected=outcome.count("rejected"),
        items=outcome.results,
    )


@router.get(
    "/v1/units/{code}/indicator-values",
    response_model=Page[IndicatorValueOut],
    summary="A unit's submitted values: latest revisions, or every revision with history=true",
)
async def get_unit_values(
    session: DbSession,
    catalog: CurrentCatalog,
    principal: Reader,
    code: Annotated[str, Path(pattern=UNIT_CODE_PATTERN)],
    page: Annotated[PageParams, Depends(page_params)],
    period: Annotated[PeriodText | None, Query(description="2024-04, 2024-Q2 or 2024")] = None,
    metric: Annotated[str | None, Query(pattern=METRIC_CODE_PATTERN)] = None,
    history: Annotated[bool, Query(description="Every revision, with who and when")] = False,
) -> Page[IndicatorValueOut]:
    # (period, metric code, revision): the widths of their columns; revision is an integer ≥ 1.
    after = page.after(
        (Text(max_length=7), Text(max_length=64), Integer(minimum=1, maximum=INT32_MAX))
    )
    rows = await service.unit_values(
        session,
        principal,
        code,
        period=service.parse_period_parameter(period),
        metric_code=metric,
        history=history,
        after=after,
        limit=page.limit,
    )
    items = [
        service.described(IndicatorValueOut.model_validate(r), catalog) for r in rows[: page.limit]
    ]
    next_cursor = (
        encode_cursor([items[-1].period, items[-1].metric_code, items[-1].revision])
        if len(rows) > page.limit
        else None
    )
    return Page(items=items, next=next_cursor)
