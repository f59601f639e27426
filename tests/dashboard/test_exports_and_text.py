"""The dashboard as a person uses it, in a real Chromium set to English: exports downloaded with
a click (the public rankings by a plain link, the overdue list after asking for a key kept in
the tab's sessionStorage), the unit page on the current month, charts that name units and show
every bar's value, and Vietnamese text throughout (the insights' messages included).
Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, Download, Page, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import create_sessionmaker
from app.core.settings import Settings
from app.insights.messages import MESSAGES
from app.scores.jobs import refresh_scores
from tests.dashboard.test_pages import seed
from tests.dossiers.test_overdue_export import VI_HEADERS
from tests.helpers import ADMIN, create_key, event, post_events, put_unit
from tests.scores.test_rankings import NOW, SUBMITTED, dossiers, submit, values
from tests.spreadsheets import csv_rows, same_cells, xlsx_rows

# Ranked in March (tests/dashboard/test_pages.py): H01 and H14 tied first, H05 third, H12 and
# H13 tied fourth, H99 last.
MARCH_ORDER = ["Tỉnh An Giang", "Tỉnh Cao Bằng", "Tỉnh Bắc Ninh", "Tỉnh Cà Mau",
               "Thành phố Cần Thơ", "Tỉnh Mới"]  # fmt: skip


async def english_page(browser: Browser) -> Page:
    """A tab of a browser set to English: it sends Accept-Language: en-US."""
    return await browser.new_page(
        viewport={"width": 1100, "height": 1400}, locale="en-US", timezone_id="Asia/Ho_Chi_Minh"
    )


async def downloaded(download: Download) -> bytes:
    path = await download.path()
    return Path(path).read_bytes()


def english_words(text: str) -> set[str]:
    """Words of the insights' English messages found in ``text`` (codes and paths aside)."""
    vocabulary = set()
    for _, en in MESSAGES.values():
        for word in re.findall(r"[A-Za-z]{4,}", re.sub(r"\{[^}]*\}", " ", en)):
            if not word.isupper():
                vocabulary.add(word.lower())
    prose = re.sub(r"\S*[/:_.]\S*", " ", text)  # API paths, scopes, codes, file names
    return {w.lower() for w in re.findall(r"[A-Za-z]{4,}", prose)} & vocabulary


async def test_a_click_on_a_rankings_export_downloads_a_file_excel_reads(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings,
    clock: Callable[[datetime], None], live_server: str, browser: Browser, artifacts: Path,
) -> None:  # fmt: skip
    await seed(client, engine, settings, clock)
    page = await english_page(browser)
    await page.goto(f"{live_server}/dashboard/rankings?level=province&period=2026-03")
    csv_link = page.locator("#exports a", has_text="CSV")
    await csv_link.wait_for()
    await page.screenshot(path=str(artifacts / "export-rankings-links.png"), full_page=False)
    async with page.expect_download() as info:
        await csv_link.click()
    download = await info.value
    assert download.suggested_filename == "xep-hang-province-ca-nuoc-2026-03.csv"
    content = await downloaded(download)
    assert content.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
    rows = csv_rows(content)
    assert {"Hạng", "Mã đơn vị", "Tên đơn vị", "Tổng điểm", "Xếp loại"} <= set(rows[0])
    names = rows[0].index("Tên đơn vị")
    assert [row[names] for row in rows[1:]] == MARCH_ORDER
    # A plain link: the page holds no key, and none was needed.
    assert await csv_link.get_attribute("href") == (
        "/v1/rankings?level=province&period=2026-03&source=computed&format=csv"
    )
    assert await page.evaluate("sessionStorage.length + localStorage.length") == 0

    async with page.expect_download() as info:
        await page.locator("#exports a", has_text="Excel").click()
    workbook = await info.value
    assert workbook.suggested_filename == "xep-hang-province-ca-nuoc-2026-03.xlsx"
    sheet, cells = xlsx_rows(await downloaded(workbook))
    assert sheet == "Xếp hạng 2026-03"
    assert same_cells(rows, cells)


