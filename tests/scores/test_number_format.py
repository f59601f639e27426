"""One number format in every score answer: points and rates (percentages) as JSON numbers
rounded as published, ranks as integers with their ``of``; the OpenAPI says so; rankings stored
in the earlier format are served in this one, from themselves."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import create_sessionmaker
from app.core.settings import Settings
from app.scores.jobs import refresh_scores
from app.scores.schemas import History, Ranking, Scorecard
from tests.helpers import ADMIN, event, post_events, put_procedure, put_unit, vn

NOW = vn("2026-04-10 09:00")
POINTS = {"total", "points", "max_points", "lost", "score_change", "total_difference", "low",
          "high", "total_needed", "best_possible_total", "total_low", "total_high",
          "total_error", "tdgq_points", "points_gained"}  # fmt: skip
RATES = {"rate", "full_marks_rate", "completeness", "on_time_share", "rate_from", "rate_to"}
RANKS = {"rank", "of", "rank_change", "ranked", "rank_best", "rank_worst", "rank_error"}
# Strings that look like numbers but are names: periods ("2026"), indicators ("1.4").
NAMES = {"period", "indicator", "catalog_version", "code", "unit_code", "name", "value", "label"}


@pytest.fixture
async def march(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings,
    clock: Callable[[datetime], None],
) -> None:  # fmt: skip
    """March 2026, by hand:
    H01: 3 dossiers, 2 on time → TDGQ 20 × 2/3 = 13.333…; PUBLISH_ON_TIME 1/7 → 6/7 = 0.857…
         total 14.190… → 14.19; completeness (20 + 6) / 100 = 26 %.
    H05: PUBLISH_ON_TIME 7/7 → 6, total 6. Ranks: H01 1 of 2, H05 2 of 2."""
    clock(NOW)
    await put_unit(client, "H01", "province", name="Tỉnh H01")
    await put_unit(client, "H05", "province", name="Tỉnh H05")
    await put_procedure(client, "P3", 3, "working_days")
    values = [
        {"unit_code": u, "period": "2026-03", "metric_code": "PUBLISH_ON_TIME",
         "numerator": n, "denominator": 7}
        for u, n in (("H01", 1), ("H05", 7))
    ]  # fmt: skip
    stored = await client.post("/v1/indicator-values/batch", json={"values": values},
                               headers=ADMIN)  # fmt: skip
    assert stored.json()["rejected"] == 0, stored.text
    events = []
    for n, finished in enumerate(("2026-03-03 10:00", "2026-03-04 10:00", "2026-03-10 10:00")):
        events += [event(f"D{n}-r", f"D{n}", 2, "2026-03-02 08:00", unit="H01"),
                   event(f"D{n}-f", f"D{n}", 9, finished, unit="H01")]  # fmt: skip
    await post_events(client, events)
    await refresh_scores({"sessionmaker": create_sessionmaker(engine), "settings": settings,
                          "clock": lambda: NOW})  # fmt: skip


def figures(value: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """Every ``(key, value)`` of a JSON document, depth first."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from figures(v, k)
    elif isinstance(value, list):
        for item in value:
            yield from figures(item, key)
    else:
        yield key, value


def assert_numbers(document: dict[str, Any]) -> None:
    for key, value in figures(document):
        if key in POINTS | RATES:
            assert value is None or isinstance(value, int | float), (key, value)
            assert not isinstance(value, bool), key
            if isinstance(value, float):
                assert round(value, 2) == value, (key, value)  # two decimals at most
        if key in RANKS:
            assert value is None or (isinstance(value, int) and not isinstance(value, bool))
        if isinstance(value, str) and key not in NAMES:
            assert not re.fullmatch(r"-?\d+(\.\d+)?", value), f"{key}: {value!r} is a string"


async def test_every_score_answer_gives_numbers_worked_by_hand(
    client: httpx.AsyncClient, march: None
) -> None:
    ranking = (await client.get("/v1/rankings", params={"period": "2026-03"})).json()
    Ranking.model_validate(ranking)
    assert_numbers(ranking)
    rows = {i["unit_code"]: i for i in ranking["items"]}
    assert {k: rows["H01"][k] for k in ("rank", "of", "total", "completeness", "groups")} == {
        "rank": 1, "of": 2, "total": 14.19, "completeness": 26.0,
        "groups": {"CKMB": 0.86, "TDGQ": 13.33, "CLGQ": None, "TTTT": None, "MDHL": None,
                   "MDSH": None},
    }  # fmt: skip
    assert (rows["H05"]["rank"], rows["H05"]["of"], rows["H05"]["total"]) == (2, 2, 6.0)

    card = (await client.get("/v1/units/H01/scorecard", params={"period": "2026-03"})).json()
    Scorecard.model_validate(card)
    assert_numbers(card)
    assert (card["rank"], card["of"], card["total"], card["completeness"]) == (1, 2, 14.19, 26.0)
    lines = {m["code"]: m for g in card["groups"] for m in g["metrics"]}
    publish = lines["PUBLISH_ON_TIME"]
    assert {k: publish[k] for k in ("rate", "points", "max_points", "lost", "full_marks_rate")} == {
        "rate": 14.29, "points": 0.86, "max_points": 6.0, "lost": 5.14, "full_marks_rate": 100.0,
    }  # fmt: skip
    on_time = lines["ON_TIME_RATE"]
    assert (on_time["rate"], on_time["points"], on_time["lost"]) == (66.67, 13.33, 6.67)

    history = (
        await client.get("/v1/units/H01/history", params={"from": "2026-03", "to": "2026-03"})
    ).json()
    History.model_validate(history)
    assert_numbers(history)
    [point] = history["items"]
    assert (point["total"], point["rank"], point["of"], point["groups"]["TDGQ"]) == (
        14.19, 1, 2, 13.33,
    )  # fmt: skip

    what_if = await client.get(
        "/v1/units/H01/what-if", params={"period": "2026-03", "target": "score:20"}
    )
    assert_numbers(what_if.json())
    projection = await client.get("/v1/units/H01/projection", params={"period": "2026-03"})
    assert_numbers(projection.json())


