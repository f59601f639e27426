"""All SQL about webhooks and their deliveries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import any_, func, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.units.repository import ancestors_cte, subtree_codes
from app.webhooks.models import Webhook, WebhookDelivery

# Each item's unit and its ancestors: a webhook of any of them hears the item.
_INSERT_DELIVERIES = text(
    f"""
    WITH RECURSIVE items AS (
        SELECT t.unit_code, t.dedupe_key, t.payload::jsonb AS payload
        FROM unnest(CAST(:unit_codes AS text[]), CAST(:dedupe_keys AS text[]),
                    CAST(:payloads AS text[])) AS t(unit_code, dedupe_key, payload)
    ),
    {ancestors_cte("chain", "SELECT DISTINCT unit_code FROM items")},
    inserted AS (
        INSERT INTO webhook_deliveries (webhook_id, kind, unit_code, dedupe_key, payload)
        SELECT w.id, CAST(:kind AS text), i.unit_code, i.dedupe_key, i.payload
        FROM items i
        JOIN chain c ON c.code = i.unit_code
        JOIN webhooks w ON w.unit_code = c.ancestor
        WHERE w.disabled_at IS NULL AND CAST(:kind AS text) = ANY(w.kinds)
        ON CONFLICT (webhook_id, kind, dedupe_key) DO NOTHING
        RETURNING id
    ),
    queued AS (
        INSERT INTO outbox (function, args)
        SELECT CAST(:job AS text), jsonb_build_array(id) FROM inserted ORDER BY id
        RETURNING 1
    )
    SELECT count(*) FROM queued
    """  # noqa: S608 - built from constants
)


async def insert_deliveries(
    session: AsyncSession,
    *,
    kind: str,
    unit_codes: Sequence[str],
    dedupe_keys: Sequence[str],
    payloads: Sequence[str],
    job: str,
) -> int:
    """One statement: a delivery per (item, active subscribed webhook of its unit or an
    ancestor), skipping ones that exist, plus an outbox job per new delivery. Returns how
    many deliveries were created. ``payloads`` are JSON texts."""
    if not unit_codes:
        return 0
    count = await session.scalar(
        _INSERT_DELIVERIES,
        {
            "kind": kind,
            "unit_codes": list(unit_codes),
            "dedupe_keys": list(dedupe_keys),
            "payloads": list(payloads),
            "job": job,
        },
    )
    return int(count or 0)


async def subscribed_units(session: AsyncSession, kind: str) -> list[str]:
    rows = await session.scalars(
        select(Webhook.unit_code)
        .where(Webhook.disabled_at.is_(None), any_(Webhook.kinds) == kind)
        .distinct()
        .order_by(Webhook.unit_code)
    )
    return list(rows)


async def insert_webhook(
    session: AsyncSession,
    *,
    unit_code: str,
    url: str,
    kinds: Sequence[str],
    secret: str,
    created_by: str | None,
) -> Webhook:
    webhook = Webhook(
        id=uuid.uuid4(),
        unit_code=unit_code,
        url=url,
        kinds=list(kinds),
        secret=secret,
        created_by=created_by,
    )
    session.add(webhook)
    await session.flush()
    await session.refresh(webhook)
    return webhook


async def get(session: AsyncSession, webhook_id: uuid.UUID) -> Webhook | None:
    return await session.get(Webhook, webhook_id)


async def list_webhooks(
    session: AsyncSession,
    *,
    root: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Webhook]:
    query = select(Webhook).order_by(Webhook.created_at, Webhook.id).limit(limit + 1)
    if root is not None:
        query = query.where(Webhook.unit_code.in_(subtree_codes(root)))
    if after is not None:
        query = query.where(tuple_(Webhook.created_at, Webhook.id) > tuple_(*after))
    return list((await session.scalars(query)).all())


async def disable(session: AsyncSession, webhook_id: uuid.UUID) -> Webhook | None:
    """Idempotent: an already disabled webhook keeps its first ``disabled_at``."""
    await session.execute(
        update(Webhook)
        .where(Webhook.id == webhook_id, Webhook.disabled_at.is_(None))
        .values(disabled_at=func.now())
    )
    return await session.get(Webhook, webhook_id, populate_existing=True)


async def list_deliveries(
    session: AsyncSession,
    webhook_id: uuid.UUID,
    *,
    status: str | None,
    before: int | None,
    limit: int,
) -> list[WebhookDelivery]:
    """Newest first (ids grow with time); ``before`` is the last id of the previous page."""
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit + 1)
    )
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if before is not None:
        query = query.where(WebhookDelivery.id < before)
    return list((await session.scalars(query)).all())


# --- the delivery job ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery this worker may attempt now; ``attempt`` counts this one (1 = first)."""

    id: int
    kind: str
    unit_code: str
    payload: dict[str, Any]
    created_at: datetime
    attempt: int
    url: str
    secret: str