async def test_the_overdue_export_asks_for_a_key_then_downloads(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings,
    clock: Callable[[datetime], None], live_server: str, browser: Browser, artifacts: Path,
) -> None:  # fmt: skip
    await seed(client, engine, settings, clock)
    _, auth = await create_key(client, ["dossiers:read"], "H99", name="desk of H99")
    key = auth["Authorization"].removeprefix("Bearer ")
    page = await english_page(browser)
    sent: list[Request] = []
    page.on("request", lambda request: sent.append(request))
    await page.goto(f"{live_server}/dashboard/overdue?unit=H99&period=2026-03")
    await page.locator("#counts tbody tr").first.wait_for()
    form = page.locator("#key-form")
    assert await form.is_hidden()

    # No key yet: the click asks for one and fetches nothing.
    await page.get_by_role("button", name="Tải CSV").click()
    await form.wait_for(state="visible")
    assert await page.locator("#export-status").inner_text() == "Nhập khóa API để tải danh sách."
    assert not [r for r in sent if "/v1/units/H99/overdue?" in r.url]
    await page.fill("#api-key", key)
    await page.screenshot(path=str(artifacts / "overdue-export-key.png"), full_page=True)
    async with page.expect_download() as info:
        await page.get_by_role("button", name="Dùng khóa này và tải về").click()
    download = await info.value
    # The server's clock says Fri 10 Apr 2026: the file is named by the local date.
    assert download.suggested_filename == "ho-so-qua-han-H99-2026-04-10.csv"
    rows = csv_rows(await downloaded(download))
    listed = (await client.get("/v1/units/H99/overdue", headers=ADMIN)).json()["items"]
    # Both received Mon 2 Mar (08:00, 09:00) with 3 working days: due Thu 5 Mar 17:00, local.
    assert rows == [
        VI_HEADERS,
        ["H99-OPEN-1", "H99", "Tỉnh Mới", "P3", "2026-03-02T08:00:00+07:00",
         "2026-03-05T17:00:00+07:00", listed[0]["overdue_by"], "Không", ""],
        ["H99-OPEN-2", "H99", "Tỉnh Mới", "P3", "2026-03-02T09:00:00+07:00",
         "2026-03-05T17:00:00+07:00", listed[1]["overdue_by"], "Không", ""],
    ]  # fmt: skip
    # Fetched with the key as a Bearer token; the key stays in this tab's sessionStorage only.
    [export] = [r for r in sent if "/v1/units/H99/overdue?format=csv" in r.url]
    assert (await export.all_headers())["authorization"] == f"Bearer {key}"
    assert await page.evaluate("sessionStorage.getItem('chiso.apiKey')") == key
    assert await page.evaluate("localStorage.length") == 0
    assert key not in page.url and await page.input_value("#api-key") == ""
    await page.locator("#key-state").wait_for()
    assert await form.is_hidden()
    assert (await page.locator("#export-status").inner_text()).startswith("Đã tải ho-so-qua-han")
    await page.screenshot(path=str(artifacts / "overdue-export-done.png"), full_page=True)

    # The key is known now: Excel downloads at once, the same cells.
    async with page.expect_download() as info:
        await page.get_by_role("button", name="Tải Excel").click()
    workbook = await info.value
    assert workbook.suggested_filename == "ho-so-qua-han-H99-2026-04-10.xlsx"
    sheet, cells = xlsx_rows(await downloaded(workbook))
    assert sheet == "Hồ sơ quá hạn H99"
    assert same_cells(rows, cells)

    # Another tab does not have it.
    other = await english_page(browser)
    await other.goto(f"{live_server}/dashboard/overdue?unit=H99")
    await other.get_by_role("button", name="Tải CSV").click()
    await other.locator("#key-form").wait_for(state="visible")
    await other.close()

    # Forgotten, then a wrong key: refused, said in Vietnamese, not kept; asked for again.
    await page.get_by_role("button", name="Xóa khóa").click()
    assert await page.evaluate("sessionStorage.getItem('chiso.apiKey')") is None
    await page.get_by_role("button", name="Tải CSV").click()
    await page.fill("#api-key", "not-a-key-0123456789")
    await page.get_by_role("button", name="Dùng khóa này và tải về").click()
    status = page.locator("#export-status.error")
    await status.wait_for()
    assert await status.inner_text() == "Không tải được: cần khóa API."
    assert await page.evaluate("sessionStorage.getItem('chiso.apiKey')") is None
    assert await form.is_visible()
    await page.screenshot(path=str(artifacts / "overdue-export-wrong-key.png"), full_page=True)


