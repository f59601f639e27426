"""HTTP endpoints for webhook subscriptions and their delivery log."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from app.core.auth import Principal, Scope, require
from app.core.database import DbSession
from app.core.pagination import (
    Instant,
    Integer,
    Page,
    PageParams,
    Uuid,
    page_params,
    paginate,
)
from app.units.schemas import UNIT_CODE_PATTERN
from app.webhooks import destinations, service
from app.webhooks.schemas import DeliveryOut, WebhookCreated, WebhookIn, WebhookOut

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

# A desk that may read its unit's dossiers may be told about them.
Reader = Annotated[Principal, Depends(require(Scope.dossiers_read))]
Paging = Annotated[PageParams, Depends(page_params)]


@router.post(
    "",
    response_model=WebhookCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Subscribe a URL for a unit's subtree; the signing secret is returned once",
)
async def create_webhook(
    request: Request, session: DbSession, principal: Reader, body: WebhookIn
) -> WebhookCreated:
    rules = destinations.Rules.from_settings(request.app.state.settings)
    created = await service.create_webhook(session, principal, body, rules)
    await session.commit()
    return created


@router.get(
    "",
    response_model=Page[WebhookOut],
    summary="Webhooks of a unit's subtree (default: the key's own unit), oldest first",
)
async def list_webhooks(
    session: DbSession,
    principal: Reader,
    page: Paging,
    unit: Annotated[str | None, Query(pattern=UNIT_CODE_PATTERN)] = None,
) -> Page[WebhookOut]:
    after = page.after((Instant(), Uuid()))
    rows = await service.list_webhooks(
        session, principal, unit_code=unit, after=after, limit=page.limit
    )
    items, next_cursor = paginate(rows, page.limit, lambda w: (w.created_at, w.id))
    return Page(items=[WebhookOut.model_validate(w) for w in items], next=next_cursor)


@router.get("/{webhook_id}", response_model=WebhookOut, summary="One webhook (never its secret)")
async def get_webhook(session: DbSession, principal: Reader, webhook_id: uuid.UUID) -> WebhookOut:
    return WebhookOut.model_validate(await service.get_webhook(session, principal, webhook_id))


@router.delete(
    "/{webhook_id}",
    response_model=WebhookOut,
    summary="Disable a webhook (effective at once; its pending deliveries are not sent)",
)
async def disable_webhook(
    session: DbSession, principal: Reader, webhook_id: uuid.UUID
) -> WebhookOut:
    disabled = await service.disable_webhook(session, principal, webhook_id)
    await session.commit()
    return disabled


@router.get(
    "/{webhook_id}/deliveries",
    response_model=Page[DeliveryOut],
    summary="The webhook's deliveries, newest first, with attempts and the last error",
)
async def list_deliveries(
    session: DbSession,
    principal: Reader,
    webhook_id: uuid.UUID,
    page: Paging,
    status: Annotated[str | None, Query(pattern="^(pending|delivered|failed)$")] = None,
) -> Page[DeliveryOut]:
    after = page.after((Integer(minimum=1),))
    before = after[0] if after else None  # newest first: the next page is below this id
    rows = await service.list_deliveries(
        session, principal, webhook_id, status=status, before=before, limit=page.limit
    )
    items, next_cursor = paginate(rows, page.limit, lambda d: (d.id,))
    return Page(items=[service.delivery_out(d) for d in items], next=next_cursor)
