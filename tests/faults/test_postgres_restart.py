"""PostgreSQL restarted under concurrent event batches posted to a real API process."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.faults.conftest import Stack, record_result
from tests.faults.load import Tally, run_clients, stored

pytestmark = pytest.mark.faults

OUTAGE_SECONDS = 3.0


async def test_a_postgres_restart_loses_nothing_acknowledged_and_answers_503_meanwhile(
    stack: Stack, engine: AsyncEngine
) -> None:
    api = await stack.start_api(db_pool_size="4", db_max_overflow="4")
    tally = Tally()
    over = asyncio.Event()  # the clients post until PostgreSQL is back

    async def outage() -> None:
        await tally.first_ack.wait()
        await asyncio.sleep(0.5)
        await asyncio.to_thread(stack.pg.stop)
        await asyncio.sleep(OUTAGE_SECONDS)
        await asyncio.to_thread(stack.pg.start)
        over.set()

    load = run_clients(
        f"http://127.0.0.1:{api.port}", tally, clients=6, batches=25, size=40, budget=120,
        until=over,
    )  # fmt: skip
    await asyncio.gather(load, outage())

    count, twice = await stored(engine, tally.acknowledged)
    record_result("postgres_restart", tally.counts(count, twice) | {"outage_s": OUTAGE_SECONDS})
    assert not tally.unexpected, tally.unexpected[:5]  # no 500, no give-up
    assert not tally.bad_outage_answers, tally.bad_outage_answers[:3]
    assert tally.statuses[503] > 0, "the outage was not observed by any request"
    assert "ReadTimeout" not in tally.transport_errors  # never a hang
    assert tally.acknowledged == tally.sent  # every batch succeeded on retry
    assert (count, twice) == (len(tally.acknowledged), 0)  # stored exactly once
    assert api.alive()