async def test_the_unit_page_opens_on_the_current_month(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings,
    clock: Callable[[datetime], None], live_server: str, browser: Browser, artifacts: Path,
) -> None:  # fmt: skip
    await seed(client, engine, settings, clock)
    page = await english_page(browser)
    await page.clock.set_fixed_time(NOW)  # Fri 10 Apr 2026 09:00 in Vietnam, as the server
    await page.goto(f"{live_server}/dashboard/units/H12")
    await page.locator("#history svg circle.point").first.wait_for()
    # The period picker and the chart both end on this month.
    assert await page.input_value("#period") == "2026-04"
    assert page.url.endswith("/dashboard/units/H12?period=2026-04")
    months = await page.locator("#history svg text.period").all_text_contents()
    assert months == ["05", "06", "07", "08", "09", "10", "11", "12", "01", "02", "03", "04"]
    # The unit's name on the chart, each point with its value (H12: 97 in Feb, 95 in March).
    assert await page.locator("#history .legend").inner_text() == "Tỉnh Cà Mau"
    assert await page.locator("#history svg text.value").all_text_contents() == [
        "97.00", "95.00",
    ]  # fmt: skip
    await page.screenshot(path=str(artifacts / "unit-H12-current-month.png"), full_page=True)


async def bars(page: Page, selector: str) -> list[dict[str, Any]]:
    """Each bar's name and value labels, and whether the value shows inside the chart."""
    found: list[dict[str, Any]] = await page.evaluate(
        """(selector) => [...document.querySelectorAll(selector)].map((row) => {
            const svg = row.ownerSVGElement, box = svg.viewBox.baseVal;
            const value = row.querySelector("text.value"), b = value.getBBox();
            const name = row.querySelector("text.label").firstChild.nodeValue;
            return { unit: row.dataset.unit, name,
                     value: value.textContent,
                     inside: b.x >= 0 && b.y >= 0 && b.x + b.width <= box.width
                             && b.y + b.height <= box.height };
        })""",
        selector,
    )
    return found


async def test_charts_name_units_and_show_every_value(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings,
    clock: Callable[[datetime], None], live_server: str, browser: Browser, artifacts: Path,
) -> None:  # fmt: skip
    await seed(client, engine, settings, clock)
    # A commune of H99 with three overdue dossiers: the tallest bar of the overdue chart.
    await put_unit(client, "H99.01", "commune", "H99", name="Xã Mỹ Hòa Hưng",
                   valid_from="2026-03-01")  # fmt: skip
    await post_events(client, [
        event(f"m{n}", f"H99.01-OPEN-{n}", 2, "2026-03-02 08:00", unit="H99.01")
        for n in range(3)
    ])  # fmt: skip
    page = await english_page(browser)
    await page.goto(f"{live_server}/dashboard/rankings?level=province&period=2026-03")
    await page.locator("#chart svg g.bar").first.wait_for()
    ranking = (await client.get("/v1/rankings", params={"level": "province",
                                                         "period": "2026-03"})).json()  # fmt: skip
    shown = await bars(page, "#chart svg g.bar")
    assert [(b["unit"], b["name"], b["value"]) for b in shown] == [
        (i["unit_code"], i["name"], f"{i['total']:.2f}") for i in ranking["items"]
    ]
    assert [b["name"] for b in shown] == MARCH_ORDER
    assert all(b["inside"] for b in shown), shown  # the longest bar's total too
    await page.locator("#chart").screenshot(path=str(artifacts / "chart-rankings.png"))

    await page.goto(f"{live_server}/dashboard/overdue?unit=H99&period=2026-03")
    await page.locator("#chart svg rect.bar").first.wait_for()
    counts = (await client.get("/v1/units/H99/overdue-counts", params={"period": "2026-03"})).json()
    expected = [(r["unit_code"], r["unit_name"], str(r["overdue"]))
                for r in counts["items"] if r["overdue"] > 0]  # fmt: skip
    shown = await bars(page, "#chart svg g.row")
    assert [(b["unit"], b["name"], b["value"]) for b in shown] == expected
    assert {"Xã Mỹ Hòa Hưng", "Tỉnh Mới"} <= {b["name"] for b in shown}
    tallest = max(shown, key=lambda b: int(b["value"]))
    assert (tallest["name"], tallest["value"]) == ("Xã Mỹ Hòa Hưng", "3")
    assert all(b["inside"] for b in shown), shown
    # Names, not codes.
    assert not [t for t in await page.locator("#chart svg text").all_text_contents() if "H99" in t]
    await page.locator("#chart").screenshot(path=str(artifacts / "chart-overdue.png"))


