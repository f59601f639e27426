"""The API documentation renders on a network that reaches nothing but the service: Swagger UI
at /docs and ReDoc at /redoc, in a real Chromium whose every request off localhost is refused.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from playwright.async_api import Browser, Page, Route

LOCAL = {"127.0.0.1", "localhost"}


async def offline_page(browser: Browser) -> tuple[Page, list[str], list[str]]:
    """A page whose requests off localhost are aborted (and noted), as on a closed network."""
    page = await browser.new_page(viewport={"width": 1280, "height": 1600})
    refused: list[str] = []
    local: list[str] = []

    async def only_localhost(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname in LOCAL or url.startswith(("data:", "blob:")):
            local.append(url)
            await route.continue_()
        else:
            refused.append(url)
            await route.abort("internetdisconnected")

    await page.route("**/*", only_localhost)
    # Requests the page's Content-Security-Policy stops never reach the route: noted too.
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return page, refused, local


async def test_swagger_ui_renders_every_operation_offline(
    live_server: str, browser: Browser, artifacts: Path
) -> None:
    page, refused, local = await offline_page(browser)
    # The way a person gets there: the dashboard's "API" link.
    await page.goto(f"{live_server}/dashboard/rankings")
    async with page.expect_response(f"{live_server}/docs") as docs:
        await page.get_by_role("link", name="API").click()
    assert "default-src 'self'" in (await docs.value).headers["content-security-policy"]
    rankings = page.locator('.opblock-summary-path[data-path="/v1/rankings"]')
    await rankings.wait_for(state="visible", timeout=30_000)
    assert await page.locator(".opblock").count() > 30
    # The operation opens with its parameters (level, period, …).
    await rankings.click()
    await page.locator(".opblock.is-open .parameters").first.wait_for()
    # Enumerations are named in Vietnamese and English: `level` under the operation …
    level = page.locator('.opblock.is-open tr[data-param-name="level"]')
    await level.get_by_text("Tỉnh, thành phố trực thuộc trung ương").wait_for()
    await page.screenshot(path=str(artifacts / "docs-swagger-ui.png"), full_page=False)
    # … and the dossier status codes in their schema.
    title = page.locator(".json-schema-2020-12__title", has_text=re.compile("^DossierStatus$"))
    status = page.locator("section.models article[data-json-schema-level='0']", has=title)
    await status.scroll_into_view_if_needed()
    await status.locator(".json-schema-2020-12-accordion").first.click()
    await status.get_by_text("Yêu cầu bổ sung giấy tờ").wait_for()
    await status.screenshot(path=str(artifacts / "docs-swagger-ui-status.png"))
    assert refused == []
    assert f"{live_server}/docs/assets/swagger-ui-bundle.js" in local
    assert (
        f"{live_server}/docs/assets/favicon.png" in local
        or await page.evaluate("document.querySelector('link[rel~=icon]').href")
        == f"{live_server}/docs/assets/favicon.png"
    )
    await page.close()


async def test_redoc_renders_offline(live_server: str, browser: Browser, artifacts: Path) -> None:
    page, refused, local = await offline_page(browser)
    response = await page.goto(f"{live_server}/redoc")
    assert response is not None
    assert "img-src 'self' data:" in response.headers["content-security-policy"]
    # ReDoc lists each operation in its menu and gives each its own section.
    rankings = page.get_by_text("/v1/rankings", exact=True)
    await rankings.first.wait_for(state="visible", timeout=60_000)
    assert await page.locator("[data-section-id^='operation/']").count() > 30
    await page.screenshot(path=str(artifacts / "docs-redoc.png"), full_page=False)
    # The status codes of an event, named in both languages (ReDoc's table of the values).
    await page.get_by_text("Mới đăng ký — Registered").first.wait_for(state="attached")
    assert refused == []
    assert f"{live_server}/docs/assets/redoc.standalone.js" in local
    await page.close()
