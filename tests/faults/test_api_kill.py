"""The API process SIGKILLed under load: no acknowledged event is missing afterwards."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.faults.conftest import Stack, record_result
from tests.faults.load import Tally, run_clients, stored

pytestmark = pytest.mark.faults


async def test_killing_the_api_under_load_loses_no_acknowledged_event(
    stack: Stack, engine: AsyncEngine
) -> None:
    api = await stack.start_api()
    port = api.port
    tally = Tally()
    kills = 0
    over = asyncio.Event()  # the clients post until the API is back

    async def crash() -> None:
        nonlocal kills
        await tally.first_ack.wait()
        await asyncio.sleep(0.3)  # batches are acknowledged in milliseconds: kill while busy
        acknowledged_before = len(tally.acknowledged)
        await asyncio.to_thread(api.kill)  # mid-request: some batches are cut off
        kills += 1
        await asyncio.sleep(1.0)
        restarted = await stack.start_api(port=port)
        over.set()
        assert restarted.alive()
        assert acknowledged_before > 0

    await asyncio.gather(
        run_clients(
            f"http://127.0.0.1:{port}",
            tally,
            clients=6,
            batches=60,
            size=40,
            budget=120,
            until=over,
        ),
        crash(),
    )
    count, twice = await stored(engine, tally.acknowledged)
    record_result("api_kill", tally.counts(count, twice) | {"kills": kills})
    assert kills == 1
    assert sum(tally.transport_errors.values()) > 0, "no request noticed the crash"
    assert not tally.unexpected, tally.unexpected[:5]
    assert tally.acknowledged == tally.sent
    assert (count, twice) == (len(tally.acknowledged), 0)
