"""HTTP endpoint of the audit log (admins; a unit-bound admin reads its subtree's entries)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.audit import service
from app.audit.schemas import AuditEntryOut
from app.core.database import DbSession
from app.core.pagination import Integer, Page, PageParams, page_params, paginate
from app.core.params import NO_NUL_PATTERN
from app.keys.access import UnitAdmin
from app.units.service import reach

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get(
    "",
    response_model=Page[AuditEntryOut],
    summary="Administrative changes, newest first: who, when, what, before and after (admin; "
    "a unit-bound admin: the changes about units of its subtree)",
)
async def list_entries(
    session: DbSession,
    admin: UnitAdmin,
    page: Annotated[PageParams, Depends(page_params)],
    action: Annotated[
        str | None, Query(max_length=64, pattern=NO_NUL_PATTERN, examples=["api_key.revoke"])
    ] = None,
    target: Annotated[str | None, Query(max_length=200, pattern=NO_NUL_PATTERN)] = None,
) -> Page[AuditEntryOut]:
    after = page.after((Integer(minimum=1),))
    before_id = after[0] if after else None  # newest first: the next page is below this id
    # A unit-bound admin reads the entries about units of its subtree; others read all.
    rows = await service.entries(
        session,
        within=reach(admin),
        action=action,
        target=target,
        before_id=before_id,
        limit=page.limit,
    )
    items, next_cursor = paginate(rows, page.limit, lambda e: (e.id,))
    return Page(items=[AuditEntryOut.model_validate(e) for e in items], next=next_cursor)
