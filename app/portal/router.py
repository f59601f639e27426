"""Portal-compatible endpoints: a provincial system's existing sync can point here unchanged."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response

from app.core import clock
from app.core.auth import Principal, Scope, require
from app.core.database import DbSession
from app.core.errors import PayloadTooLarge, Unprocessable
from app.core.pagination import Integer, Page, PageParams, page_params, paginate
from app.core.params import NO_NUL_PATTERN
from app.core.prefer import REPRESENTATION_APPLIED, PreferHeader, wants_representation
from app.core.uow import committed
from app.dossiers.schemas import CODE_PATTERN, MAX_BATCH
from app.keys.access import UnitAdmin, national_admin
from app.portal import repository, service
from app.portal.schemas import PortalEnvelope, QuarantinedOut, SyncStatus

router = APIRouter(tags=["portal"])

QuarantineAdmin = Annotated[
    Principal,
    Depends(national_admin("quarantined portal records belong to no known unit")),
]


@router.post(
    "/v1/portal/dossiers",
    response_model=PortalEnvelope,
    summary='DongBoHoSoMC-style dossier records (string values, yyyyMMddHHmmss, "" = none)',
)
async def post_portal_dossiers(
    request: Request,
    response: Response,
    session: DbSession,
    principal: Annotated[Principal, Depends(require(Scope.dossiers_write))],
    # The array's bounds are stated in the schema; the route checks them itself, to answer
    # 413 (not 422) for too many records.
    records: Annotated[list[Any], Body(json_schema_extra={"minItems": 1, "maxItems": MAX_BATCH})],
    madonvi: Annotated[
        str | None,
        Query(pattern=CODE_PATTERN, description="Unit code for records without MaDonVi"),
    ] = None,
    prefer: PreferHeader = None,
) -> PortalEnvelope:
    if len(records) > MAX_BATCH:
        raise PayloadTooLarge(f"At most {MAX_BATCH:,} records per request; got {len(records):,}.")
    if not records:
        raise Unprocessable("no records", errors=[{"pointer": "#", "detail": "empty array"}])
    derive_now = wants_representation(prefer)
    settings = request.app.state.settings
    result = await committed(
        session,
        lambda: service.ingest_records(
            session, settings, principal, records, madonvi, derive_now=derive_now
        ),
        retries=settings.retry_conflicts,
    )
    if derive_now:
        response.headers.update(REPRESENTATION_APPLIED)
    message = (
        "Thành công"
        if result.rejected == 0
        else f"{result.rejected} hồ sơ bị từ chối / {result.rejected} record(s) rejected"
    )
    return PortalEnvelope(
        error_code=0 if result.rejected == 0 else 1, message=message, result=result
    )


@router.get(
    "/v1/portal/sync-status",
    response_model=Page[SyncStatus],
    summary="Per portal source: last success, lag, last error, quarantined records (any admin: "
    "operational figures, no unit's data)",
)
async def sync_status(
    request: Request,
    session: DbSession,
    _: UnitAdmin,
) -> Page[SyncStatus]:
    now = clock.now(request)
    rows = await repository.sync_overview(session)
    return Page(
        items=[
            SyncStatus(
                **{k: v for k, v in r._asdict().items()},
                lag_seconds=(now - r.last_success_at).total_seconds()
                if r.last_success_at
                else None,
            )
            for r in rows
        ],
        next=None,
    )


@router.get(
    "/v1/portal/quarantine",
    response_model=Page[QuarantinedOut],
    summary="Records a sync could not store, raw with their errors, newest first (admin bound "
    "to no unit)",
)
async def quarantine(
    session: DbSession,
    _: QuarantineAdmin,
    page: Annotated[PageParams, Depends(page_params)],
    source: Annotated[str | None, Query(max_length=64, pattern=NO_NUL_PATTERN)] = None,
) -> Page[QuarantinedOut]:
    after = page.after((Integer(minimum=1),))
    rows = await repository.quarantined(session, source, after[0] if after else None, page.limit)
    items, next_cursor = paginate(rows, page.limit, lambda q: (q.id,))
    return Page(items=[QuarantinedOut.model_validate(q) for q in items], next=next_cursor)
