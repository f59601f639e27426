"""Portal-compatible endpoints: a provincial system's existing sync can point here unchanged."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Principal, Scope, require
from app.core.database import get_session
from app.core.errors import PayloadTooLarge, Unprocessable
from app.dossiers.schemas import CODE_PATTERN, MAX_BATCH
from app.portal import service
from app.portal.schemas import PortalEnvelope

router = APIRouter(tags=["portal"])


@router.post(
    "/v1/portal/dossiers",
    response_model=PortalEnvelope,
    summary='DongBoHoSoMC-style dossier records (string values, yyyyMMddHHmmss, "" = none)',
)
async def post_portal_dossiers(
    request: Request,
    session: Annotated[AsyncSession, Depends(get_session)],
    principal: Annotated[Principal, Depends(require(Scope.dossiers_write))],
    records: Annotated[list[Any], Body()],
    madonvi: Annotated[
        str | None,
        Query(pattern=CODE_PATTERN, description="Unit code for records without MaDonVi"),
    ] = None,
) -> PortalEnvelope:
    if len(records) > MAX_BATCH:
        raise PayloadTooLarge(f"At most {MAX_BATCH:,} records per request; got {len(records):,}.")
    if not records:
        raise Unprocessable("no records", errors=[{"pointer": "#", "detail": "empty array"}])
    result = await service.ingest_records(
        session, request.app.state.settings, principal, records, madonvi
    )
    await session.commit()
    message = (
        "Thành công"
        if result.rejected == 0
        else f"{result.rejected} hồ sơ bị từ chối / {result.rejected} record(s) rejected"
    )
    return PortalEnvelope(
        error_code=0 if result.rejected == 0 else 1, message=message, result=result
    )
