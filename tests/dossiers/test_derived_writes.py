"""How derived states are written: only what changed, and the same states as the first
write path (insert a skeleton row, then update it from arrays) wrote."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.database import create_sessionmaker
from app.core.settings import Settings
from app.core.sql import columns_of, unnest_arrays
from app.dossiers import repository, service
from app.dossiers.jobs import derive_dossiers
from app.dossiers.timeline import EventRecord, derive, order
from tests.helpers import ADMIN, event, province_with_communes, put_procedure, vn


@pytest.fixture
async def setup(client: httpx.AsyncClient) -> None:
    await province_with_communes(client)
    await put_procedure(client, "P3", 3, "working_days")


def _ctx(engine: AsyncEngine, settings: Settings) -> dict[str, Any]:
    return {"sessionmaker": create_sessionmaker(engine), "settings": settings}


async def _row(engine: AsyncEngine, code: str) -> Any:
    async with engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT CAST(xmin AS text) AS version, updated_at, status, event_count, "
                "received_at, end_at FROM dossiers WHERE code = :code"
            ),
            {"code": code},
        )
        return result.one()


async def test_a_rederivation_that_changes_nothing_writes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, setup: None
) -> None:
    code = "H01.01-260302-0001"
    opening = [event("w1", code, 2, "2026-03-02 08:00"), event("w2", code, 4, "2026-03-02 09:00")]
    await client.post("/v1/dossier-events/batch", json={"events": opening}, headers=ADMIN)
    assert await derive_dossiers(_ctx(engine, settings)) == 1
    first = await _row(engine, code)
    assert (first.status, first.event_count, first.received_at, first.end_at) == (
        4, 2, vn("2026-03-02 08:00"), None,
    )  # fmt: skip

    # Queued again (as the periodic check or a calendar change may): derived, not rewritten.
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO dossier_backlog (dossier_code) VALUES (:c)"), {"c": code}
        )
    assert await derive_dossiers(_ctx(engine, settings)) == 1
    again = await _row(engine, code)
    assert (again.version, again.updated_at) == (first.version, first.updated_at)

    async with create_sessionmaker(engine)() as session:
        calendar = await service.current_calendar(session, settings)
        states = await service.derive_states(
            session, calendar, service.rules_from(settings), [code]
        )
        assert await repository.save_states(session, states) == 0  # no row written
        await session.rollback()

    # A new event changes the state: written once.
    finished = [event("w3", code, 9, "2026-03-03 10:00")]
    await client.post("/v1/dossier-events/batch", json={"events": finished}, headers=ADMIN)
    assert await derive_dossiers(_ctx(engine, settings)) == 1
    changed = await _row(engine, code)
    assert changed.version != first.version
    assert (changed.status, changed.event_count, changed.end_at) == (9, 3, vn("2026-03-03 10:00"))


# --- the first write path, as it was, to compare the states written -------------------------

_OLD_HISTORY = text(
    """
    SELECT dossier_code, id, event_id, status, occurred_at, channel, unit_code,
           procedure_code, due_at, received_at, supplement_supplied_at,
           supplement_new_due_at, fee_paid_at, apology_issued_at, apology_new_due_at,
           applicant_kind, paid_online, has_digitized_parts, time_inferred, recorded_at
    FROM dossier_events WHERE dossier_code = ANY(CAST(:codes AS text[]))
    """
)
_OLD_SKELETONS = text(
    """
    INSERT INTO dossiers (code, unit_code, procedure_code, status, channel,
                          first_event_at, last_event_at)
    SELECT DISTINCT ON (e.dossier_code) e.dossier_code, o.unit_code, e.procedure_code,
           e.status, e.channel, e.occurred_at, e.occurred_at
    FROM dossier_events e JOIN dossier_owners o ON o.code = e.dossier_code
    WHERE e.dossier_code = ANY(CAST(:codes AS text[]))
    ORDER BY e.dossier_code, e.occurred_at, e.id
    ON CONFLICT (code) DO NOTHING
    """
)
_COLUMNS = repository._STATE_COLUMNS
_OLD_UPDATE = text(
    "UPDATE dossiers SET "
    "overdue_since = CASE WHEN dossiers.overdue_at IS DISTINCT FROM v.overdue_at "
    "THEN NULL ELSE dossiers.overdue_since END, "
    "due_soon_since = CASE WHEN dossiers.due_at IS DISTINCT FROM v.due_at "
    "THEN NULL ELSE dossiers.due_soon_since END, "
    + ", ".join(
        f"{c} = v.{c}::jsonb" if t == "jsonb" else f"{c} = v.{c}"
        for c, t in _COLUMNS.items()
        if c != "code"
    )
    + f", updated_at = now() FROM unnest({unnest_arrays(_COLUMNS)}) AS v({', '.join(_COLUMNS)}) "
    "WHERE dossiers.code = v.code"
)


async def _old_path(session: AsyncSession, settings: Settings, codes: list[str]) -> None:
    await session.execute(_OLD_SKELETONS, {"codes": codes})
    await repository.lock_existing(session, codes)
    histories: dict[str, list[EventRecord]] = {}
    for row in await session.execute(_OLD_HISTORY, {"codes": codes}):
        values = row._asdict()
        histories.setdefault(values.pop("dossier_code"), []).append(EventRecord(**values))
    owners = {
        r.code: r.unit_code
        for r in await session.execute(
            text("SELECT code, unit_code FROM dossier_owners WHERE code = ANY(:codes)"),
            {"codes": codes},
        )
    }
    limits = await repository.limits(
        session, {e.procedure_code for stored in histories.values() for e in stored}
    )
    calendar = await service.current_calendar(session, settings)
    rules = service.rules_from(settings)
    values = []
    for code, stored in histories.items():
        history = order(stored)
        limit = limits.get(history[-1].procedure_code)
        state = derive(code, history, limit, calendar, rules, owners.get(code))
        row = repository.state_values(state)
        row["pauses"] = json.dumps(row["pauses"])
        row["anomalies"] = json.dumps(row["anomalies"], ensure_ascii=False)
        values.append(row)
    await session.execute(_OLD_UPDATE, columns_of(values, _COLUMNS))


async def _states(session: AsyncSession) -> list[tuple[Any, ...]]:
    rows = await session.execute(
        text(
            "SELECT code, unit_code, procedure_code, status, channel, received_at, base_due_at, "
            "due_at, end_at, end_status, outcome, counted, clock_stopped_at, overdue_at, "
            "overdue_since, due_soon_since, supplement_requests, paused_seconds, "
            "CAST(pauses AS text), apology_issued_at, apology_new_due_at, "
            "CAST(anomalies AS text), applicant_kind, paid_online, has_digitized_parts, "
            "first_event_at, last_event_at, event_count, derived_through "
            "FROM dossiers ORDER BY code"
        )
    )
    return [tuple(r) for r in rows]


def _histories(rng: random.Random, codes: list[str], start: datetime, tag: str) -> list[tuple]:
    """Random events (any status in any order, with or without the optional dates) for
    ``codes``, as dossier_events rows."""
    rows = []
    for code in codes:
        unit = rng.choice(["H01.01", "H01.02"])
        for n in range(rng.randint(1, 6)):
            at = start + timedelta(hours=rng.randint(0, 24 * 20), minutes=rng.choice([0, 30]))

            def maybe(hours: int, at: datetime = at) -> datetime | None:
                return at + timedelta(hours=hours) if rng.random() < 0.15 else None

            rows.append((
                f"{tag}{n}", code, rng.choice([unit, "H01.02"]), rng.choice(["P3", "P3", "PX"]),
                rng.randint(1, 10), at, rng.randint(1, 3), maybe(72), maybe(-2), maybe(30),
                maybe(40), maybe(5), maybe(10), maybe(100), rng.choice([None, 1, 2]),
                rng.choice([None, True, False]), rng.random() < 0.1,
            ))  # fmt: skip
    return rows


_INSERT_EVENTS = text(
    """
    INSERT INTO dossier_events (event_id, dossier_code, unit_code, procedure_code, status,
        occurred_at, channel, due_at, received_at, supplement_supplied_at,
        supplement_new_due_at, fee_paid_at, apology_issued_at, apology_new_due_at,
        applicant_kind, paid_online, time_inferred)
    VALUES (:e, :d, :u, :p, :s, :o, :c, :due, :rec, :sup, :supdue, :fee, :apo, :apodue,
            :kind, :online, :inferred)
    """
)


async def _store(engine: AsyncEngine, rows: list[tuple]) -> None:
    keys = ("e", "d", "u", "p", "s", "o", "c", "due", "rec", "sup", "supdue", "fee", "apo",
            "apodue", "kind", "online", "inferred")  # fmt: skip
    async with engine.begin() as conn:
        await conn.execute(_INSERT_EVENTS, [dict(zip(keys, r, strict=True)) for r in rows])
        await conn.execute(
            text(
                "INSERT INTO dossier_owners (code, unit_code) SELECT DISTINCT ON (dossier_code) "
                "dossier_code, unit_code FROM dossier_events ORDER BY dossier_code, id "
                "ON CONFLICT DO NOTHING"
            )
        )


async def _both_paths(
    engine: AsyncEngine, settings: Settings, codes: list[str]
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The states the old path would write (rolled back), then those the new one writes."""
    sessions = create_sessionmaker(engine)
    async with sessions() as session:
        await _old_path(session, settings, codes)
        old = await _states(session)
        await session.rollback()
    async with sessions() as session:
        await service.derive_locked(session, settings, codes)
        new = await _states(session)
        await session.commit()
    return old, new


