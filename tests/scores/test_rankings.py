"""Scores and rankings end to end: submissions and dossiers in, hand-computed ranks out."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import create_sessionmaker
from app.core.settings import Settings
from app.indicators.catalog import shipped_catalog
from app.scores.jobs import refresh_scores
from tests.helpers import ADMIN, event, post_events, put_procedure, put_unit, vn

NOW = vn("2026-04-10 09:00")
SUBMITTED = [c for c in shipped_catalog().versions[0].counted_codes if c != "ON_TIME_RATE"]

# Points a province loses in a month, by metric at 0/10 or 5/10 (everything else at 10/10):
#   ELECTRONIC_CERTIFIED_COPY 0/10 → −2    PUBLISH_ON_TIME 0/10 → −6, 5/10 → −3
#   PUBLIC_UPDATE_ON_TIME 0/10 → −4
FEBRUARY = {  # totals: H14 100, H01 98, H12 97, H13 96, H05 94 → ranks 1, 2, 3, 4, 5
    "H14": {},
    "H01": {"ELECTRONIC_CERTIFIED_COPY": 0},
    "H12": {"PUBLISH_ON_TIME": 5},
    "H13": {"PUBLIC_UPDATE_ON_TIME": 0},
    "H05": {"PUBLISH_ON_TIME": 0},
}
# March: H01 100, H14 100, H05 97, H99 96, and H12, H13 95 each (full submissions, but only 3 of
# 4 dossiers on time: TDGQ = 20 × 3/4 = 15, −5). Competition ranks: 1, 1, 3, 4, 5, 5.
MARCH = {
    "H01": {},
    "H14": {},
    "H05": {"PUBLISH_ON_TIME": 5},
    "H99": {"PUBLIC_UPDATE_ON_TIME": 0},
    "H12": {},
    "H13": {},
}


def values(period: str, plan: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    return [
        {"unit_code": unit, "period": period, "metric_code": code,
         "numerator": changes.get(code, 10), "denominator": 10}
        for unit, changes in plan.items()
        for code in SUBMITTED
    ]  # fmt: skip


async def submit(client: httpx.AsyncClient, items: list[dict[str, Any]]) -> None:
    response = await client.post("/v1/indicator-values/batch", json={"values": items},
                                 headers=ADMIN)  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json()["rejected"] == 0, response.text


def dossiers(month: str, unit: str, late: int = 0, on_time: int = 1) -> list[dict[str, Any]]:
    """3-working-day dossiers received on the first Monday (2 Feb / 2 Mar 2026, due Thursday
    17:00): on-time ones finish on Tuesday, late ones the Monday after."""
    day = {"02": "02", "03": "02"}[month]
    items = []
    for n in range(on_time + late):
        code = f"{unit}-2026{month}-{n}"
        finished = f"2026-{month}-03 10:00" if n < on_time else f"2026-{month}-09 10:00"
        items += [
            event(f"{code}-r", code, 2, f"2026-{month}-{day} 08:00", unit=unit),
            event(f"{code}-f", code, 9, finished, unit=unit),
        ]
    return items


@pytest.fixture
async def scenario(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings,
    clock: Callable[[datetime], None],
) -> dict[str, Any]:  # fmt: skip
    clock(NOW)
    for code in ("H01", "H05", "H12", "H13", "H14"):
        await put_unit(client, code, "province", name=f"Tỉnh {code}")
    # A province created on 1 March 2026 (a merger's successor): ranked from its own start.
    await put_unit(client, "H99", "province", name="Tỉnh mới H99", valid_from="2026-03-01")
    await put_procedure(client, "P3", 3, "working_days")
    await submit(client, values("2026-02", FEBRUARY) + values("2026-03", MARCH))
    events = []
    for unit in FEBRUARY:
        events += dossiers("02", unit)
    for unit in MARCH:
        events += dossiers("03", unit, late=1 if unit in ("H12", "H13") else 0,
                           on_time=3 if unit in ("H12", "H13") else 1)  # fmt: skip
    await post_events(client, events)
    ctx = {"sessionmaker": create_sessionmaker(engine), "settings": settings,
           "clock": lambda: NOW}  # fmt: skip
    refreshed = await refresh_scores(ctx)
    assert {"2026-02", "2026-03"} <= set(refreshed)
    return ctx


async def test_ranking_with_a_tie_a_new_unit_and_a_climb(
    client: httpx.AsyncClient, scenario: dict[str, Any]
) -> None:
    response = await client.get("/v1/rankings", params={"level": "province", "period": "2026-03"})
    assert response.status_code == 200
    body = response.json()
    assert (body["ranked"], body["source"], body["catalog_version"]) == (6, "computed", "766-2022")
    rows = {i["unit_code"]: i for i in body["items"]}
    assert [(i["unit_code"], i["rank"], i["total"]) for i in body["items"]] == [
        ("H01", 1, 100.0), ("H14", 1, 100.0), ("H05", 3, 97.0), ("H99", 4, 96.0),
        ("H12", 5, 95.0), ("H13", 5, 95.0),
    ]  # fmt: skip
    # Against February (H14 1, H01 2, H12 3, H13 4, H05 5):
    assert {c: rows[c]["rank_change"] for c in rows} == {
        "H01": 1, "H14": 0, "H05": 2, "H99": None, "H12": -2, "H13": -1,
    }  # fmt: skip
    assert rows["H05"]["score_change"] == 3.0  # 94 → 97
    assert rows["H99"]["score_change"] is None
    assert rows["H05"]["grade"] == "Xuất sắc"
    assert rows["H12"]["groups"]["TDGQ"] == 15.0
    assert rows["H05"]["complete"] is True


async def test_tdgq_points_come_from_the_dossiers(
    client: httpx.AsyncClient, scenario: dict[str, Any]
) -> None:
    card = (await client.get("/v1/units/H12/scorecard", params={"period": "2026-03"})).json()
    [tdgq] = [g for g in card["groups"] if g["code"] == "TDGQ"]
    [metric] = tdgq["metrics"]
    # 4 dossiers received or processed in March, 3 finished by their due time: 20 × 3/4.
    assert (metric["numerator"], metric["denominator"], metric["points"]) == (3, 4, 15.0)
    # The rate and the rate that earns full marks (linear: all of them) are percentages.
    assert (metric["lost"], metric["rate"], metric["full_marks_rate"]) == (5.0, 75.0, 100.0)
    assert (card["rank"], card["of"]) == (5, 6)
    assert card["rank_change"] == -2
    assert card["shortfalls"][0]["code"] == "ON_TIME_RATE"
    assert (card["total"], card["grade"], card["complete"]) == (95.0, "Xuất sắc", True)
    assert card["completeness"] == 100.0


async def test_second_poll_is_304_and_a_new_submission_changes_the_etag(
    client: httpx.AsyncClient, scenario: dict[str, Any]
) -> None:
    params = {"level": "province", "period": "2026-03"}
    first = await client.get("/v1/rankings", params=params)
    etag = first.headers["etag"]
    assert first.headers["cache-control"].startswith("public")
    again = await client.get("/v1/rankings", params=params, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag

    await submit(client, [{"unit_code": "H13", "period": "2026-03", "metric_code":
                           "PUBLISH_ON_TIME", "numerator": 0, "denominator": 10}])  # fmt: skip
    # No score changes until the worker's debounced refresh runs; the answer says that input
    # is pending (under an ETag of its own, itself answered 304 while nothing else moves).
    waiting = await client.get("/v1/rankings", params=params, headers={"If-None-Match": etag})
    assert waiting.status_code == 200
    assert waiting.json()["inputs_pending"] is True
    assert waiting.json()["items"] == first.json()["items"]
    assert waiting.json()["computed_at"] == first.json()["computed_at"]
    pending_etag = waiting.headers["etag"]
    assert pending_etag != etag
    again = await client.get("/v1/rankings", params=params, headers={"If-None-Match": pending_etag})
    assert again.status_code == 304
    await refresh_scores(scenario)
    changed = await client.get(
        "/v1/rankings", params=params, headers={"If-None-Match": pending_etag}
    )
    assert changed.status_code == 200
    assert changed.headers["etag"] not in (etag, pending_etag)
    assert changed.json()["inputs_pending"] is False
    h13 = next(i for i in changed.json()["items"] if i["unit_code"] == "H13")
    assert (h13["total"], h13["rank"]) == (89.0, 6)  # 95 − 6
    assert h13["grade"] == "Tốt"


async def test_closed_period_does_not_drift_and_reopening_makes_a_revision(
    client: httpx.AsyncClient, scenario: dict[str, Any]
) -> None:
    closed = await client.post("/v1/periods/2026-03/close", headers=ADMIN)
    assert closed.status_code == 200
    assert (closed.json()["status"], closed.json()["revision"]) == ("closed", 1)
    params = {"level": "province", "period": "2026-03"}
    before = await client.get("/v1/rankings", params=params)
    assert before.json()["status"] == "closed"

    await submit(client, [{"unit_code": "H01", "period": "2026-03", "metric_code":
                           "PUBLISH_ON_TIME", "numerator": 0, "denominator": 10}])  # fmt: skip
    await refresh_scores(scenario)
    after = await client.get("/v1/rankings", params=params)
    assert after.headers["etag"] == before.headers["etag"]
    state = (await client.get("/v1/periods/2026-03")).json()
    assert state["pending_amendments"] == 1

    reopened = await client.post("/v1/periods/2026-03/reopen", headers=ADMIN)
    assert (reopened.json()["status"], reopened.json()["revision"]) == ("open", 2)
    assert reopened.json()["pending_amendments"] == 0
    now = (await client.get("/v1/rankings", params=params)).json()
    h01 = next(i for i in now["items"] if i["unit_code"] == "H01")
    assert (h01["total"], now["revision"]) == (94.0, 2)
    assert (await client.post("/v1/periods/2026-04/close", headers=ADMIN)).status_code == 422
    assert (await client.post("/v1/periods/2026-03/close")).status_code == 401


async def test_exports_have_vietnamese_headers(
    client: httpx.AsyncClient, scenario: dict[str, Any]
) -> None:
    params = {"level": "province", "period": "2026-03"}
    as_csv = await client.get("/v1/rankings", params={**params, "format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    lines = as_csv.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("Hạng,Trong số,Mã đơn vị,Tên đơn vị,Tổng điểm,Xếp loại")
    assert lines[1].startswith("1,6,H01,Tỉnh H01,100.0,Xuất sắc")  # first of the six ranked
    xlsx = await client.get(
        "/v1/rankings",
        params=params,
        headers={"Accept": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
    )
    with zipfile.ZipFile(io.BytesIO(xlsx.content)) as book:
        strings = book.read("xl/sharedStrings.xml").decode()
    assert "Tổng điểm" in strings and "Tỉnh mới H99" in strings


async def test_history_and_gzip(client: httpx.AsyncClient, scenario: dict[str, Any]) -> None:
    history = await client.get("/v1/units/H05/history", params={"from": "2026-01", "to": "2026-03"})
    points = [(p["period"], p["total"], p["rank"], p["of"]) for p in history.json()["items"]]
    assert points == [
        ("2026-01", None, None, None),
        ("2026-02", 94.0, 5, 5),
        ("2026-03", 97.0, 3, 6),
    ]
    cached = await client.get(
        "/v1/units/H05/history", params={"from": "2026-01", "to": "2026-03"},
        headers={"If-None-Match": history.headers["etag"]},
    )  # fmt: skip
    assert cached.status_code == 304
    zipped = await client.get(
        "/v1/rankings", params={"level": "province", "period": "2026-03"},
        headers={"Accept-Encoding": "gzip"},
    )  # fmt: skip
    assert zipped.headers["content-encoding"] == "gzip"


async def test_quarter_scores_sum_counts_not_monthly_scores(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings,
    clock: Callable[[datetime], None],
) -> None:  # fmt: skip
    clock(NOW)
    await put_unit(client, "H01", "province")
    await put_procedure(client, "P3", 3, "working_days")
    # January 1/1 on time (20 points), February 0/1 (0), March 3/4 (15): the average of the
    # monthly points is 11.67, the quarter's summed counts give 20 × 4/6 = 13.33.
    events = [
        event("j-r", "J", 2, "2026-01-05 08:00", unit="H01"),
        event("j-f", "J", 9, "2026-01-06 08:00", unit="H01"),
        event("f-r", "F", 2, "2026-02-02 08:00", unit="H01"),
        event("f-f", "F", 9, "2026-02-10 08:00", unit="H01"),
        *dossiers("03", "H01", late=1, on_time=3),
    ]
    await post_events(client, events)
    ctx = {"sessionmaker": create_sessionmaker(engine), "settings": settings,
           "clock": lambda: NOW}  # fmt: skip
    await refresh_scores(ctx)
    card = (await client.get("/v1/units/H01/scorecard", params={"period": "2026-Q1"})).json()
    tdgq = next(g for g in card["groups"] if g["code"] == "TDGQ")["metrics"][0]
    assert (tdgq["numerator"], tdgq["denominator"], tdgq["points"]) == (4, 6, 13.33)
    assert card["complete"] is False and card["grade"] is None


async def test_official_ranking_and_scorecard_comparison(
    client: httpx.AsyncClient, engine: AsyncEngine, scenario: dict[str, Any]
) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO official_scores (unit_code, period, time_type, total, group_scores, "
            "source) VALUES ('H01', '2026-03', 'month', 76, '{\"TDGQ\": 18.5}', 'sim'), "
            "('H05', '2026-03', 'month', 81.25, '{\"TDGQ\": 20}', 'sim')"))  # fmt: skip
        await conn.execute(text("INSERT INTO score_dirty_periods (period) VALUES ('2026-03')"))
    await refresh_scores(scenario)
    official = (await client.get("/v1/rankings", params={
        "level": "province", "period": "2026-03", "source": "official"})).json()  # fmt: skip
    assert [(i["unit_code"], i["rank"], i["grade"]) for i in official["items"]] == [
        ("H05", 1, "Tốt"),
        ("H01", 2, "Khá"),  # 76 → Khá, as published
    ]
    card = (await client.get("/v1/units/H01/scorecard", params={"period": "2026-03"})).json()
    assert card["official"]["total"] == 76.0
    assert card["official"]["groups"] == {"TDGQ": 18.5}
    assert card["official"]["total_difference"] == 24.0  # computed 100 − official 76
    assert card["official"]["group_differences"] == {"TDGQ": 1.5}  # 20 − 18.5


async def test_bad_parameters_are_problems(client: httpx.AsyncClient) -> None:
    bad_period = await client.get("/v1/rankings", params={"level": "province", "period": "2026-13"})
    assert bad_period.status_code == 422
    assert bad_period.json()["errors"][0]["parameter"] == "period"
    bad_level = await client.get("/v1/rankings", params={"level": "galaxy", "period": "2026-03"})
    assert bad_level.status_code == 422
    missing = await client.get(
        "/v1/rankings", params={"level": "commune", "period": "2026-03", "parent": "H77"}
    )
    assert missing.status_code == 404


async def test_communes_are_ranked_inside_their_province(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings,
    clock: Callable[[datetime], None],
) -> None:  # fmt: skip
    clock(NOW)
    await put_unit(client, "H01", "province")
    await put_unit(client, "H05", "province")
    await put_unit(client, "H01.01", "commune", "H01", name="Phường Long Xuyên")
    await put_unit(client, "H01.02", "commune", "H01", name="Xã Mỹ Hòa Hưng")
    await put_unit(client, "H05.01", "commune", "H05", name="Phường Kinh Bắc")
    await put_procedure(client, "P3", 3, "working_days")
    # Only TDGQ has data: H01.01 1/1 on time (20), H01.02 1/2 (10), H05.01 1/1 (20).
    await post_events(client, [
        *dossiers("03", "H01.01"), *dossiers("03", "H01.02", late=1), *dossiers("03", "H05.01"),
    ])  # fmt: skip
    await refresh_scores({"sessionmaker": create_sessionmaker(engine), "settings": settings,
                          "clock": lambda: NOW})  # fmt: skip
    inside = (await client.get("/v1/rankings", params={
        "level": "commune", "period": "2026-03", "parent": "H01"})).json()  # fmt: skip
    assert [(i["unit_code"], i["rank"], i["total"], i["grade"], i["completeness"])
            for i in inside["items"]] == [
        ("H01.01", 1, 20.0, None, 20.0), ("H01.02", 2, 10.0, None, 20.0),
    ]  # fmt: skip
    national = (await client.get("/v1/rankings", params={
        "level": "commune", "period": "2026-03"})).json()  # fmt: skip
    assert [(i["unit_code"], i["rank"]) for i in national["items"]] == [
        ("H01.01", 1), ("H05.01", 1), ("H01.02", 3),
    ]  # fmt: skip
    # The province's TDGQ counts its communes' dossiers: 2 of 3 on time → 20 × 2/3 = 13.33.
    province = (await client.get("/v1/rankings", params={
        "level": "province", "period": "2026-03"})).json()  # fmt: skip
    assert province["items"][0]["groups"]["TDGQ"] == 20.0  # H05: 1/1
    assert province["items"][1]["groups"]["TDGQ"] == 13.33  # H01: 2/3


async def test_each_process_answers_repeated_polls_from_memory_for_a_while(
    client: httpx.AsyncClient, settings: Settings, scenario: dict[str, Any]
) -> None:
    from asgi_lifespan import LifespanManager

    from app.main import create_app

    params = {"level": "province", "period": "2026-03"}
    app = create_app(settings.model_copy(update={"response_cache_seconds": 30}))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as cached:
            first = await cached.get("/v1/rankings", params=params)
            change = {"unit_code": "H13", "period": "2026-03", "metric_code": "PUBLISH_ON_TIME",
                      "numerator": 0, "denominator": 10}  # fmt: skip
            await submit(client, [change])
            await refresh_scores(scenario)
            # The refresh happened, but this process keeps what it served for its TTL.
            again = await cached.get("/v1/rankings", params=params)
            assert again.headers["etag"] == first.headers["etag"]
            app.state.response_cache.clear()  # as when the TTL runs out
            later = await cached.get("/v1/rankings", params=params)
    assert later.headers["etag"] != first.headers["etag"]
    # Without the cache (the suite's setting) the change shows at once.
    fresh = await client.get("/v1/rankings", params=params)
    assert fresh.headers["etag"] == later.headers["etag"]


async def test_scorecard_lines_name_their_indicator_source_and_components(
    client: httpx.AsyncClient, scenario: dict[str, Any]
) -> None:
    card = (await client.get("/v1/units/H05/scorecard", params={"period": "2026-02"})).json()
    lines = {m["code"]: m for g in card["groups"] for m in g["metrics"]}
    assert (lines["DOSSIER_SYNC"]["indicator"], lines["DOSSIER_SYNC"]["source"]) == (
        "1.4", "submitted",
    )  # fmt: skip
    on_time = lines["ON_TIME_RATE"]
    assert (on_time["indicator"], on_time["source"]) == ("2.1", "records")
    assert lines["ELECTRONIC_CERTIFIED_COPY"]["indicator"] is None
    payment = lines["ONLINE_PAYMENT"]
    assert (payment["indicator"], payment["points"], payment["numerator"]) == (None, 10.0, None)
    # Each component as a line of its own: 10/10 each; B's term is capped at 2 (from a rate 0.8).
    assert [
        (c["code"], c["indicator"], c["numerator"], c["denominator"], c["points"],
         c["max_points"], c["full_marks_rate"])
        for c in payment["components"]
    ] == [
        ("ONLINE_PAYMENT.A", "3.6", 10, 10, 6.0, 6.0, 100.0),
        ("ONLINE_PAYMENT.B", None, 10, 10, 2.0, 2.0, 80.0),
        ("ONLINE_PAYMENT.C", "3.5", 10, 10, 2.5, 2.5, 100.0),
    ]  # fmt: skip
    # H05 lost PUBLISH_ON_TIME (0/10): its shortfall line names the indicator too.
    assert (card["shortfalls"][0]["code"], card["shortfalls"][0]["indicator"]) == (
        "PUBLISH_ON_TIME", "1.1",
    )  # fmt: skip


async def test_desks_are_ranked_inside_their_province_two_levels_up(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings,
    clock: Callable[[datetime], None],
) -> None:  # fmt: skip
    clock(NOW)
    for province in ("H01", "H05"):
        await put_unit(client, province, "province")
        await put_unit(client, f"{province}.D", "department", province)
    await put_unit(client, "H01.D.1", "desk", "H01.D")
    await put_unit(client, "H01.D.2", "desk", "H01.D")
    await put_unit(client, "H05.D.1", "desk", "H05.D")
    await put_procedure(client, "P3", 3, "working_days")
    # Only TDGQ has data: H01.D.1 1/1 on time (20), H01.D.2 1/2 (10), H05.D.1 1/1 (20).
    await post_events(client, [
        *dossiers("03", "H01.D.1"), *dossiers("03", "H01.D.2", late=1), *dossiers("03", "H05.D.1"),
    ])  # fmt: skip
    await refresh_scores({"sessionmaker": create_sessionmaker(engine), "settings": settings,
                          "clock": lambda: NOW})  # fmt: skip
    inside = (await client.get("/v1/rankings", params={
        "level": "desk", "period": "2026-03", "parent": "H01"})).json()  # fmt: skip
    assert [(i["unit_code"], i["rank"], i["total"]) for i in inside["items"]] == [
        ("H01.D.1", 1, 20.0), ("H01.D.2", 2, 10.0),
    ]  # fmt: skip
    # The department and the province count their desks' dossiers: 2 of 3 on time → 13.33.
    for level in ("department", "province"):
        ranked = (await client.get("/v1/rankings", params={
            "level": level, "period": "2026-03"})).json()  # fmt: skip
        assert [(i["unit_code"], i["groups"]["TDGQ"]) for i in ranked["items"]] == [
            (f"H05{'.D' if level == 'department' else ''}", 20.0),
            (f"H01{'.D' if level == 'department' else ''}", 13.33),
        ]
