"""The portal client against the simulator: sessions, retries, backoff and their limits."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from app.core.settings import PortalSourceSettings, Settings, portal_sources
from app.portal.client import (
    AdapterProtocol,
    ChangedPage,
    PortalClient,
    PortalError,
    PortalSource,
    PortalUnavailable,
    RetryPolicy,
    source_from_settings,
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
    # Retry-After 0 on the 503s: what is measured is the client's own backoff.
    sim = PortalSimulator(dossiers=5, seed=1, faults=Faults(error_rate=1.0, retry_after=0))
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


def adapter(answers: list[httpx.Response], seen: list[dict[str, Any]]) -> httpx.AsyncClient:
    """A scripted adapter: the login, then ``answers`` in turn; requests are kept in ``seen``."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append({"path": request.url.path, **json.loads(request.content)})
        if request.url.path.endswith("/login"):
            return httpx.Response(200, json={"error_code": "0", "session": f"s{len(seen)}"})
        return answers.pop(0)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def page(code: Any = 0, **result: Any) -> httpx.Response:
    body = {"data": [], "cursor": "c1", "conlai": 0, **result}
    return httpx.Response(200, json={"error_code": code, "message": "m", "result": body})


@pytest.mark.parametrize("code", [0, "0", "00", " 0 "])
async def test_error_code_is_read_as_a_number_whatever_its_json_type(code: Any) -> None:
    seen: list[dict[str, Any]] = []
    client = PortalClient(SOURCE, adapter([page(code, data=[{"MaHoSo": "A"}])], seen))
    result = await client.changed_dossiers(None)
    assert result.records == [{"MaHoSo": "A"}]
    # The call itself: the session from the login, the unit, the listing and its paging.
    assert seen[1] == {"path": "/service", "session": "s1", "madonvi": "",
                       "service": "LayDanhSachHoSo", "cursor": "", "sodong": 200}  # fmt: skip


async def test_a_non_zero_string_code_is_an_error_with_its_number() -> None:
    client = PortalClient(SOURCE, adapter([page("05")], []))
    with pytest.raises(PortalError, match="LayDanhSachHoSo: error_code '05': m") as error:
        await client.changed_dossiers(None)
    assert error.value.error_code == 5


async def test_error_code_8_is_waited_out_like_a_503() -> None:
    seen: list[dict[str, Any]] = []
    busy = httpx.Response(
        200, json={"error_code": 8, "message": "bận"}, headers={"Retry-After": "4"}
    )
    sleeps = Sleeps()
    client = PortalClient(SOURCE, adapter([busy, page(data=[{"MaHoSo": "A"}])], seen), sleep=sleeps)
    assert (await client.changed_dossiers(None)).records == [{"MaHoSo": "A"}]
    assert len(sleeps.delays) == 1 and sleeps.delays[0] >= 4
    assert [s["path"] for s in seen] == ["/login", "/service", "/service"]  # same session


async def test_a_page_of_records_without_a_cursor_is_refused_not_fetched_forever() -> None:
    client = PortalClient(SOURCE, adapter([page(data=[{"MaHoSo": "A"}], cursor="")], []))
    with pytest.raises(PortalError, match="without 'cursor' to resume from"):
        await client.changed_dossiers("c0")
    # An empty page without one is simply "caught up": resume from where we were.
    caught_up = PortalClient(SOURCE, adapter([page(cursor=None, conlai=None)], []))
    assert await caught_up.changed_dossiers("c0") == ChangedPage([], "c0", None)


async def test_remaining_may_come_as_a_string_or_not_at_all() -> None:
    answers = [page(data=[{"MaHoSo": "A"}], conlai="12"), page(data=[{"MaHoSo": "B"}], conlai="")]
    client = PortalClient(SOURCE, adapter(answers, []))
    assert (await client.changed_dossiers(None)).remaining == 12
    assert (await client.changed_dossiers("c1")).remaining is None  # untold: page until empty


async def test_a_lookup_answers_the_record_or_none() -> None:
    sim = PortalSimulator(dossiers=8, seed=2)
    client = client_for(sim, Sleeps())
    record = sim.records[3]
    assert await client.lookup(record["MaHoSo"]) == record
    assert await client.lookup(record["MaHoSo"] + "0") is None
    # Some adapters answer the object itself rather than a list of one.
    single = PortalClient(SOURCE, adapter([httpx.Response(200, json={
        "error_code": 0, "message": "ok", "result": {"MaHoSo": "X"}})], []))  # fmt: skip
    assert await single.lookup("X") == {"MaHoSo": "X"}


def test_a_source_speaks_the_protocol_its_settings_name() -> None:
    settings = Settings(
        portal_base_url="https://lgsp.example.vn/dvcqg", portal_username="motcua",
        portal_password=SecretStr("secret"), portal_madonvi="000.00.00.H01",
        portal_auth_path="/api/login", portal_list_service="DanhSachHoSo",
        portal_cursor_field="vitri",
        portal_sources=[PortalSourceSettings(name="hcm", base_url="https://hcm.example.vn",
                                             username="u", password=SecretStr("p"))],
    )  # fmt: skip
    first, second = (source_from_settings(s) for s in portal_sources(settings))
    assert (first.name, first.madonvi, first.password) == ("default", "000.00.00.H01", "secret")
    assert first.protocol == AdapterProtocol(
        auth_path="/api/login", integration_path="/service", list_service="DanhSachHoSo",
        cursor_field="vitri", page_size_field="sodong", remaining_field="conlai",
        records_field="data",
    )  # fmt: skip
    assert second.protocol == AdapterProtocol()  # chiso's convention unless told otherwise
    assert AdapterProtocol().list_service == "LayDanhSachHoSo"
    with pytest.raises(ValueError, match="auth_path"):
        PortalSourceSettings(name="x", base_url="h", username="u", password=SecretStr("p"),
                             auth_path="login")  # fmt: skip
