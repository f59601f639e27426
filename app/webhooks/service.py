"""Webhook rules: who may subscribe, how notifications become deliveries, how retries back off.

Notifications are recorded inside the transaction of what they announce: the deliveries and
their outbox jobs commit with it, so a notification is never lost to a Redis outage and never
sent for work that rolled back. The overdue sweep (dossiers, a floor below) publishes what it
flagged as an event, which :func:`notify_flagged` turns into notifications (subscribed in
``app.wiring``); the daily digest (:func:`daily_digest`) reads the dossiers' counts itself.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import random
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import orjson
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.calendar.service import current_calendar
from app.core.errors import NotFound, Unprocessable
from app.core.events import DeadlinesFlagged
from app.core.principal import Principal
from app.core.settings import Settings
from app.dossiers import service as dossiers
from app.units import repository as units
from app.units.service import ensure_in_scope, require_unit
from app.webhooks import destinations, repository
from app.webhooks.models import Webhook, WebhookDelivery
from app.webhooks.repository import Claimed
from app.webhooks.schemas import DeliveryOut, WebhookCreated, WebhookIn, WebhookKind, WebhookOut
from app.webhooks.signing import SIGNATURE_HEADER, signature

logger = logging.getLogger("chiso.webhooks")

DELIVER_JOB = "deliver_webhook"
USER_AGENT = "chiso-webhooks/1"
# The delivery log keeps this much of a receiver's answer (see :func:`excerpt`).
EXCERPT_CHARS = 100
_EXCERPT_BYTES = 1024


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard a delivery is tried. Workers read it from ``ctx["webhook_policy"]``.

    The default spreads 12 attempts over about 3 hours (10 s, 20 s, 40 s, ... capped at one
    hour between attempts, each delay shortened by up to half at random so that receivers
    coming back from an outage are not hit by every retry at the same second).
    """

    max_attempts: int = 12
    base_delay: float = 10.0
    max_delay: float = 3600.0
    timeout: float = 10.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** min(attempt - 1, 32))
        return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography

    @property
    def lease(self) -> float:
        """How long a claimed attempt keeps other copies of the job away."""
        return self.timeout + 60.0


# --- producing notifications ---------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)  # a JSON number, as the API renders points and rates
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")  # wire shapes: their own number format
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


async def notify(
    session: AsyncSession, *, kind: str, unit_code: str, dedupe_key: str, payload: dict[str, Any]
) -> int:
    """Queue ``kind`` about ``unit_code`` for every active webhook subscribed to it on that unit
    or an ancestor. A ``(webhook, kind, dedupe_key)`` already queued is skipped. Returns the
    number of new deliveries. The caller commits (then relays the outbox, or lets the worker's
    minute relay do it)."""
    return await notify_many(session, kind, [(unit_code, dedupe_key, payload)])


async def notify_many(
    session: AsyncSession, kind: str, items: Sequence[tuple[str, str, dict[str, Any]]]
) -> int:
    """:func:`notify` for many ``(unit_code, dedupe_key, payload)`` items in one statement."""
    known = WebhookKind(kind)  # ValueError for a kind no one can subscribe to: a caller's bug
    if not items:
        return 0
    return await repository.insert_deliveries(
        session,
        kind=known.value,
        unit_codes=[unit for unit, _, _ in items],
        dedupe_keys=[key for _, key, _ in items],
        payloads=[orjson.dumps(body, default=_json_default).decode() for _, _, body in items],
        job=DELIVER_JOB,
    )


async def subscribed_units(session: AsyncSession, kind: str) -> list[str]:
    """Units with an active webhook of their own for ``kind`` (not their subunits)."""
    return await repository.subscribed_units(session, WebhookKind(kind).value)


async def notify_flagged(session: AsyncSession, flagged: DeadlinesFlagged) -> int:
    """Notifications for what the overdue sweep flagged (same transaction); returns how many
    deliveries were recorded."""
    count = 0
    for kind, rows, stamp in (
        ("dossier.overdue", flagged.overdue, "overdue_at"),
        ("dossier.due_soon", flagged.due_soon, "due_at"),
    ):
        items = [
            (
                r.unit_code,
                # One notification per dossier and deadline: re-flagging after a moved
                # deadline notifies again, a repeated sweep does not.
                f"{kind}:{r.code}:{getattr(r, stamp).isoformat()}",
                {
                    "kind": kind,
                    "dossier_code": r.code,
                    "unit_code": r.unit_code,
                    "procedure_code": r.procedure_code,
                    "due_at": r.due_at.isoformat() if r.due_at else None,
                },
            )
            for r in rows
        ]
        if items:
            count += await notify_many(session, kind, items)
    return count


