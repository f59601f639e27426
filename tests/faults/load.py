"""Concurrent clients that post event batches and retry until each batch is acknowledged."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import ADMIN

UNIT = "H01"  # shipped provinces and procedures are loaded into every fault database
PROCEDURE = "1.000894"
START = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


@dataclass
class Tally:
    sent: set[str] = field(default_factory=set)
    acknowledged: set[str] = field(default_factory=set)
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)
    bad_outage_answers: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    first_ack: asyncio.Event = field(default_factory=asyncio.Event)

    def counts(self, stored: int, duplicates: int) -> dict[str, Any]:
        return {
            "events_sent": len(self.sent),
            "events_acknowledged": len(self.acknowledged),
            "events_stored": stored,
            "stored_twice": duplicates,
            "requests": self.requests,
            "answers": {str(k): v for k, v in sorted(self.statuses.items())},
            "transport_errors": dict(self.transport_errors),
        }


def batch_events(client: int, batch: int, size: int) -> list[dict[str, Any]]:
    """Events of dossiers shared by every client, so concurrent batches contend for rows."""
    events = []
    for k in range(size):
        dossier = f"H01-F{(batch * size + k) % 97:03d}"
        at = START + timedelta(minutes=client * 10_000 + batch * size + k)
        events.append(
            {
                "event_id": f"c{client}-b{batch}-e{k}",
                "dossier_code": dossier,
                "unit_code": UNIT,
                "procedure_code": PROCEDURE,
                "status": 2 if k % 3 else 4,
                "occurred_at": at.isoformat(),
                "channel": 1 + k % 3,
            }
        )
    return events


async def post_until_acknowledged(
    http: httpx.AsyncClient, events: list[dict[str, Any]], tally: Tally, deadline: float
) -> None:
    tally.sent.update(e["event_id"] for e in events)
    while time.monotonic() < deadline:
        tally.requests += 1
        try:
            response = await http.post(
                "/v1/dossier-events/batch", json={"events": events}, headers=ADMIN
            )
        except httpx.TransportError as exc:  # refused while the API is down, or cut mid-way
            tally.transport_errors[type(exc).__name__] += 1
            await asyncio.sleep(0.2)
            continue
        tally.statuses[response.status_code] += 1
        if response.status_code == 200:
            for item in response.json()["items"]:
                if item["result"] in ("stored", "duplicate"):
                    tally.acknowledged.add(item["event_id"])
                else:
                    tally.unexpected.append(f"rejected: {item}")
            tally.first_ack.set()
            return
        if response.status_code == 503:
            if response.headers.get("content-type") != "application/problem+json" or not (
                response.headers.get("retry-after")
            ):
                tally.bad_outage_answers.append(f"{response.headers} {response.text[:200]}")
            await asyncio.sleep(0.2)
            continue
        tally.unexpected.append(f"{response.status_code}: {response.text[:300]}")
        await asyncio.sleep(0.2)
    tally.unexpected.append("gave up: deadline passed")


async def run_clients(
    base_url: str,
    tally: Tally,
    *,
    clients: int,
    batches: int,
    size: int,
    budget: float,
    until: asyncio.Event | None = None,
) -> None:
    """Each client posts ``batches`` batches one after the other — and, with ``until``, goes
    on posting new ones until it is set (the fault is over), however fast the machine
    acknowledges them: a fault that starts after the load has finished tests nothing."""
    deadline = time.monotonic() + budget

    def more(batch: int) -> bool:
        if batch < batches:
            return True
        return until is not None and not until.is_set() and time.monotonic() < deadline

    async def client(number: int) -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=20) as http:
            batch = 0
            while more(batch):
                await post_until_acknowledged(
                    http, batch_events(number, batch, size), tally, deadline
                )
                batch += 1

    await asyncio.gather(*(client(n) for n in range(clients)))


async def stored(engine: AsyncEngine, event_ids: set[str]) -> tuple[int, int]:
    """(how many of these events are stored, how many rows beyond one per event_id)."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT count(*) FILTER (WHERE event_id = ANY(:ids)), "
                    "count(*) - count(DISTINCT event_id) FROM dossier_events"
                ),
                {"ids": sorted(event_ids)},
            )
        ).one()
    return int(row[0]), int(row[1])
