"""The what-if planner: each target kind, an unreachable one, and the target's 422s.

Province H01 in March 2026 (hand-built; every other count is 10/10, full marks):
  ON_TIME_RATE (TDGQ, 20)            2 of 4 dossiers on time      → 10.00   (−10)
  FULL_ONLINE_RATE (12)              40/100                       → 4.80    (−7.20)
  DOSSIER_RECEIVING_SATISFACTION (6) 45/100, full from 0.90       → 3.00    (−3)
  ONLINE_PAYMENT (10)  A 41/100 → 6 × 0.41 = 2.46; B 5/10 → min(2, 1.25) = 1.25; C 10/10 → 2.5
                       = 6.21                                               (−3.79)
  PETITION_PROCESSING_ON_TIME (6)    0/0, scores 0 when empty     → 0       (−6, nothing to raise)
  total 100 − 10 − 7.2 − 3 − 3.79 − 6 = 70.01 → Khá.
Points per additional unit: ON_TIME 20/4 = 5; ONLINE_PAYMENT.B 2.5/10 = 0.25 (room 0.75, 3
units); FULL_ONLINE 12/100 = 0.12 (room 7.2, 60 units); DOSSIER_RECEIVING 6/(0.9 × 100) =
0.0667 (room 3, 45 units); ONLINE_PAYMENT.A 6/100 = 0.06 (room 3.54, but TTTT caps at 10:
3.79 − 0.75 = 3.04 left after B). Full marks on all of it: 100 − 6 = 94.00.
Peers (1 dossier on time each): H05 94 (PUBLISH 0/10), H12 88 (FULL_ONLINE 0/10), H13 78
(FULL_ONLINE, PUBLISH, PUBLIC_CONTENT, ELECTRONIC_CERTIFIED_COPY at 0/10), H14 84 without
DOSSIER_SYNC and ONLINE_PAYMENT.C (incomplete: ranked on its partial total, no grade).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import create_sessionmaker
from app.core.settings import Settings
from app.indicators.catalog import shipped_catalog
from app.scores.jobs import refresh_scores
from tests.helpers import ADMIN, event, post_events, put_procedure, put_unit, vn

NOW = vn("2026-04-10 09:00")
CODES = [c for c in shipped_catalog().versions[0].counted_codes if c != "ON_TIME_RATE"]
H01 = {
    "FULL_ONLINE_RATE": (40, 100), "DOSSIER_RECEIVING_SATISFACTION": (45, 100),
    "ONLINE_PAYMENT.A": (41, 100), "ONLINE_PAYMENT.B": (5, 10),
    "PETITION_PROCESSING_ON_TIME": (0, 0),
}  # fmt: skip
PEERS: dict[str, dict[str, tuple[int, int] | None]] = {
    "H05": {"PUBLISH_ON_TIME": (0, 10)},
    "H12": {"FULL_ONLINE_RATE": (0, 10)},
    "H13": {"FULL_ONLINE_RATE": (0, 10), "PUBLISH_ON_TIME": (0, 10),
            "PUBLIC_CONTENT_FULL": (0, 10), "ELECTRONIC_CERTIFIED_COPY": (0, 10)},
    "H14": {"DOSSIER_SYNC": None, "ONLINE_PAYMENT.C": None},
}  # fmt: skip


def values(unit: str, plan: dict[str, tuple[int, int] | None]) -> list[dict[str, Any]]:
    out = []
    for code in CODES:
        if code in plan and plan[code] is None:
            continue  # not submitted
        numerator, denominator = plan.get(code) or (10, 10)
        out.append({"unit_code": unit, "period": "2026-03", "metric_code": code,
                    "numerator": numerator, "denominator": denominator})  # fmt: skip
    return out


def dossier(unit: str, n: int, late: bool) -> list[dict[str, Any]]:
    """3-working-day dossier received Monday 2 March 08:00, due Thursday 5 March 17:00."""
    code = f"{unit}-{n}"
    finished = "2026-03-09 10:00" if late else "2026-03-03 10:00"
    return [event(f"{code}-r", code, 2, "2026-03-02 08:00", unit=unit),
            event(f"{code}-f", code, 9, finished, unit=unit)]  # fmt: skip


@pytest.fixture
async def provinces(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings,
    clock: Callable[[datetime], None],
) -> None:  # fmt: skip
    clock(NOW)
    for code in ("H01", *PEERS):
        await put_unit(client, code, "province")
    await put_procedure(client, "P3", 3, "working_days")
    items = values("H01", dict(H01))
    for unit, plan in PEERS.items():
        items += values(unit, plan)
    response = await client.post("/v1/indicator-values/batch", json={"values": items},
                                 headers=ADMIN)  # fmt: skip
    assert response.json()["rejected"] == 0, response.text
    events = [e for n in range(4) for e in dossier("H01", n, late=n >= 2)]
    events += [e for unit in PEERS for e in dossier(unit, 0, late=False)]
    await post_events(client, events)
    await refresh_scores({"sessionmaker": create_sessionmaker(engine), "settings": settings,
                          "clock": lambda: NOW})  # fmt: skip


async def what_if(
    client: httpx.AsyncClient, target: str, unit: str = "H01", language: str = "en"
) -> dict[str, Any]:
    """The answer in English (Vietnamese by default: test_messages_follow_accept_language)."""
    response = await client.get(f"/v1/units/{unit}/what-if",
                                params={"period": "2026-03", "target": target},
                                headers={"Accept-Language": language})  # fmt: skip
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def plan_of(body: dict[str, Any]) -> list[tuple[str, int, str]]:
    return [(i["component_code"] or i["metric_code"], i["additional"], i["points_gained"])
            for i in body["improvements"]]  # fmt: skip


async def test_grade_target_takes_the_most_points_per_unit_first(
    client: httpx.AsyncClient, provinces: None
) -> None:
    body = await what_if(client, "grade:Xuất sắc")
    assert body["current"] == {"total": 70.01, "grade": "Khá", "complete": True, "rank": 5,
                               "of": 5}  # fmt: skip
    assert body["target"] == {"kind": "grade", "value": "Xuất sắc", "label": "grade Xuất sắc",
                              "total_needed": 90.0}  # fmt: skip
    # Needed 89.995 − 70.01 = 19.985: ON_TIME 2 units (+10) → 9.985 left; B 3 units (+0.75)
    # → 9.235; FULL_ONLINE all 60 units (+7.2) → 2.035; DOSSIER_RECEIVING ⌈2.035 / 0.0667⌉ =
    # ⌈30.53⌉ = 31 units (+2.0667, 45+31 = 76/100 → 6 × 0.76/0.9 = 5.0667).
    # Total 70.01 + 10 + 0.75 + 7.2 + 2.0667 = 90.0267 → 90.03, Xuất sắc; 96 units in all.
    assert plan_of(body) == [
        ("ON_TIME_RATE", 2, 10.0), ("ONLINE_PAYMENT.B", 3, 0.75),
        ("FULL_ONLINE_RATE", 60, 7.2), ("DOSSIER_RECEIVING_SATISFACTION", 31, 2.07),
    ]  # fmt: skip
    assert (body["reachable"], body["already_reached"], body["additional_units"]) == (
        True, False, 96,
    )  # fmt: skip
    assert body["after"] == {"total": 90.03, "grade": "Xuất sắc", "complete": True,
                             "rank": 2, "of": 5}  # fmt: skip
    online = body["improvements"][1]
    assert online["action"] == (
        "3 more procedures with at least one online payment (of 10 procedures with fees or "
        "charges): 50.0% → 80.0%"
    )
    assert (online["numerator_from"], online["numerator_to"], online["denominator"]) == (5, 8, 10)
    # Rates as percentages; a point's worth per unit to four decimals.
    assert (online["rate_from"], online["rate_to"], online["points_per_unit"]) == (
        50.0, 80.0, 0.25,
    )  # fmt: skip
    assert body["message"] == (
        "Reachable: 96 more numerator units across 4 metric(s) raise the total from 70.01 to "
        "90.03, meeting the 90.00 needed for grade Xuất sắc."
    )
    assert body["unmeasured"] == ["PETITION_PROCESSING_ON_TIME"]
    assert body["best_possible_total"] == 94.0


async def test_rank_target_holds_the_other_units_fixed(
    client: httpx.AsyncClient, provinces: None
) -> None:
    # Rank 2 needs at most one peer above: the 2nd best other total, H12's 88.00.
    # Needed 87.995 − 70.01 = 17.985: ON_TIME +10 → 7.985; B +0.75 → 7.235; FULL_ONLINE
    # +7.2 (60) → 0.035; DOSSIER_RECEIVING ⌈0.035/0.0667⌉ = 1 unit → 88.0267 → 88.03, rank 2.
    body = await what_if(client, "rank:2")
    assert body["target"]["total_needed"] == 88.0
    assert plan_of(body) == [
        ("ON_TIME_RATE", 2, 10.0), ("ONLINE_PAYMENT.B", 3, 0.75),
        ("FULL_ONLINE_RATE", 60, 7.2), ("DOSSIER_RECEIVING_SATISFACTION", 1, 0.07),
    ]  # fmt: skip
    assert (body["after"]["total"], body["after"]["rank"]) == (88.03, 2)
    # Rank 1 ties H05's 94.00: everything, with ONLINE_PAYMENT.A stopped by the TTTT cap after
    # ⌈(93.995 − 70.01 − 10 − 0.75 − 7.2 − 3) / 0.06⌉ = ⌈50.58⌉ = 51 units (+3.04, not 3.06).
    first = await what_if(client, "rank:1")
    assert plan_of(first)[-2:] == [("DOSSIER_RECEIVING_SATISFACTION", 45, 3.0),
                                   ("ONLINE_PAYMENT.A", 51, 3.04)]  # fmt: skip
    assert (first["after"]["total"], first["after"]["rank"]) == (94.0, 1)
    already = await what_if(client, "rank:5")
    assert (already["already_reached"], already["improvements"]) == (True, [])
    assert already["message"] == "Already reached: ranked 5 of 5 with 70.01."


async def test_score_target_and_the_unreachable_ones(
    client: httpx.AsyncClient, provinces: None
) -> None:
    # 80 − 0.005 − 70.01 = 9.985 → ⌈9.985 / 5⌉ = 2 more dossiers on time → 80.01.
    body = await what_if(client, "score:80")
    assert plan_of(body) == [("ON_TIME_RATE", 2, 10.0)]
    assert body["improvements"][0]["action"] == (
        "2 more dossiers finished early or on time, plus pending and within time (of 4 dossiers "
        "received or processed in the period): 50.0% → 100.0%"
    )
    assert (body["after"]["total"], body["after"]["grade"]) == (80.01, "Tốt")

    beyond = await what_if(client, "score:95")
    assert (beyond["reachable"], beyond["improvements"], beyond["after"]) == (False, [], None)
    assert beyond["message"] == (
        "Unreachable this period: even full marks on every metric with data give 94.00, short "
        "of the 95.00 needed for score 95.00."
    )
    no_grade = await what_if(client, "grade:Khá", unit="H14")
    assert no_grade["reachable"] is False
    assert no_grade["current"]["total"] == 84.0 and no_grade["current"]["grade"] is None
    assert no_grade["missing_metrics"] == ["DOSSIER_SYNC", "ONLINE_PAYMENT"]
    assert no_grade["message"] == (
        "Unreachable this period: a score without data for DOSSIER_SYNC, ONLINE_PAYMENT gets no "
        "grade; submit them first."
    )
    good = await what_if(client, "grade:good", unit="H05")  # English names and codes work too
    assert (
        good["message"] == "Already reached: the total 94.00 meets the 80.00 needed for grade Tốt."
    )


@pytest.mark.parametrize(
    ("target", "detail"),
    [
        ("level:3", "target 'level:3' must look like grade:Tốt, rank:10 or score:80"),
        ("grade:Giỏi", "unknown grade 'Giỏi'; one of Xuất sắc, Tốt, Khá, Trung bình, Yếu"),
        ("rank:0", "rank target '0' must be a whole number from 1"),
        ("score:100.5", "score target '100.5' must be a number from 0 to 100 with at most 2 "
                        "decimals"),
    ],
)  # fmt: skip
async def test_a_bad_target_is_a_422_naming_the_parameter(
    client: httpx.AsyncClient, provinces: None, target: str, detail: str
) -> None:
    response = await client.get("/v1/units/H01/what-if",
                                params={"period": "2026-03", "target": target})  # fmt: skip
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [{"parameter": "target", "detail": detail}]
    missing = await client.get("/v1/units/H77/what-if",
                               params={"period": "2026-03", "target": "rank:1"})  # fmt: skip
    assert missing.status_code == 404


async def test_messages_follow_accept_language(client: httpx.AsyncClient, provinces: None) -> None:
    # Vietnamese without a header, for a language other than English, and when preferred.
    for language in ("", "fr-FR", "vi-VN,vi;q=0.9,en;q=0.8"):
        response = await client.get(
            "/v1/units/H01/what-if", params={"period": "2026-03", "target": "grade:Xuất sắc"},
            headers={"Accept-Language": language},
        )  # fmt: skip
        assert response.headers["content-language"] == "vi"
        assert "Accept-Language" in response.headers["vary"]
        body = response.json()
        assert body["target"]["label"] == "xếp loại Xuất sắc"
        assert body["message"] == (
            "Có thể đạt: tăng thêm 96 trường hợp đạt yêu cầu ở 4 chỉ tiêu, tổng điểm tăng từ "
            "70.01 lên 90.03, đạt mức 90.00 cần cho xếp loại Xuất sắc."
        )
        assert body["improvements"][1]["action"] == (
            "Tăng thêm 3 trường hợp đạt yêu cầu (trên tổng số 10): tỷ lệ từ 50.0% lên 80.0%"
        )
        assert body["method"].startswith("Phương án ít tốn nhất")
    english = await client.get(
        "/v1/units/H01/what-if", params={"period": "2026-03", "target": "rank:5"},
        headers={"Accept-Language": "en-US,en;q=0.9,vi;q=0.5"},
    )  # fmt: skip
    assert english.headers["content-language"] == "en"
    assert english.json()["message"] == "Already reached: ranked 5 of 5 with 70.01."
    assert english.json()["method"].startswith("Cheapest = fewest")
    vi = await what_if(client, "rank:5", language="vi")
    assert vi["message"] == "Đã đạt mục tiêu: xếp hạng 5/5 với tổng điểm 70.01."
    assert vi["target"]["label"] == "hạng 5"
    beyond = await what_if(client, "score:95", language="vi")
    assert beyond["message"] == (
        "Không thể đạt trong kỳ này: kể cả đạt điểm tối đa ở mọi chỉ tiêu có dữ liệu, tổng điểm "
        "chỉ là 94.00, chưa đủ mức 95.00 cần cho tổng điểm 95.00."
    )
    no_grade = await what_if(client, "grade:Khá", unit="H14", language="vi")
    assert no_grade["message"] == (
        "Không thể đạt trong kỳ này: điểm còn thiếu dữ liệu chỉ tiêu DOSSIER_SYNC, "
        "ONLINE_PAYMENT thì chưa được xếp loại; cần gửi số liệu các chỉ tiêu này trước."
    )
    good = await what_if(client, "grade:good", unit="H05", language="vi")
    assert good["message"] == "Đã đạt mục tiêu: tổng điểm 94.00 đạt mức 80.00 cần cho xếp loại Tốt."
    # The month-end projection's method too.
    for language, start in (("vi", "Điểm TDGQ cuối tháng"), ("en", "TDGQ at month end")):
        report = await client.get(
            "/v1/units/H01/projection", params={"period": "2026-03"},
            headers={"Accept-Language": language},
        )  # fmt: skip
        assert report.status_code == 200, report.text
        assert report.headers["content-language"] == language
        assert "Accept-Language" in report.headers["vary"]
        assert report.json()["method"].startswith(start)