async def daily_digest(session: AsyncSession, settings: Settings, at: datetime) -> int:
    """Queue the daily digest for every unit with a ``digest.daily`` subscription."""
    roots = await subscribed_units(session, "digest.daily")
    if not roots:
        return 0
    rows = await dossiers.digest_counts(session, settings, roots, at)
    calendar = await current_calendar(session, settings)
    day = calendar.local_date(at).isoformat()
    items = [
        (
            r.unit_code,
            f"digest.daily:{r.unit_code}:{day}",  # one digest per unit and day
            {
                "kind": "digest.daily",
                "unit_code": r.unit_code,
                "date": day,
                "open": r.open,
                "overdue": r.overdue,
                "overdue_without_apology": r.overdue_without_apology,
                "due_soon": r.due_soon,
            },
        )
        for r in rows
    ]
    return await notify_many(session, "digest.daily", items)


# --- subscriptions -------------------------------------------------------------------------


async def create_webhook(
    session: AsyncSession,
    principal: Principal,
    data: WebhookIn,
    rules: destinations.Rules,
    resolve: destinations.Resolver = destinations.system_resolver,
) -> WebhookCreated:
    if await units.get(session, data.unit_code) is None:
        detail = f"unknown unit {data.unit_code!r}"
        raise Unprocessable(detail, errors=[{"pointer": "#/unit_code", "detail": detail}])
    await ensure_in_scope(session, principal, data.unit_code)
    try:
        await destinations.check(str(data.url), rules, resolve)
    except destinations.Refused as exc:
        raise Unprocessable(
            f"url: {exc.reason}", errors=[{"pointer": "#/url", "detail": exc.reason}]
        ) from None
    except destinations.Unresolved:
        # Accepted: its DNS may not be set up yet, or down for a moment (that is no reason
        # to call the request invalid). Every delivery checks again and records why not.
        pass
    secret = data.secret or f"whsec_{secrets.token_urlsafe(32)}"
    webhook = await repository.insert_webhook(
        session,
        unit_code=data.unit_code,
        url=str(data.url),
        kinds=sorted({k.value for k in data.kinds}),
        secret=secret,
        created_by=principal.name,
    )
    return WebhookCreated(**WebhookOut.model_validate(webhook).model_dump(), secret=secret)


async def get_webhook(
    session: AsyncSession, principal: Principal, webhook_id: uuid.UUID
) -> Webhook:
    webhook = await repository.get(session, webhook_id)
    if webhook is None:
        raise NotFound(f"No webhook with id {webhook_id}.")
    await ensure_in_scope(session, principal, webhook.unit_code)
    return webhook


async def list_webhooks(
    session: AsyncSession,
    principal: Principal,
    *,
    unit_code: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Webhook]:
    """Webhooks of ``unit_code``'s subtree (default: the key's own unit; admin: all)."""
    root = principal.unit_code
    if unit_code is not None:
        await require_unit(session, unit_code)
        await ensure_in_scope(session, principal, unit_code)
        root = unit_code
    return await repository.list_webhooks(session, root=root, after=after, limit=limit)


async def disable_webhook(
    session: AsyncSession, principal: Principal, webhook_id: uuid.UUID
) -> WebhookOut:
    """Stop notifying: no new deliveries, and pending ones end as failed when their turn comes."""
    await get_webhook(session, principal, webhook_id)
    webhook = await repository.disable(session, webhook_id)
    assert webhook is not None
    return WebhookOut.model_validate(webhook)


async def list_deliveries(
    session: AsyncSession,
    principal: Principal,
    webhook_id: uuid.UUID,
    *,
    status: str | None,
    before: int | None,
    limit: int,
) -> list[WebhookDelivery]:
    await get_webhook(session, principal, webhook_id)
    return await repository.list_deliveries(
        session, webhook_id, status=status, before=before, limit=limit
    )


def delivery_out(delivery: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.id,
        kind=delivery.kind,
        unit_code=delivery.unit_code,
        dedupe_key=delivery.dedupe_key,
        status=delivery.status,
        attempts=delivery.attempts,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        next_attempt_at=delivery.next_attempt_at if delivery.status == "pending" else None,
        delivered_at=delivery.delivered_at,
        created_at=delivery.created_at,
        data=delivery.payload,
    )


