"""Every stored event reaches its dossier's derived state, whatever the interleaving.

The queue row of a dossier is the promise that it will be derived again. A worker claims
(deletes) the row, reads the history and writes the state in one transaction; an event
committed meanwhile must leave the dossier queued again, never behind a derivation that
could not see it. A periodic check catches anything that escaped (and counts it).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import create_sessionmaker
from app.core.settings import Settings
from app.dossiers import repository, service
from app.dossiers.jobs import check_derived_states, derive_dossiers
from app.dossiers.service import ingest
from tests.helpers import ADMIN, event, province_with_communes, put_procedure


@pytest.fixture
async def setup(client: httpx.AsyncClient) -> None:
    await province_with_communes(client)
    await put_procedure(client, "P3", 3, "working_days")


def _ctx(engine: AsyncEngine, settings: Settings, **updates: Any) -> dict[str, Any]:
    return {
        "sessionmaker": create_sessionmaker(engine),
        "settings": settings.model_copy(update=updates),
    }


async def stale_dossiers(engine: AsyncEngine, settings: Settings) -> list[str]:
    """Dossiers whose stored state differs from a fresh derivation of their whole history."""
    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker() as session:
        codes = list(
            (await session.execute(text("SELECT DISTINCT dossier_code FROM dossier_events")))
            .scalars()
            .all()
        )
        stored = {
            r.code: (r.status, r.event_count, r.end_at, r.due_at, r.derived_through)
            for r in await session.execute(
                text(
                    "SELECT code, status, event_count, end_at, due_at, derived_through "
                    "FROM dossiers"
                )
            )
        }
        calendar = await service.current_calendar(session, settings)
        fresh = await service.derive_states(session, calendar, service.rules_from(settings), codes)
    return sorted(
        s.code
        for s in fresh
        if stored.get(s.code) != (s.status, s.event_count, s.end_at, s.due_at, s.derived_through)
    )


async def test_an_event_stored_while_a_worker_derives_its_dossier_is_derived_again(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, setup: None
) -> None:
    code = "H01.01-260302-0001"
    first = event("a1", code, 2, "2026-03-02 08:00")
    assert (await client.post("/v1/dossier-events", json=first, headers=ADMIN)).status_code == 202
    sessionmaker = create_sessionmaker(engine)

    # The worker claims the dossier and reads its history (one event) …
    async with sessionmaker() as worker:
        assert await repository.take_backlog(worker, 10) == [code]
        await service.derive_locked(worker, settings, [code])

        # … while the desk stores the dossier's last event in its own transaction.
        async def store_last() -> None:
            async with sessionmaker() as api:
                from app.dossiers.schemas import DossierEventIn

                last = DossierEventIn.model_validate(event("a2", code, 10, "2026-03-03 09:00"))
                from app.core.auth import ADMIN as ADMIN_PRINCIPAL

                await ingest(api, settings, ADMIN_PRINCIPAL, [last])
                await api.commit()

        desk = asyncio.create_task(store_last())
        await asyncio.sleep(0.3)  # the desk's queue row waits for the worker's claim
        await worker.commit()
    await desk

    async with sessionmaker() as session:
        queued = (await session.execute(text("SELECT dossier_code FROM dossier_backlog"))).all()
    assert queued == [(code,)]  # queued again: the promise survives the worker's claim
    assert await derive_dossiers(_ctx(engine, settings)) == 1
    async with sessionmaker() as session:
        status = (await session.execute(text("SELECT status FROM dossiers"))).scalar_one()
    assert status == 10
    assert await stale_dossiers(engine, settings) == []


async def test_concurrent_ingestion_and_derivation_leave_no_stale_state(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, setup: None
) -> None:
    """8 writers post 2,400 events for 200 shared dossiers in overlapping, shuffled batches
    while two workers derive in small chunks: at the end every state equals a fresh
    derivation, nothing is left queued or lost, and no request failed."""
    rng = random.Random(13)
    statuses = [
        (2, "2026-03-02 08:00"), (4, "2026-03-02 10:00"), (5, "2026-03-03 09:00"),
        (4, "2026-03-04 09:00"), (9, "2026-03-05 10:00"), (10, "2026-03-05 15:00"),
    ]  # fmt: skip
    events = [
        event(f"c-{n}-{k}", f"H01.01-260302-{n:04d}", status, at)
        for n in range(200)
        for k, (status, at) in enumerate(statuses)
    ]
    writers: list[list[dict[str, Any]]] = []
    for _ in range(8):
        share = rng.sample(events, 300)  # overlapping: an event is often sent by several
        writers.append(share)

    done = asyncio.Event()

    async def work(ctx: dict[str, Any]) -> None:
        while not done.is_set():
            await derive_dossiers(ctx)
            await asyncio.sleep(0.01)

    async def write(share: list[dict[str, Any]]) -> list[int]:
        codes = []
        for start in range(0, len(share), 50):
            response = await client.post(
                "/v1/dossier-events/batch",
                json={"events": share[start : start + 50]},
                headers=ADMIN,
            )
            codes.append(response.status_code)
        return codes

    workers = [asyncio.create_task(work(_ctx(engine, settings, derive_chunk=7))) for _ in range(2)]
    answers = await asyncio.gather(*(write(share) for share in writers))
    # Whatever was not sent by anyone is sent now, so every dossier ends complete.
    rest = await client.post("/v1/dossier-events/batch", json={"events": events}, headers=ADMIN)
    done.set()
    await asyncio.gather(*workers)
    assert {code for codes in answers for code in codes} | {rest.status_code} == {200}
    await derive_dossiers(_ctx(engine, settings))

    async with engine.connect() as conn:
        stored = (await conn.execute(text("SELECT count(*) FROM dossier_events"))).scalar()
        queued = (await conn.execute(text("SELECT count(*) FROM dossier_backlog"))).scalar()
    assert (stored, queued) == (1200, 0)
    assert await stale_dossiers(engine, settings) == []
    assert await check_derived_states(_ctx(engine, settings)) == 0


async def test_the_check_requeues_a_dossier_whose_state_lags_its_history(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, setup: None
) -> None:
    code = "H01.01-260302-0007"
    events = [event("l1", code, 2, "2026-03-02 08:00"), event("l2", code, 9, "2026-03-03 08:00")]
    await client.post("/v1/dossier-events/batch", json={"events": events[:1]}, headers=ADMIN)
    await derive_dossiers(_ctx(engine, settings))
    await client.post("/v1/dossier-events/batch", json={"events": events[1:]}, headers=ADMIN)
    async with engine.begin() as conn:  # a lost queue row: what the check exists for
        await conn.execute(text("DELETE FROM dossier_backlog"))
    assert await stale_dossiers(engine, settings) == [code]

    # The check passes over events only once they are old enough: with no margin it sees all.
    async with create_sessionmaker(engine)() as session:
        found, through = await repository.requeue_lagging(session, margin_seconds=0)
        await session.commit()
    assert (found, through) == (1, 2)
    assert await derive_dossiers(_ctx(engine, settings)) == 1
    assert await stale_dossiers(engine, settings) == []
    async with create_sessionmaker(engine)() as session:  # nothing new since the watermark
        assert await repository.requeue_lagging(session, margin_seconds=0) == (0, 2)


async def test_overlapping_concurrent_batches_never_fail(
    client: httpx.AsyncClient, engine: AsyncEngine, setup: None
) -> None:
    """Batches touching the same dossiers and ids in opposite orders wait for each other
    (locks in one order; a lost race is retried), so none answers 5xx."""
    base = [event(f"o-{n}", f"H01.01-260302-{n:04d}", 2, "2026-03-02 08:00") for n in range(150)]
    orders = [base, base[::-1], base[75:] + base[:75], base[::2] + base[1::2]] * 6
    answers = await asyncio.gather(
        *(
            client.post("/v1/dossier-events/batch", json={"events": order}, headers=ADMIN)
            for order in orders
        )
    )
    assert [a.status_code for a in answers] == [200] * len(orders)
    stored = sum(a.json()["stored"] for a in answers)
    duplicates = sum(a.json()["duplicate"] for a in answers)
    assert (stored, duplicates) == (150, 150 * len(orders) - 150)
