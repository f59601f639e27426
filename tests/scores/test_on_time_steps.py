"""Indicator 2.1's counts as the database keeps them (``on_time_steps``, migration 0024): steps
per unit and local month, appended by every write of dossiers, whose sums up to a month are
that month's counts.

Worked by hand on dossiers that cross month ends, stop their clocks, exceed the supplement
requests, end early, on time or late; then, on any rows at all, checked against the rule as a
statement reading the dossiers (the one a refresh ran before the counts were kept), after
inserts, updates and deletes. The dossiers are written as the derivation writes them (rows of
``dossiers``): what the database does with any write, whoever makes it.
"""

from __future__ import annotations

import itertools
import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import create_sessionmaker
from app.core.settings import Settings
from app.dossiers.repository import in_time_sql
from app.indicators.periods import Period, window
from app.scores import refresh
from app.scores.repository import compact_kept_counts

SEP, OCT, NOV, DEC = (date(2026, m, 1) for m in (9, 10, 11, 12))
Q4 = Period.parse("2026-Q4")
HANOI = Settings().timezone  # UTC+7 all year: local midnight is 17:00 UTC the day before


def _instant(text_: str) -> str:
    return f"'{text_}'" if text_ != "NULL" else "NULL"


def _dossier(
    code: str,
    received: str,
    due: str = "NULL",
    end: str = "NULL",
    outcome: str | None = None,
    stopped: str = "NULL",
    supplements: int = 0,
    counted: bool = True,
    unit: str = "A",
) -> str:
    outcome_sql = f"'{outcome}'" if outcome else "NULL"
    return (
        "INSERT INTO dossiers (code, unit_code, procedure_code, status, channel, received_at, "
        "due_at, end_at, outcome, clock_stopped_at, supplement_requests, counted, "
        "first_event_at, last_event_at) VALUES "
        f"('{code}', '{unit}', 'P', 4, 1, {_instant(received)}, {_instant(due)}, "
        f"{_instant(end)}, {outcome_sql}, {_instant(stopped)}, {supplements}, {counted}, "
        f"{_instant(received)}, {_instant(received)})"
    )


async def _write(engine: AsyncEngine, *statements: str) -> None:
    async with engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))