# --- delivering ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Wait:
    """Not due yet (an earlier attempt's lease or backoff): look again in ``seconds``."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Answer:
    """How one attempt went. ``retry`` False: trying again cannot help (the destination is
    refused), so the delivery fails at once."""

    status_code: int | None
    error: str | None
    retry: bool = True

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # pending (will retry) | delivered | failed
    retry_in: float | None = None


async def begin_attempt(
    session: AsyncSession, delivery_id: int, policy: RetryPolicy
) -> Claimed | Wait | None:
    """The delivery to attempt now, a :class:`Wait`, or None when there is nothing to do
    (already delivered or failed, gone, or its webhook was disabled — then it is failed)."""
    claimed = await repository.claim(session, delivery_id, policy.lease)
    if claimed is not None:
        return claimed
    standing = await repository.standing(session, delivery_id)
    if standing is None or standing.status != "pending":
        return None
    if standing.webhook_disabled:
        await repository.fail_pending(session, delivery_id, "webhook disabled")
        return None
    return Wait(standing.wait_seconds + 0.05)


def body(claimed: Claimed) -> bytes:
    """The JSON posted to the receiver: the same bytes on every attempt."""
    return orjson.dumps(
        {
            "id": claimed.id,
            "kind": claimed.kind,
            "unit_code": claimed.unit_code,
            "created_at": claimed.created_at,
            "data": claimed.payload,
        }
    )


async def attempt(
    http: httpx.AsyncClient,
    claimed: Claimed,
    policy: RetryPolicy,
    rules: destinations.Rules,
    resolve: destinations.Resolver,
    now: int,
) -> Answer:
    """Check the webhook's URL again (settings and DNS may have changed since it was
    subscribed), then post to the checked address. The check and the POST share the
    policy's timeout. A refused destination gets no request at all."""
    try:
        async with asyncio.timeout(policy.timeout):
            try:
                destination = await destinations.check(claimed.url, rules, resolve)
            except destinations.Refused as exc:
                # Worth an operator's look: a receiver's DNS now points inwards, or the
                # allowed networks changed under existing subscriptions.
                logger.warning(
                    "webhook delivery refused",
                    extra={"delivery_id": claimed.id, "reason": exc.reason},
                )
                return Answer(None, f"not sent: {exc.reason}", retry=False)
            except destinations.Unresolved as exc:
                return Answer(None, f"not sent: {exc}")
            return await post(http, claimed, destination, policy, now)
    except TimeoutError:
        return Answer(None, f"no answer within {policy.timeout:g} s")


async def post(
    http: httpx.AsyncClient,
    claimed: Claimed,
    destination: destinations.Destination,
    policy: RetryPolicy,
    now: int,
) -> Answer:
    """One signed POST to one of the destination's checked addresses: the connection goes to
    the address itself, while ``Host`` and, for https, the TLS server name (SNI and the
    certificate check) stay the URL's host. The next address is tried only when connecting
    fails. Redirects are not followed; only a 2xx answer counts as delivered."""
    content = body(claimed)
    headers = {
        "Host": destination.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Chiso-Event": claimed.kind,
        "X-Chiso-Delivery": str(claimed.id),
        SIGNATURE_HEADER: signature(claimed.secret, content, now),
        # The excerpt of an error answer is read raw and bounded: no decompression bombs.
        "Accept-Encoding": "identity",
        # A pooled connection is keyed by address only: never reuse one made (and its
        # certificate checked) for another host name on the same address.
        "Connection": "close",
    }
    extensions = {"sni_hostname": destination.server_name}
    failure = "no address to connect to"
    for address in destination.addresses:
        try:
            async with http.stream(
                "POST",
                destination.request_url(address),
                content=content,
                headers=headers,
                timeout=policy.timeout,
                follow_redirects=False,
                extensions=extensions,
            ) as reply:
                return await _answer(reply)
        except httpx.ConnectError as exc:  # nothing was sent: the next address may work
            failure = _failure(exc)
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
            return Answer(None, _failure(exc))
    return Answer(None, failure)


async def _answer(reply: httpx.Response) -> Answer:
    code = reply.status_code
    if 200 <= code < 300:
        return Answer(code, None)
    if 300 <= code < 400:
        location = excerpt(reply.headers.get("location", "").encode())
        return Answer(code, f"HTTP {code} redirect not followed {location}".strip())
    # A bounded excerpt only: a receiver's error page can be arbitrarily large.
    raw = b""
    if reply.is_stream_consumed:  # a body handed over whole (a mock transport)
        raw = reply.content
    else:
        async for chunk in reply.aiter_raw():
            raw += chunk
            if len(raw) >= _EXCERPT_BYTES:
                break
    return Answer(code, f"HTTP {code} {excerpt(raw[:_EXCERPT_BYTES])}".strip())


def _failure(exc: Exception) -> str:
    return excerpt(f"{type(exc).__name__}: {exc}".encode())


def excerpt(raw: bytes, limit: int = EXCERPT_CHARS) -> str:
    """What the delivery log keeps of a receiver's words: at most ``limit`` printable
    characters, whitespace runs as one space, control and format characters dropped (no
    terminal escapes, no bidi tricks in a log viewer), cut with "…" when longer."""
    # Incremental decoding drops a multi-byte character cut off at the end of the excerpt.
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(raw)
    kept = "".join(c if c.isprintable() else " " if c.isspace() else "" for c in text)
    words = " ".join(kept.split())
    return words if len(words) <= limit else words[: limit - 1].rstrip() + "…"


async def finish_attempt(
    session: AsyncSession, claimed: Claimed, answer: Answer, policy: RetryPolicy
) -> Outcome:
    if answer.ok:
        outcome = Outcome("delivered")
    elif not answer.retry or claimed.attempt >= policy.max_attempts:
        outcome = Outcome("failed")
    else:
        outcome = Outcome("pending", retry_in=policy.delay(claimed.attempt))
    recorded = await repository.record_attempt(
        session,
        claimed.id,
        attempt=claimed.attempt,
        status=outcome.status,
        status_code=answer.status_code,
        error=answer.error,
        retry_in=outcome.retry_in,
    )
    if not recorded:  # our lease ran out and another attempt took over: it owns the retry
        return Outcome("superseded")
    return outcome
