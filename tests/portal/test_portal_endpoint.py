"""POST /v1/portal/dossiers: a provincial sync sends the portal's own shape unchanged."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import ADMIN, event, get_dossier, post_events, put_procedure, put_unit

RECORD = {
    "MaHoSo": "H01.01-260302-0001",
    "MaTTHC": "P5",
    "TenTTHC": "Cấp giấy phép xây dựng",
    "MaLinhVuc": "XAYDUNG",
    "KenhThucHien": "2",
    "ChuHoSo": "Trần Văn Bình",
    "SoDienThoai": "0987654321",
    "LoaiDoiTuong": "1",
    "NgayTiepNhan": "20260302080000",
    "NgayHenTra": "",
    "TrangThaiHoSo": "10",
    "NgayKetThucXuLy": "20260310160000",
    "NgayTra": "20260311090000",
    "DonViXuLy": "UBND phường Long Xuyên",
    "DuocThanhToanTrucTuyen": "1",
    "HoSoCoThanhPhanSoHoa": "0",
    "DanhSachHoSoBoSung": [
        {"NgayBoSung": "20260304100000", "NgayTiepNhanBoSung": "20260305150000",
         "NgayHenTraMoi": ""}
    ],
}  # fmt: skip

# The same history in the JSON API's shape.
JSON_EVENTS = [
    event("j1", "H01.01-260302-0002", 2, "2026-03-02 08:00", procedure="P5", channel=2,
          received_at="2026-03-02 08:00", applicant_kind=1, paid_online=True,
          has_digitized_parts=False),
    event("j2", "H01.01-260302-0002", 5, "2026-03-04 10:00", procedure="P5", channel=2),
    event("j3", "H01.01-260302-0002", 4, "2026-03-05 15:00", procedure="P5", channel=2,
          supplement_supplied_at="2026-03-05 15:00"),
    event("j4", "H01.01-260302-0002", 9, "2026-03-10 16:00", procedure="P5", channel=2),
    event("j5", "H01.01-260302-0002", 10, "2026-03-11 09:00", procedure="P5", channel=2),
]  # fmt: skip


@pytest.fixture
async def setup(client: httpx.AsyncClient) -> None:
    await put_unit(client, "H01", "province")
    await put_unit(client, "H01.01", "commune", "H01")
    await put_procedure(client, "P5", 5, "working_days")


async def post_portal(
    client: httpx.AsyncClient, records: list[Any], **params: str
) -> httpx.Response:
    return await client.post("/v1/portal/dossiers", json=records, params=params, headers=ADMIN)


async def test_portal_record_stores_the_same_dossier_as_the_json_api(
    client: httpx.AsyncClient, engine: AsyncEngine, setup: None
) -> None:
    response = await post_portal(client, [RECORD])
    assert response.status_code == 200
    body = response.json()
    assert (body["error_code"], body["message"]) == (0, "Thành công")
    assert body["result"]["items"] == [
        {"index": 0, "MaHoSo": "H01.01-260302-0001", "result": "stored", "reason": None,
         "events_stored": 5, "events_updated": 0, "events_duplicate": 0, "errors": None}
    ]  # fmt: skip
    await post_events(client, JSON_EVENTS)
    portal = await get_dossier(client, "H01.01-260302-0001")
    api = await get_dossier(client, "H01.01-260302-0002")
    assert {k: v for k, v in portal.items() if k != "code"} == {
        k: v for k, v in api.items() if k != "code"
    }
    # The owner's name and phone are not kept anywhere.
    async with engine.connect() as conn:
        dumped = str((await conn.execute(text("SELECT * FROM dossier_events"))).all())
    assert "Bình" not in dumped and "0987654321" not in dumped


async def test_resending_a_snapshot_is_a_duplicate(client: httpx.AsyncClient, setup: None) -> None:
    await post_portal(client, [RECORD])
    again = (await post_portal(client, [RECORD])).json()
    assert again["result"]["items"][0]["result"] == "duplicate"
    assert again["result"]["items"][0]["events_duplicate"] == 5


async def test_records_are_refused_only_when_they_cannot_be_a_dossier(
    client: httpx.AsyncClient, setup: None
) -> None:
    good = {**RECORD, "MaHoSo": "H01.01-260302-0003"}
    no_code = {**RECORD, "MaHoSo": ""}
    bad_status = {**RECORD, "MaHoSo": "H01.01-260302-0004", "TrangThaiHoSo": "11"}
    unknown_unit = {**RECORD, "MaHoSo": "000.00.77.H77-260302-0005"}
    new_procedure = {**RECORD, "MaHoSo": "H01.01-260302-0006", "MaTTHC": "1.009999.000.00.00.H01"}
    body = (
        await post_portal(client, [good, no_code, bad_status, unknown_unit, new_procedure])
    ).json()
    assert body["error_code"] == 1  # something was refused: real clients send it again
    items = body["result"]["items"]
    assert [i["result"] for i in items] == [
        "stored", "rejected", "rejected", "quarantined", "stored"
    ]  # fmt: skip
    assert items[1]["errors"][0]["pointer"] == "#/1/MaHoSo"
    assert items[2]["errors"][0]["pointer"] == "#/2/TrangThaiHoSo"
    assert "000.00.77.H77" in items[3]["reason"]  # kept until that identifier is mapped
    # A procedure never seen is learned from the record, by its national code, unverified.
    learned = (await client.get("/v1/procedures/1.009999")).json()
    assert (learned["name"], learned["verified"]) == ("Cấp giấy phép xây dựng", False)
    assert (await get_dossier(client, "H01.01-260302-0006"))["procedure_code"] == "1.009999"


async def test_madonvi_parameter_names_the_unit(client: httpx.AsyncClient, setup: None) -> None:
    record = {**RECORD, "MaHoSo": "HS-0001"}  # no unit prefix, no MaDonVi
    body = (await post_portal(client, [record], madonvi="H01.01")).json()
    assert body["result"]["items"][0]["result"] == "stored"
    assert (await get_dossier(client, "HS-0001"))["unit_code"] == "H01.01"


async def test_not_an_array_is_a_problem(client: httpx.AsyncClient, setup: None) -> None:
    response = await client.post("/v1/portal/dossiers", json={"MaHoSo": "x"}, headers=ADMIN)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
