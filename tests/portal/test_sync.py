"""Incremental portal sync against the simulator and real PostgreSQL: complete, idempotent,
resumable, and tolerant of a faulty portal."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.cli import load_reference_data, read_csv
from app.core.database import create_sessionmaker
from app.core.settings import Settings
from app.dossiers.jobs import derive_dossiers
from app.portal.client import ChangedPage, PortalClient, PortalSource, RetryPolicy
from app.portal.records import parse_portal_batch
from app.portal.simulator import SIMULATOR_UNITS_CSV, Faults, PortalSimulator
from app.portal.sync import SyncReport, sync_source
from app.units.service import load_units_csv
from tests.helpers import ADMIN, instant, vn

NOW = vn("2026-03-20 10:00")
SOURCE = PortalSource(
    name="sim", base_url="http://portal", username="chiso", password="chiso-sim", page_size=40
)


async def _no_sleep(_: float) -> None:
    return None


def client_for(sim: PortalSimulator) -> PortalClient:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app()))
    return PortalClient(SOURCE, http, RetryPolicy(max_tries=8), sleep=_no_sleep)


@pytest.fixture
async def sessionmaker(engine: AsyncEngine, clean: None) -> async_sessionmaker[AsyncSession]:
    maker = create_sessionmaker(engine)
    async with maker() as session:
        await load_reference_data(session)
        # The simulator's units and their identifiers, as `make run` loads them.
        await load_units_csv(session, read_csv(SIMULATOR_UNITS_CSV))
        await session.commit()
    return maker


async def run(
    maker: async_sessionmaker[AsyncSession], settings: Settings, client: PortalClient
) -> SyncReport:
    report = await sync_source(maker, settings, client, lambda: NOW)
    # What the worker's derivation loop does next: the synced dossiers' states.
    await derive_dossiers({"sessionmaker": maker, "settings": settings})
    return report


async def snapshot(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        events = (await conn.execute(text("SELECT event_id FROM dossier_events"))).scalars()
        dossiers = (
            await conn.execute(
                text(
                    "SELECT code, unit_code, procedure_code, status, channel, received_at, "
                    "due_at, end_at, outcome, supplement_requests, pauses FROM dossiers"
                )
            )
        ).all()
    return {"events": sorted(events), "dossiers": sorted(tuple(map(str, d)) for d in dossiers)}


def portal_time(value: str | None) -> datetime | None:
    return vn(f"{datetime.strptime(value, '%Y%m%d%H%M%S'):%Y-%m-%d %H:%M:%S}") if value else None


def expected_events(sim: PortalSimulator) -> int:
    return sum(len(events or []) for _, events, _ in parse_portal_batch(sim.records, None))


async def test_full_sync_stores_exactly_the_simulators_dossiers(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, engine: AsyncEngine
) -> None:
    sim = PortalSimulator(dossiers=300, seed=7, now=NOW)
    report = await run(sessionmaker, settings, client_for(sim))
    assert (report.error, report.records, report.quarantined) == (None, 300, 0)
    assert report.pages == 8  # 300 records in pages of 40
    state = await snapshot(engine)
    assert len(state["dossiers"]) == 300
    assert len(state["events"]) == expected_events(sim)

    # Every dossier compared field by field with what the portal shows.
    async with engine.connect() as conn:
        rows = {
            r.code: r
            for r in await conn.execute(
                text(
                    "SELECT code, unit_code, procedure_code, channel, status, received_at, "
                    "end_at FROM dossiers"
                )
            )
        }
    units = sim.unit_codes()
    for record in sim.records:
        row = rows[record["MaHoSo"]]
        # Owned by the unit its MaHoSo prefix names (records carry no MaDonVi).
        assert row.unit_code == units[record["MaHoSo"].split("-")[0]]
        # A local variant (1.001193.000.00.00.H01) is its national procedure.
        assert row.procedure_code == record["MaTTHC"][:8]
        # No KenhThucHien (OpenCPS sends HinhThuc, the result's return): in person.
        assert row.channel == int(record.get("KenhThucHien") or "1")
        if record["TrangThaiHoSo"] != "6":  # no time for the request: the receipt stands
            assert row.status == int(record["TrangThaiHoSo"])
        if record["TrangThaiHoSo"] != "3":  # not accepted: NgayTiepNhan is its registration
            assert row.received_at == portal_time(record["NgayTiepNhan"])
        ends = [portal_time(record[n]) for n in ("NgayKetThucXuLy", "NgayTra")]
        if record["TrangThaiHoSo"] in ("1", "2", "4", "5", "6"):
            assert row.end_at is None
        elif any(ends):
            assert row.end_at == next(e for e in ends if e)  # finished before returned
        else:
            # Status 9 with its end date left empty: stored with the best evidence there is.
            assert row.end_at is not None

    # The applicants the records name are nowhere in what was stored.
    async with engine.connect() as conn:
        stored = " ".join(
            (
                await conn.execute(
                    text(
                        "SELECT string_agg(t::text, ' ') FROM dossier_events t "
                        "UNION ALL SELECT string_agg(t::text, ' ') FROM dossiers t"
                    )
                )
            ).scalars()
        )
    personal = ("ChuHoSo", "SoDienThoai", "SoGiayToChuHoSo", "Email")
    assert not [r[f] for r in sim.records for f in personal if r[f] and r[f] in stored]

    # The simulator generated all three channels, supplements, late and open dossiers.
    assert {r.channel for r in rows.values()} == {1, 2, 3}
    assert any(r["DanhSachHoSoBoSung"] for r in sim.records)
    async with engine.connect() as conn:
        outcomes = dict(
            (
                await conn.execute(
                    text("SELECT coalesce(outcome, 'open'), count(*) FROM dossiers GROUP BY 1")
                )
            ).all()
        )
    assert outcomes.get("late", 0) > 0 and outcomes.get("open", 0) > 0


async def test_faulty_portal_still_gives_a_complete_sync_without_duplicates(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, engine: AsyncEngine
) -> None:
    faults = Faults(error_rate=0.2, burst_every=7, burst_length=2, session_calls=3,
                    repeat_page_at=3)  # fmt: skip
    sim = PortalSimulator(dossiers=300, seed=7, now=NOW, faults=faults)
    client = client_for(sim)
    report = await run(sessionmaker, settings, client)
    assert report.error is None
    assert client.retries > 0
    # The repeated page was stored twice as records, but only once as events.
    assert report.duplicate == 40
    state = await snapshot(engine)
    assert len(state["dossiers"]) == 300
    assert len(state["events"]) == expected_events(PortalSimulator(dossiers=300, seed=7, now=NOW))


class CrashOnPage(PortalClient):
    """Dies after fetching the N-th page, before storing it (as a killed worker would)."""

    def __init__(self, sim: PortalSimulator, crash_at: int) -> None:
        super().__init__(
            SOURCE,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app())),
            RetryPolicy(max_tries=3),
            sleep=_no_sleep,
        )
        self.crash_at = crash_at
        self.calls = 0

    async def changed_dossiers(self, cursor: str | None) -> ChangedPage:
        page = await super().changed_dossiers(cursor)
        self.calls += 1
        if self.calls == self.crash_at:
            raise asyncio.CancelledError("worker killed")
        return page


async def test_a_run_killed_mid_way_resumes_to_the_same_result_as_a_clean_run(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, engine: AsyncEngine
) -> None:
    sim = PortalSimulator(dossiers=200, seed=11, now=NOW)
    with pytest.raises(asyncio.CancelledError):
        await run(sessionmaker, settings, CrashOnPage(sim, crash_at=3))
    async with engine.connect() as conn:
        partial = (
            await conn.execute(text("SELECT count(DISTINCT dossier_code) FROM dossier_events"))
        ).scalar()
        pages = (await conn.execute(text("SELECT pages_synced FROM portal_sync_state"))).scalar()
    assert (partial, pages) == (80, 2)  # two committed pages, the third never stored
    resumed = await run(sessionmaker, settings, client_for(sim))
    assert resumed.records == 120  # exactly the rest: no gap, nothing fetched twice
    after_resume = await snapshot(engine)

    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE dossier_events, dossiers, portal_sync_state"))
    clean = await run(sessionmaker, settings, client_for(PortalSimulator(200, 11, NOW)))
    assert clean.records == 200
    assert await snapshot(engine) == after_resume


async def test_malformed_records_are_quarantined_and_the_rest_stored(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    engine: AsyncEngine,
    client: httpx.AsyncClient,
) -> None:
    sim = PortalSimulator(dossiers=120, seed=3, now=NOW, faults=Faults(malformed_rate=0.1))
    # Its own status labels instead of codes: a record chiso cannot read as a dossier.
    bad = [r["MaHoSo"] for r in sim.records if not r["TrangThaiHoSo"].isdigit()]
    assert bad  # the knob produced some
    report = await run(sessionmaker, settings, client_for(sim))
    assert report.quarantined == len(bad)
    assert (await snapshot(engine))["dossiers"].__len__() == 120 - len(bad)
    # Syncing the same records again (a re-sync from scratch) does not duplicate them.
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE portal_sync_state SET cursor = NULL"))
    await run(sessionmaker, settings, client_for(sim))

    listed = (await client.get("/v1/portal/quarantine?limit=500", headers=ADMIN)).json()
    assert sorted(q["dossier_code"] for q in listed["items"]) == sorted(bad)
    first = listed["items"][0]
    assert first["times_seen"] == 2
    assert first["errors"][0]["pointer"].endswith("/TrangThaiHoSo")
    assert first["raw"]["MaHoSo"] == first["dossier_code"]
    assert (await client.get("/v1/portal/quarantine")).status_code == 401

    status = (await client.get("/v1/portal/sync-status", headers=ADMIN)).json()["items"]
    assert status[0]["source"] == "sim"
    assert status[0]["quarantined"] == len(bad)
    assert status[0]["last_error"] is None


async def test_incremental_sync_pulls_only_what_changed(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, engine: AsyncEngine
) -> None:
    sim = PortalSimulator(dossiers=100, seed=5, now=NOW)
    client = client_for(sim)
    await run(sessionmaker, settings, client)
    changed = sim.finish_open(4)
    assert len(changed) == 4
    again = await run(sessionmaker, settings, client)
    assert again.records == 4
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT code, status, end_at FROM dossiers WHERE code = ANY(:c)"),
                {"c": changed},
            )
        ).all()
    assert {r.status for r in rows} == {9}
    assert {instant(r.end_at.isoformat()) for r in rows} == {NOW}
    assert (await run(sessionmaker, settings, client)).records == 0


async def test_an_unreachable_portal_is_recorded_and_retried_next_time(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    client: httpx.AsyncClient,
) -> None:
    sim = PortalSimulator(dossiers=50, seed=5, now=NOW, faults=Faults(error_rate=1.0))
    failed = await run(sessionmaker, settings, client_for(sim))
    assert failed.error is not None and "failed 8 times" in failed.error
    status = (await client.get("/v1/portal/sync-status", headers=ADMIN)).json()["items"][0]
    assert status["last_success_at"] is None and "failed" in status["last_error"]
    sim.faults.error_rate = 0.0
    ok = await run(sessionmaker, settings, client_for(sim))
    assert (ok.error, ok.records) == (None, 50)


async def test_two_runs_at_once_do_the_work_once(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, engine: AsyncEngine
) -> None:
    sim = PortalSimulator(dossiers=150, seed=9, now=NOW, faults=Faults(latency=0.01))
    first, second = await asyncio.gather(
        run(sessionmaker, settings, client_for(sim)), run(sessionmaker, settings, client_for(sim))
    )
    assert sorted([first.skipped, second.skipped]) == [False, True]
    assert len((await snapshot(engine))["dossiers"]) == 150


async def test_quarantine_keeps_no_personal_data(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, engine: AsyncEngine
) -> None:
    sim = PortalSimulator(dossiers=40, seed=3, now=NOW, faults=Faults(malformed_rate=0.3))
    for record in sim._items:
        record.record.update(
            ChuHoSo="Nguyễn Thị Lan", SoDienThoai="0912345678", Email="lan@example.vn",
            SoGiayTo="079190012345", TenTTHC="Gọi 0987 654 321 để bổ sung",
        )  # fmt: skip
    report = await run(sessionmaker, settings, client_for(sim))
    assert report.quarantined > 0
    async with engine.connect() as conn:
        dumped = str((await conn.execute(text("SELECT raw FROM portal_quarantine"))).all())
    for secret in ("Lan", "0912345678", "lan@example.vn", "079190012345", "0987 654 321"):
        assert secret not in dumped
    assert "Gọi [phone] để bổ sung" in dumped
