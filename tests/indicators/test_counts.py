"""Counts for scoring from the database (what scores and rankings build on), and races."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.auth import ADMIN as ADMIN_PRINCIPAL
from app.indicators import service
from app.indicators.catalog import shipped_catalog
from app.indicators.periods import Period
from app.indicators.schemas import IndicatorValueIn
from app.indicators.scoring import Counts, score
from tests.helpers import ADMIN, province_with_communes, vn

TODAY = date(2024, 12, 31)


@pytest.fixture
async def units(client: httpx.AsyncClient, clock: Callable[[datetime], None]) -> None:
    await province_with_communes(client)
    clock(vn("2024-12-31 10:00"))


def item(
    unit: str, period: str, metric: str, numerator: int, denominator: int
) -> dict[str, object]:
    return {
        "unit_code": unit,
        "period": period,
        "metric_code": metric,
        "numerator": numerator,
        "denominator": denominator,
    }


async def submit(client: httpx.AsyncClient, values: list[dict[str, object]]) -> None:
    response = await client.post(
        "/v1/indicator-values/batch", json={"values": values}, headers=ADMIN
    )
    assert response.status_code == 200
    assert response.json()["rejected"] == 0, response.text


async def test_latest_counts_takes_the_latest_revision(
    client: httpx.AsyncClient, engine: AsyncEngine, units: None
) -> None:
    await submit(client, [
        item("H01.01", "2024-04", "DOSSIER_SYNC", 1, 10),
        item("H01.02", "2024-04", "DOSSIER_SYNC", 2, 10),
        item("H01.01", "2024-05", "DOSSIER_SYNC", 3, 10),
    ])  # fmt: skip
    await submit(client, [item("H01.01", "2024-04", "DOSSIER_SYNC", 4, 10)])  # revision 2
    april = Period.parse("2024-04")
    async with AsyncSession(engine) as session:
        counts = await service.latest_counts(session, ["H01.01", "H01.02", "H05.01"], [april])
    assert counts == {
        ("H01.01", april, "DOSSIER_SYNC"): Counts(4, 10),
        ("H01.02", april, "DOSSIER_SYNC"): Counts(2, 10),
    }


async def test_counts_for_a_quarter_sum_months_unless_the_quarter_was_submitted(
    client: httpx.AsyncClient, engine: AsyncEngine, units: None
) -> None:
    await submit(client, [
        # H01.01: FULL_ONLINE_RATE monthly only
        item("H01.01", "2024-04", "FULL_ONLINE_RATE", 9, 10),
        item("H01.01", "2024-05", "FULL_ONLINE_RATE", 10, 100),
        item("H01.01", "2024-06", "FULL_ONLINE_RATE", 50, 50),
        # H01.01: DOSSIER_SYNC monthly AND for the quarter: the quarter's own figure wins
        item("H01.01", "2024-04", "DOSSIER_SYNC", 1, 1),
        item("H01.01", "2024-Q2", "DOSSIER_SYNC", 1, 4),
        # H01.02: nothing in Q2, something in Q3
        item("H01.02", "2024-07", "FULL_ONLINE_RATE", 1, 1),
    ])  # fmt: skip
    q2 = Period.parse("2024-Q2")
    async with AsyncSession(engine) as session:
        counts = await service.counts_for_period(session, ["H01.01", "H01.02"], q2)
    assert counts == {
        "H01.01": {
            "FULL_ONLINE_RATE": Counts(69, 160),  # 9 + 10 + 50 over 10 + 100 + 50
            "DOSSIER_SYNC": Counts(1, 4),
        }
    }
    version = shipped_catalog().for_period(q2)
    assert version is not None
    result = score(version, counts["H01.01"])
    # FULL_ONLINE_RATE 12 × 69/160 = 5.175; DOSSIER_SYNC 6 × 1/4 = 1.5; 5.175 + 1.5 = 6.675
    # → 6.68 (half-up). Averaging the monthly FULL_ONLINE_RATE scores (10.8, 1.2, 12) would
    # give 8 + 1.5 = 9.50 instead.
    assert result.total == Decimal("6.68")
    assert result.metric("FULL_ONLINE_RATE").points == Decimal("5.175")

    year = Period.parse("2024")
    async with AsyncSession(engine) as session:
        yearly = await service.counts_for_period(session, ["H01.02"], year)
    assert yearly == {"H01.02": {"FULL_ONLINE_RATE": Counts(1, 1)}}


async def test_concurrent_submissions_get_consecutive_revisions(
    client: httpx.AsyncClient, engine: AsyncEngine, units: None
) -> None:
    catalog = shipped_catalog()
    first = IndicatorValueIn.model_validate(item("H01.01", "2024-04", "DOSSIER_SYNC", 1, 10))
    second = IndicatorValueIn.model_validate(item("H01.01", "2024-04", "DOSSIER_SYNC", 2, 10))
    async with AsyncSession(engine) as a, AsyncSession(engine) as b:
        await service.submit(a, ADMIN_PRINCIPAL, catalog, [first], today=TODAY)
        # b computes revision 1 too, then waits on a's uncommitted row with the same number.
        racing = asyncio.create_task(
            service.submit(b, ADMIN_PRINCIPAL, catalog, [second], today=TODAY)
        )
        await asyncio.sleep(0.3)
        assert not racing.done()
        await a.commit()
        outcome = await racing
        await b.commit()
    assert [(r.result, r.revision) for r in outcome.results] == [("stored", 2)]
    history = await client.get("/v1/units/H01.01/indicator-values?history=true", headers=ADMIN)
    assert [(i["revision"], i["numerator"]) for i in history.json()["items"]] == [(2, 2), (1, 1)]
