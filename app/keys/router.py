"""HTTP endpoints for API keys (admin only)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import AdminPrincipal
from app.core.database import get_session
from app.core.pagination import Page, PageParams, page_params, paginate
from app.keys import service
from app.keys.schemas import ApiKeyCreated, ApiKeyIn, ApiKeyOut

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])

Session = Annotated[AsyncSession, Depends(get_session)]


@router.post(
    "",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create a key; the secret is returned once, in `key`",
)
async def create_key(session: Session, admin: AdminPrincipal, body: ApiKeyIn) -> ApiKeyCreated:
    created = await service.create_key(session, body, created_by=admin.name)
    await session.commit()
    return created


@router.get("", response_model=Page[ApiKeyOut], summary="List keys (never their secrets)")
async def list_keys(
    session: Session, _: AdminPrincipal, page: Annotated[PageParams, Depends(page_params)]
) -> Page[ApiKeyOut]:
    after = page.after()
    rows = await service.list_keys(session, after=after[0] if after else None, limit=page.limit)
    items, next_cursor = paginate(rows, page.limit, lambda k: (k.prefix,))
    return Page(items=[ApiKeyOut.model_validate(k) for k in items], next=next_cursor)


@router.delete("/{key_id}", response_model=ApiKeyOut, summary="Revoke a key (effective at once)")
async def revoke_key(session: Session, admin: AdminPrincipal, key_id: uuid.UUID) -> ApiKeyOut:
    revoked = await service.revoke_key(session, key_id, by=admin.name)
    await session.commit()
    return revoked
