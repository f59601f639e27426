"""From the sweep to the subscriber: overdue notices and the daily digest, signed, delivered
even when Redis was unreachable at the moment the sweep committed."""

from __future__ import annotations

import hashlib
import hmac

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import create_sessionmaker
from app.core.queue import create_queue
from app.core.settings import Settings
from app.dossiers.jobs import sweep_overdue
from app.webhooks.jobs import daily_digest
from tests.helpers import ADMIN, event, post_events, province_with_communes, put_procedure, vn
from tests.webhooks.test_delivery import Receiver, run_worker

SECRET = "whsec_test_0123456789abcdef"


async def subscribe(client: httpx.AsyncClient, unit: str, kinds: list[str], host: str) -> None:
    response = await client.post(
        "/v1/webhooks",
        json={"url": f"https://{host}/hook", "unit_code": unit, "kinds": kinds, "secret": SECRET},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text


def verified(request: httpx.Request) -> dict[str, object]:
    """Check the signature as a receiver would: HMAC-SHA256 over "<t>.<body>"."""
    parts = dict(p.split("=", 1) for p in request.headers["x-chiso-signature"].split(","))
    expected = hmac.new(
        SECRET.encode(), f"{parts['t']}.".encode() + request.content, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    body: dict[str, object] = orjson.loads(request.content)
    return body


async def test_overdue_notices_survive_a_redis_outage_at_sweep_time(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    await province_with_communes(client)
    await put_procedure(client, "P3", 3, "working_days")
    await subscribe(client, "H01", ["dossier.overdue"], "an-giang.example")
    await subscribe(client, "H05", ["dossier.overdue"], "bac-ninh.example")
    # Received Mon 2 Mar → due Thu 5 Mar 17:00 in commune H01.01 (below province H01).
    await post_events(client, [event("a", "H01.01-A", 2, "2026-03-02 08:00")])

    dead_redis = create_queue("redis://127.0.0.1:1/0")
    ctx = {
        "sessionmaker": create_sessionmaker(engine),
        "settings": settings,
        "clock": lambda: vn("2026-03-06 08:00"),
        "redis": dead_redis,
    }
    report = await sweep_overdue(ctx)
    await dead_redis.aclose()
    assert report == {"overdue": 1, "due_soon": 0, "notifications": 1}
    async with engine.connect() as conn:
        waiting = (await conn.execute(text("SELECT function FROM outbox"))).scalars().all()
    assert waiting == ["deliver_webhook"]  # kept in PostgreSQL while Redis was away

    receiver = Receiver()
    await run_worker(settings, engine, receiver)  # Redis is back: relay, then deliver
    [request] = receiver.received
    assert request.url.host == "an-giang.example"
    body = verified(request)
    assert body["kind"] == "dossier.overdue"
    assert body["data"]["dossier_code"] == "H01.01-A"  # type: ignore[index]
    # A second sweep finds nothing new, so nobody hears about it twice.
    assert (await sweep_overdue(ctx))["overdue"] == 0


async def test_daily_digest_counts_the_subtree(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    await province_with_communes(client)
    await put_procedure(client, "P3", 3, "working_days")
    await subscribe(client, "H01", ["digest.daily"], "an-giang.example")
    await post_events(client, [
        # Overdue at Fri 6 Mar 07:30 (due Thu 5 Mar 17:00), one with an apology letter.
        event("a", "H01.01-A", 2, "2026-03-02 08:00"),
        event("b1", "H01.01-B", 2, "2026-03-02 08:00", unit="H01.01.MC"),
        event("b2", "H01.01-B", 4, "2026-03-05 08:00", unit="H01.01.MC",
              apology_issued_at="2026-03-05 08:00"),
        # Received Tue 3 Mar → due Fri 6 Mar 17:00: due within 8 working hours of 07:30.
        event("c", "H01.02-C", 2, "2026-03-03 08:00", unit="H01.02"),
        # Another province: not in H01's digest.
        event("d", "H05.01-D", 2, "2026-03-02 08:00", unit="H05.01"),
    ])  # fmt: skip
    ctx = {
        "sessionmaker": create_sessionmaker(engine),
        "settings": settings,
        "clock": lambda: vn("2026-03-06 07:30"),
    }
    assert await daily_digest(ctx) == 1
    assert await daily_digest(ctx) == 0  # once per unit and day
    receiver = Receiver()
    await run_worker(settings, engine, receiver)
    [request] = receiver.received
    body = verified(request)
    assert body["kind"] == "digest.daily"
    assert body["data"] == {
        "kind": "digest.daily", "unit_code": "H01", "date": "2026-03-06", "open": 3,
        "overdue": 2, "overdue_without_apology": 1, "due_soon": 1,
    }  # fmt: skip
