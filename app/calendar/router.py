"""HTTP endpoints for the working-day calendar."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, Response, status

from app.calendar import service
from app.calendar.schemas import CalendarOut, DayOut, OverrideIn, OverrideOut
from app.core.auth import Principal
from app.core.database import DbSession
from app.core.outbox import relay_soon
from app.core.params import IsoDate
from app.keys.access import national_admin

router = APIRouter(prefix="/v1/calendar", tags=["calendar"])

NationalAdmin = Annotated[
    Principal, Depends(national_admin("the working-day calendar is the same for every unit"))
]


@router.get(
    "",
    response_model=CalendarOut,
    summary="Working days between two dates (public)",
    openapi_extra={
        "x-rules": [
            "`to` is not before `from` (422)",
            f"at most {service.MAX_RANGE_DAYS} days from `from` to `to` (422)",
        ]
    },
)
async def get_calendar(
    request: Request,
    session: DbSession,
    start: Annotated[IsoDate, Query(alias="from")],
    end: Annotated[IsoDate, Query(alias="to")],
) -> CalendarOut:
    return await service.calendar_between(session, request.app.state.settings, start, end)


@router.get(
    "/days/{day}",
    response_model=DayOut,
    summary="One date: working day or not, why, and its office hours (public)",
)
async def get_day(request: Request, session: DbSession, day: IsoDate) -> DayOut:
    return await service.calendar_day(session, request.app.state.settings, day)


@router.put(
    "/days/{day}",
    response_model=OverrideOut,
    summary="Make a date a working day or a day off (admin bound to no unit); open dossiers "
    "are recomputed",
)
async def put_day(
    request: Request,
    session: DbSession,
    admin: NationalAdmin,
    day: IsoDate,
    body: OverrideIn,
    background: BackgroundTasks,
) -> OverrideOut:
    override = await service.set_override(session, day, body, admin.name)
    await session.commit()
    background.add_task(relay_soon, request.app)
    return override


@router.delete(
    "/days/{day}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove an operator override (admin bound to no unit)",
)
async def delete_day(
    request: Request,
    session: DbSession,
    admin: NationalAdmin,
    day: IsoDate,
    background: BackgroundTasks,
) -> Response:
    await service.remove_override(session, day, by=admin.name)
    await session.commit()
    background.add_task(relay_soon, request.app)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