@dataclass(frozen=True, slots=True)
class Standing:
    status: str
    webhook_disabled: bool
    wait_seconds: float


async def claim(session: AsyncSession, delivery_id: int, lease_seconds: float) -> Claimed | None:
    """Take a due, pending delivery of an active webhook: count the attempt and push
    ``next_attempt_at`` past the attempt's end (a lease), so a second copy of the job, or a
    concurrent worker, waits instead of posting the same notification at the same time."""
    row = (
        await session.execute(
            text(
                """
                UPDATE webhook_deliveries d
                SET attempts = d.attempts + 1,
                    next_attempt_at = now() + make_interval(secs => :lease)
                FROM webhooks w
                WHERE d.id = :id AND w.id = d.webhook_id
                  AND d.status = 'pending' AND d.next_attempt_at <= now()
                  AND w.disabled_at IS NULL
                RETURNING d.id, d.kind, d.unit_code, d.payload, d.created_at,
                          d.attempts AS attempt, w.url, w.secret
                """
            ),
            {"id": delivery_id, "lease": lease_seconds},
        )
    ).one_or_none()
    return Claimed(**row._asdict()) if row is not None else None


async def standing(session: AsyncSession, delivery_id: int) -> Standing | None:
    """Why a delivery could not be claimed: finished, webhook disabled, or not yet due."""
    row = (
        await session.execute(
            select(
                WebhookDelivery.status,
                Webhook.disabled_at.is_not(None).label("webhook_disabled"),
                func.greatest(
                    func.extract("epoch", WebhookDelivery.next_attempt_at - func.now()), 0
                ).label("wait_seconds"),
            )
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(WebhookDelivery.id == delivery_id)
        )
    ).one_or_none()
    if row is None:
        return None
    return Standing(
        status=row.status,
        webhook_disabled=bool(row.webhook_disabled),
        wait_seconds=float(row.wait_seconds),
    )


async def record_attempt(
    session: AsyncSession,
    delivery_id: int,
    *,
    attempt: int,
    status: str,
    status_code: int | None,
    error: str | None,
    retry_in: float | None,
) -> bool:
    """Store the outcome of attempt ``attempt``; False when that attempt is no longer the
    latest (its lease ran out and another worker took over)."""
    next_attempt = (
        func.now() + func.make_interval(0, 0, 0, 0, 0, 0, retry_in)
        if retry_in is not None
        else func.now()
    )
    result = await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == "pending",
            WebhookDelivery.attempts == attempt,
        )
        .values(
            status=status,
            last_status_code=status_code,
            last_error=error,
            next_attempt_at=next_attempt,
            delivered_at=func.now() if status == "delivered" else None,
        )
        .returning(WebhookDelivery.id)
    )
    return result.scalar_one_or_none() is not None


async def fail_pending(session: AsyncSession, delivery_id: int, error: str) -> None:
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending")
        .values(status="failed", last_error=error)
    )
