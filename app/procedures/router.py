"""HTTP endpoints for procedures."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status

from app.core.auth import Principal
from app.core.database import DbSession
from app.core.pagination import Page, PageParams, Text, page_params, paginate
from app.keys.access import national_admin
from app.procedures import repository, service
from app.procedures.schemas import PROCEDURE_CODE_PATTERN, ProcedureIn, ProcedureOut

router = APIRouter(prefix="/v1/procedures", tags=["procedures"])

CodePath = Annotated[str, Path(pattern=PROCEDURE_CODE_PATTERN)]
NationalAdmin = Annotated[
    Principal, Depends(national_admin("procedures and their time limits are national"))
]


@router.get("", response_model=Page[ProcedureOut], summary="List procedures (public)")
async def list_procedures(
    session: DbSession,
    page: Annotated[PageParams, Depends(page_params)],
    field_code: Annotated[str | None, Query(max_length=64)] = None,
    full_online: bool | None = None,
    verified: Annotated[
        bool | None,
        Query(description="false: procedures learned from records, waiting for their limits"),
    ] = None,
) -> Page[ProcedureOut]:
    after = page.after((Text(max_length=64),))
    rows = await repository.list_procedures(
        session,
        field_code=field_code,
        full_online=full_online,
        verified=verified,
        after=after[0] if after else None,
        limit=page.limit,
    )
    items, next_cursor = paginate(rows, page.limit, lambda p: (p.code,))
    return Page(items=[ProcedureOut.model_validate(p) for p in items], next=next_cursor)


@router.get(
    "/{code}",
    response_model=ProcedureOut,
    summary="One procedure (a local variant code such as 1.001022.000.00.00.H01 finds 1.001022)",
)
async def get_procedure(session: DbSession, code: CodePath) -> ProcedureOut:
    return ProcedureOut.model_validate(await service.get(session, code))


@router.put(
    "/{code}",
    response_model=ProcedureOut,
    summary="Create or update a procedure, verifying it (admin bound to no unit, idempotent)",
    responses={201: {"model": ProcedureOut, "description": "Created"}},
)
async def put_procedure(
    session: DbSession, admin: NationalAdmin, code: CodePath, body: ProcedureIn, response: Response
) -> ProcedureOut:
    procedure, created = await service.upsert_procedure(session, code, body, by=admin)
    await session.commit()
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return procedure
