"""The overdue rule is stated twice, once per language: ``timeline.standing`` (Python, behind
every dossier's ``timeliness``) and ``repository.overdue_sql`` / ``in_time_sql`` (SQL, behind
the overdue lists and counts, the on-time rate and the month-end projection). On any history
the desk may send, PostgreSQL evaluating the fragment and Python evaluating ``standing`` give
the same answer at every instant around the dossier's own boundaries, read as stored or
read back at that instant."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.calendar.data import load_shipped_overrides
from app.calendar.workdays import WorkingCalendar
from app.core.settings import Settings
from app.dossiers.repository import in_time_sql, overdue_sql
from app.dossiers.schemas import Timeliness
from app.dossiers.timeline import DossierRules, standing
from tests.helpers import post_events, put_procedure, put_unit, vn

CALENDAR = WorkingCalendar(overrides=load_shipped_overrides(), years=range(2025, 2028))
# Mon 2 Mar 2026 08:00, then every 3 hours for 3 days: receipts, pauses, due and end times land
# on the same few instants, so ties (end = due, clock stopped = due) come up often.
GRID = [vn("2026-03-02 08:00") + timedelta(hours=3 * k) for k in range(24)]
TICK = timedelta(microseconds=1)
CODES = itertools.count(1)

STEPS = st.sampled_from([4, 5, 6, 4, 5])  # processing, papers asked for, fee asked for
ENDINGS = st.sampled_from([3, 7, 8, 9, 10])  # refused, withdrawn, stopped, finished, returned
ANY_STATUS = st.integers(min_value=1, max_value=10)


@st.composite
def histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A receipt (or none), a few steps that pause and resume the clock, perhaps an end, and
    now and then a stray status; a stated appointment or the procedure's limit, explicit
    receipt times, papers supplied (with a new appointment) and fees paid."""
    statuses = [draw(st.sampled_from([1, 2, 2, 2]))] if draw(st.integers(0, 5)) else []
    statuses += draw(st.lists(STEPS, max_size=4))
    if draw(st.booleans()):
        statuses.append(draw(ENDINGS))
    if not draw(st.integers(0, 4)):
        statuses.insert(draw(st.integers(0, len(statuses))), draw(ANY_STATUS))
    if not statuses:
        statuses = [draw(ANY_STATUS)]
    times = sorted(draw(st.lists(st.integers(0, len(GRID) - 1), min_size=len(statuses),
                                 max_size=len(statuses))))  # fmt: skip
    events = []
    for index, (status, time) in enumerate(zip(statuses, times, strict=True)):
        body: dict[str, Any] = {"event_id": f"e{index}", "status": status,
                                "occurred_at": GRID[time]}  # fmt: skip
        for field, chance in (
            ("due_at", 4), ("received_at", 5), ("supplement_supplied_at", 3),
            ("supplement_new_due_at", 5), ("fee_paid_at", 3),
        ):  # fmt: skip
            if not draw(st.integers(0, chance)):
                body[field] = GRID[draw(st.integers(0, len(GRID) - 1))]
        events.append(body)
    return events


@dataclass(frozen=True)
class World:
    client: httpx.AsyncClient
    engine: AsyncEngine
    rules: DossierRules


@pytest.fixture
async def world(client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings) -> World:
    await put_unit(client, "H01", "province")
    # One working day: a dossier without a stated appointment is due the next working day.
    await put_procedure(client, "P1", 1, "working_days")
    return World(client, engine, DossierRules(settings.max_supplement_requests))


def instants_around(row: Any) -> list[datetime]:
    """Each instant the dossier's state turns on, a microsecond either side, and the grid."""
    marks = [row.received_at, row.due_at, row.end_at, row.clock_stopped_at]
    around = {m + d for m in marks if m is not None for d in (-TICK, timedelta(0), TICK)}
    return sorted(around | {GRID[0] - timedelta(days=1), *GRID, GRID[-1] + timedelta(days=30)})


