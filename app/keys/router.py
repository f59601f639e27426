"""HTTP endpoints for API keys (admins; a unit-bound admin manages its subtree's keys)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from app.core.auth import forget_key
from app.core.database import DbSession
from app.core.pagination import Page, PageParams, Text, page_params, paginate
from app.keys import service
from app.keys.access import UnitAdmin
from app.keys.schemas import ApiKeyCreated, ApiKeyIn, ApiKeyOut

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])


@router.post(
    "",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create a key; the secret is returned once, in `key` (a unit-bound admin: only "
    "for units of its subtree)",
)
async def create_key(session: DbSession, admin: UnitAdmin, body: ApiKeyIn) -> ApiKeyCreated:
    created = await service.create_key(session, body, created_by=admin)
    await session.commit()
    return created


@router.get(
    "",
    response_model=Page[ApiKeyOut],
    summary="List keys, never their secrets (a unit-bound admin: its subtree's keys)",
)
async def list_keys(
    session: DbSession, admin: UnitAdmin, page: Annotated[PageParams, Depends(page_params)]
) -> Page[ApiKeyOut]:
    after = page.after((Text(max_length=16),))  # the key's prefix
    rows = await service.list_keys(
        session, admin, after=after[0] if after else None, limit=page.limit
    )
    items, next_cursor = paginate(rows, page.limit, lambda k: (k.prefix,))
    return Page(items=[ApiKeyOut.model_validate(k) for k in items], next=next_cursor)


@router.delete(
    "/{key_id}",
    response_model=ApiKeyOut,
    summary="Revoke a key, effective at once (a unit-bound admin: its subtree's keys)",
)
async def revoke_key(
    request: Request, session: DbSession, admin: UnitAdmin, key_id: uuid.UUID
) -> ApiKeyOut:
    revoked = await service.revoke_key(session, key_id, by=admin)
    await session.commit()
    # Other processes hear of it from PostgreSQL (chiso_keys); this one forgets it before
    # answering, so the caller's next request is refused whichever way its notice travels.
    forget_key(request, str(key_id))
    return revoked
