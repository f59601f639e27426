"""Month-end projection: made mid-month by the daily job, then checked against the month once
it has completed (the same dossiers, the rest of their events, and new arrivals)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import create_sessionmaker
from app.core.settings import Settings
from app.indicators.catalog import shipped_catalog
from app.insights.jobs import project_scores
from app.scores.jobs import refresh_scores
from tests.helpers import ADMIN, event, post_events, put_procedure, put_unit, vn

MID_MARCH = vn("2026-03-16 07:00")  # Monday, before the office opens
APRIL = vn("2026-04-10 09:00")
CODES = [c for c in shipped_catalog().versions[0].counted_codes if c != "ON_TIME_RATE"]


def received(code: str, at: str, unit: str = "H01", procedure: str = "P3") -> dict[str, Any]:
    return event(f"{code}-r", code, 2, at, unit=unit, procedure=procedure)


def finished(code: str, at: str, unit: str = "H01") -> dict[str, Any]:
    return event(f"{code}-f", code, 9, at, unit=unit)


async def submit(client: httpx.AsyncClient, unit: str, changes: dict[str, tuple[int, int]]) -> None:
    items = [{"unit_code": unit, "period": "2026-03", "metric_code": code,
              "numerator": changes.get(code, (10, 10))[0],
              "denominator": changes.get(code, (10, 10))[1]} for code in CODES]  # fmt: skip
    response = await client.post("/v1/indicator-values/batch", json={"values": items},
                                 headers=ADMIN)  # fmt: skip
    assert response.json()["rejected"] == 0, response.text


async def test_projection_made_mid_month_is_compared_with_the_completed_month(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings,
    clock: Callable[[datetime], None],
) -> None:  # fmt: skip
    clock(MID_MARCH)
    await put_unit(client, "H01", "province")
    await put_unit(client, "H05", "province")
    await put_procedure(client, "P3", 3, "working_days")
    await put_procedure(client, "P30", 30, "working_days")
    # Submissions: H01 loses 6 on PUBLISH_ON_TIME (74 of the 80 submitted points); H05 gets
    # 12 × 1/6 = 2 on FULL_ONLINE_RATE (70 of 80).
    await submit(client, "H01", {"PUBLISH_ON_TIME": (0, 10)})
    await submit(client, "H05", {"FULL_ONLINE_RATE": (1, 6)})
    await post_events(client, [
        # February (H01's record): 4 came due on Thursday 5 Feb 17:00, 3 finished in time.
        *[e for n in range(4) for e in (received(f"F{n}", "2026-02-02 08:00"),
          finished(f"F{n}", "2026-02-03 10:00" if n < 3 else "2026-02-09 10:00"))],
        # March so far: A0, A1 finished on time; B late; C due Thu 12 Mar, still open (overdue);
        # D0–D3 received Fri 13 Mar, due Wed 18 Mar 17:00 (coming due); E due 24 Apr (safe).
        received("A0", "2026-03-02 08:00"), finished("A0", "2026-03-03 10:00"),
        received("A1", "2026-03-02 08:00"), finished("A1", "2026-03-03 10:00"),
        received("B", "2026-03-02 08:00"), finished("B", "2026-03-09 10:00"),
        received("C", "2026-03-09 08:00"),
        *[received(f"D{n}", "2026-03-13 08:00") for n in range(4)],
        received("E", "2026-03-13 08:00", procedure="P30"),
        # H05: two dossiers, both on time (no earlier record: this month's share is 2/2).
        received("G0", "2026-03-02 08:00", unit="H05"), finished("G0", "2026-03-03 10:00", "H05"),
        received("G1", "2026-03-02 08:00", unit="H05"), finished("G1", "2026-03-03 10:00", "H05"),
    ])  # fmt: skip
    ctx = {"sessionmaker": create_sessionmaker(engine), "settings": settings,
           "clock": lambda: MID_MARCH}  # fmt: skip
    assert await project_scores(ctx) == 2  # both provinces

    # H01 on 16 March 07:00: 9 dossiers count so far (2 on time, 1 late, 1 overdue, 1 safe,
    # 4 coming due). Record: 3 of 4 in time → 0.75 × 4 = 3 expected. Working days: 10 gone,
    # 12 to come → 9 receipts × 12/10 = 10.8 → 11 more, counted in time.
    #   point (2 + 1 + 3 + 11)/(9 + 11) = 17/20 → TDGQ 17.00, total 74 + 17 = 91.00
    #   low   (2 + 1)/9 → 6.67, total 74 + 6.667 = 80.67
    #   high  (2 + 1 + 4 + 11)/20 = 18/20 → 18.00, total 92.00
    # H05: (2 + 2 arrivals (2 × 12/10 = 2.4 → 2))/4 → 20 → 90.00. H01 ranks 1 (1 to 2).
    running = (await client.get("/v1/units/H01/projection", params={"period": "2026-03"})).json()
    assert (running["running"], running["actual"]) == (True, None)
    live = running["projection"]
    assert live["on_time"] == {
        "dossiers": 9, "finished_on_time": 2, "finished_late": 1, "overdue": 1, "safe": 1,
        "coming_due": 4, "on_time_share": 75.0, "on_time_share_basis": "previous_months",
        "expected_on_time": 3, "expected_arrivals": 11,
    }  # fmt: skip
    assert live["tdgq"] == {"numerator": 17, "denominator": 20, "points": 17.0,
                            "low": 6.67, "high": 18.0}  # fmt: skip
    assert (live["total"], live["total_low"], live["total_high"], live["grade"]) == (
        91.0, 80.67, 92.0, "Xuất sắc",
    )  # fmt: skip
    assert (live["rank"], live["rank_best"], live["rank_worst"], live["of"]) == (1, 1, 2, 2)
    [stored] = running["history"]
    assert stored["made_on"] == "2026-03-16"
    assert {k: stored[k] for k in live} == live  # the job stored what the endpoint shows
    h05 = (await client.get("/v1/units/H05/projection", params={"period": "2026-03"})).json()
    assert h05["projection"]["on_time"]["on_time_share_basis"] == "this_month_so_far"
    assert (h05["projection"]["total"], h05["projection"]["rank"]) == (90.0, 2)
    await refresh_scores(ctx)
    ranking = (
        await client.get("/v1/rankings", params={"level": "province", "period": "2026-03"})
    ).json()
    assert ranking["projected"] is True  # March is still running on the 16th

    # The rest of March: C finished late, D0–D2 on time, D3 late; E still open in time.
    # New: N0–N3 received Fri 20 Mar (due Wed 25), finished Mon 23; N4–N9 received Mon 30 Mar,
    # due 2 April, still open in time at the end of March.
    clock(vn("2026-03-31 16:00"))
    await post_events(client, [
        finished("C", "2026-03-17 10:00"),
        *[finished(f"D{n}", "2026-03-18 10:00" if n < 3 else "2026-03-19 10:00")
          for n in range(4)],
        *[e for n in range(4) for e in (received(f"N{n}", "2026-03-20 08:00"),
                                        finished(f"N{n}", "2026-03-23 10:00"))],
        *[received(f"N{n}", "2026-03-30 08:00") for n in range(4, 10)],
    ])  # fmt: skip
    clock(APRIL)
    ctx["clock"] = lambda: APRIL
    await refresh_scores(ctx)
    # Actual: 19 dossiers; in time A0, A1, D0–D2, E, N0–N9 = 16 → 20 × 16/19 = 16.842 → 16.84;
    # total 74 + 16.842 = 90.84 (H05 stays 90.00): rank 1. The projection made on the 16th
    # said 91.00 (80.67–92.00): off by −0.16, within its range, rank as projected.
    done = (await client.get("/v1/units/H01/projection", params={"period": "2026-03"})).json()
    assert (done["running"], done["projection"]) == (False, None)
    assert done["actual"] == {
        "total": 90.84, "grade": "Xuất sắc", "complete": True, "rank": 1, "of": 2,
        "tdgq_points": 16.84, "tdgq_numerator": 16, "tdgq_denominator": 19,
    }  # fmt: skip
    [compared] = done["history"]
    assert (compared["made_on"], compared["total"]) == ("2026-03-16", 91.0)
    assert (compared["total_error"], compared["within_range"], compared["rank_error"]) == (
        -0.16, True, 0,
    )  # fmt: skip
    ranking = (
        await client.get("/v1/rankings", params={"level": "province", "period": "2026-03"})
    ).json()
    assert ranking["projected"] is False


async def test_projection_parameters(
    client: httpx.AsyncClient, clock: Callable[[datetime], None]
) -> None:
    clock(MID_MARCH)
    await put_unit(client, "H01", "province")
    quarter = await client.get("/v1/units/H01/projection", params={"period": "2026-Q1"})
    assert quarter.status_code == 422
    assert quarter.json()["errors"][0]["parameter"] == "period"
    future = await client.get("/v1/units/H01/projection", params={"period": "2026-05"})
    assert future.json()["errors"] == [
        {"parameter": "period", "detail": "period 2026-05 has not started yet"}
    ]
    assert (await client.get("/v1/units/H77/projection",
                             params={"period": "2026-03"})).status_code == 404  # fmt: skip


async def test_a_clock_stopping_after_the_projection_instant_is_still_running_then(
    client: httpx.AsyncClient, clock: Callable[[datetime], None]
) -> None:
    """The outlook reads the dossiers back at its instant, as the month-end count does: papers
    asked for after that instant (a desk's clock ahead of chiso's) do not stop the clock yet.
    X and Y: received Fri 13 Mar 08:00, due Wed 18 Mar 17:00 (3 working days); X's papers
    asked for Thu 19 Mar 09:00, Y's Tue 17 Mar 09:00. On Mon 16 Mar 07:00 both are simply
    coming due (before: X counted overdue, its clock measured where it stopped, and Y safe)."""
    clock(MID_MARCH)
    await put_unit(client, "H01", "province")
    await put_procedure(client, "P3", 3, "working_days")
    await post_events(client, [
        received("X", "2026-03-13 08:00"), event("X-s", "X", 5, "2026-03-19 09:00", unit="H01"),
        received("Y", "2026-03-13 08:00"), event("Y-s", "Y", 5, "2026-03-17 09:00", unit="H01"),
    ])  # fmt: skip
    body = (await client.get("/v1/units/H01/projection", params={"period": "2026-03"})).json()
    on_time = body["projection"]["on_time"]
    assert {k: on_time[k] for k in ("dossiers", "overdue", "safe", "coming_due")} == {
        "dossiers": 2, "overdue": 0, "safe": 0, "coming_due": 2,
    }  # fmt: skip


async def test_a_projection_stored_before_numbers_were_numbers_reads_in_todays_format(
    client: httpx.AsyncClient, engine: AsyncEngine, clock: Callable[[datetime], None]
) -> None:
    """Rows the daily job stored before 0.3.0 hold the on-time share as a fraction in a string
    and points as strings: they are served as percentages and numbers like new ones."""
    clock(MID_MARCH)
    await put_unit(client, "H01", "province")
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO score_projections (unit_code, period, made_on, made_at, "
                "catalog_version, on_time, tdgq, total, total_low, total_high, grade, "
                "completeness, rank, rank_best, rank_worst, ranked_of) VALUES ('H01', "
                "'2026-03', '2026-03-15', '2026-03-15T00:00:00Z', '766-2022', CAST(:on_time AS "
                "jsonb), CAST(:tdgq AS jsonb), 91, 80.67, 92, 'Xuất sắc', 0.8333, 1, 1, 2, 2)"
            ),
            {
                "on_time": '{"dossiers": 9, "finished_on_time": 2, "finished_late": 1, '
                '"overdue": 1, "safe": 1, "coming_due": 4, "on_time_share": "0.7500", '
                '"on_time_share_basis": "previous_months", "expected_on_time": 3, '
                '"expected_arrivals": 11}',
                "tdgq": '{"numerator": 17, "denominator": 20, "points": "17.00", '
                '"low": "6.67", "high": "18.00"}',
            },
        )
    body = (await client.get("/v1/units/H01/projection", params={"period": "2026-03"})).json()
    [stored] = body["history"]
    assert stored["on_time"]["on_time_share"] == 75.0  # 0.75 → 75 %
    assert stored["tdgq"] == {"numerator": 17, "denominator": 20, "points": 17.0,
                              "low": 6.67, "high": 18.0}  # fmt: skip
    assert (stored["total"], stored["completeness"], stored["rank"], stored["of"]) == (
        91.0, 83.33, 1, 2,
    )  # fmt: skip
