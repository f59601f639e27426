"""Data-integrity flags: one hand-built history per rule, a dossier that trips it and one that
stays just inside the threshold; idempotent recompute, review, access and ranking markers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import create_sessionmaker
from app.core.settings import Settings
from app.insights.jobs import check_integrity
from app.scores.jobs import refresh_scores
from tests.helpers import (
    ADMIN,
    create_key,
    event,
    post_events,
    province_with_communes,
    put_procedure,
    put_unit,
    vn,
)

NOW = vn("2026-04-10 09:00")
LATE = {"l1-r": timedelta(hours=72, minutes=1), "l2-r": timedelta(hours=72)}


async def arrived(engine: AsyncEngine) -> None:
    """Events reach chiso a minute after they occur, except L1 (72 h 1 min) and L2 (72 h).

    The API stamps ``recorded_at`` with the real time of the test run, months after the
    hand-built March; this sets it to when the desk would have sent each event.
    """
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE dossier_events SET recorded_at = occurred_at + interval '1 minute'")
        )
        for event_id, delay in LATE.items():
            await conn.execute(
                text("UPDATE dossier_events SET recorded_at = occurred_at + CAST(:d AS interval) "
                     "WHERE event_id = :e"), {"d": delay, "e": event_id},
            )  # fmt: skip


def closes(unit: str, prefix: str, month: str, finished: list[str]) -> list[dict[str, Any]]:
    """Dossiers received on the first Monday of the month, closed (status 9) at ``finished``."""
    received = {"02": "2026-02-02 08:00", "03": "2026-03-02 08:00"}[month]
    items = []
    for n, at in enumerate(finished):
        code = f"{prefix}-{n:02d}"
        items += [event(f"{code}-r", code, 2, received, unit=unit),
                  event(f"{code}-f", code, 9, at, unit=unit)]  # fmt: skip
    return items


@pytest.fixture
async def histories(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings,
    clock: Callable[[datetime], None],
) -> dict[str, Any]:  # fmt: skip
    clock(NOW)
    await province_with_communes(client)  # H01 > H01.01, H01.02; H05 > H05.01
    await put_procedure(client, "P3", 3, "working_days")
    await put_procedure(client, "PH", 4, "working_hours")
    await put_procedure(client, "PX", 5, "working_days", online_allowed=False)  # in person only
    await put_procedure(client, "PO", 5, "working_days")  # online_allowed not stated
    events = [
        # (a) quick finish, at most 5 minutes for a day-limited procedure:
        event("q1-r", "Q1", 2, "2026-03-02 08:00"),
        event("q1-f", "Q1", 9, "2026-03-02 08:05"),
        event("q2-r", "Q2", 2, "2026-03-02 08:00"),
        event("q2-f", "Q2", 9, "2026-03-02 08:06"),
        # a 4-hour procedure may well be done in a minute
        event("q3-r", "Q3", 2, "2026-03-02 08:00", procedure="PH"),
        event("q3-f", "Q3", 9, "2026-03-02 08:01", procedure="PH"),
        # (b) receipt stated after the first processing step, by more than 60 minutes:
        event("r1-p", "R1", 4, "2026-03-03 09:00"),
        event("r1-r", "R1", 2, "2026-03-03 10:01", received_at="2026-03-03 10:01"),  # 61 min
        event("r2-p", "R2", 4, "2026-03-03 09:00"),
        event("r2-r", "R2", 2, "2026-03-03 10:00", received_at="2026-03-03 10:00"),  # 60 min
        # (d) online (channel 2) for an in-person-only procedure:
        event("o1-r", "O1", 2, "2026-03-04 08:00", procedure="PX", channel=2),
        event("o2-r", "O2", 2, "2026-03-04 08:00", procedure="PO", channel=2),  # not stated
        event("o3-r", "O3", 2, "2026-03-04 08:00", procedure="PX", channel=1),  # in person
        # (e) events recorded more than 72 hours after they occurred:
        event("l1-r", "L1", 2, "2026-03-05 08:00"),
        event("l2-r", "L2", 2, "2026-03-05 08:00"),
    ]
    # (c) last-working-day closes (31 March 2026, a Tuesday; February's is Friday the 27th).
    # February, each commune: 10 closes, 1 of them on the 27th → norm 1/10; 3 × norm = 0.30.
    # March: H01.02 closes 10 on the 31st of 33 → 0.3030 > 0.30 → flagged;
    #        H05.01 closes 10 on the 31st of 34 → 0.2941 ≤ 0.30 → not flagged.
    # H05 itself: 9 on the 31st of 9 (share 1, no baseline) → fewer than 10 closes → not flagged.
    for unit, prefix, earlier in (("H01.02", "C", 23), ("H05.01", "K", 24)):
        events += closes(unit, f"{prefix}F", "02", ["2026-02-03 10:00"] * 9 + ["2026-02-27 10:00"])
        events += closes(unit, f"{prefix}M", "03",
                         ["2026-03-03 10:00"] * earlier + ["2026-03-31 10:00"] * 10)  # fmt: skip
    events += closes("H05", "N", "03", ["2026-03-31 10:00"] * 9)
    await post_events(client, events)
    await arrived(engine)
    ctx = {"sessionmaker": create_sessionmaker(engine), "settings": settings,
           "clock": lambda: NOW}  # fmt: skip
    return ctx


async def flags(client: httpx.AsyncClient, unit: str, **params: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/units/{unit}/integrity",
                                params={"period": "2026-03", **params}, headers=ADMIN)  # fmt: skip
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_each_rule_flags_what_trips_it_and_nothing_just_inside(
    client: httpx.AsyncClient, histories: dict[str, Any]
) -> None:
    assert await check_integrity(histories, "2026-03") == {"2026-03": 5}
    found = {(f["unit_code"], f["rule"]): f for f in await flags(client, "H01")}
    assert sorted(found) == [
        ("H01.01", "late_events"), ("H01.01", "online_in_person_only"),
        ("H01.01", "quick_finish"), ("H01.01", "receipt_after_later_steps"),
        ("H01.02", "last_day_closes"),
    ]  # fmt: skip
    quick = found[("H01.01", "quick_finish")]
    assert (quick["dossiers"], quick["status"], quick["dossier_count"]) == (["Q1"], "open", 1)
    assert quick["evidence"] == {"dossiers": 1, "fastest_minutes": 5.0}
    assert quick["threshold"]["max_minutes"] == 5
    assert quick["title_vi"] == "Hồ sơ giải quyết xong chỉ vài phút sau khi tiếp nhận"
    receipt = found[("H01.01", "receipt_after_later_steps")]
    assert receipt["dossiers"] == ["R1"]
    assert receipt["evidence"]["largest_gap_minutes"] == 61.0
    assert found[("H01.01", "online_in_person_only")]["dossiers"] == ["O1"]
    assert found[("H01.01", "online_in_person_only")]["evidence"]["procedures"] == ["PX"]
    late = found[("H01.01", "late_events")]
    assert late["dossiers"] == ["L1"]
    assert late["evidence"] == {"events": 1, "longest_delay_hours": 72.02}  # 72 h 1 min
    last_day = found[("H01.02", "last_day_closes")]
    assert last_day["dossier_count"] == 10
    assert last_day["dossiers"][0] == "CM-23" and last_day["dossiers"][-1] == "CM-32"
    assert last_day["evidence"] == {
        "closes": 33, "closes_on_last_day": 10, "share": 0.303, "norm": 0.1,
        "norm_basis": "baseline", "baseline_closes": 10, "baseline_closes_on_last_day": 1,
        "last_working_day": "2026-03-31",
    }  # fmt: skip
    assert await flags(client, "H05") == []  # 10/34 under 3 × norm; 9 closes under the minimum


async def test_recompute_is_idempotent_keeps_reviews_and_clears_what_went_away(
    client: httpx.AsyncClient, engine: AsyncEngine, histories: dict[str, Any]
) -> None:
    await check_integrity(histories, "2026-03")
    first = await flags(client, "H01")
    await check_integrity(histories, "2026-03")
    again = await flags(client, "H01")
    assert [(f["rule"], f["dossiers"], f["status"]) for f in again] == [
        (f["rule"], f["dossiers"], f["status"]) for f in first
    ]

    reviewed = await client.post(
        "/v1/units/H01.01/integrity/quick_finish/resolve",
        json={"period": "2026-03", "note": "checked: an automatic registration"}, headers=ADMIN,
    )  # fmt: skip
    assert reviewed.status_code == 200, reviewed.text
    assert (reviewed.json()["status"], reviewed.json()["resolved_by"]) == ("resolved", "admin")
    # The online dossier is re-sent as in person: the rule no longer finds it.
    await post_events(client, [event("o1-fix", "O1", 4, "2026-03-04 09:00", procedure="PX",
                                      channel=1)])  # fmt: skip
    await arrived(engine)
    assert await check_integrity(histories, "2026-03") == {"2026-03": 4}
    after = {f["rule"]: f for f in await flags(client, "H01.01")}
    assert after["quick_finish"]["status"] == "resolved"  # same dossiers as reviewed
    assert after["quick_finish"]["resolution_note"] == "checked: an automatic registration"
    assert after["online_in_person_only"]["status"] == "resolved"
    assert after["online_in_person_only"]["resolved_by"] == "recompute"
    open_only = await flags(client, "H01.01", status="open")
    assert {f["rule"] for f in open_only} == {"late_events", "receipt_after_later_steps"}

    # A new quick finish after the review: the flag opens again.
    await post_events(client, [event("q4-r", "Q4", 2, "2026-03-06 08:00"),
                               event("q4-f", "Q4", 9, "2026-03-06 08:02")])  # fmt: skip
    await arrived(engine)
    await check_integrity(histories, "2026-03")
    reopened = {f["rule"]: f for f in await flags(client, "H01.01")}["quick_finish"]
    assert (reopened["status"], reopened["dossiers"]) == ("open", ["Q1", "Q4"])
    assert reopened["evidence"]["fastest_minutes"] == 2.0


async def test_flags_need_a_key_covering_the_unit(
    client: httpx.AsyncClient, histories: dict[str, Any]
) -> None:
    await check_integrity(histories, "2026-03")
    params = {"period": "2026-03"}
    assert (await client.get("/v1/units/H01/integrity", params=params)).status_code == 401
    _, elsewhere = await create_key(client, ["dossiers:read"], "H05")
    denied = await client.get("/v1/units/H01/integrity", params=params, headers=elsewhere)
    assert denied.status_code == 403
    _, writer = await create_key(client, ["dossiers:write"], "H01")
    assert (await client.get("/v1/units/H01/integrity", params=params,
                             headers=writer)).status_code == 403  # fmt: skip
    _, reader = await create_key(client, ["dossiers:read"], "H01.02")
    own = await client.get("/v1/units/H01.02/integrity", params=params, headers=reader)
    assert [f["rule"] for f in own.json()["items"]] == ["last_day_closes"]
    rules, cursor = [], None
    while True:  # pages of 2: keyset on (period, unit, rule)
        page = (await client.get("/v1/units/H01/integrity", headers=ADMIN,
                                 params={**params, "limit": 2, **({"cursor": cursor} if cursor
                                                                  else {})})).json()  # fmt: skip
        rules += [f["rule"] for f in page["items"]]
        if (cursor := page["next"]) is None:
            break
    assert rules == [
        "late_events", "online_in_person_only", "quick_finish", "receipt_after_later_steps",
        "last_day_closes",
    ]  # fmt: skip
    quarter = await flags(client, "H01", period="2026-Q1")
    assert len(quarter) == 5  # a quarter lists its months' flags
    bad = await client.post("/v1/units/H01.01/integrity/quick_finish/resolve",
                            json={"period": "2026-03", "note": "x"}, headers=reader)  # fmt: skip
    assert bad.status_code == 403


async def test_rankings_mark_units_with_open_flags_and_scores_do_not_move(
    client: httpx.AsyncClient, histories: dict[str, Any]
) -> None:
    params = {"level": "commune", "period": "2026-03", "parent": "H01"}
    await refresh_scores(histories)
    before = (await client.get("/v1/rankings", params=params)).json()
    assert before["projected"] is False  # March ended before 10 April
    assert {i["unit_code"]: i["integrity_flags"] for i in before["items"]} == {
        "H01.01": 0, "H01.02": 0,
    }  # fmt: skip
    await check_integrity(histories, "2026-03")
    await refresh_scores(histories)
    after = (await client.get("/v1/rankings", params=params)).json()
    # H01.01: quick finish, late receipt, online in-person, late events; H01.02: last-day closes.
    assert {i["unit_code"]: i["integrity_flags"] for i in after["items"]} == {
        "H01.01": 4, "H01.02": 1,
    }  # fmt: skip
    assert [(i["unit_code"], i["total"], i["rank"]) for i in after["items"]] == [
        (i["unit_code"], i["total"], i["rank"]) for i in before["items"]
    ]
    provinces = (
        await client.get("/v1/rankings", params={"level": "province", "period": "2026-03"})
    ).json()
    assert {i["unit_code"]: i["integrity_flags"] for i in provinces["items"]} == {
        "H01": 5, "H05": 0,  # a province carries its subtree's flags
    }  # fmt: skip


async def test_procedures_state_whether_online_is_allowed(client: httpx.AsyncClient) -> None:
    await put_unit(client, "H01", "province")
    created = await put_procedure(client, "PX", 5, "working_days", online_allowed=False)
    assert created["online_allowed"] is False
    unstated = await put_procedure(client, "PO", 5, "working_days")
    assert unstated["online_allowed"] is None
