"""The portal client against the simulator: sessions, retries, backoff and their limits."""

from __future__ import annotations

import httpx
import pytest

from app.portal.client import (
    PortalClient,
    PortalError,
    PortalSource,
    PortalUnavailable,
    RetryPolicy,
)
from app.portal.simulator import Faults, PortalSimulator

SOURCE = PortalSource(name="sim", base_url="http://portal", username="chiso", password="chiso-sim")


class Sleeps:
    """Records backoff delays instead of sleeping, so tests stay fast and exact."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def client_for(
    sim: PortalSimulator, sleeps: Sleeps, max_tries: int = 6, source: PortalSource = SOURCE
) -> PortalClient:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app()))
    return PortalClient(source, http, RetryPolicy(max_tries=max_tries), sleep=sleeps)


async def test_pages_walk_every_dossier_once() -> None:
    sim = PortalSimulator(dossiers=25, seed=1)
    client = client_for(sim, Sleeps())
    seen: list[str] = []
    cursor = None
    while True:
        page = await client.changed_dossiers(cursor)
        seen += [r["MaHoSo"] for r in page.records]
        cursor = page.next_cursor
        if page.remaining == 0:
            break
    assert len(seen) == 25 == len(set(seen))
    # Caught up: asking again from the last cursor gives nothing new.
    assert (await client.changed_dossiers(cursor)).records == []


async def test_expired_session_is_renewed_once() -> None:
    sim = PortalSimulator(dossiers=5, seed=1, faults=Faults(session_calls=1))
    client = client_for(sim, Sleeps())
    first = await client.changed_dossiers(None)
    second = await client.changed_dossiers(None)  # the session expired: login again
    assert [r["MaHoSo"] for r in first.records] == [r["MaHoSo"] for r in second.records]


async def test_429_honours_retry_after_and_5xx_backs_off() -> None:
    sim = PortalSimulator(
        dossiers=5, seed=1, faults=Faults(burst_every=2, burst_length=2, retry_after=7)
    )
    sleeps = Sleeps()
    client = client_for(sim, sleeps)
    page = await client.changed_dossiers(None)
    assert len(page.records) == 5
    # Request 2 (the listing after login) starts a burst of two 429s: two waits of at least
    # the 7 seconds the portal asked for.
    assert len(sleeps.delays) == 2
    assert all(d >= 7 for d in sleeps.delays)


async def test_bounded_tries_end_in_portal_unavailable() -> None:
    sim = PortalSimulator(dossiers=5, seed=1, faults=Faults(error_rate=1.0))
    sleeps = Sleeps()
    client = client_for(sim, sleeps, max_tries=4)
    with pytest.raises(PortalUnavailable, match="failed 4 times"):
        await client.changed_dossiers(None)
    # Three waits between four tries, growing exponentially: base 0.5 s × 2^n × jitter
    # in [0.5, 1.5) → [0.25, 0.75), [0.5, 1.5), [1, 3).
    assert len(sleeps.delays) == 3
    for n, delay in enumerate(sleeps.delays):
        assert 0.5 * 2**n * 0.5 <= delay < 0.5 * 2**n * 1.5


async def test_timeouts_and_connection_errors_are_retried() -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx.ConnectTimeout("slow portal", request=request)
        if calls["n"] == 2:
            raise httpx.ConnectError("refused", request=request)
        if request.url.path == "/login":
            return httpx.Response(200, json={"error_code": 0, "session": "s"})
        return httpx.Response(
            200, json={"error_code": 0, "result": {"data": [], "cursor": "x", "conlai": 0}}
        )

    sleeps = Sleeps()
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = PortalClient(SOURCE, http, RetryPolicy(max_tries=3), sleep=sleeps)
    page = await client.changed_dossiers(None)
    assert page.records == [] and page.next_cursor == "x"
    assert len(sleeps.delays) == 2


async def test_wrong_password_is_a_portal_error_not_retried() -> None:
    sim = PortalSimulator(dossiers=1, seed=1)
    bad = PortalSource(name="sim", base_url="http://portal", username="chiso", password="nope")
    sleeps = Sleeps()
    with pytest.raises(PortalError, match="login refused"):
        await client_for(sim, sleeps, source=bad).changed_dossiers(None)
    assert sleeps.delays == []


async def test_simulator_serves_evaluation_results() -> None:
    sim = PortalSimulator(dossiers=1, seed=1)
    rows = await client_for(sim, Sleeps()).evaluation_results("month", "2026-03")
    assert len(rows) == 34
    first = rows[0]
    assert set(first["groupScores"]) == {"CKMB", "TDGQ", "CLGQ", "TTTT", "MDHL", "MDSH"}
    assert first["totalScore"] == pytest.approx(sum(first["groupScores"].values()), abs=0.02)
