"""The record-based counts the database keeps per unit and local month as dossiers are written
(``record_counts``, migration 0023): every write moves them (insert, update, delete, a unit or
month changed, a dossier that stops counting), a write that changes nothing counted adds no
row, a refresh compacts and sums them, and a time zone other than the kept one rebuilds them.

The dossiers are written as the derivation writes them (rows of ``dossiers`` with their
``record_mask``): what the database does with any write, whoever makes it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import create_sessionmaker
from app.core.settings import Settings
from app.indicators.catalog import shipped_catalog
from app.indicators.periods import Period
from app.scores import refresh
from app.scores.models import RECORD_COUNTS
from app.scores.records import record_fed_codes
from app.scores.repository import compact_kept_counts, record_columns
from tests.conftest import plain_url

# Bits of record_mask: 1 received, 2 online, 4 charged, 8 paid online, 16 paper result due,
# 32 electronic result, 64 digitised, 128 reused, 256 linked to the store, 512 population data.
OCT, NOV = date(2026, 10, 1), date(2026, 11, 1)
OCTOBER = Period.parse("2026-10")


async def _write(engine: AsyncEngine, *statements: str) -> None:
    async with engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))


UNIT_A = "INSERT INTO units (code, name, level) VALUES ('A', 'Tỉnh A', 'province')"


def _dossier(code: str, unit: str, received: str, mask: int | None) -> str:
    mask_sql = "NULL" if mask is None else str(mask)
    return (
        "INSERT INTO dossiers (code, unit_code, procedure_code, status, channel, received_at, "
        "counted, first_event_at, last_event_at, record_mask) VALUES "
        f"('{code}', '{unit}', 'P', 1, 1, '{received}', true, '{received}', '{received}', "
        f"{mask_sql})"
    )


async def _kept(engine: AsyncEngine) -> dict[tuple[str, date], tuple[int, ...]]:
    """The kept rows summed per unit and month (zero sums left out)."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                f"SELECT unit_code, month, {', '.join(f'sum({n})' for n in RECORD_COUNTS)} "
                "FROM record_counts GROUP BY unit_code, month"
            )
        )
        return {(r[0], r[1]): tuple(r[2:]) for r in rows if any(r[2:])}


async def _rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM record_counts")) or 0)


def _counts(**named: int) -> tuple[int, ...]:
    return tuple(named.get(name, 0) for name in RECORD_COUNTS)


async def test_every_write_of_a_dossier_moves_its_units_month_and_nothing_else_adds_a_row(
    clean: None, engine: AsyncEngine
) -> None:
    # Local months (UTC+7): 17:00 UTC on Oct 31 is midnight, Nov 1, in Hà Nội.
    await _write(
        engine,
        _dossier("D1", "A", "2026-10-15T03:00:00Z", 1 | 2),  # online
        _dossier("D2", "A", "2026-10-31T16:59:59Z", 1 | 16 | 32),  # Oct 31, 23:59:59 local
        _dossier("D3", "A", "2026-10-31T17:00:00Z", 1 | 4 | 8),  # Nov 1, 00:00 local
        _dossier("D4", "A", "2026-10-20T03:00:00Z", None),  # does not count
    )
    assert await _kept(engine) == {
        ("A", OCT): _counts(received=2, online=1, paper_result=1, electronic_result=1),
        ("A", NOV): _counts(received=1, charged=1, paid_online=1),
    }

    rows = await _rows(engine)
    await _write(engine, "UPDATE dossiers SET status = 5, end_at = received_at")
    assert await _rows(engine) == rows  # nothing counted changed: no row appended

    await _write(
        engine,
        "UPDATE dossiers SET record_mask = 1 WHERE code = 'D1'",  # no longer online
        "UPDATE dossiers SET unit_code = 'B' WHERE code = 'D2'",  # moved to another unit
        "UPDATE dossiers SET record_mask = NULL WHERE code = 'D3'",  # stops counting
        "UPDATE dossiers SET record_mask = 1 | 256 WHERE code = 'D4'",  # starts counting
    )
    assert await _kept(engine) == {
        ("A", OCT): _counts(received=2, linked_to_store=1),
        ("B", OCT): _counts(received=1, paper_result=1, electronic_result=1),
    }

    await _write(
        engine,
        "UPDATE dossiers SET received_at = '2026-11-02T03:00:00Z' WHERE code = 'D4'",
        "DELETE FROM dossiers WHERE code = 'D2'",
    )
    assert await _kept(engine) == {
        ("A", OCT): _counts(received=1),
        ("A", NOV): _counts(received=1, linked_to_store=1),
    }

    await _write(engine, "TRUNCATE dossiers")
    assert await _kept(engine) == {}