def _number_schemas(openapi: dict[str, Any], name: str) -> dict[str, Any]:
    properties: dict[str, Any] = openapi["components"]["schemas"][name]["properties"]
    return properties


def _types(schema: dict[str, Any]) -> set[str]:
    if "anyOf" in schema:
        return {t for option in schema["anyOf"] for t in _types(option)} - {"null"}
    if schema.get("type") == "object":
        return _types(schema["additionalProperties"])
    return {schema["type"]} if "type" in schema else set()


def test_the_openapi_says_number_for_points_and_rates_and_integer_for_ranks(
    app: FastAPI,
) -> None:
    openapi = app.openapi()
    shapes = ("RankingItem", "Ranking", "Scorecard", "MetricLine", "GroupLine", "ValueLine",
              "Official", "HistoryPoint", "StandingOut", "TargetOut", "ImprovementOut",
              "WhatIfOut", "TdgqRange", "ProjectionOut", "ActualOut", "OnTimeOutlookOut",
              "ComparedProjectionOut")  # fmt: skip
    seen = set()
    for shape in shapes:
        for field, schema in _number_schemas(openapi, shape).items():
            if field in POINTS | RATES or (field == "groups" and shape != "Scorecard"):
                assert _types(schema) == {"number"}, (shape, field, schema)
                seen.add(field)
            if field in RANKS:
                assert _types(schema) == {"integer"}, (shape, field, schema)
    assert {"total", "points", "rate", "completeness", "groups", "score_change"} <= seen
    rate = _number_schemas(openapi, "MetricLine")["rate"]
    assert "percentage" in str(rate)


async def test_a_ranking_stored_in_the_earlier_format_is_served_in_this_one_from_itself(
    client: httpx.AsyncClient, engine: AsyncEngine, march: None
) -> None:
    """The shape stored before 0.3.0 (completeness a fraction, no ``of``, unrounded groups),
    for a closed March whose published total (77.5) differs from what a recomputation would
    give: the body is re-rendered from itself, never recomputed, under a new ETag."""
    assert (await client.post("/v1/periods/2026-03/close", headers=ADMIN)).status_code == 200
    old = {
        "level": "province", "parent": None, "period": "2026-03", "source": "computed",
        "catalog_version": "766-2022", "revision": 1, "status": "closed", "projected": False,
        "ranked": 1, "computed_at": "2026-04-10T02:00:00+00:00",
        "items": [{"rank": 1, "unit_code": "H01", "name": "Tỉnh H01", "total": 77.5,
                   "grade": "Khá", "complete": True, "completeness": 0.9333,
                   "groups": {"TDGQ": 13.333333333333334}, "rank_change": None,
                   "score_change": 1.1000000000000014, "integrity_flags": 0}],
        "next": None,
    }  # fmt: skip
    old_etag = '"0123456789abcdef0123456789abcdef"'
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE ranking_snapshots SET body = :body, etag = :etag WHERE key = :key"),
            {"body": orjson.dumps(old), "etag": old_etag, "key": "computed:province:-:2026-03"},
        )
    params = {"level": "province", "period": "2026-03"}
    served = await client.get("/v1/rankings", params=params, headers={"If-None-Match": old_etag})
    assert served.status_code == 200  # never a 304 for a body in the old shape
    assert served.headers["etag"] != old_etag
    assert served.content.startswith(b'{"inputs_pending":false,"computed_at":"2026-04-10T02:00')
    body = served.json()
    Ranking.model_validate(body)
    assert (body["status"], body["computed_at"], body["ranked"]) == (
        "closed", "2026-04-10T02:00:00Z", 1,
    )  # fmt: skip
    assert body["items"] == [{
        "rank": 1, "of": 1, "unit_code": "H01", "name": "Tỉnh H01", "total": 77.5,
        "grade": "Khá", "complete": True, "completeness": 93.33, "groups": {"TDGQ": 13.33},
        "rank_change": None, "score_change": 1.1, "integrity_flags": 0,
    }]  # fmt: skip
    # Stored so once: the next poll finds the new ETag and answers 304.
    again = await client.get(
        "/v1/rankings", params=params, headers={"If-None-Match": served.headers["etag"]}
    )
    assert again.status_code == 304
    async with engine.connect() as conn:
        stored = await conn.scalar(
            text("SELECT body FROM ranking_snapshots WHERE key = :key"),
            {"key": "computed:province:-:2026-03"},
        )
    assert bytes(stored) == served.content
