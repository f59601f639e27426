"""Real one-stop systems point their existing sync at chiso and change nothing else.

An OpenCPS-style client (login, TraCuuHoSo, DongBoHoSoMC, CapNhatTienDoHoSoMC) and an
LGSP-style .NET client post the records of tests/portal/fixtures.py unchanged. Every dossier
is stored, owned by the unit of its identifier, with the due time and channel worked out by
hand below, the index facts kept and no personal data anywhere.
"""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import ADMIN, create_key, put_procedure, put_unit
from tests.portal.fixtures import (
    DOTNET_FINISHED,
    DOTNET_RETURNED,
    DOTNET_UNIT,
    OPENCPS_RECORD,
    OPENCPS_UNIT,
    PERSONAL_VALUES,
    PROGRESS_ITEMS,
)


@pytest.fixture
async def key(client: httpx.AsyncClient) -> str:
    """An Giang with a commune and a department named by their identifiers; a key of the
    province's one-stop platform."""
    await put_unit(client, "H01", "province", name="UBND tỉnh An Giang")
    await put_unit(client, "H01.20.31", "commune", "H01", name="UBND phường Long Xuyên",
                   identifier=OPENCPS_UNIT)  # fmt: skip
    await put_unit(client, "H01.SXD", "department", "H01", name="Sở Xây dựng",
                   identifier=DOTNET_UNIT)  # fmt: skip
    await put_procedure(client, "1.001193", 5, "working_days", name="Đăng ký khai sinh")
    _, header = await create_key(client, ["dossiers:write", "dossiers:read"], "H01")
    return header["Authorization"].removeprefix("Bearer ")


async def call(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/dvcqg/service", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_an_opencps_client_and_an_lgsp_client_feed_chiso_unchanged(
    client: httpx.AsyncClient, engine: AsyncEngine, key: str
) -> None:
    # --- OpenCPS: log in, look the dossier up, sync it, look it up again -------------------
    login = await client.post("/dvcqg/login", json={"username": "opencps", "password": key})
    session = login.json()["session"]
    assert login.json()["error_code"] == 0 and session
    ask = {"session": session, "madonvi": OPENCPS_UNIT, "service": "TraCuuHoSo",
           "mahoso": OPENCPS_RECORD["MaHoSo"]}  # fmt: skip
    assert (await call(client, ask))["result"] == []
    synced = await call(
        client,
        {"session": session, "madonvi": OPENCPS_UNIT, "service": "DongBoHoSoMC",
         "isUpdating": "False", "data": [copy.deepcopy(OPENCPS_RECORD)]},
    )  # fmt: skip
    assert synced["error_code"] == 0, synced
    assert [r["result"] for r in synced["result"]] == ["stored"]
    [found] = (await call(client, ask))["result"]
    assert (found["MaHoSo"], found["TrangThaiHoSo"]) == (OPENCPS_RECORD["MaHoSo"], "10")

    # --- .NET through the province's integration platform: a bare array, a Bearer key -----
    lgsp = await client.post(
        "/dvcqg/DongBoHoSoMC",
        params={"MaDinhDanhDV": DOTNET_UNIT, "isUpdating": "False"},
        json=[copy.deepcopy(DOTNET_FINISHED), copy.deepcopy(DOTNET_RETURNED)],
        headers={"Authorization": f"Bearer {key}"},
    )
    assert lgsp.status_code == 200 and lgsp.json()["error_code"] == 0, lgsp.text
    steps = await client.post(
        "/dvcqg/CapNhatTienDoHoSoMC",
        params={"MaDinhDanhDV": DOTNET_UNIT},
        json=copy.deepcopy(PROGRESS_ITEMS),
        headers={"Authorization": f"Bearer {key}"},
    )
    assert steps.json()["error_code"] == 0, steps.text

    # --- what chiso stored -----------------------------------------------------------------
    opencps = (await client.get(f"/v1/dossiers/{OPENCPS_RECORD['MaHoSo']}", headers=ADMIN)).json()
    assert opencps["unit_code"] == "H01.20.31"  # the unit its identifier names
    assert opencps["channel"] == 1  # no KenhThucHien: in person (HinhThuc is the result's return)
    assert opencps["due_at"] == "2026-10-09T09:30:00Z"  # NgayHenTra Fri 9 Oct 16:30
    assert opencps["finished_at"] == "2026-10-09T03:05:00Z"  # NgayKetThucXuLy 10:05
    assert opencps["timeliness"] == "on_time"  # finished on the day it was due

    finished = (await client.get(f"/v1/dossiers/{DOTNET_FINISHED['MaHoSo']}", headers=ADMIN)).json()
    assert finished["unit_code"] == "H01.SXD" and finished["channel"] == 2
    assert finished["procedure_code"] == "1.001022"  # the local variant's national code
    assert "time_inferred" in [a["code"] for a in finished["anomalies"]]
    history = await client.get(f"/v1/dossiers/{DOTNET_FINISHED['MaHoSo']}/events", headers=ADMIN)
    times = [e["occurred_at"] for e in history.json()["items"]]
    assert "2026-11-24T02:30:00Z" in times and "2026-11-26T01:00:00Z" in times  # two steps

    returned = (await client.get(f"/v1/dossiers/{DOTNET_RETURNED['MaHoSo']}", headers=ADMIN)).json()
    assert returned["due_at"] == "2026-12-08T10:00:00Z"  # NgayHenTra Tue 8 Dec 17:00
    assert returned["finished_at"] == "2026-12-04T09:00:00Z" and returned["timeliness"] == "early"

    learned = (await client.get("/v1/procedures/1.001022")).json()
    assert (learned["verified"], learned["limit_value"]) == (False, None)

    # The facts that feed the index, counted by hand from OPENCPS_RECORD: 4 papers, one deleted;
    # 2 with a file; TP1 and TP2 digitised; TP2 reused and from the national store; fees 0 and
    # 8,000 đồng; 2 result papers, 1 with a link; 2 national databases consulted.
    async with engine.connect() as conn:
        facts = (
            await conn.execute(
                text("SELECT papers_total, papers_with_file, papers_digitised, papers_reused, "
                     "papers_from_national_store, fees_count, fees_total, fees_all_zero, "
                     "results_total, results_with_file, databases, vneid_verified, "
                     "has_digitised_parts, payment_code, result_return "
                     "FROM dossier_facts WHERE dossier_code = :code"),
                {"code": OPENCPS_RECORD["MaHoSo"]},
            )
        ).one()  # fmt: skip
    assert tuple(facts) == (
        3, 2, 2, 1, 1, 2, 8000, False, 2, 1, ["CSDLQGDC", "CSDLHT"], True, True, "0", "0"
    )  # fmt: skip

    # --- and none of the people -------------------------------------------------------------
    async with engine.connect() as conn:
        tables = (
            await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
        ).scalars()
        dump = []
        for table in tables:
            rows = await conn.execute(text(f'SELECT t::text FROM "{table}" t'))
            dump.extend(r[0] for r in rows)
    everything = "\n".join(dump) + str(found)
    leaked = [value for value in PERSONAL_VALUES if value in everything]
    assert leaked == []