async def _kept(engine: AsyncEngine, unit: str, months: list[date]) -> dict[date, tuple[int, int]]:
    """The unit's own counts per month (denominator, numerator) as the steps sum them; months
    where it has none left out."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT m.month, sum(s.denominator), sum(s.numerator) "
                "FROM unnest(CAST(:months AS date[])) AS m (month) "
                "JOIN on_time_steps s ON s.month <= m.month AND s.unit_code = :unit "
                "GROUP BY m.month"
            ),
            {"months": months, "unit": unit},
        )
        return {r[0]: (int(r[1]), int(r[2])) for r in rows if (r[1], r[2]) != (0, 0)}


async def _rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM on_time_steps")) or 0)


async def test_each_dossier_counts_in_the_months_it_lives_in_as_worked_by_hand(
    clean: None, engine: AsyncEngine
) -> None:
    """Local months (UTC+7). Max supplement requests: 1 (the default). (denominator, numerator)
    per month, dossier by dossier:

    - D1 received 10 Sep, due 20 Sep, ended 15 Sep on time: Sep (1, 1).
    - D2 received 25 Sep, due 5 Oct, ended 10 Oct late: Sep (1, 1) — pending at the end of
      September and within time —, Oct (1, 0).
    - D3 received 28 Sep, due 10 Nov, open: Sep (1, 1), Oct (1, 1), then (1, 0) from November
      on (past due at its end).
    - D4 received 2 Oct, due 20 Oct, clock stopped 15 Oct (papers asked for), open: (1, 1)
      every month from October (its clock stopped within time).
    - D5 received 3 Oct, due 12 Oct, clock stopped 25 Oct, open: (1, 0) from October.
    - D6 received 5 Oct, due 1 Dec, open, two supplement requests: (1, 0) from October.
    - D7 not counted; D8 no due time; D9 ended 30 Sep, received 2 Oct: in no month.
    - D10 received 6 Oct, due at the very last microsecond of October, open: Oct (1, 1),
      then (1, 0).
    """
    await _write(
        engine,
        _dossier("D1", "2026-09-10T02:00Z", "2026-09-20T10:00Z", "2026-09-15T03:00Z", "on_time"),
        _dossier("D2", "2026-09-25T02:00Z", "2026-10-05T10:00Z", "2026-10-10T03:00Z", "late"),
        _dossier("D3", "2026-09-28T02:00Z", "2026-11-10T10:00Z"),
        _dossier("D4", "2026-10-02T02:00Z", "2026-10-20T10:00Z", stopped="2026-10-15T03:00Z"),
        _dossier("D5", "2026-10-03T02:00Z", "2026-10-12T10:00Z", stopped="2026-10-25T03:00Z"),
        _dossier("D6", "2026-10-05T02:00Z", "2026-12-01T10:00Z", supplements=2),
        _dossier("D7", "2026-10-05T02:00Z", "2026-10-10T10:00Z", counted=False),
        _dossier("D8", "2026-10-05T02:00Z"),
        _dossier("D9", "2026-10-01T19:00Z", "2026-10-09T10:00Z", "2026-09-30T03:00Z", "early"),
        _dossier("D10", "2026-10-06T02:00Z", "2026-10-31T16:59:59.999999Z"),
    )
    months = [SEP, OCT, NOV, DEC]
    assert await _kept(engine, "A", months) == {
        SEP: (3, 3),  # D1, D2, D3
        OCT: (6, 3),  # D2 0, D3 1, D4 1, D5 0, D6 0, D10 1
        NOV: (5, 1),  # D3 0, D4 1, D5 0, D6 0, D10 0
        DEC: (5, 1),
    }

    rows = await _rows(engine)
    await _write(engine, "UPDATE dossiers SET status = 5, last_event_at = now()")
    assert await _rows(engine) == rows  # nothing 2.1 reads changed: no row appended

    await _write(
        engine,
        # D3 ended early on 5 Nov: November (1, 1), and gone from December.
        "UPDATE dossiers SET end_at = '2026-11-05T03:00Z', outcome = 'early' WHERE code = 'D3'",
        "UPDATE dossiers SET unit_code = 'B' WHERE code = 'D4'",
        "DELETE FROM dossiers WHERE code = 'D2'",
        # D7 counts from now on: received 5 Oct, due 10 Oct, open: (1, 0) from October.
        "UPDATE dossiers SET counted = true WHERE code = 'D7'",
    )
    assert await _kept(engine, "A", months) == {
        SEP: (2, 2),  # D1, D3
        OCT: (5, 2),  # D3 1, D5 0, D6 0, D7 0, D10 1
        NOV: (5, 1),  # D3 1 (ended early), D5, D6, D7, D10 0
        DEC: (4, 0),  # D5, D6, D7, D10
    }
    assert await _kept(engine, "B", months) == {OCT: (1, 1), NOV: (1, 1), DEC: (1, 1)}

    await _write(engine, "TRUNCATE dossiers")
    assert await _rows(engine) == 0


async def test_a_refresh_reads_every_month_of_a_quarter_summed_up_the_unit_tree(
    clean: None, engine: AsyncEngine
) -> None:
    """The quarter lists each month's counts per unit subtree; a commune's dossiers count in
    its province's too. The quarter's months are compacted to one row per unit, the month
    before it left as it is."""
    await _write(
        engine,
        "INSERT INTO units (code, name, level) VALUES ('P1', 'Tỉnh', 'province')",
        "INSERT INTO units (code, name, level, parent_code) "
        "VALUES ('C1', 'Xã 1', 'commune', 'P1'), ('C2', 'Xã 2', 'commune', 'P1')",
        # C1, open, due 10 Nov: (1, 1) in Sep and Oct, (1, 0) from November on.
        _dossier("D1", "2026-09-28T02:00Z", "2026-11-10T10:00Z", unit="C1"),
        # C2, each ended on time in October: (1, 1) there. Two statements, two rows each.
        _dossier(
            "D2",
            "2026-10-12T02:00Z",
            "2026-10-25T10:00Z",
            "2026-10-20T03:00Z",
            "on_time",
            unit="C2",
        ),
        _dossier(
            "D4",
            "2026-10-13T02:00Z",
            "2026-10-25T10:00Z",
            "2026-10-21T03:00Z",
            "on_time",
            unit="C2",
        ),
        # C2, received 3 Dec, open, due 20 Dec: (1, 0) in December (past due at its end).
        _dossier("D3", "2026-12-03T02:00Z", "2026-12-20T10:00Z", unit="C2"),
        "UPDATE dossiers SET supplement_requests = 1 WHERE code = 'D1'",  # within the limit
    )
    # Sep: D1 up; Oct: D2 up, D4 up; Nov: D1's numerator down, D2 down, D4 down; Dec: D3 up.
    assert await _rows(engine) == 7
    before = await _versions(engine)
    async with create_sessionmaker(engine)() as session:
        await compact_kept_counts(session, OCT, DEC)
        found = await refresh.on_time_counts(session, Q4)
        await session.commit()
    per_month = sorted(
        zip(found["unit_code"], found["denominator"], found["numerator"], strict=True)
    )
    assert per_month == [
        ("C1", 1, 0), ("C1", 1, 0), ("C1", 1, 1),  # Nov, Dec; Oct
        ("C2", 1, 0), ("C2", 2, 2),  # Dec; Oct (nothing in November)
        ("P1", 1, 0), ("P1", 2, 0), ("P1", 3, 3),  # Nov; Dec; Oct
    ]  # fmt: skip
    async with engine.connect() as conn:
        months = (
            await conn.execute(
                text("SELECT month, count(*) FROM on_time_steps GROUP BY month ORDER BY month")
            )
        ).all()
    # One row per unit and month from October: C2's in October, C1's and C2's in November.
    assert [tuple(m) for m in months] == [(SEP, 1), (OCT, 1), (NOV, 2), (DEC, 1)]
    # Only the units and months with more than one row were written again.
    after = await _versions(engine)
    assert {k for k in after if after[k] == before.get(k)} == {
        ("C1", SEP), ("C1", NOV), ("C2", DEC),
    }  # fmt: skip


async def _versions(engine: AsyncEngine) -> dict[tuple[str, date], str]:
    """Each unit and month's row version (``xmin``), where it has one row."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT unit_code, month, min(CAST(xmin AS text)) FROM on_time_steps "
                "GROUP BY unit_code, month HAVING count(*) = 1"
            )
        )
        return {(r[0], r[1]): r[2] for r in rows}


