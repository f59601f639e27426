"""Identity numbers, phone numbers and e-mails sent to chiso are stored nowhere: not in any
table, not in quarantined raw records, not in the audit log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.cli import load_reference_data
from app.core.database import create_sessionmaker
from app.core.settings import Settings
from app.portal.client import PortalClient, PortalSource, RetryPolicy
from app.portal.simulator import SIMULATOR_UNITS_CSV, Faults, PortalSimulator
from app.portal.sync import sync_source
from app.units.service import load_units
from tests.helpers import ADMIN, DERIVED, vn
from tests.security.conftest import UNIT_A, World

CCCD = "079203001234"
OLD_ID = "025123456"
PHONE = "0912345678"
PHONE_INTL = "+84 912 345 679"
EMAIL = "nguyen.van.an@example.vn"
SECRETS = [CCCD, OLD_ID, PHONE, "912345679", EMAIL, "nguyen.van.an"]

PERSONAL = {
    "ChuHoSo": f"Nguyễn Văn An {CCCD}", "SoCCCD": CCCD, "SoCMND": OLD_ID,
    "SoDienThoai": PHONE, "DienThoai": PHONE_INTL, "Email": EMAIL,
    "DiaChi": f"12 Lê Lợi, liên hệ {PHONE_INTL} hoặc {EMAIL}",
    "GhiChu": f"CCCD {CCCD}, ĐT {PHONE}, email {EMAIL}",
}  # fmt: skip


async def _every_table_as_text(engine: AsyncEngine) -> str:
    async with engine.connect() as conn:
        tables = (
            await conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
            )
        ).scalars()
        dump = []
        for table in tables:
            rows = await conn.execute(text(f'SELECT t::text FROM "{table}" t'))
            dump.extend(f"{table}: {r[0]}" for r in rows)
    return "\n".join(dump)


async def test_personal_data_sent_in_any_shape_is_stored_nowhere(
    client: httpx.AsyncClient,
    world: World,
    engine: AsyncEngine,
    settings: Settings,
    configure: Callable[..., None],
) -> None:
    configure(store_notes=True)  # the scrubber must hold even where notes are kept
    record = {
        "MaHoSo": "H01.01-260302-0042", "MaTTHC": "P3", "KenhThucHien": "2", "MaDonVi": UNIT_A,
        "NgayTiepNhan": "20260302080000", "TrangThaiHoSo": "4", **PERSONAL,
        "DanhSachHoSoBoSung": [{"NgayBoSung": "20260303100000", "LyDo": f"gọi {PHONE}",
                                 "NgayTiepNhanBoSung": "", "NgayHenTraMoi": ""}],
    }  # fmt: skip
    # A date that is no date is stored with a note; a status that is no status is refused.
    bad_record = record | {"MaHoSo": "H01.01-260302-0043", "TrangThaiHoSo": f"gọi {PHONE}"}
    portal = await client.post(
        "/v1/portal/dossiers", json=[record, bad_record], headers={**ADMIN, **DERIVED}
    )
    assert portal.status_code == 200, portal.text
    assert [i["result"] for i in portal.json()["result"]["items"]] == ["stored", "rejected"]

    event = {
        "event_id": "privacy-1", "dossier_code": "H01.01-260302-0044", "unit_code": UNIT_A,
        "procedure_code": "P3", "status": 2, "occurred_at": "2026-03-02T08:00:00+07:00",
        "channel": 1, "note": PERSONAL["GhiChu"], "applicant": {"id": CCCD, "email": EMAIL},
        "phone": PHONE_INTL, **PERSONAL,
    }  # fmt: skip
    # Derived at once, so the dossier's own row is part of what is checked below.
    posted = await client.post("/v1/dossier-events", json=event, headers={**ADMIN, **DERIVED})
    assert posted.status_code == 201, posted.text
    history = await client.get("/v1/dossiers/H01.01-260302-0044/events", headers=ADMIN)
    assert history.json()["items"][0]["note"] == "CCCD [id], ĐT [phone], email [email]"

    # A portal sync that must quarantine malformed records carrying the same data.
    now = vn("2026-03-20 10:00")
    async with create_sessionmaker(engine)() as session:
        await load_reference_data(session)  # the simulator's provinces and procedures
        await session.commit()

    class Leaky(PortalSimulator):
        """A producer that sends the owner's data in every record, and in one a status field
        holding a phone number (quoted back in its error)."""

        def _generate(self, index: int) -> dict[str, Any]:
            record = {**super()._generate(index), **PERSONAL}
            if index == 0:
                record["TrangThaiHoSo"] = f"gọi {PHONE}"
            return record

    async with create_sessionmaker(engine)() as session:  # the simulator's units resolve
        await load_units(session, SIMULATOR_UNITS_CSV.read_text(encoding="utf-8"))
        await session.commit()
    sim = Leaky(dossiers=30, seed=4, now=now, faults=Faults(malformed_rate=0.3))
    source = PortalSource(name="privacy", base_url="http://portal", username="chiso",
                          password="chiso-sim", page_size=10)  # fmt: skip
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app())) as http:
        report = await sync_source(
            create_sessionmaker(engine), settings, PortalClient(source, http, RetryPolicy()),
            lambda: datetime(2026, 3, 20, 3, 0),
        )  # fmt: skip
    assert report.quarantined > 0 and report.stored > 0
    quarantined = await client.get("/v1/portal/quarantine", headers=ADMIN)
    assert quarantined.json()["items"]

    dump = await _every_table_as_text(engine)
    assert "portal_quarantine:" in dump and "dossier_events:" in dump and "audit_log:" in dump
    leaked = [s for s in SECRETS if s in dump]
    assert not leaked, [line for line in dump.splitlines() if any(s in line for s in leaked)][:5]
