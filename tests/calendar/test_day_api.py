"""`GET /v1/calendar/days/{date}`: one date, working or not, why, and its office hours."""

from __future__ import annotations

from collections.abc import Callable
from datetime import time

import httpx
import pytest

from tests.helpers import ADMIN

HOURS = ["07:30-11:30", "13:00-17:00"]


async def day(client: httpx.AsyncClient, text: str) -> dict[str, object]:
    response = await client.get(f"/v1/calendar/days/{text}")
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_saturday_22_august_2026_is_worked_by_the_shipped_swap(
    client: httpx.AsyncClient,
) -> None:
    assert await day(client, "2026-08-22") == {
        "date": "2026-08-22",
        "weekday": 6,
        "working": True,
        "source": "shipped_override",
        "name": "Saturday worked in exchange for Monday 31 August 2026 off (National Day break, "
        "Saturday 29 August – Wednesday 2 September); the holidays package lists only the "
        "day off.",
        "reference": "Notice 9441/TB-BNV of the Ministry of Home Affairs (16 October 2025)",
        "public_holiday": None,
        "office_hours": HOURS,
        "opens_at": "2026-08-22T07:30:00+07:00",
        "closes_at": "2026-08-22T17:00:00+07:00",
        "intake_cutoff": None,
    }


async def test_monday_31_august_2026_is_the_day_off_it_was_swapped_for(
    client: httpx.AsyncClient,
) -> None:
    body = await day(client, "2026-08-31")
    assert (body["working"], body["weekday"], body["source"]) == (False, 1, "public_holiday")
    assert body["name"] == body["public_holiday"] == "Ngày nghỉ (thay cho ngày 22/08/2026)"
    assert (body["office_hours"], body["opens_at"], body["closes_at"]) == ([], None, None)


@pytest.mark.parametrize(
    ("date", "weekday", "name"),
    [
        ("2026-02-16", 1, "Giao thừa Tết Nguyên Đán"),
        ("2026-02-20", 5, "Mùng bốn Tết Nguyên Đán"),
        ("2026-04-27", 1, "Ngày Giỗ Tổ Hùng Vương (nghỉ bù)"),
        ("2026-04-30", 4, "Ngày Chiến thắng"),
        ("2026-05-01", 5, "Ngày Quốc tế Lao động"),
        ("2026-09-01", 2, "Quốc khánh"),
        ("2026-11-24", 2, "Ngày Văn hóa Việt Nam"),
        ("2027-02-04", 4, "29 Tết"),
        ("2027-02-10", 3, "Mùng năm Tết Nguyên Đán"),
    ],
)
async def test_public_holidays_name_themselves(
    client: httpx.AsyncClient, date: str, weekday: int, name: str
) -> None:
    body = await day(client, date)
    assert (body["working"], body["weekday"], body["source"]) == (False, weekday, "public_holiday")
    assert body["name"] == body["public_holiday"] == name
    assert body["office_hours"] == []


async def test_weekdays_and_weekends(client: httpx.AsyncClient) -> None:
    # Wed 25 Nov 2026, the day after Vietnam Culture Day: an ordinary working day.
    wednesday = await day(client, "2026-11-25")
    assert (wednesday["working"], wednesday["source"], wednesday["name"]) == (
        True, "weekday", None
    )  # fmt: skip
    assert wednesday["closes_at"] == "2026-11-25T17:00:00+07:00"
    # Sat 14 Feb 2026, the first day of the Tết break, is just a Saturday.
    saturday = await day(client, "2026-02-14")
    assert (saturday["working"], saturday["weekday"], saturday["source"]) == (False, 6, "weekend")
    assert (saturday["name"], saturday["public_holiday"], saturday["office_hours"]) == (
        None, None, []
    )  # fmt: skip
    # Sun 26 Apr 2026 is Hùng Kings' day itself: a holiday on a Sunday, given on Monday.
    sunday = await day(client, "2026-04-26")
    assert (sunday["working"], sunday["source"]) == (False, "public_holiday")
    assert sunday["name"] == "Ngày Giỗ Tổ Hùng Vương"


async def test_operator_overrides_say_why_and_keep_the_holiday_they_replace(
    client: httpx.AsyncClient,
) -> None:
    storm = {"kind": "holiday", "reason": "Bão số 3", "reference": "CĐ 01/CĐ-UBND"}
    assert (
        await client.put("/v1/calendar/days/2026-12-08", json=storm, headers=ADMIN)
    ).status_code == 200
    closed = await day(client, "2026-12-08")
    assert (closed["working"], closed["source"], closed["name"], closed["reference"]) == (
        False, "operator_override", "Bão số 3", "CĐ 01/CĐ-UBND"
    )  # fmt: skip
    assert (closed["public_holiday"], closed["office_hours"]) == (None, [])

    worked = {"kind": "workday", "reason": "Làm bù"}
    assert (
        await client.put("/v1/calendar/days/2026-09-02", json=worked, headers=ADMIN)
    ).status_code == 200
    national_day = await day(client, "2026-09-02")
    assert (national_day["working"], national_day["source"], national_day["name"]) == (
        True, "operator_override", "Làm bù"
    )  # fmt: skip
    assert national_day["public_holiday"] == "Quốc khánh"
    assert national_day["office_hours"] == HOURS


async def test_the_day_follows_the_intake_cutoff_setting(
    client: httpx.AsyncClient, configure: Callable[..., None]
) -> None:
    configure(intake_cutoff=time(15, 0))
    assert (await day(client, "2026-11-25"))["intake_cutoff"] == "15:00"
    assert (await day(client, "2026-11-28"))["intake_cutoff"] is None  # a Saturday


@pytest.mark.parametrize(
    "text", ["2026-02-30", "2026-13-01", "abc", "20260101", "1899-12-31", "2200-01-01", "0"]
)
async def test_a_bad_date_is_a_problem_not_a_crash(client: httpx.AsyncClient, text: str) -> None:
    response = await client.get(f"/v1/calendar/days/{text}")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 422
    assert body["errors"][0]["parameter"] == "day"


async def test_the_day_is_public_like_the_range(client: httpx.AsyncClient) -> None:
    # No key needed; a bad key is refused as everywhere.
    assert (await client.get("/v1/calendar/days/2026-11-25")).status_code == 200
    bad = await client.get("/v1/calendar/days/2026-11-25", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    # The same answer as the range gives for that date.
    ranged = await client.get("/v1/calendar", params={"from": "2026-08-22", "to": "2026-08-22"})
    single = await day(client, "2026-08-22")
    listed = ranged.json()["items"][0]
    assert {k: single[k] for k in listed} == listed
    assert ranged.headers.get("cache-control") == (
        await client.get("/v1/calendar/days/2026-08-22")
    ).headers.get("cache-control")