async def test_another_supplement_limit_rebuilds_the_counts_under_it(
    clean: None, engine: AsyncEngine, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Two supplement requests are overdue under the default limit (1), within time under 2."""
    await _write(
        engine,
        "INSERT INTO units (code, name, level) VALUES ('A', 'Tỉnh A', 'province')",
        _dossier("D1", "2026-10-05T02:00Z", "2026-12-01T10:00Z", supplements=2),
    )
    october = Period.parse("2026-10")

    async def counts(under: Settings) -> list[tuple[str, int, int]]:
        async with create_sessionmaker(engine)() as session:
            await refresh.keep_counts(session, under, october)
            found = await refresh.on_time_counts(session, october)
            await session.commit()
        return list(zip(found["unit_code"], found["denominator"], found["numerator"], strict=True))

    assert await counts(settings) == [("A", 1, 0)]
    lenient = settings.model_copy(update={"max_supplement_requests": 2})
    with caplog.at_level(logging.WARNING, logger="app.scores.refresh"):
        assert await counts(lenient) == [("A", 1, 1)]
    assert "at most 2 supplement requests" in caplog.text
    async with engine.connect() as conn:
        basis = (await conn.execute(text("SELECT * FROM kept_count_basis"))).all()
    assert [tuple(b) for b in basis] == [(HANOI, 2)]
    assert await counts(settings) == [("A", 1, 0)]  # and back


# --- on any rows: the kept steps against the rule read from the dossiers ---------------------

MONTHS = [date(2026, m, 1) for m in (8, 9, 10, 11, 12)] + [date(2027, 1, 1)]
_WINDOWS = [window(Period.parse(f"{m:%Y-%m}"), ZoneInfo(HANOI)) for m in MONTHS]
# Each month's first and last instants, a microsecond either side, and its middle: ends,
# due times and stopped clocks fall on the boundaries the rule compares them with.
GRID = sorted(
    {
        instant
        for start, end in _WINDOWS
        for instant in (
            start,
            start + timedelta(microseconds=1),
            start + timedelta(days=14),
            end - timedelta(microseconds=1),
            end,
        )
    }
)
# What the refresh counted before the counts were kept: the rule, read from the dossiers.
RULE = text(
    f"""
    SELECT count(*) AS denominator,
           count(*) FILTER (WHERE (d.end_at <= :end AND d.outcome IN ('early', 'on_time'))
                            OR {in_time_sql(at=":end", rewind=True)}) AS numerator
    FROM dossiers d
    WHERE d.unit_code = :unit AND d.counted AND d.due_at IS NOT NULL
      AND d.received_at <= :end AND (d.end_at IS NULL OR d.end_at >= :start)
    """
)
UNITS = itertools.count(1)
instants = st.one_of(st.none(), st.sampled_from(GRID))


@st.composite
def dossier_rows(draw: st.DrawFn) -> dict[str, Any]:
    due = draw(instants)
    same = st.just(due)  # ties with the due time are where the rule's edges are
    return {
        "received_at": draw(st.one_of(st.none(), st.sampled_from(GRID), st.sampled_from(GRID))),
        "due_at": due,
        "end_at": draw(st.one_of(instants, same)),
        "clock_stopped_at": draw(st.one_of(instants, same)),
        "outcome": draw(st.sampled_from([None, "early", "on_time", "late"])),
        "supplement_requests": draw(st.integers(0, 3)),
        "counted": draw(st.sampled_from([True, True, True, False])),
    }


_COLUMNS = ("received_at", "due_at", "end_at", "clock_stopped_at", "outcome",
            "supplement_requests", "counted")  # fmt: skip
INSERT = text(
    "INSERT INTO dossiers (code, unit_code, procedure_code, status, channel, "
    f"{', '.join(_COLUMNS)}, first_event_at, last_event_at) "
    f"VALUES (:code, :unit, 'P', 4, 1, {', '.join(f':{c}' for c in _COLUMNS)}, :at, :at)"
)
UPDATE = text(
    f"UPDATE dossiers SET {', '.join(f'{c} = :{c}' for c in _COLUMNS)} WHERE code = :code"
)


async def _agree(engine: AsyncEngine, unit: str, where: str) -> None:
    kept = await _kept(engine, unit, MONTHS)
    async with engine.connect() as conn:
        for month, (start, end) in zip(MONTHS, _WINDOWS, strict=True):
            rule = (
                await conn.execute(RULE, {"unit": unit, "start": start, "end": end, "max_supp": 1})
            ).one()
            said = (rule.denominator, rule.numerator)
            assert kept.get(month, (0, 0)) == said, (where, month)


@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(dossier_rows(), min_size=1, max_size=6),
    changes=st.lists(st.tuples(st.integers(0, 5), dossier_rows()), max_size=4),
    deleted=st.sets(st.integers(0, 5), max_size=2),
)
async def test_the_kept_steps_agree_with_the_rule_read_from_the_dossiers(
    clean: None,
    engine: AsyncEngine,
    rows: list[dict[str, Any]],
    changes: list[tuple[int, dict[str, Any]]],
    deleted: set[int],
) -> None:
    unit = f"U{next(UNITS)}"  # the steps of earlier examples stay: each has its own unit
    codes = [f"{unit}-{i}" for i in range(len(rows))]
    at = datetime(2026, 8, 1, tzinfo=UTC)
    async with engine.begin() as conn:
        await conn.execute(
            INSERT,
            [{"code": c, "unit": unit, "at": at, **r} for c, r in zip(codes, rows, strict=True)],
        )
    await _agree(engine, unit, f"inserted {rows}")
    async with engine.begin() as conn:  # one statement per change: the update path
        for index, row in changes:
            await conn.execute(UPDATE, {"code": codes[index % len(codes)], **row})
    await _agree(engine, unit, f"changed {changes}")
    async with engine.begin() as conn:
        await conn.execute(
            text("DELETE FROM dossiers WHERE code = ANY(:codes)"),
            {"codes": [codes[i % len(codes)] for i in deleted]},
        )
    await _agree(engine, unit, f"deleted {deleted}")
