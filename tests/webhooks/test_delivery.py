"""Notifications become signed POSTs through the outbox and a real arq worker, with retries."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
from arq.worker import Worker
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import create_sessionmaker
from app.core.jobs import relay_outbox
from app.core.outbox import relay
from app.core.queue import QUEUE_NAME, create_queue, redis_settings
from app.core.settings import Settings
from app.insights.schemas import StandingOut
from app.webhooks.destinations import Resolver
from app.webhooks.jobs import JOBS
from app.webhooks.service import RetryPolicy, notify, notify_many
from tests.helpers import ADMIN, province_with_communes

FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, timeout=2.0)


# With the mock network every name resolves to this public address: deliveries pass the
# destination check and connect "there", and the mock answers instead.
PUBLIC = ipaddress.IPv4Address("93.184.215.14")


async def public_dns(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    return [PUBLIC]


@dataclass
class Receiver:
    """Stands in for the subscribers' servers: answers from a script, keeps what it got.

    ``received`` holds the requests as a server sees them (the URL built from ``Host``);
    ``connected_to`` the address each one was sent to.
    """

    answers: list[int | Exception] = field(default_factory=list)
    default: int = 200
    received: list[httpx.Request] = field(default_factory=list)
    connected_to: list[str] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.connected_to.append(request.url.host)
        self.received.append(
            httpx.Request(
                request.method,
                request.url.copy_with(netloc=request.headers["host"].encode()),
                headers=request.headers,
                content=request.content,
            )
        )
        answer = self.answers.pop(0) if self.answers else self.default
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer, text="receiver says no" if answer >= 300 else "ok")

    def to(self, host: str) -> list[httpx.Request]:
        return [r for r in self.received if r.url.host == host]


async def run_worker(
    settings: Settings,
    engine: AsyncEngine,
    receiver: Receiver | None = None,
    policy: RetryPolicy = FAST,
    resolver: Resolver | None = None,
) -> Worker:
    """A real arq worker in burst mode, wired like production. With a ``receiver`` the
    network is a mock and every name resolves to :data:`PUBLIC`; without one, deliveries go
    over the real network (to receivers on 127.0.0.1) and names through ``resolver``."""

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["sessionmaker"] = create_sessionmaker(engine)
        ctx["settings"] = settings
        if receiver is not None:
            ctx["webhook_http"] = httpx.AsyncClient(transport=httpx.MockTransport(receiver))
        if resolver is not None or receiver is not None:
            ctx["webhook_resolver"] = resolver or public_dns
        ctx["webhook_policy"] = policy
        await relay_outbox(ctx)

    async def shutdown(ctx: dict[str, Any]) -> None:
        if "webhook_http" in ctx:
            await ctx["webhook_http"].aclose()

    worker = Worker(
        functions=[*JOBS, relay_outbox],
        on_startup=startup,
        on_shutdown=shutdown,
        redis_settings=redis_settings(settings.redis_url or ""),
        queue_name=QUEUE_NAME,
        burst=True,
        poll_delay=0.02,
        handle_signals=False,
    )
    try:
        await worker.main()
    finally:
        await worker.close()
    return worker


async def hook(
    client: httpx.AsyncClient, unit: str, kinds: list[str], host: str, **extra: Any
) -> dict[str, Any]:
    body = {"url": f"https://{host}/chiso", "unit_code": unit, "kinds": kinds, **extra}
    response = await client.post("/v1/webhooks", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def overdue(
    engine: AsyncEngine, unit: str, dossier: str, day: str = "2026-03-05", **payload: Any
) -> int:
    """What the overdue sweep does: notify inside its transaction, then commit."""
    async with create_sessionmaker(engine)() as session:
        created = await notify(
            session,
            kind="dossier.overdue",
            unit_code=unit,
            dedupe_key=f"{dossier}:{day}",
            payload={"dossier_code": dossier, "due_at": f"{day}T17:00:00+07:00", **payload},
        )
        await session.commit()
    return created


def assert_signed(request: httpx.Request, secret: str) -> None:
    """What a receiver does, by hand: recompute the HMAC over "<t>.<body>"."""
    fields = dict(part.split("=", 1) for part in request.headers["X-Chiso-Signature"].split(","))
    assert set(fields) == {"t", "v1"}
    assert abs(time.time() - int(fields["t"])) < 60
    expected = hmac.new(
        secret.encode(), fields["t"].encode() + b"." + request.content, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(fields["v1"], expected)


async def count(engine: AsyncEngine, sql: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def test_a_commune_notification_reaches_its_province_signed(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    await province_with_communes(client)
    province = await hook(client, "H01", ["dossier.overdue"], "h01.example")
    await hook(
        client, "H01.01", ["dossier.overdue", "digest.daily"], "h0101.example",
        secret="commune-secret-0123456789",
    )  # fmt: skip
    await hook(client, "H05", ["dossier.overdue"], "h05.example")  # a sibling province
    await hook(client, "H01", ["digest.daily"], "digest.example")  # another kind
    await hook(client, "H01.02", ["dossier.overdue"], "h0102.example")  # a sibling commune
    gone = await hook(client, "H01", ["dossier.overdue"], "gone.example")
    await client.delete(f"/v1/webhooks/{gone['id']}", headers=ADMIN)

    assert await overdue(engine, "H01.01", "H01.01-260302-0001", overdue_by="1.50") == 2
    receiver = Receiver()
    worker = await run_worker(settings, engine, receiver)
    assert (worker.jobs_complete, worker.jobs_failed, worker.jobs_retried) == (2, 0, 0)

    assert {r.url.host for r in receiver.received} == {"h01.example", "h0101.example"}
    # Each POST went to the address the destination check approved, named by its Host.
    assert receiver.connected_to == [str(PUBLIC)] * 2
    (to_province,) = receiver.to("h01.example")
    assert to_province.method == "POST" and to_province.url.path == "/chiso"
    assert to_province.headers["content-type"] == "application/json"
    assert to_province.headers["x-chiso-event"] == "dossier.overdue"
    assert_signed(to_province, province["secret"])
    assert_signed(receiver.to("h0101.example")[0], "commune-secret-0123456789")
    body = orjson.loads(to_province.content)
    assert body["id"] == int(to_province.headers["x-chiso-delivery"])
    assert body["kind"] == "dossier.overdue" and body["unit_code"] == "H01.01"
    assert body["data"] == {
        "dossier_code": "H01.01-260302-0001",
        "due_at": "2026-03-05T17:00:00+07:00",
        "overdue_by": "1.50",
    }

    log = (await client.get(f"/v1/webhooks/{province['id']}/deliveries", headers=ADMIN)).json()
    (entry,) = log["items"]
    assert entry["id"] == body["id"]
    assert (entry["status"], entry["attempts"], entry["last_status_code"]) == ("delivered", 1, 200)
    assert entry["delivered_at"] is not None and entry["next_attempt_at"] is None
    assert entry["data"] == body["data"]
    # A forged body does not verify against the same signature.
    forged = httpx.Request("POST", "https://h01.example/", content=to_province.content + b" ")
    forged.headers["X-Chiso-Signature"] = to_province.headers["X-Chiso-Signature"]
    with pytest.raises(AssertionError):
        assert_signed(forged, province["secret"])


async def test_figures_in_a_payload_are_json_numbers(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    """Payloads carry points and ranks in the API's number format: numbers, never strings,
    and a rank with its `of` (a wire shape renders its own rounding)."""
    await province_with_communes(client)
    await hook(client, "H01", ["dossier.overdue"], "h01.example")
    standing = StandingOut(total=Decimal("95.105"), grade="Xuất sắc", complete=True, rank=5, of=6)
    await overdue(engine, "H01.01", "H01.01-260302-0001", overdue_by=Decimal("1.50"),
                  standing=standing)  # fmt: skip
    receiver = Receiver()
    await run_worker(settings, engine, receiver)
    (delivered,) = receiver.received
    data = orjson.loads(delivered.content)["data"]
    assert data["overdue_by"] == 1.5
    assert data["standing"] == {"total": 95.11, "grade": "Xuất sắc", "complete": True,
                                "rank": 5, "of": 6}  # fmt: skip


async def test_the_same_notification_is_delivered_once(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    await province_with_communes(client)
    await hook(client, "H01", ["dossier.overdue", "dossier.due_soon"], "h01.example")
    assert await overdue(engine, "H01.01", "D1") == 1
    assert await overdue(engine, "H01.01", "D1") == 0  # the sweep ran again
    async with create_sessionmaker(engine)() as session:
        items = [
            ("H01.01", "D1:2026-03-05", {"dossier_code": "D1"}),  # already queued
            ("H01.02", "D2:2026-03-05", {"dossier_code": "D2"}),
            ("H01.02", "D2:2026-03-05", {"dossier_code": "D2"}),  # twice in one batch
            ("H05.01", "D3:2026-03-05", {"dossier_code": "D3"}),  # nobody listens
            ("H01.01.MC", "D4:2026-03-05", {"dossier_code": "D4"}),
        ]
        assert await notify_many(session, "dossier.overdue", items) == 2
        # The same key under another kind is another notification.
        assert await notify_many(session, "dossier.due_soon", items[:1]) == 1
        await session.commit()
    assert await count(engine, "SELECT count(*) FROM outbox") == 4

    receiver = Receiver()
    await run_worker(settings, engine, receiver)
    codes = sorted(orjson.loads(r.content)["data"]["dossier_code"] for r in receiver.received)
    assert codes == ["D1", "D1", "D2", "D4"]
    assert await count(engine, "SELECT count(*) FROM webhook_deliveries") == 4

    # arq may run a job twice: a delivered notification is not posted again.
    queue = create_queue(settings.redis_url or "")
    first_id = orjson.loads(receiver.received[0].content)["id"]
    await queue.enqueue_job("deliver_webhook", first_id, _job_id="again")
    await queue.aclose()
    worker = await run_worker(settings, engine, receiver)
    assert worker.jobs_complete == 1 and len(receiver.received) == 4


async def test_a_failing_receiver_gets_retries_with_the_same_delivery(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    await province_with_communes(client)
    created = await hook(client, "H01", ["dossier.overdue"], "h01.example")
    await overdue(engine, "H01.01", "D1")
    receiver = Receiver(answers=[500, httpx.ConnectError("connection refused"), 200])
    worker = await run_worker(settings, engine, receiver)
    assert (worker.jobs_retried, worker.jobs_complete, worker.jobs_failed) == (2, 1, 0)

    assert len(receiver.received) == 3
    assert len({r.content for r in receiver.received}) == 1  # the same body every time
    assert len({r.headers["x-chiso-delivery"] for r in receiver.received}) == 1
    for request in receiver.received:
        assert_signed(request, created["secret"])
    log = (await client.get(f"/v1/webhooks/{created['id']}/deliveries", headers=ADMIN)).json()
    (entry,) = log["items"]
    assert (entry["status"], entry["attempts"]) == ("delivered", 3)
    assert (entry["last_status_code"], entry["last_error"]) == (200, None)


async def test_a_receiver_that_always_fails_ends_failed_and_logged(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    await province_with_communes(client)
    created = await hook(client, "H01", ["dossier.overdue"], "h01.example")
    for n in range(3):
        await overdue(engine, "H01.01", f"D{n}")
    receiver = Receiver(default=503)
    worker = await run_worker(settings, engine, receiver)
    assert len(receiver.received) == 3 * FAST.max_attempts
    assert worker.jobs_failed == 0  # arq's job ended; the delivery itself is marked failed

    path = f"/v1/webhooks/{created['id']}/deliveries"
    log = (await client.get(path, params={"limit": 2}, headers=ADMIN)).json()
    assert [e["dedupe_key"] for e in log["items"]] == ["D2:2026-03-05", "D1:2026-03-05"]
    rest = (await client.get(path, params={"cursor": log["next"]}, headers=ADMIN)).json()
    assert [e["dedupe_key"] for e in rest["items"]] == ["D0:2026-03-05"]
    assert rest["next"] is None
    for entry in log["items"] + rest["items"]:
        assert (entry["status"], entry["attempts"]) == ("failed", FAST.max_attempts)
        assert entry["last_status_code"] == 503
        assert entry["last_error"] == "HTTP 503 receiver says no"
        assert entry["next_attempt_at"] is None
    failed = await client.get(path, params={"status": "failed"}, headers=ADMIN)
    assert len(failed.json()["items"]) == 3
    delivered = await client.get(path, params={"status": "delivered"}, headers=ADMIN)
    assert delivered.json()["items"] == []


async def test_a_disabled_webhook_gets_nothing_more(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    await province_with_communes(client)
    created = await hook(client, "H01", ["dossier.overdue"], "h01.example")
    await overdue(engine, "H01.01", "D1")  # queued while the webhook was active
    await client.delete(f"/v1/webhooks/{created['id']}", headers=ADMIN)
    assert await overdue(engine, "H01.01", "D2") == 0

    receiver = Receiver()
    await run_worker(settings, engine, receiver)
    assert receiver.received == []
    log = (await client.get(f"/v1/webhooks/{created['id']}/deliveries", headers=ADMIN)).json()
    (entry,) = log["items"]
    assert (entry["status"], entry["attempts"], entry["last_error"]) == (
        "failed", 0, "webhook disabled"
    )  # fmt: skip


async def test_notifications_wait_in_the_outbox_while_redis_is_down(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    await province_with_communes(client)
    created = await hook(client, "H01", ["dossier.overdue"], "h01.example")
    await overdue(engine, "H01.01", "D1")  # the sweep commits while Redis is stopped ...
    sessionmaker = create_sessionmaker(engine)
    dead = create_queue("redis://127.0.0.1:1/0")
    assert await relay(sessionmaker, dead) == 0  # ... so its relay cannot hand the job over
    await dead.aclose()
    assert await count(engine, "SELECT count(*) FROM outbox") == 1
    assert await count(engine, "SELECT count(*) FROM webhook_deliveries") == 1

    live = create_queue(settings.redis_url or "")  # Redis is back
    assert await relay(sessionmaker, live) == 1
    await live.aclose()
    assert await count(engine, "SELECT count(*) FROM outbox") == 0
    receiver = Receiver()
    await run_worker(settings, engine, receiver)
    (request,) = receiver.received
    assert_signed(request, created["secret"])
    log = (await client.get(f"/v1/webhooks/{created['id']}/deliveries", headers=ADMIN)).json()
    assert log["items"][0]["status"] == "delivered"


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(base_delay=10, max_delay=3600)
    for attempt, ceiling in [(1, 10), (2, 20), (3, 40), (9, 2560), (10, 3600), (60, 3600)]:
        delays: list[float] = [policy.delay(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), (attempt, delays)
        assert len(set(delays)) > 1  # jittered


async def test_two_copies_of_a_job_never_post_at_once(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    from app.webhooks.repository import Claimed
    from app.webhooks.service import Wait, begin_attempt

    await province_with_communes(client)
    await hook(client, "H01", ["dossier.overdue"], "h01.example")
    await overdue(engine, "H01.01", "D1")
    delivery_id = await count(engine, "SELECT id FROM webhook_deliveries")
    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker() as first, sessionmaker() as second:
        claimed = await begin_attempt(first, delivery_id, FAST)
        await first.commit()
        waiting = await begin_attempt(second, delivery_id, FAST)
        await second.commit()
    assert isinstance(claimed, Claimed) and claimed.attempt == 1
    # The second copy looks again when the first one's lease runs out.
    assert isinstance(waiting, Wait)
    assert FAST.lease - 5 < waiting.seconds <= FAST.lease + 1


async def test_units_subscribed_to_a_kind(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    from app.webhooks.service import subscribed_units

    await province_with_communes(client)
    await hook(client, "H01", ["digest.daily", "dossier.overdue"], "a.example")
    await hook(client, "H01", ["digest.daily"], "b.example")
    await hook(client, "H01.02", ["digest.daily"], "c.example")
    await hook(client, "H05", ["dossier.overdue"], "d.example")
    gone = await hook(client, "H05.01", ["digest.daily"], "e.example")
    await client.delete(f"/v1/webhooks/{gone['id']}", headers=ADMIN)
    async with create_sessionmaker(engine)() as session:
        assert await subscribed_units(session, "digest.daily") == ["H01", "H01.02"]
        assert await subscribed_units(session, "dossier.due_soon") == []
        with pytest.raises(ValueError):
            await subscribed_units(session, "dossier.lost")
