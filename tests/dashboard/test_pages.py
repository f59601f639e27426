"""The dashboard in a real headless Chromium: rankings table and chart, period picker, unit
and overdue pages. Screenshots go to test-artifacts/."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import create_sessionmaker
from app.core.settings import Settings
from app.scores.jobs import refresh_scores
from tests.helpers import event, post_events, put_procedure, put_unit
from tests.scores.test_rankings import FEBRUARY, MARCH, NOW, dossiers, submit, values


async def seed(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings,
    clock: Callable[[datetime], None],
) -> None:  # fmt: skip
    """February: H14 first of five. March: H01 and H14 tied first, six provinces (see
    tests/scores/test_rankings.py for the hand-computed totals)."""
    clock(NOW)
    names = {"H01": "Tỉnh An Giang", "H05": "Tỉnh Bắc Ninh", "H12": "Tỉnh Cà Mau",
             "H13": "Thành phố Cần Thơ", "H14": "Tỉnh Cao Bằng"}  # fmt: skip
    for code, name in names.items():
        await put_unit(client, code, "province", name=name)
    await put_unit(client, "H99", "province", name="Tỉnh Mới", valid_from="2026-03-01")
    await put_procedure(client, "P3", 3, "working_days")
    await submit(client, values("2026-02", FEBRUARY) + values("2026-03", MARCH))
    events: list[dict[str, Any]] = []
    for unit in FEBRUARY:
        events += dossiers("02", unit)
    for unit in MARCH:
        tied = unit in ("H12", "H13")
        events += dossiers("03", unit, late=1 if tied else 0, on_time=3 if tied else 1)
    # Two open dossiers in H99, overdue since Thu 5 Mar 17:00, for the overdue page. They
    # also cost H99 TDGQ points (1 of 3 on time), which moves it last; the rest is unchanged.
    events += [event("o1", "H99-OPEN-1", 2, "2026-03-02 08:00", unit="H99"),
               event("o2", "H99-OPEN-2", 2, "2026-03-02 09:00", unit="H99")]  # fmt: skip
    await post_events(client, events)
    await refresh_scores({"sessionmaker": create_sessionmaker(engine), "settings": settings,
                          "clock": lambda: NOW})  # fmt: skip


async def test_rankings_page_shows_the_leader_a_bar_per_unit_and_follows_the_period(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings,
    clock: Callable[[datetime], None], live_server: str, browser: Browser, artifacts: Path,
) -> None:  # fmt: skip
    await seed(client, engine, settings, clock)
    page = await browser.new_page(viewport={"width": 1200, "height": 1400})
    await page.goto(f"{live_server}/dashboard/rankings?level=province&period=2026-03")
    first = page.locator("#ranking tbody tr").first
    await first.wait_for()
    # Ranked by total, ties by code: H01 (100, Tỉnh An Giang) first.
    assert await first.locator("td").nth(1).inner_text() == "Tỉnh An Giang"
    assert await first.locator("td").nth(3).inner_text() == "Xuất sắc"
    assert await page.locator("#ranking tbody tr").count() == 6
    assert await page.locator("#chart svg g.bar").count() == 6
    # H05 climbed from 5th to 3rd: the change column shows ▲ 2.
    h05 = page.locator('#ranking tbody tr[data-unit="H05"] td').nth(4)
    assert (await h05.inner_text()).strip() == "▲ 2"
    await page.screenshot(path=str(artifacts / "rankings-2026-03.png"), full_page=True)

    await page.select_option("#period", "2026-02")
    await page.wait_for_function("document.querySelectorAll('#ranking tbody tr').length === 5")
    leader = page.locator("#ranking tbody tr").first.locator("td").nth(1)
    assert await leader.inner_text() == "Tỉnh Cao Bằng"  # H14 led February with 100
    assert await page.locator("#chart svg g.bar").count() == 5
    assert "period=2026-02" in page.url
    await page.screenshot(path=str(artifacts / "rankings-2026-02.png"), full_page=True)

    # On a phone the page still fits: no horizontal scrolling.
    phone = await browser.new_page(viewport={"width": 390, "height": 844})
    await phone.goto(f"{live_server}/dashboard/rankings?level=province&period=2026-03")
    await phone.locator("#ranking tbody tr").first.wait_for()
    overflow = await phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    await phone.screenshot(path=str(artifacts / "rankings-phone.png"), full_page=True)


async def test_unit_and_overdue_pages(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings,
    clock: Callable[[datetime], None], live_server: str, browser: Browser, artifacts: Path,
) -> None:  # fmt: skip
    await seed(client, engine, settings, clock)
    page = await browser.new_page(viewport={"width": 1100, "height": 1600})
    await page.goto(f"{live_server}/dashboard/units/H12?period=2026-03")
    await page.locator("#kpis .big").first.wait_for()
    assert await page.locator("#title").inner_text() == "Tỉnh Cà Mau"
    kpis = await page.locator("#kpis").inner_text()
    # H99 fell to 6th (82.67), so H12 and H13 share 4th: "4/6", down one from 3rd.
    assert "95.00/100" in kpis and "4/6" in kpis and "Xuất sắc" in kpis and "▼ 1" in kpis
    # Its only shortfall is TDGQ: 3 of 4 dossiers on time, 5 points lost.
    assert "mất 5.00 điểm" in await page.locator("#shortfalls").inner_text()
    # Insights: 95 already clears the Tốt band (80); no integrity flag is open.
    await page.locator("#whatif h3").wait_for()
    assert "Đã đạt mục tiêu" in await page.locator("#whatif").inner_text()
    assert "Không có cảnh báo" in await page.locator("#integrity").inner_text()
    await page.screenshot(path=str(artifacts / "unit-H12.png"), full_page=True)

    await page.goto(f"{live_server}/dashboard/overdue?unit=H99&period=2026-03")
    await page.locator("#counts tbody tr").first.wait_for()
    # At the end of March both open H99 dossiers are overdue, neither with an apology letter.
    assert await page.locator("#counts tbody tr").first.inner_text() == "Tỉnh Mới\t2\t2"
    assert await page.locator("#chart svg rect.bar").count() == 1
    # "At" the end of March in Vietnam's time, whatever the browser's time zone (here UTC).
    assert "2 hồ sơ quá hạn tại 23:59:59 31/3/2026" in await page.locator("#summary").inner_text()
    await page.screenshot(path=str(artifacts / "overdue-H99.png"), full_page=True)


async def test_pages_use_etags(client: httpx.AsyncClient) -> None:
    first = await client.get("/dashboard/rankings")
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("text/html")
    assert "Bảng xếp hạng" in first.text
    again = await client.get(
        "/dashboard/rankings", headers={"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304
    script = await client.get("/dashboard/static/charts.js")
    assert "#E69F00" in script.text  # the colour-blind-safe palette ships with the project
    assert (await client.get("/dashboard/static/nope.js")).status_code == 404
    assert (await client.get("/", follow_redirects=False)).headers["location"] == (
        "/dashboard/rankings"
    )
