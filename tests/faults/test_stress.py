"""Stress: many events from many clients while the worker derives throughout and Redis stops
for a while. At the end no dossier's state differs from a fresh derivation of its history, no
answer was a 5xx, and the worker is still running.

``CHISO_STRESS_EVENTS`` sets the size (default 12,000 in ``make test``; the figures in
docs/RELIABILITY.md come from a run with 100,000).
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.dossiers.test_consistency import stale_dossiers
from tests.faults.conftest import Stack, record_result
from tests.faults.load import PROCEDURE, UNIT, Tally, post_until_acknowledged, stored

pytestmark = pytest.mark.faults

EVENTS = int(os.environ.get("CHISO_STRESS_EVENTS", "12000"))
CLIENTS = 8
BATCH = 250
STATUSES = (2, 4, 5, 4, 9, 10)  # each dossier's life, one event per status
START = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def planned() -> list[dict[str, Any]]:
    """Every event of the run: dossiers of six events each, times a few hours apart."""
    events = []
    for n in range(EVENTS // len(STATUSES)):
        for k, status in enumerate(STATUSES):
            events.append(
                {
                    "event_id": f"s{n}-{k}",
                    "dossier_code": f"H01-S{n:06d}",
                    "unit_code": UNIT,
                    "procedure_code": PROCEDURE,
                    "status": status,
                    "occurred_at": (START + timedelta(hours=3 * k, minutes=n % 600)).isoformat(),
                    "channel": 1 + n % 3,
                }
            )
    return events


async def test_a_stress_run_leaves_no_stale_dossier_no_5xx_and_a_live_worker(
    stack: Stack, engine: AsyncEngine
) -> None:
    api = await stack.start_api()
    worker = stack.start_worker()
    base_url = f"http://127.0.0.1:{api.port}"
    events = planned()
    # Each client sends its own slice shuffled by batch and half of its neighbour's slice
    # again, so batches overlap in dossiers and ids while the worker derives.
    slices = [events[c::CLIENTS] for c in range(CLIENTS)]
    shares = [
        slices[c][::-1] + slices[(c + 1) % CLIENTS][: len(slices[c]) // 2] for c in range(CLIENTS)
    ]
    tally = Tally()

    async def client(share: list[dict[str, Any]]) -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
            for start in range(0, len(share), BATCH):
                await post_until_acknowledged(
                    http, share[start : start + BATCH], tally, time.monotonic() + 300
                )

    started = time.monotonic()
    clients = asyncio.gather(*(client(share) for share in shares))
    await tally.first_ack.wait()
    await asyncio.sleep(2)
    await asyncio.to_thread(stack.redis.stop)
    await asyncio.sleep(8)
    await asyncio.to_thread(stack.redis.start)
    await clients
    posted_s = time.monotonic() - started

    settings = Settings(environment="test", admin_token=SecretStr(ADMIN_TOKEN))
    deadline = time.monotonic() + 600
    while await stale_dossiers(engine, settings) and time.monotonic() < deadline:
        assert worker.alive(), worker.tail()
        await asyncio.sleep(2)
    stale = await stale_dossiers(engine, settings)
    derived_s = time.monotonic() - started
    count, twice = await stored(engine, tally.acknowledged)
    record_result(
        "stress",
        tally.counts(count, twice)
        | {"stale_dossiers": len(stale), "worker_alive": worker.alive(),
           "posted_s": round(posted_s, 1), "all_derived_s": round(derived_s, 1)},
    )  # fmt: skip
    assert stale == []
    assert not tally.unexpected, tally.unexpected[:5]
    assert not tally.bad_outage_answers, tally.bad_outage_answers[:3]
    assert not [s for s in tally.statuses if s >= 500], tally.statuses
    assert (count, twice) == (len(events), 0)
    assert worker.alive(), worker.tail()