RULE = {
    name: f"{build(at='t.at', rewind=rewind)} AS {name}"
    for name, build, rewind in (
        ("overdue", overdue_sql, False),
        ("in_time", in_time_sql, False),
        ("overdue_back", overdue_sql, True),
        ("in_time_back", in_time_sql, True),
    )
}
STATEMENT = text(
    "SELECT t.at, d.counted, d.received_at, d.due_at, d.end_at, d.outcome, d.clock_stopped_at, "
    f"d.supplement_requests, {', '.join(RULE.values())} "
    "FROM dossiers d CROSS JOIN unnest(CAST(:ats AS timestamptz[])) AS t(at) "
    "WHERE d.code = :code ORDER BY t.at"
)


async def stored_state(world: World, code: str) -> Any:
    async with world.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT received_at, due_at, end_at, clock_stopped_at FROM dossiers "
                "WHERE code = :code"
            ),
            {"code": code},
        )
        return rows.one_or_none()


@settings(
    max_examples=120,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories())
async def test_the_sql_fragment_agrees_with_standing(
    world: World, history: list[dict[str, Any]]
) -> None:
    code = f"H01-260302-{next(CODES):04d}"
    events = [
        {
            "dossier_code": code, "unit_code": "H01", "procedure_code": "P1", "channel": 1,
            **{k: v.isoformat() if isinstance(v, datetime) else v for k, v in e.items()},
        }
        for e in history
    ]  # fmt: skip
    await post_events(world.client, events)  # stored and derived through the real path
    marks = await stored_state(world, code)
    assert marks is not None
    params = {"ats": instants_around(marks), "code": code,
              "max_supp": world.rules.max_supplement_requests}  # fmt: skip
    async with world.engine.connect() as conn:
        rows = list(await conn.execute(STATEMENT, params))
    for row in rows:
        for rewind, overdue, in_time in ((False, row.overdue, row.in_time),
                                         (True, row.overdue_back, row.in_time_back)):  # fmt: skip
            said = standing(
                counted=row.counted, due_at=row.due_at, end_at=row.end_at, outcome=row.outcome,
                clock_stopped_at=row.clock_stopped_at,
                supplement_requests=row.supplement_requests, at=row.at, calendar=CALENDAR,
                rules=world.rules, received_at=row.received_at, rewind=rewind,
            )  # fmt: skip
            where = f"{code} at {row.at.isoformat()} ({'read back' if rewind else 'as stored'})"
            assert overdue is (said.timeliness == Timeliness.overdue), (where, said, history)
            assert in_time is (said.timeliness == Timeliness.in_time), (where, said, history)
        latest = max(
            (m for m in (row.received_at, row.end_at, row.clock_stopped_at) if m is not None),
            default=None,
        )
        if latest is not None and row.at >= latest:
            # Nothing happened after the instant: reading back changes nothing.
            assert (row.overdue_back, row.in_time_back) == (row.overdue, row.in_time)


async def test_a_clock_stopped_after_the_instant_was_still_running_then(world: World) -> None:
    """Worked by hand. Received Mon 2 Mar 08:00, due Tue 3 Mar 17:00 (one working day);
    papers asked for Wed 4 Mar 09:00 and never supplied. Read back at Tue 3 Mar 12:00 the
    dossier was in time; at Tue 3 Mar 18:00 it was overdue (measured then: the request came
    later); as stored, its clock stopped past the due time: overdue whatever the instant."""
    code = "H01-260302-9999"
    await post_events(world.client, [
        {"event_id": "a", "dossier_code": code, "unit_code": "H01", "procedure_code": "P1",
         "channel": 1, "status": 2, "occurred_at": vn("2026-03-02 08:00").isoformat()},
        {"event_id": "b", "dossier_code": code, "unit_code": "H01", "procedure_code": "P1",
         "channel": 1, "status": 5, "occurred_at": vn("2026-03-04 09:00").isoformat()},
    ])  # fmt: skip
    async with world.engine.connect() as conn:
        rows = await conn.execute(
            STATEMENT,
            {"ats": [vn("2026-03-03 12:00"), vn("2026-03-03 18:00")], "code": code,
             "max_supp": world.rules.max_supplement_requests},
        )  # fmt: skip
        noon, evening = list(rows)
    assert noon.due_at == vn("2026-03-03 17:00")
    assert (noon.overdue_back, noon.in_time_back) == (False, True)
    assert (evening.overdue_back, evening.in_time_back) == (True, False)
    assert (noon.overdue, evening.overdue) == (True, True)
