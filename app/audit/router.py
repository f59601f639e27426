"""HTTP endpoint of the audit log (admin only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service
from app.audit.schemas import AuditEntryOut
from app.core.auth import AdminPrincipal
from app.core.database import get_session
from app.core.errors import InvalidCursor
from app.core.pagination import Page, PageParams, decode_cursor, page_params, paginate

router = APIRouter(prefix="/v1/audit", tags=["audit"])

Session = Annotated[AsyncSession, Depends(get_session)]


@router.get(
    "",
    response_model=Page[AuditEntryOut],
    summary="Administrative changes, newest first: who, when, what, before and after (admin)",
)
async def list_entries(
    session: Session,
    _: AdminPrincipal,
    page: Annotated[PageParams, Depends(page_params)],
    action: Annotated[str | None, Query(max_length=64, examples=["api_key.revoke"])] = None,
    target: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[AuditEntryOut]:
    before_id = None
    if page.cursor:
        (last,) = decode_cursor(page.cursor, 1)
        if not isinstance(last, int) or isinstance(last, bool) or not 0 < last < 2**63:
            raise InvalidCursor("Pass back the `next` value of a previous page unchanged.")
        before_id = last
    rows = await service.entries(
        session, action=action, target=target, before_id=before_id, limit=page.limit
    )
    items, next_cursor = paginate(rows, page.limit, lambda e: (e.id,))
    return Page(items=[AuditEntryOut.model_validate(e) for e in items], next=next_cursor)