async def test_the_states_written_are_those_the_first_write_path_wrote(
    engine: AsyncEngine, settings: Settings, setup: None
) -> None:
    rng = random.Random(20261130)
    codes = [f"H01.01-260302-{n:04d}" for n in range(300)]
    await _store(engine, _histories(rng, codes, vn("2026-03-02 08:00"), "a"))

    old, new = await _both_paths(engine, settings, codes)  # every dossier new
    assert len(new) == 300
    assert new == old

    # Flags set by a sweep, then more events for half the dossiers: moved deadlines clear them.
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE dossiers SET overdue_since = now(), due_soon_since = now()")
        )
        versions = dict((await conn.execute(text("SELECT code, xmin::text FROM dossiers"))).all())
    more = codes[::2]
    await _store(engine, _histories(rng, more, vn("2026-03-10 08:00"), "b"))
    old, new = await _both_paths(engine, settings, codes)
    assert new == old
    assert any(row[14] is None for row in new) and any(row[14] is not None for row in new)
    async with engine.connect() as conn:
        after = dict((await conn.execute(text("SELECT code, xmin::text FROM dossiers"))).all())
    # The dossiers without new events kept their rows as they were; the others were written.
    assert [c for c in codes[1::2] if after[c] != versions[c]] == []
    assert all(after[c] != versions[c] for c in more)


async def test_chunks_in_flight_together_derive_every_queued_dossier_once(
    engine: AsyncEngine, settings: Settings, setup: None
) -> None:
    """Two chunks at a time (``derive_in_flight``), three dossiers each: all ten derived."""
    codes = [f"H01.01-260302-{n:04d}" for n in range(10)]
    await _store(engine, _histories(random.Random(7), codes, vn("2026-03-02 08:00"), "c"))
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO dossier_backlog (dossier_code) SELECT code FROM dossier_owners")
        )
    ctx = {**_ctx(engine, settings.model_copy(update={"derive_chunk": 6})), "derive_in_flight": 2}
    assert await derive_dossiers(ctx) == 10
    async with engine.connect() as conn:
        derived = (await conn.execute(text("SELECT count(*) FROM dossiers"))).scalar_one()
        queued = (await conn.execute(text("SELECT count(*) FROM dossier_backlog"))).scalar_one()
    assert (derived, queued) == (10, 0)
