"""A real browser against a real server: Debian's Chromium driven by Playwright.

Chromium comes from the system package (``apt-get install chromium``, done here when it is
missing and we may install packages); Playwright's own browser download is not used. Tests
are skipped, with the reason, only where no Chromium can be had.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.async_api import Browser, async_playwright

from app.core.settings import PROJECT_ROOT, Settings
from app.main import create_app

ARTIFACTS = PROJECT_ROOT / "test-artifacts"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def install_chromium() -> str | None:
    """Install Debian's chromium when running as root with apt (CI and fresh machines)."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        result = subprocess.run(command, env=env, capture_output=True, timeout=900, check=False)
        if result.returncode != 0:
            return None
    return find_chromium()


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = find_chromium() or install_chromium()
    if path is None:
        pytest.skip("no Chromium: not installed and cannot be installed here (needs root + apt)")
    return path


@pytest.fixture(scope="session")
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_FLAGS
        )
        yield launched
        await launched.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def live_server(app: FastAPI, settings: Settings, clean: None) -> AsyncIterator[str]:
    """The real app served by uvicorn on a free port, sharing the suite's database and its
    clock (the ``clock`` fixture sets the served app's "now" too)."""
    served = create_app(settings)
    served.state.clock = lambda: app.state.clock()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(served, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
