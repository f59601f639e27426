"""Fresh scores on request: every score answer says when it was computed and whether inputs
wait for a refresh; ``POST /v1/scores/refresh`` recomputes a period now, once however many ask
at the same moment, and only for those allowed to ask, at a pace of its own."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import create_sessionmaker
from app.core.settings import Settings
from app.scores.jobs import refresh_scores
from tests.helpers import ADMIN, create_key, event, post_events, put_procedure, put_unit, vn

NOW = vn("2026-04-10 09:00")
LATER = vn("2026-04-10 09:05")
# Instants as the answers write them: UTC.
NOW_Z, LATER_Z = "2026-04-10T02:00:00Z", "2026-04-10T02:05:00Z"
MARCH = {"level": "province", "period": "2026-03"}


def dossier(code: str, received: str, finished: str, unit: str = "H01.01") -> list[dict[str, Any]]:
    return [
        event(f"{code}-r", code, 2, received, unit=unit),
        event(f"{code}-f", code, 9, finished, unit=unit),
    ]


@pytest.fixture
async def march(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings,
    clock: Callable[[datetime], None],
) -> dict[str, Any]:  # fmt: skip
    """H01 (commune H01.01) and H05 (commune H05.01); one dossier of H01.01 in March, on time
    (received Mon 2 March 08:00, due Thu 5 March 17:00, finished Tue 3 March): H01's TDGQ is
    20 × 1/1 = 20, its only points; March computed by the worker at NOW."""
    clock(NOW)
    await put_unit(client, "H01", "province", name="Tỉnh H01")
    await put_unit(client, "H05", "province", name="Tỉnh H05")
    await put_unit(client, "H01.01", "commune", "H01")
    await put_unit(client, "H05.01", "commune", "H05")
    await put_procedure(client, "P3", 3, "working_days")
    await post_events(client, dossier("A", "2026-03-02 08:00", "2026-03-03 10:00"))
    ctx = {"sessionmaker": create_sessionmaker(engine), "settings": settings,
           "clock": lambda: NOW}  # fmt: skip
    assert "2026-03" in await refresh_scores(ctx)
    return ctx


async def refreshes(client: httpx.AsyncClient) -> float:
    """Recomputations asked by requests so far (the Prometheus counter)."""
    metrics = (await client.get("/metrics")).text
    found = re.search(r'^chiso_score_refreshes_total\{trigger="request"\} (\S+)$', metrics, re.M)
    return float(found.group(1)) if found else 0.0


def h01(ranking: dict[str, Any]) -> dict[str, Any]:
    return next(i for i in ranking["items"] if i["unit_code"] == "H01")


async def test_an_input_is_pending_until_a_requested_refresh_takes_it_in(
    client: httpx.AsyncClient, march: dict[str, Any], clock: Callable[[datetime], None]
) -> None:
    ranking = (await client.get("/v1/rankings", params=MARCH)).json()
    assert (ranking["inputs_pending"], ranking["computed_at"]) == (False, NOW_Z)
    assert (h01(ranking)["total"], h01(ranking)["rank"], h01(ranking)["of"]) == (20.0, 1, 1)

    # A second dossier of H01.01 in March, late (received Mon 9 March, due Thu 12 March 17:00,
    # finished Fri 20 March): once counted, H01's TDGQ is 20 × 1/2 = 10.
    await post_events(client, dossier("B", "2026-03-09 08:00", "2026-03-20 10:00"))
    ranking = (await client.get("/v1/rankings", params=MARCH)).json()
    assert ranking["inputs_pending"] is True
    assert (h01(ranking)["total"], ranking["computed_at"]) == (20.0, NOW_Z)
    card = (await client.get("/v1/units/H01/scorecard", params={"period": "2026-03"})).json()
    assert (card["inputs_pending"], card["computed_at"], card["total"]) == (
        True, NOW_Z, 20.0,
    )  # fmt: skip
    history = (
        await client.get("/v1/units/H01/history", params={"from": "2026-02", "to": "2026-03"})
    ).json()
    assert history["inputs_pending"] is True
    assert [(p["period"], p["inputs_pending"], p["computed_at"]) for p in history["items"]] == [
        ("2026-02", False, None),  # never computed, and nothing waits for it
        ("2026-03", True, NOW_Z),
    ]

    clock(LATER)
    _, desk = await create_key(client, ["indicators:write"], "H01.01", name="Một cửa")
    before = await refreshes(client)
    answer = await client.post(
        "/v1/scores/refresh", json={"period": "2026-03", "unit": "H01.01"}, headers=desk
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "period": "2026-03", "status": "open", "revision": 1,
        "computed_at": LATER_Z, "inputs_pending": False, "recomputed": True,
    }  # fmt: skip
    assert await refreshes(client) == before + 1

    ranking = (await client.get("/v1/rankings", params=MARCH)).json()
    assert (ranking["inputs_pending"], ranking["computed_at"]) == (False, LATER_Z)
    assert h01(ranking)["total"] == 10.0
    card = (await client.get("/v1/units/H01/scorecard", params={"period": "2026-03"})).json()
    assert (card["inputs_pending"], card["computed_at"], card["total"]) == (
        False, LATER_Z, 10.0,
    )  # fmt: skip
    tdgq = next(g for g in card["groups"] if g["code"] == "TDGQ")["metrics"][0]
    assert (tdgq["numerator"], tdgq["denominator"], tdgq["rate"], tdgq["points"]) == (
        1, 2, 50.0, 10.0,
    )  # fmt: skip
    # Only March was refreshed: the quarter and the year the dossier counts in still wait,
    # and the worker's next run has nothing left to do for March.
    quarter = (await client.get("/v1/units/H01/scorecard", params={"period": "2026-Q1"})).json()
    assert quarter["inputs_pending"] is True
    march["clock"] = lambda: LATER
    done = await refresh_scores(march)
    assert "2026-03" not in done and {"2026-Q1", "2026"} <= set(done)


async def test_concurrent_requests_for_a_period_share_one_refresh(
    client: httpx.AsyncClient, engine: AsyncEngine, march: dict[str, Any],
    clock: Callable[[datetime], None],
) -> None:  # fmt: skip
    await post_events(client, dossier("B", "2026-03-09 08:00", "2026-03-20 10:00"))
    clock(LATER)
    before = await refreshes(client)
    body = {"period": "2026-03"}
    # Hold the period's lock (as a refresh in progress does) until both requests wait for it.
    async with engine.connect() as holder:
        await holder.execute(text("SELECT pg_advisory_lock(hashtext('scores:2026-03'))"))
        await holder.commit()
        first = asyncio.create_task(client.post("/v1/scores/refresh", json=body, headers=ADMIN))
        second = asyncio.create_task(client.post("/v1/scores/refresh", json=body, headers=ADMIN))
        for _ in range(500):
            waiting = await holder.scalar(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            )
            await holder.commit()
            if waiting == 2:
                break
            await asyncio.sleep(0.01)
        assert waiting == 2
        await holder.execute(text("SELECT pg_advisory_unlock(hashtext('scores:2026-03'))"))
        await holder.commit()
        answers = [(await first), (await second)]
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    results = [a.json() for a in answers]
    # One recomputed, the other waited for it and answers with its result.
    assert sorted(r["recomputed"] for r in results) == [False, True]
    assert {r["computed_at"] for r in results} == {LATER_Z}
    assert {r["inputs_pending"] for r in results} == {False}
    assert await refreshes(client) == before + 1
    assert h01((await client.get("/v1/rankings", params=MARCH)).json())["total"] == 10.0


async def test_who_may_ask_for_a_refresh(
    client: httpx.AsyncClient, march: dict[str, Any], clock: Callable[[datetime], None]
) -> None:
    _, desk = await create_key(client, ["indicators:write"], "H01.01", name="Một cửa H01.01")
    _, reader = await create_key(client, ["dossiers:read", "dossiers:write"], "H01.01", "Đọc")
    _, province = await create_key(client, ["indicators:write"], "H01", name="Sở H01")
    march_for = {"period": "2026-03"}

    async def ask(body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        return await client.post("/v1/scores/refresh", json=body, headers=headers)

    nobody = await ask(march_for | {"unit": "H01.01"}, {})
    assert nobody.status_code == 401
    assert nobody.headers["content-type"] == "application/problem+json"
    no_scope = await ask(march_for | {"unit": "H01.01"}, reader)
    assert no_scope.status_code == 403
    assert no_scope.json()["detail"] == "This key lacks the 'indicators:write' scope."
    other_unit = await ask(march_for | {"unit": "H05.01"}, desk)
    assert other_unit.status_code == 403
    assert other_unit.json()["detail"] == "This key is limited to unit H01.01 and its subunits."
    above = await ask(march_for | {"unit": "H01"}, desk)  # its province: outside its subtree
    assert above.status_code == 403
    unnamed = await ask(march_for, desk)
    assert unnamed.status_code == 422
    assert unnamed.json()["errors"] == [{"pointer": "#/unit", "detail": "required"}]
    unknown = await ask(march_for | {"unit": "H77"}, ADMIN)
    assert (unknown.status_code, unknown.json()["errors"][0]["pointer"]) == (422, "#/unit")

    for bad in ("2026-13", "March", "2026-Q5", ""):
        refused = await ask({"period": bad}, ADMIN)
        assert refused.status_code == 422, bad
        assert refused.json()["errors"][0]["pointer"] == "#/period"
    assert (await ask({}, ADMIN)).status_code == 422
    assert (await ask(march_for | {"units": "H01"}, ADMIN)).status_code == 422  # unknown field
    not_started = await ask({"period": "2026-05"}, ADMIN)
    assert not_started.json()["detail"] == "2026-05 has not started yet"
    no_catalog = await ask({"period": "2019-01"}, ADMIN)
    assert no_catalog.status_code == 422
    assert no_catalog.json()["detail"] == "no indicator catalog version is in force on 2019-01-01"

    # Allowed: the unit's own key (its unit or below), a province's key for its commune, the
    # admin token with or without a unit.
    for body, headers in (
        (march_for | {"unit": "H01.01"}, desk),
        (march_for | {"unit": "H01.01"}, province),
        (march_for | {"unit": "H05.01"}, ADMIN),
        (march_for, ADMIN),
    ):
        allowed = await ask(body, headers)
        assert allowed.status_code == 200, allowed.text


async def test_a_closed_period_is_not_recomputed(
    client: httpx.AsyncClient, march: dict[str, Any]
) -> None:
    assert (await client.post("/v1/periods/2026-03/close", headers=ADMIN)).status_code == 200
    await post_events(client, dossier("B", "2026-03-09 08:00", "2026-03-20 10:00"))
    answer = await client.post("/v1/scores/refresh", json={"period": "2026-03"}, headers=ADMIN)
    assert answer.status_code == 200
    assert (answer.json()["status"], answer.json()["recomputed"]) == ("closed", False)
    assert answer.json()["inputs_pending"] is False  # later input is an amendment, not pending
    ranking = (await client.get("/v1/rankings", params=MARCH)).json()
    assert (ranking["inputs_pending"], h01(ranking)["total"]) == (False, 20.0)
    state = (await client.get("/v1/periods/2026-03")).json()
    assert state["pending_amendments"] == 1


async def test_refreshes_have_a_budget_of_their_own(
    client: httpx.AsyncClient, march: dict[str, Any], configure: Callable[..., None]
) -> None:
    configure(rate_refresh_per_minute=2, rate_refresh_burst=2)
    _, desk = await create_key(client, ["indicators:write"], "H01.01", name="Một cửa")
    body = {"period": "2026-03", "unit": "H01.01"}
    for _ in range(2):
        ok = await client.post("/v1/scores/refresh", json=body, headers=desk)
        assert ok.status_code == 200, ok.text
    refused = await client.post("/v1/scores/refresh", json=body, headers=desk)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["detail"].startswith("More than 2 requests per minute")
    # Per key: another key still may; and the key's ordinary writes are not held back.
    assert (
        await client.post("/v1/scores/refresh", json={"period": "2026-03"}, headers=ADMIN)
    ).status_code == 200
    value = {"unit_code": "H01.01", "period": "2026-03", "metric_code": "DOSSIER_SYNC",
             "numerator": 1, "denominator": 2}  # fmt: skip
    stored = await client.post("/v1/indicator-values", json=value, headers=desk)
    assert stored.status_code == 201, stored.text
