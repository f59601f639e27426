"""HTTP endpoints for units."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Query, Request, Response, status

from app.core.database import DbSession
from app.core.outbox import relay_soon
from app.core.pagination import Page, PageParams, Text, page_params, paginate
from app.core.params import IsoDate
from app.keys.access import UnitAdmin
from app.units import service
from app.units.models import UnitLevel
from app.units.schemas import (
    UNIT_CODE_PATTERN,
    UNIT_IDENTIFIER_PATTERN,
    UnitDetail,
    UnitIn,
    UnitOut,
)

router = APIRouter(prefix="/v1/units", tags=["units"])

CodePath = Annotated[str, Path(pattern=UNIT_CODE_PATTERN)]


@router.get("", response_model=Page[UnitOut], summary="List units (public)")
async def list_units(
    session: DbSession,
    page: Annotated[PageParams, Depends(page_params)],
    level: UnitLevel | None = None,
    parent: Annotated[str | None, Query(pattern=UNIT_CODE_PATTERN)] = None,
    valid_at: Annotated[IsoDate | None, Query(description="Only units valid on this date")] = None,
    identifier: Annotated[
        str | None,
        Query(pattern=UNIT_IDENTIFIER_PATTERN, description="The unit with this identifier"),
    ] = None,
) -> Page[UnitOut]:
    after = page.after((Text(max_length=64),))
    rows = await service.list_units(
        session,
        level=level.value if level else None,
        parent_code=parent,
        valid_at=valid_at,
        after=after[0] if after else None,
        limit=page.limit,
        identifier=identifier,
    )
    items, next_cursor = paginate(rows, page.limit, lambda u: (u.code,))
    return Page(items=[UnitOut.model_validate(u) for u in items], next=next_cursor)


@router.get("/{code}", response_model=UnitDetail, summary="One unit with its parent chain")
async def get_unit(session: DbSession, code: CodePath) -> UnitDetail:
    return await service.get_detail(session, code)


@router.put(
    "/{code}",
    response_model=UnitDetail,
    summary="Create or update a unit (admin, idempotent; a unit-bound admin: inside its subtree)",
    responses={
        201: {"model": UnitDetail, "description": "Created"},
        409: {"description": "The identifier belongs to another unit (`unit_code` names it)"},
    },
)
async def put_unit(
    request: Request,
    session: DbSession,
    admin: UnitAdmin,
    code: CodePath,
    body: UnitIn,
    response: Response,
    background: BackgroundTasks,
) -> UnitDetail:
    detail, created, releasing = await service.upsert_unit(session, code, body, by=admin)
    await session.commit()
    if releasing:  # portal records waited for this unit's identifier or code: a job frees them
        background.add_task(relay_soon, request.app)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return detail
