"""Overdue lists, due-soon lists, dossier queries and who may read them."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import ClauseElement, Executable, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from app.dossiers.repository import overdue_statement
from tests.helpers import (
    ADMIN,
    create_key,
    event,
    post_events,
    province_with_communes,
    put_procedure,
    vn,
)


class Explain(Executable, ClauseElement):
    """``EXPLAIN`` of a statement, run with the statement's own parameters."""

    inherit_cache = False

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement


@compiles(Explain)
def _explain(element: Explain, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN " + compiler.process(element.statement, **kw)


@pytest.fixture
async def seeded(client: httpx.AsyncClient, clock: Callable[[datetime], None]) -> None:
    """At Tue 10 Mar 2026 12:00, with 3-working-day procedures (received Mon 2 Mar → due Thu 5):

    - H01.01-1  commune H01.01, overdue (2.5 working days... measured below), no apology
    - H01.01-2  desk H01.01.MC, overdue, apology sent with a new date
    - H01.02-1  commune H01.02, received Mon 9 Mar → due Thu 12 Mar: in time
    - H01.02-2  commune H01.02, finished late: not on the open overdue list
    - H05.01-1  another province, overdue
    """
    await province_with_communes(client)
    await put_procedure(client, "P3", 3, "working_days")
    clock(vn("2026-03-10 12:00"))
    await post_events(client, [
        event("1", "H01.01-1", 2, "2026-03-02 08:00", unit="H01.01"),
        event("2", "H01.01-2", 2, "2026-03-02 09:00", unit="H01.01.MC"),
        event("3", "H01.01-2", 4, "2026-03-09 09:00", unit="H01.01.MC",
              apology_issued_at="2026-03-09 09:00", apology_new_due_at="2026-03-12 17:00"),
        event("4", "H01.02-1", 2, "2026-03-09 08:00", unit="H01.02"),
        event("5", "H01.02-2", 2, "2026-03-02 08:00", unit="H01.02"),
        event("6", "H01.02-2", 9, "2026-03-06 10:00", unit="H01.02"),
        event("7", "H05.01-1", 2, "2026-03-02 08:00", unit="H05.01"),
    ])  # fmt: skip


async def test_overdue_list_covers_the_subtree_and_nothing_else(
    client: httpx.AsyncClient, seeded: None
) -> None:
    response = await client.get("/v1/units/H01/overdue", headers=ADMIN)
    assert response.status_code == 200
    body = response.json()
    assert [i["code"] for i in body["items"]] == ["H01.01-1", "H01.01-2"]
    first, second = body["items"]
    # Due Thu 5 Mar 17:00; at Tue 10 Mar 12:00: Fri 6 (8 h) + Mon 9 (8 h) + Tue 07:30–11:30
    # (4 h) = 20 h = 2.50 working days.
    assert first["overdue_by"] == "2.50"
    assert (first["apology_issued"], second["apology_issued"]) == (False, True)
    assert second["unit_code"] == "H01.01.MC"
    assert second["unit_name"] == "Bộ phận Một cửa Long Xuyên"
    assert body["counts"] == [
        {"unit_code": "H01.01", "overdue": 1, "without_apology": 1},
        {"unit_code": "H01.01.MC", "overdue": 1, "without_apology": 0},
    ]


async def test_overdue_list_pages_with_a_cursor(client: httpx.AsyncClient, seeded: None) -> None:
    first = (await client.get("/v1/units/H01/overdue?limit=1", headers=ADMIN)).json()
    assert [i["code"] for i in first["items"]] == ["H01.01-1"]
    second = (
        await client.get(f"/v1/units/H01/overdue?limit=1&cursor={first['next']}", headers=ADMIN)
    ).json()
    assert [i["code"] for i in second["items"]] == ["H01.01-2"]
    assert second["next"] is None


async def test_overdue_csv_export(client: httpx.AsyncClient, seeded: None) -> None:
    response = await client.get(
        "/v1/units/H01/overdue?lang=en", headers={**ADMIN, "Accept": "text/csv"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    # Both were received on Mon 2 Mar, so both are due Thu 5 Mar 17:00: 2.50 days late.
    assert [
        (r["Dossier code"], r["Overdue by (working days)"], r["Apology letter issued"])
        for r in rows
    ] == [
        ("H01.01-1", "2.50", "No"),
        ("H01.01-2", "2.50", "Yes"),
    ]
    assert rows[1]["Unit name"] == "Bộ phận Một cửa Long Xuyên"


async def test_desk_key_cannot_read_another_province(
    client: httpx.AsyncClient, seeded: None
) -> None:
    _, h05 = await create_key(client, ["dossiers:read"], "H05")
    _, h01 = await create_key(client, ["dossiers:read"], "H01")
    _, writer = await create_key(client, ["dossiers:write"], "H01")
    assert (await client.get("/v1/units/H01/overdue", headers=h05)).status_code == 403
    assert (await client.get("/v1/dossiers/H01.01-1", headers=h05)).status_code == 403
    assert (await client.get("/v1/dossiers/H01.01-1/events", headers=h05)).status_code == 403
    assert (await client.get("/v1/dossiers?unit=H01", headers=h05)).status_code == 403
    assert (await client.get("/v1/dossiers/H01.01-1", headers=h01)).status_code == 200
    assert (await client.get("/v1/dossiers/H01.01-1", headers=writer)).status_code == 403
    assert (await client.get("/v1/dossiers/H01.01-1")).status_code == 401
    # Without ?unit= a bound key sees its own subtree only.
    own = (await client.get("/v1/dossiers", headers=h05)).json()
    assert [d["code"] for d in own["items"]] == ["H05.01-1"]


async def test_list_filters_by_state_and_subtree(client: httpx.AsyncClient, seeded: None) -> None:
    async def codes(**params: str) -> list[str]:
        response = await client.get("/v1/dossiers", params=params, headers=ADMIN)
        assert response.status_code == 200, response.text
        return [d["code"] for d in response.json()["items"]]

    assert await codes(unit="H01", state="overdue") == ["H01.01-1", "H01.01-2"]
    assert await codes(unit="H01", state="in_time") == ["H01.02-1"]
    assert await codes(unit="H01", state="late") == ["H01.02-2"]
    assert await codes(unit="H01.01") == ["H01.01-1", "H01.01-2"]
    assert await codes(state="overdue") == ["H01.01-1", "H01.01-2", "H05.01-1"]
    assert await codes(unit="H01", due_before=vn("2026-03-06 00:00").isoformat()) == [
        "H01.01-1", "H01.01-2", "H01.02-2"
    ]  # fmt: skip
    bad = await client.get("/v1/dossiers", params={"state": "bogus"}, headers=ADMIN)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["parameter"] == "state"
    unknown = await client.get("/v1/dossiers", params={"unit": "H99"}, headers=ADMIN)
    assert unknown.status_code == 404


async def test_due_soon_lists_dossiers_due_within_n_working_hours(
    client: httpx.AsyncClient, seeded: None
) -> None:
    # H01.02-1 is due Thu 12 Mar 17:00. From Tue 10 Mar 12:00 (lunch: the clock starts at
    # 13:00): Tue 4 h + Wed 8 h + Thu 8 h = 20 working hours reach Thu 17:00 exactly.
    soon = await client.get("/v1/units/H01/due-soon?hours=19", headers=ADMIN)
    later = await client.get("/v1/units/H01/due-soon?hours=20", headers=ADMIN)
    assert soon.json()["items"] == []
    assert [d["code"] for d in later.json()["items"]] == ["H01.02-1"]


async def test_overdue_query_runs_on_the_open_dossier_index(
    engine: AsyncEngine, seeded: None
) -> None:
    # A realistic shape: many finished dossiers, few open ones. Then ask the planner.
    async with engine.begin() as conn:
        await conn.execute(
            text(
                """
                INSERT INTO dossiers (code, unit_code, procedure_code, status, channel,
                    received_at, due_at, end_at, counted, first_event_at, last_event_at)
                SELECT 'F-' || g, (ARRAY['H01.01','H01.02','H05.01'])[1 + g % 3], 'P3', 10, 1,
                       now() - interval '30 days', now() - interval '20 days',
                       now() - interval '21 days', true, now(), now()
                FROM generate_series(1, 30000) g
                """
            )
        )
        await conn.execute(text("ANALYZE dossiers"))
        statement = Explain(overdue_statement("H01", limit=50))
        params = {"now": vn("2026-03-10 12:00"), "max_supp": 1}
        plan = "\n".join(r[0] for r in await conn.execute(statement, params))
    assert "ix_dossiers_open_unit_code_due_at" in plan, plan
    assert "Seq Scan on dossiers" not in plan, plan


async def test_list_filters_by_local_receipt_dates_and_counts_on_request(
    client: httpx.AsyncClient, seeded: None
) -> None:
    # Received at 00:30 on Mon 9 Mar in Vietnam: 17:30 UTC on Sun 8 Mar. A day is a local day.
    await post_events(client, [event("8", "H05.01-2", 2, "2026-03-09 00:30", unit="H05.01")])

    async def page(**params: str) -> dict[str, Any]:
        response = await client.get("/v1/dossiers", params=params, headers=ADMIN)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def codes(body: dict[str, Any]) -> list[str]:
        return [d["code"] for d in body["items"]]

    assert codes(await page(received_from="2026-03-09")) == ["H01.02-1", "H05.01-2"]
    assert codes(await page(received_to="2026-03-02")) == [
        "H01.01-1", "H01.01-2", "H01.02-2", "H05.01-1"
    ]  # fmt: skip
    assert codes(await page(received_from="2026-03-09", received_to="2026-03-09")) == [
        "H01.02-1", "H05.01-2"
    ]  # fmt: skip
    assert codes(await page(received_from="2026-03-03", received_to="2026-03-08")) == []
    assert codes(await page(unit="H05", received_to="2026-03-08")) == ["H05.01-1"]

    # The total counts every page, with the filters; without `count` it is not computed.
    first = await page(limit="2", count="true")
    assert (codes(first), first["total"]) == (["H01.01-1", "H01.01-2"], 6)
    second = await page(limit="2", count="true", cursor=first["next"])
    assert (codes(second), second["total"]) == (["H01.02-1", "H01.02-2"], 6)
    overdue = await page(state="overdue", received_to="2026-03-02", count="true")
    assert overdue["total"] == 3
    assert (await page())["total"] is None

    backwards = await client.get(
        "/v1/dossiers",
        params={"received_from": "2026-03-09", "received_to": "2026-03-01"},
        headers=ADMIN,
    )
    assert backwards.status_code == 422
    assert backwards.json()["errors"] == [
        {"parameter": "received_to", "detail": "before received_from"}
    ]
    not_a_date = await client.get(
        "/v1/dossiers", params={"received_from": "09/03/2026"}, headers=ADMIN
    )
    assert not_a_date.status_code == 422