async def test_every_page_speaks_vietnamese_to_an_english_browser(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings,
    clock: Callable[[datetime], None], live_server: str, browser: Browser, artifacts: Path,
) -> None:  # fmt: skip
    await seed(client, engine, settings, clock)
    # H20: every submitted metric half met in March, one dossier on time: short of "Tốt", with
    # a plan to get there.
    await put_unit(client, "H20", "province", name="Tỉnh Hòa Hưng")
    await submit(client, values("2026-03", {"H20": dict.fromkeys(SUBMITTED, 5)}))
    await post_events(client, dossiers("03", "H20"))
    await refresh_scores({"sessionmaker": create_sessionmaker(engine), "settings": settings,
                          "clock": lambda: NOW})  # fmt: skip
    plan = (
        await client.get(
            "/v1/units/H20/what-if", params={"period": "2026-03", "target": "grade:Tốt"}
        )
    ).json()
    assert plan["reachable"] and not plan["already_reached"] and plan["improvements"]

    page = await english_page(browser)
    sent: list[Request] = []
    page.on("request", lambda request: sent.append(request))
    await page.goto(f"{live_server}/dashboard/units/H20?period=2026-03")
    await page.locator("#whatif ol li").first.wait_for()
    whatif = await page.locator("#whatif").inner_text()
    assert whatif.startswith("Để đạt xếp loại Tốt")
    assert plan["message"].startswith("Có thể đạt: tăng thêm") and plan["message"] in whatif
    items = await page.locator("#whatif ol li").all_inner_texts()
    assert [i.split(" (+")[0] for i in items] == [
        f"{s['name']}: {s['action']}" for s in plan["improvements"]
    ]
    assert all(" trường hợp đạt yêu cầu (trên tổng số " in i for i in items)
    # The browser asks in English; the dashboard asks the API for Vietnamese.
    asked = next(r for r in sent if "/what-if?" in r.url)
    assert (await asked.all_headers())["accept-language"] == "vi"
    assert (await page.evaluate("navigator.language")) == "en-US"
    await page.locator("#integrity h3").wait_for()
    await page.screenshot(path=str(artifacts / "unit-H20-what-if.png"), full_page=True)
    found = english_words(await page.locator("body").inner_text())
    assert found == set(), found

    for path in ("/dashboard/rankings?level=province&period=2026-03",
                 "/dashboard/overdue?unit=H99&period=2026-03"):  # fmt: skip
        await page.goto(f"{live_server}{path}")
        await page.locator("table tbody tr").first.wait_for()
        await page.wait_for_function("document.querySelector('#summary').textContent !== ''")
        found = english_words(await page.locator("body").inner_text())
        assert found == set(), (path, found)
