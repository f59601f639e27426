"""Official index results pulled from the portal and kept as snapshots."""

from __future__ import annotations

from decimal import Decimal

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.cli import load_reference_data
from app.core.database import create_sessionmaker
from app.core.settings import Settings
from app.portal.jobs import fetch_official_results
from app.portal.simulator import PortalSimulator
from tests.helpers import vn


async def test_official_results_are_stored_per_unit_and_period(
    engine: AsyncEngine, settings: Settings, clean: None
) -> None:
    maker = create_sessionmaker(engine)
    async with maker() as session:
        await load_reference_data(session)
        await session.commit()
    sim = PortalSimulator(dossiers=1, seed=4)
    ctx = {
        "sessionmaker": maker,
        "settings": settings.model_copy(
            update={"portal_base_url": "http://portal", "portal_username": "chiso"}
        ),
        "http": httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app())),
        "clock": lambda: vn("2026-04-02 06:00"),
    }
    assert await fetch_official_results(ctx) == 34  # last month by default: 2026-03
    assert await fetch_official_results(ctx) == 34  # a re-run updates, never duplicates
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT unit_code, period, time_type, total, group_scores "
                     "FROM official_scores ORDER BY unit_code")
            )
        ).all()  # fmt: skip
    assert len(rows) == 34
    first = rows[0]
    assert (first.unit_code, first.period, first.time_type) == ("H01", "2026-03", "month")
    assert set(first.group_scores) == {"CKMB", "TDGQ", "CLGQ", "TTTT", "MDHL", "MDSH"}
    assert abs(first.total - Decimal(str(round(sum(first.group_scores.values()), 2)))) <= Decimal(
        "0.02"
    )


def test_the_official_results_fetched_by_default_are_the_last_ended_month_s() -> None:
    """The month before the running one by the local calendar: at 06:00 local on 1 January
    (23:00 UTC on 31 December) December has ended, though in UTC it is still running."""
    from datetime import UTC, datetime

    from app.indicators.periods import previous

    settings = Settings()
    assert str(previous(settings, datetime(2025, 12, 31, 23, 0, tzinfo=UTC))) == "2025-12"
    assert str(previous(settings, datetime(2026, 1, 15, 3, 0, tzinfo=UTC))) == "2025-12"
    assert str(previous(settings, datetime(2026, 3, 1, 0, 0, tzinfo=UTC))) == "2026-02"