async def test_a_refresh_compacts_its_months_to_one_row_per_unit_and_sums_them_up_the_tree(
    clean: None, engine: AsyncEngine
) -> None:
    await _write(
        engine,
        "INSERT INTO units (code, name, level) VALUES ('P1', 'Tỉnh', 'province')",
        "INSERT INTO units (code, name, level, parent_code) "
        "VALUES ('C1', 'Xã 1', 'commune', 'P1'), ('C2', 'Xã 2', 'commune', 'P1')",
        _dossier("D1", "C1", "2026-10-02T03:00:00Z", 1 | 2),
        _dossier("D2", "C1", "2026-10-03T03:00:00Z", 1),
        _dossier("D3", "C2", "2026-10-04T03:00:00Z", 1 | 512),
        _dossier("D4", "C2", "2026-11-04T03:00:00Z", 1),
        "UPDATE dossiers SET record_mask = 1 | 2 WHERE code = 'D2'",
        "DELETE FROM dossiers WHERE code = 'D1'",
    )
    assert await _rows(engine) == 6  # four inserts, an update, a delete: one row each
    async with create_sessionmaker(engine)() as session:
        await compact_kept_counts(session, OCT, OCT)
        found = await record_columns(session, OCT, OCT)
        await session.commit()
    by_unit = {
        code: {name: found[name][i] for name in ("received", "online", "population_data")}
        for i, code in enumerate(found["unit_code"])
    }
    assert by_unit == {
        "C1": {"received": 1, "online": 1, "population_data": 0},
        "C2": {"received": 1, "online": 0, "population_data": 1},
        "P1": {"received": 2, "online": 1, "population_data": 1},
    }
    # October's four rows became one per unit; November's row is left as it was.
    async with engine.connect() as conn:
        months = (
            await conn.execute(
                text("SELECT month, count(*) FROM record_counts GROUP BY month ORDER BY month")
            )
        ).all()
    assert [tuple(m) for m in months] == [(OCT, 2), (NOV, 1)]


async def _october(engine: AsyncEngine, settings: Settings) -> dict[str, Any]:
    async with create_sessionmaker(engine)() as session:
        await refresh.keep_counts(session, settings, OCTOBER)
        found = await refresh.record_counts(session, OCTOBER)
        await session.commit()
    return dict(zip(found["unit_code"], found["received"], strict=True))


async def test_another_time_zone_rebuilds_the_counts_in_its_own_months(
    clean: None, engine: AsyncEngine, settings: Settings
) -> None:
    """00:30 on Nov 1 in Hà Nội is 17:30 on Oct 31 in UTC: October's dossier under UTC."""
    await _write(engine, UNIT_A, _dossier("D1", "A", "2026-10-31T17:30:00Z", 1))
    assert await _october(engine, settings) == {}
    utc = settings.model_copy(update={"timezone": "UTC"})
    assert await _october(engine, utc) == {"A": 1}
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT timezone FROM kept_count_basis")) == "UTC"
    # Written from then on: in UTC months too.
    await _write(engine, _dossier("D2", "A", "2026-10-31T18:00:00Z", 1))
    assert await _october(engine, utc) == {"A": 2}
    assert await _october(engine, settings) == {}  # and back


async def test_counts_emptied_with_their_zone_are_rebuilt_by_the_next_refresh(
    clean: None, engine: AsyncEngine, settings: Settings
) -> None:
    await _write(
        engine,
        UNIT_A,
        "TRUNCATE record_counts, kept_count_basis",
        _dossier("D1", "A", "2026-10-10T03:00:00Z", 1),  # not kept: no zone
    )
    assert await _rows(engine) == 0
    assert await _october(engine, settings) == {"A": 1}
    await _write(engine, _dossier("D2", "A", "2026-10-11T03:00:00Z", 1))
    assert await _october(engine, settings) == {"A": 2}


async def test_a_write_during_a_rebuild_waits_and_counts_in_the_new_zones_months(
    clean: None, engine: AsyncEngine, database_url: str
) -> None:
    """The rebuild holds ``record_counts`` until it commits; a dossier written meanwhile waits
    for it, then reads the new zone: its row is in UTC's October, not Hà Nội's November."""
    rebuild = await asyncpg.connect(plain_url(database_url))
    writer = await asyncpg.connect(plain_url(database_url))
    try:
        transaction = rebuild.transaction()
        await transaction.start()
        await rebuild.execute("SELECT chiso_rebuild_kept_counts('UTC', 1)")
        written = asyncio.create_task(
            writer.execute(_dossier("D1", "A", "2026-10-31T17:30:00Z", 1))
        )
        await asyncio.sleep(0.3)
        assert not written.done()
        await transaction.commit()
        assert await written == "INSERT 0 1"
    finally:
        await rebuild.close()
        await writer.close()
    assert await _kept(engine) == {("A", OCT): _counts(received=1)}


async def test_a_refresh_compacts_its_months_whatever_its_catalog_version_counts(
    clean: None, engine: AsyncEngine, settings: Settings
) -> None:
    """October 2026 is scored under a version without record-fed metrics: nothing reads its
    kept counts, but the refresh still compacts them (else every write would add rows for
    ever)."""
    catalog = shipped_catalog()
    version = catalog.for_period(OCTOBER)
    assert version is not None and not record_fed_codes(version)
    await _write(
        engine,
        UNIT_A,
        _dossier("D1", "A", "2026-10-02T03:00:00Z", 1),
        _dossier("D2", "A", "2026-10-03T03:00:00Z", 1),
        "UPDATE dossiers SET record_mask = 1 | 2 WHERE code = 'D2'",
    )
    assert await _rows(engine) == 3
    async with create_sessionmaker(engine)() as session:
        assert await refresh.refresh_period(
            session, settings, catalog, OCTOBER, datetime(2026, 11, 5, tzinfo=UTC)
        )
        await session.commit()
    assert await _rows(engine) == 1
    assert await _kept(engine) == {("A", OCT): _counts(received=2, online=1)}
