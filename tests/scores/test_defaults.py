"""Defaults a person expects: rankings of the provinces, for the latest month with scores;
a scorecard of that month; a history of the twelve months ending with it. Dates worked by hand
on the local calendar (UTC+7)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from tests.helpers import put_unit, vn

# 00:30 on Wednesday 1 April 2026 in Hanoi is still 31 March in UTC (17:30).
FIRST_OF_APRIL = vn("2026-04-01 00:30")


async def units(client: httpx.AsyncClient) -> None:
    await put_unit(client, "H01", "province", name="Tỉnh H01")
    await put_unit(client, "H01.01", "commune", "H01", name="Xã H01.01")


async def test_without_scores_the_month_before_the_running_one_on_the_local_calendar(
    client: httpx.AsyncClient, clock: Callable[[datetime], None]
) -> None:
    assert FIRST_OF_APRIL.astimezone(UTC).date().isoformat() == "2026-03-31"
    clock(FIRST_OF_APRIL)
    await units(client)
    # Nothing scored yet: the month before April (local), not before March (UTC).
    ranking = await client.get("/v1/rankings")
    assert ranking.status_code == 200, ranking.text
    body = ranking.json()
    assert (body["level"], body["period"], body["parent"]) == ("province", "2026-03", None)
    assert [i["unit_code"] for i in body["items"]] == ["H01"]  # provinces only


async def test_the_latest_month_with_scores_up_to_the_running_one(
    client: httpx.AsyncClient, clock: Callable[[datetime], None]
) -> None:
    clock(vn("2026-06-15 10:00"))
    await units(client)
    # February is read (and so computed on first demand), and a month still to come, August.
    for month in ("2026-02", "2026-08"):
        read = await client.get("/v1/rankings", params={"period": month})
        assert (read.status_code, read.json()["level"]) == (200, "province")
    # Latest with scores, up to June: February (August has not started).
    assert (await client.get("/v1/rankings")).json()["period"] == "2026-02"
    card = (await client.get("/v1/units/H01.01/scorecard")).json()
    assert (card["period"], card["level"]) == ("2026-02", "commune")
    communes = (await client.get("/v1/rankings", params={"level": "commune"})).json()
    assert (communes["period"], communes["level"]) == ("2026-02", "commune")

    # May is computed: it is the latest now; the history's twelve months end with it.
    await client.get("/v1/rankings", params={"period": "2026-05"})
    assert (await client.get("/v1/rankings")).json()["period"] == "2026-05"
    history = (await client.get("/v1/units/H01/history")).json()
    months = [p["period"] for p in history["items"]]
    assert months == [
        "2025-06", "2025-07", "2025-08", "2025-09", "2025-10", "2025-11", "2025-12",
        "2026-01", "2026-02", "2026-03", "2026-04", "2026-05",
    ]  # fmt: skip
    scored = [p["period"] for p in history["items"] if p["computed_at"] is not None]
    assert scored == ["2026-02", "2026-05"]
    # `to` alone: the twelve months ending with it; `from` alone: up to the latest with scores.
    ending = (await client.get("/v1/units/H01/history", params={"to": "2026-03"})).json()
    assert [p["period"] for p in ending["items"]][::11] == ["2025-04", "2026-03"]
    since = (await client.get("/v1/units/H01/history", params={"from": "2026-04"})).json()
    assert [p["period"] for p in since["items"]] == ["2026-04", "2026-05"]
    # By quarter: the quarters holding those twelve months (June 2025 – May 2026).
    quarters = (await client.get("/v1/units/H01/history", params={"granularity": "quarter"})).json()
    assert [p["period"] for p in quarters["items"]] == [
        "2025-Q2", "2025-Q3", "2025-Q4", "2026-Q1", "2026-Q2",
    ]  # fmt: skip

    # The running month, once scored, is the latest.
    await client.get("/v1/rankings", params={"period": "2026-06"})
    assert (await client.get("/v1/units/H01/scorecard")).json()["period"] == "2026-06"


async def test_the_openapi_states_each_default(app: object) -> None:
    openapi = app.openapi()  # type: ignore[attr-defined]
    paths = openapi["paths"]

    def parameters(path: str) -> dict[str, dict[str, object]]:
        return {p["name"]: p for p in paths[path]["get"]["parameters"]}

    rankings = parameters("/v1/rankings")
    assert rankings["level"]["required"] is False
    assert rankings["level"]["schema"]["default"] == "province"
    assert rankings["period"]["required"] is False
    assert "latest month with scores" in str(rankings["period"]["description"])
    scorecard = parameters("/v1/units/{code}/scorecard")
    assert "latest month with scores" in str(scorecard["period"]["description"])
    history = parameters("/v1/units/{code}/history")
    assert history["to"]["required"] is False and history["from"]["required"] is False
    assert "latest month with scores" in str(history["to"]["description"])
    assert "12 months" in str(history["from"]["description"])
