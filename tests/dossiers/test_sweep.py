"""The overdue / due-soon sweep: flags exactly what changed, once, and scales with changes."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import create_sessionmaker
from app.core.settings import Settings
from app.dossiers.jobs import sweep_overdue
from tests.helpers import event, post_events, province_with_communes, put_procedure, vn


@pytest.fixture
async def seeded(client: httpx.AsyncClient) -> None:
    """3-working-day procedure. Received Mon 2 Mar 2026 → due Thu 5 Mar 17:00, except:
    LATE-LATER received Wed 4 Mar → due Mon 9 Mar 17:00; STOPPED asked for papers Wed 4 Mar
    (clock stopped before its due time); TWICE had two supplement requests on 3 Mar; DONE
    finished in time."""
    await province_with_communes(client)
    await put_procedure(client, "P3", 3, "working_days")
    await post_events(client, [
        event("a", "DUE-THU", 2, "2026-03-02 08:00"),
        event("b", "LATE-LATER", 2, "2026-03-04 08:00", unit="H01.02"),
        event("c1", "STOPPED", 2, "2026-03-02 08:00"),
        event("c2", "STOPPED", 5, "2026-03-04 09:00"),
        event("d1", "TWICE", 2, "2026-03-02 08:00", unit="H05.01"),
        event("d2", "TWICE", 5, "2026-03-03 08:00", unit="H05.01"),
        event("d3", "TWICE", 4, "2026-03-03 09:00", unit="H05.01"),
        event("d4", "TWICE", 5, "2026-03-03 10:00", unit="H05.01"),
        event("d5", "TWICE", 4, "2026-03-03 11:00", unit="H05.01"),
        event("e1", "DONE", 2, "2026-03-02 08:00"),
        event("e2", "DONE", 9, "2026-03-04 08:00"),
    ])  # fmt: skip


async def flagged(engine: AsyncEngine, column: str) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(f"SELECT code FROM dossiers WHERE {column} IS NOT NULL ORDER BY code")
        )
        return list(rows.scalars())


def ctx_for(engine: AsyncEngine, settings: Settings, now: datetime) -> dict[str, Any]:
    return {
        "sessionmaker": create_sessionmaker(engine),
        "settings": settings,
        "clock": lambda: now,
    }


async def test_sweep_flags_exactly_what_became_overdue_and_only_once(
    engine: AsyncEngine, settings: Settings, seeded: None
) -> None:
    # Tue 3 Mar 12:00: only TWICE is overdue (its second request, at 10:00, was one too many).
    first = await sweep_overdue(ctx_for(engine, settings, vn("2026-03-03 12:00")))
    assert first["overdue"] == 1
    assert await flagged(engine, "overdue_since") == ["TWICE"]

    # Fri 6 Mar 08:00: DUE-THU passed its due time; STOPPED's clock stopped before it;
    # LATE-LATER is due on Monday; DONE is finished.
    second = await sweep_overdue(ctx_for(engine, settings, vn("2026-03-06 08:00")))
    assert second["overdue"] == 1
    assert await flagged(engine, "overdue_since") == ["DUE-THU", "TWICE"]

    # The same instant again: nothing new.
    again = await sweep_overdue(ctx_for(engine, settings, vn("2026-03-06 08:00")))
    assert again["overdue"] == 0

    # Tue 10 Mar: LATE-LATER too.
    third = await sweep_overdue(ctx_for(engine, settings, vn("2026-03-10 08:00")))
    assert third["overdue"] == 1
    assert await flagged(engine, "overdue_since") == ["DUE-THU", "LATE-LATER", "TWICE"]


async def test_due_soon_is_flagged_within_the_working_hour_window(
    engine: AsyncEngine, settings: Settings, seeded: None
) -> None:
    # Default window: 8 working hours. From Wed 4 Mar 17:00 that reaches Thu 5 Mar 17:00:
    # DUE-THU (due exactly then) is due soon; LATE-LATER (Mon 9 Mar) is not; STOPPED's clock
    # is stopped; TWICE is already overdue (and so not "soon").
    report = await sweep_overdue(ctx_for(engine, settings, vn("2026-03-04 17:00")))
    assert report["due_soon"] == 1
    assert await flagged(engine, "due_soon_since") == ["DUE-THU"]
    later = await sweep_overdue(ctx_for(engine, settings, vn("2026-03-06 17:00")))
    assert later["due_soon"] == 1  # LATE-LATER: Fri 17:00 + 8 h = Mon 9 Mar 17:00
    assert await flagged(engine, "due_soon_since") == ["DUE-THU", "LATE-LATER"]


async def test_a_moved_deadline_is_flagged_again(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, seeded: None
) -> None:
    await sweep_overdue(ctx_for(engine, settings, vn("2026-03-06 08:00")))
    assert "DUE-THU" in await flagged(engine, "overdue_since")
    # The desk gives a new appointment (papers supplied with NgayHenTraMoi): new deadline.
    await post_events(client, [
        event("a2", "DUE-THU", 5, "2026-03-03 08:00"),
        event("a3", "DUE-THU", 4, "2026-03-03 09:00",
              supplement_supplied_at="2026-03-03 09:00", supplement_new_due_at="2026-03-12 17:00"),
    ])  # fmt: skip
    assert "DUE-THU" not in await flagged(engine, "overdue_since")
    await sweep_overdue(ctx_for(engine, settings, vn("2026-03-13 08:00")))
    assert "DUE-THU" in await flagged(engine, "overdue_since")


async def test_two_sweeps_at_once_do_the_work_once(
    engine: AsyncEngine, settings: Settings, seeded: None
) -> None:
    ctx = ctx_for(engine, settings, vn("2026-03-10 08:00"))
    results = await asyncio.gather(*(sweep_overdue(ctx) for _ in range(3)))
    done = [r for r in results if "skipped" not in r]
    assert sum(r["overdue"] for r in done) == 3


async def test_sweep_reads_the_partial_index_not_the_table(
    engine: AsyncEngine, seeded: None
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                """
                INSERT INTO dossiers (code, unit_code, procedure_code, status, channel,
                    received_at, due_at, end_at, counted, first_event_at, last_event_at)
                SELECT 'F-' || g, 'H01.01', 'P3', 10, 1, now(), now(), now(), true, now(), now()
                FROM generate_series(1, 30000) g
                """
            )
        )
        await conn.execute(text("ANALYZE dossiers"))
        plan = "\n".join(
            r[0]
            for r in await conn.execute(
                text(
                    "EXPLAIN UPDATE dossiers d SET overdue_since = now() WHERE d.end_at IS NULL "
                    "AND d.overdue_since IS NULL AND d.overdue_at <= now()"
                )
            )
        )
    assert "ix_dossiers_sweep_overdue_at" in plan, plan
