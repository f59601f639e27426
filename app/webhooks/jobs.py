"""Worker jobs of the webhooks domain: one signed delivery attempt per run, retried by arq;
the daily digest, and when it runs (:func:`schedules`)."""

from __future__ import annotations

import time
from typing import Any

import httpx
from arq import Retry, cron
from arq.cron import CronJob
from arq.worker import Function, func
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import system_clock
from app.core.locks import exclusive
from app.core.outbox import relay
from app.core.settings import Settings, get_settings
from app.core.uow import unit_of_work
from app.webhooks import destinations, service
from app.webhooks.repository import Claimed
from app.webhooks.service import RetryPolicy, Wait

# arq gives up on a job after this many runs whatever the delivery's state, so it stays well
# above RetryPolicy.max_attempts: a run that finds the delivery not yet due also counts.
ARQ_MAX_TRIES = 40


async def deliver_webhook(ctx: dict[str, Any], delivery_id: int) -> str:
    """Attempt delivery ``delivery_id`` (idempotent: a finished delivery is left alone).

    The attempt is claimed and committed before the POST, and its outcome recorded after,
    so no transaction stays open while a receiver is slow. A failure raises ``arq.Retry``
    with the policy's backoff until the attempts run out; then the delivery is ``failed``.
    """
    policy: RetryPolicy = ctx.get("webhook_policy") or RetryPolicy()
    sessionmaker = ctx["sessionmaker"]

    async def begin(session: AsyncSession) -> Claimed | Wait | None:
        return await service.begin_attempt(session, delivery_id, policy)

    step = await unit_of_work(sessionmaker, begin)
    if isinstance(step, Wait):
        raise Retry(defer=step.seconds)
    if step is None:
        return "skipped"
    claimed: Claimed = step
    answer = await _attempt(ctx, claimed, policy)

    async def finish(session: AsyncSession) -> service.Outcome:
        return await service.finish_attempt(session, claimed, answer, policy)

    outcome = await unit_of_work(sessionmaker, finish)
    if outcome.retry_in is not None:
        raise Retry(defer=outcome.retry_in)
    return outcome.status


async def _attempt(ctx: dict[str, Any], claimed: Claimed, policy: RetryPolicy) -> service.Answer:
    """The destination rules come from the worker's settings, checked again on every attempt.

    ``ctx["webhook_http"]`` and ``ctx["webhook_resolver"]`` replace the network and DNS (tests
    wire a mock receiver and fixed answers this way); by default each attempt gets its own
    client, so no connection outlives the check it was made for.
    """
    settings: Settings = ctx.get("settings") or get_settings()
    rules = destinations.Rules.from_settings(settings)
    resolve: destinations.Resolver = ctx.get("webhook_resolver") or destinations.system_resolver
    now = int(time.time())
    http: httpx.AsyncClient | None = ctx.get("webhook_http")
    if http is not None:
        return await service.attempt(http, claimed, policy, rules, resolve, now)
    async with destinations.delivery_client(settings) as own:
        return await service.attempt(own, claimed, policy, rules, resolve, now)


JOBS: list[Function] = [
    func(
        deliver_webhook,
        name=service.DELIVER_JOB,
        max_tries=ARQ_MAX_TRIES,
        timeout=RetryPolicy().lease,
    )
]


async def daily_digest(ctx: dict[str, Any]) -> int:
    """Every morning (07:30 local by default): each subscribed unit's overdue digest."""
    async with exclusive(ctx["sessionmaker"], "daily-digest") as mine:
        if not mine:
            return 0
        at = (ctx.get("clock") or system_clock)()

        async def queue(session: AsyncSession) -> int:
            return await service.daily_digest(session, ctx["settings"], at)

        queued = await unit_of_work(ctx["sessionmaker"], queue)
    if queued and ctx.get("redis") is not None:
        await relay(ctx["sessionmaker"], ctx["redis"])
    return queued


def schedules(settings: Settings) -> list[CronJob]:
    """When this domain's scheduled jobs run (deliveries run when queued)."""
    at = settings.digest_at
    return [cron(daily_digest, hour={at.hour}, minute={at.minute}, second={0}, unique=True)]
