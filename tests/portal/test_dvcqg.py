"""The national portal's protocol under /dvcqg, called as real one-stop systems call it:
OpenCPS's login and service calls, an LGSP platform's bare arrays; every answer in the
portal's envelope (a numeric error_code, a Vietnamese message), never problem+json."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

import app.main as main
from app.core.settings import Settings
from tests.helpers import ADMIN, create_key, province_with_communes, put_procedure, put_unit

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # Monday 10:00 in Vietnam
PROCEDURE = "1.001022"
PROCEDURE_NAME = "Cấp giấy phép xây dựng"
PERSONAL = ("Nguyễn Văn An", "0912345678", "an.nguyen@example.vn", "001203004567", "Trần Thị Bình")


def build_app(settings: Settings) -> FastAPI:
    return main.create_app(settings)


@pytest.fixture(scope="module")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = build_app(settings)
    async with LifespanManager(application):
        yield application


@asynccontextmanager
async def own_app(settings: Settings, **changes: Any) -> AsyncIterator[httpx.AsyncClient]:
    application = build_app(settings.model_copy(update=changes))
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application, client=("203.0.113.9", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://chiso.test") as c:
            yield c


@pytest.fixture(autouse=True)
def frozen(clock: Any) -> None:
    clock(NOW)


def record(code: str, status: str = "4", **fields: Any) -> dict[str, Any]:
    """A DongBoHoSoMC record as a .NET one-stop system sends it: every value a string,
    times yyyyMMddHHmmss in Vietnam time, the owner's identity included."""
    base: dict[str, Any] = {
        "MaHoSo": code,
        "MaTTHC": PROCEDURE,
        "TenTTHC": PROCEDURE_NAME,
        "MaLinhVuc": "G09-XD01",
        "TenLinhVuc": "Xây dựng",
        "KenhThucHien": "2",
        "HinhThuc": "0",
        "ChuHoSo": "Nguyễn Văn An",
        "SoDienThoai": "0912345678",
        "Email": "an.nguyen@example.vn",
        "SoGiayToChuHoSo": "001203004567",
        "LoaiDoiTuong": "1",
        "TrichYeuHoSo": "Xin cấp phép xây dựng nhà ở riêng lẻ",
        "NoiNopHoSo": "1",
        "NgayNopHoSo": "20261123080000",
        "NgayTiepNhan": "20261123083000",
        "NgayHenTra": "20261130170000",
        "TrangThaiHoSo": status,
        "NgayKetThucXuLy": "",
        "NgayTra": "",
        "DonViXuLy": "UBND phường Long Xuyên",
        "DuocThanhToanTrucTuyen": "0",
        "HoSoCoThanhPhanSoHoa": "1",
        "TaiKhoanDuocXacThucVoiVNeID": "1",
        "TaiLieuNop": [
            {"TepDinhKemId": "3391", "TenTepDinhKem": "don-de-nghi.pdf", "IsDeleted": "0",
             "MaThanhPhanHoSo": "TP01", "DuongDanTaiTepTin": "https://motcua.example.vn/f/3391",
             "DuocSoHoa": "1", "DuocTaiSuDung": "0", "DuocLayTuKhoDMQG": "0"}
        ],
        "DanhSachLePhi": [],
        "DanhSachHoSoBoSung": [],
        "DSKetNoiCSDL": [{"MaCSDL": "CSDLQGDC"}],
    }  # fmt: skip
    base.update(fields)
    return base


def progress(code: str, at: str, status: str = "4") -> dict[str, str]:
    """A CapNhatTienDoHoSoMC item (who handled it is personal data)."""
    return {
        "MaHoSo": code,
        "NguoiXuLy": "Trần Thị Bình",
        "ChucDanh": "Chuyên viên",
        "ThoiDiemXuLy": at,
        "PhongBanXuLy": "Phòng Quản lý đô thị",
        "NoiDungXuLy": "Thẩm định hồ sơ",
        "TrangThai": status,
        "NgayBatDau": "20261124080000",
        "NgayKetThucTheoQuyDinh": "20261126170000",
    }


@pytest.fixture
async def world(client: httpx.AsyncClient) -> None:
    await province_with_communes(client)
    await put_procedure(client, PROCEDURE, 5, name=PROCEDURE_NAME)


async def key_for(
    client: httpx.AsyncClient, unit: str | None = "H01.01", scopes: tuple[str, ...] = ()
) -> tuple[str, str]:
    """(key id, key) of a key bound to ``unit``."""
    key_id, header = await create_key(client, list(scopes or ("dossiers:write",)), unit)
    return key_id, header["Authorization"].removeprefix("Bearer ")


async def login(client: httpx.AsyncClient, key: str, username: str = "motcua-h01") -> str:
    response = await client.post("/dvcqg/login", json={"username": username, "password": key})
    body = response.json()
    assert (response.status_code, body["error_code"]) == (200, 0), response.text
    token: str = body["session"]
    return token


async def call(
    client: httpx.AsyncClient, session: str | None, service: str, **fields: Any
) -> dict[str, Any]:
    """One /dvcqg/service call, as OpenCPS sends it; the envelope (always HTTP 200)."""
    body = {"session": session, "madonvi": "H01.01", "service": service, **fields}
    response = await client.post("/dvcqg/service", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    answer: dict[str, Any] = response.json()
    return answer


# --- login and sessions ------------------------------------------------------------------------


async def test_login_with_a_write_key_opens_a_session_kept_as_a_digest(
    client: httpx.AsyncClient, engine: AsyncEngine, world: None
) -> None:
    key_id, key = await key_for(client)
    response = await client.post("/dvcqg/login", json={"username": "motcua-h01", "password": key})
    assert response.status_code == 200
    body = response.json()
    assert body["error_code"] == 0
    assert body["message"] == "Đăng nhập thành công"
    token = body["session"]
    assert isinstance(token, str) and len(token) >= 43
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT * FROM portal_sessions WHERE key_id = :k"), {"k": key_id}
            )
        ).one()
    assert row.token_hash == hashlib.sha256(token.encode()).digest()
    assert row.username == "motcua-h01"
    assert (row.created_at, row.expires_at, row.last_used_at) == (
        NOW,
        NOW + timedelta(hours=4),
        NOW,
    )


async def test_wrong_credentials_are_code_3_without_a_session(
    client: httpx.AsyncClient, world: None
) -> None:
    _, key = await key_for(client)
    for password in (key[:-2] + "xx", "chiso_nope_nope", "", "test-admin-token-0123456789"):
        response = await client.post("/dvcqg/login", json={"username": "u", "password": password})
        assert response.status_code == 200
        assert response.json() == {
            "error_code": 3,
            "message": "Sai tên đăng nhập hoặc mật khẩu",
            "message_en": "Wrong username or password",
            "session": None,
        }


async def test_a_revoked_key_cannot_log_in(client: httpx.AsyncClient, world: None) -> None:
    key_id, key = await key_for(client)
    assert (await client.delete(f"/v1/api-keys/{key_id}", headers=ADMIN)).status_code == 200
    response = await client.post("/dvcqg/login", json={"username": "u", "password": key})
    assert (response.json()["error_code"], response.json()["session"]) == (3, None)


async def test_a_key_without_dossiers_write_is_code_4(
    client: httpx.AsyncClient, world: None
) -> None:
    _, key = await key_for(client, scopes=("dossiers:read",))
    response = await client.post("/dvcqg/login", json={"username": "u", "password": key})
    body = response.json()
    assert (response.status_code, body["error_code"], body["session"]) == (200, 4, None)
    assert "dossiers:write" in body["message"]


async def test_failed_logins_count_against_the_failed_authentication_limit(
    settings: Settings, client: httpx.AsyncClient, world: None
) -> None:
    _, key = await key_for(client)
    async with own_app(settings, rate_auth_failures_per_minute=2) as limited:
        for _ in range(2):
            response = await limited.post("/dvcqg/login", json={"username": "u", "password": "x"})
            assert (response.status_code, response.json()["error_code"]) == (200, 3)
        # The address is out of failures: even the right key waits, and says so in the envelope.
        response = await limited.post("/dvcqg/login", json={"username": "u", "password": key})
        assert response.status_code == 429
        assert response.headers["content-type"] == "application/json"
        assert int(response.headers["Retry-After"]) >= 1
        assert response.json()["error_code"] == 8
        # So does a call with an unknown session.
        response = await limited.post(
            "/dvcqg/service", json={"session": "nope", "service": "TraCuuHoSo", "mahoso": "x"}
        )
        assert response.status_code == 429


async def test_session_calls_draw_from_the_keys_write_bucket_not_the_anonymous_one(
    settings: Settings, client: httpx.AsyncClient, world: None
) -> None:
    _, key = await key_for(client)
    async with own_app(
        settings, rate_public_per_minute=60, rate_public_burst=1, rate_write_per_minute=60,
        rate_write_burst=3,
    ) as limited:  # fmt: skip
        token = await login(limited, key)  # write token 1 of 3
        for _ in range(2):  # the anonymous bucket holds 1: these are not charged to it
            answer = await call(limited, token, "TraCuuHoSo", mahoso="H01.01-261123-0001")
            assert answer["error_code"] == 0
        response = await limited.post(
            "/dvcqg/service",
            json={"session": token, "service": "TraCuuHoSo", "mahoso": "H01.01-261123-0001"},
        )
        assert response.status_code == 429
        assert response.json()["error_code"] == 8


async def test_a_session_expires_and_a_new_login_works(
    client: httpx.AsyncClient, world: None, clock: Any
) -> None:
    _, key = await key_for(client)
    token = await login(client, key)
    clock(NOW + timedelta(hours=3, minutes=59))
    assert (await call(client, token, "TraCuuHoSo", mahoso="H01.01-1"))["error_code"] == 0
    clock(NOW + timedelta(hours=4))
    expired = await call(client, token, "TraCuuHoSo", mahoso="H01.01-1")
    assert expired["error_code"] == 2
    assert expired["message"] == (
        "Phiên làm việc không hợp lệ hoặc đã hết hạn, vui lòng đăng nhập lại"
    )
    fresh = await login(client, key)
    assert (await call(client, fresh, "TraCuuHoSo", mahoso="H01.01-1"))["error_code"] == 0


async def test_a_session_dies_with_its_key(client: httpx.AsyncClient, world: None) -> None:
    key_id, key = await key_for(client)
    token = await login(client, key)
    lgsp = {"Authorization": f"Bearer {token}"}
    assert (await call(client, token, "TraCuuHoSo", mahoso="H01.01-1"))["error_code"] == 0
    assert (await client.delete(f"/v1/api-keys/{key_id}", headers=ADMIN)).status_code == 200
    assert (await call(client, token, "TraCuuHoSo", mahoso="H01.01-1"))["error_code"] == 2
    response = await client.post("/dvcqg/DongBoHoSoMC", json=[], headers=lgsp)
    assert (response.status_code, response.json()["error_code"]) == (200, 2)


async def test_missing_or_unknown_session_is_code_2(client: httpx.AsyncClient, world: None) -> None:
    for session in (None, "", "not-a-session", 42, "x" * 5000):
        answer = await call(client, session, "DongBoHoSoMC", isUpdating="False",  # type: ignore[arg-type]
                            data=[record("H01.01-261123-0001")])  # fmt: skip
        assert (answer["error_code"], answer["result"]) == (2, None)
    response = await client.post("/dvcqg/DongBoHoSoMC", json=[record("H01.01-261123-0001")])
    assert (response.status_code, response.json()["error_code"]) == (200, 2)


async def test_neither_token_nor_password_is_ever_logged(
    client: httpx.AsyncClient, world: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _, key = await key_for(client)
    token = await login(client, key)
    await client.post("/dvcqg/login", json={"username": "u", "password": key + "x"})
    await call(client, token, "DongBoHoSoMC", isUpdating="False",
               data=[record("H01.01-261123-0001")])  # fmt: skip
    await client.post(
        "/dvcqg/DongBoHoSoMC", json=[record("H01.01-261123-0002")],
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    await client.post("/dvcqg/service", json={"session": token + "x", "service": "TraCuuHoSo"})
    assert caplog.records, "the calls were logged"
    secret = key.split("_", 2)[2]
    for entry in caplog.records:
        seen = entry.getMessage() + repr(entry.__dict__)
        assert token not in seen and secret not in seen


# --- OpenCPS style -----------------------------------------------------------------------------


async def test_opencps_flow_lookup_sync_lookup_update(
    client: httpx.AsyncClient, world: None
) -> None:
    _, key = await key_for(client)
    token = await login(client, key)
    code = "H01.01-261123-0001"

    # The client looks the dossier up first, to choose isUpdating.
    answer = await call(client, token, "TraCuuHoSo", mahoso=code)
    assert answer == {"error_code": 0, "message": "Thành công", "message_en": "Success",
                      "result": []}  # fmt: skip

    answer = await call(client, token, "DongBoHoSoMC", isUpdating="False", data=[record(code)])
    assert answer == {
        "error_code": 0, "message": "Thành công", "message_en": "Success",
        "result": [{"MaHoSo": code, "result": "stored", "reason": None, "errors": None}],
        "counts": {"stored": 1, "updated": 0, "duplicate": 0, "quarantined": 0, "rejected": 0},
    }  # fmt: skip

    answer = await call(client, token, "TraCuuHoSo", mahoso=code)
    assert answer["error_code"] == 0
    assert answer["result"] == [{
        "MaHoSo": code, "MaTTHC": PROCEDURE, "TenTTHC": PROCEDURE_NAME, "TrangThaiHoSo": "4",
        "NgayTiepNhan": "20261123083000", "NgayHenTra": "20261130170000",
        "NgayKetThucXuLy": "", "NgayTra": "", "KenhThucHien": "2",
        "DonViXuLy": "UBND phường Long Xuyên",
    }]  # fmt: skip
    assert not any(value in str(answer) for value in PERSONAL)

    finished = record(code, "10", NgayKetThucXuLy="20261127100000", NgayTra="20261127153000")
    answer = await call(client, token, "DongBoHoSoMC", isUpdating="True", data=[finished])
    # New events (finished, returned) for a known dossier: "stored" (or "updated" when only
    # values of events already read off the record changed).
    assert (answer["error_code"], answer["result"][0]["result"]) == (0, "stored")

    answer = await call(client, token, "TraCuuHoSo", mahoso=code)
    looked_up = answer["result"][0]
    assert (looked_up["TrangThaiHoSo"], looked_up["NgayKetThucXuLy"], looked_up["NgayTra"]) == (
        "10",
        "20261127100000",
        "20261127153000",
    )

    # Sent again unchanged (a client resending after a timeout): nothing new.
    answer = await call(client, token, "DongBoHoSoMC", isUpdating=True, data=[finished])
    assert (answer["error_code"], answer["result"][0]["result"]) == (0, "duplicate")


async def test_opencps_progress_items_become_events_in_the_history(
    client: httpx.AsyncClient, world: None
) -> None:
    _, key = await key_for(client)
    token = await login(client, key)
    code = "H01.01-261123-0001"
    await call(client, token, "DongBoHoSoMC", isUpdating="False", data=[record(code)])

    unknown = "H01.01-261123-0999"
    answer = await call(
        client, token, "CapNhatTienDoHoSoMC",
        data=[progress(code, "20261124100000"), progress(unknown, "20261124110000")],
    )  # fmt: skip
    assert answer["error_code"] == 1
    assert [(r["MaHoSo"], r["result"]) for r in answer["result"]] == [
        (code, "stored"),
        (unknown, "rejected"),
    ]
    assert "hồ sơ chưa được đồng bộ" in answer["result"][1]["reason"]
    events = (await client.get(f"/v1/dossiers/{code}/events", headers=ADMIN)).json()["items"]
    assert "2026-11-24T03:00:00Z" in [e["occurred_at"].replace("+00:00", "Z") for e in events]
    assert not any(value in str(events) for value in PERSONAL)


async def test_lay_thu_tuc_answers_the_procedure_in_the_portals_shape(
    client: httpx.AsyncClient, world: None
) -> None:
    _, key = await key_for(client)
    token = await login(client, key)
    answer = await call(client, token, "LayThuTuc", maTTHC=PROCEDURE)
    assert answer["error_code"] == 0
    [procedure] = answer["result"]
    assert (procedure["MATTHC"], procedure["TENTTHC"]) == (PROCEDURE, PROCEDURE_NAME)
    assert isinstance(procedure["LINHVUCTHUCHIEN"], list)
    local_variant = await call(client, token, "LayThuTuc", maTTHC=PROCEDURE + ".000.00.00.H01")
    assert local_variant["result"][0]["MATTHC"] == PROCEDURE
    assert (await call(client, token, "LayThuTuc", maTTHC="9.999999"))["result"] == []


# --- LGSP style --------------------------------------------------------------------------------


async def test_lgsp_flow_with_a_bearer_key_a_bearer_session_or_a_session_header(
    client: httpx.AsyncClient, world: None
) -> None:
    _, key = await key_for(client)
    token = await login(client, key)
    credentials = [
        {"Authorization": f"Bearer {key}"},
        {"Authorization": f"Bearer {token}"},
        {"session": token},
    ]
    for number, headers in enumerate(credentials, 1):
        code = f"H01.01-261123-000{number}"
        response = await client.post(
            "/dvcqg/DongBoHoSoMC",
            params={"MaDinhDanhDV": "H01.01", "isUpdating": "False"},
            json=[record(code)],
            headers=headers,
        )
        assert response.status_code == 200
        assert response.json() == {
            "error_code": 0, "message": "Thành công", "message_en": "Success",
            "result": [{"MaHoSo": code, "result": "stored", "reason": None, "errors": None}],
            "counts": {"stored": 1, "updated": 0, "duplicate": 0, "quarantined": 0,
                       "rejected": 0},
        }  # fmt: skip
    dossier = (await client.get("/v1/dossiers/H01.01-261123-0002", headers=ADMIN)).json()
    assert (dossier["unit_code"], dossier["status"], dossier["channel"]) == ("H01.01", 4, 2)


async def test_a_call_with_an_odd_shape_is_read_whole_and_answered_the_same(
    client: httpx.AsyncClient, world: None
) -> None:
    """Records are read with only the fields chiso reads unless one value is of another
    shape: the call is then read whole, and every record is answered as it would be."""
    _, key = await key_for(client)
    token = await login(client, key)
    odd = record("H01.01-261123-0102", TaiLieuNop="không có")  # text where a list belongs
    answer = await call(client, token, "DongBoHoSoMC", data=[record("H01.01-261123-0101"), odd])
    assert answer["error_code"] == 0
    assert [r["result"] for r in answer["result"]] == ["stored", "stored"]
    assert answer["result"][0]["reason"] is None
    assert answer["result"][1]["reason"] == "TaiLieuNop: expected an array, got a string; ignored"
    # The same two shapes through the LGSP route, sent again: duplicates, the same note.
    response = await client.post(
        "/dvcqg/DongBoHoSoMC",
        params={"MaDinhDanhDV": "H01.01"},
        json=[record("H01.01-261123-0101"), odd],
        headers={"Authorization": f"Bearer {key}"},
    )
    again = response.json()
    assert [r["result"] for r in again["result"]] == ["duplicate", "duplicate"]
    assert again["result"][1]["reason"] == answer["result"][1]["reason"]
    facts = (await client.get("/v1/dossiers/H01.01-261123-0101", headers=ADMIN)).json()
    assert facts["status"] == 4


async def test_lgsp_with_a_key_without_dossiers_write_is_code_4(
    client: httpx.AsyncClient, world: None
) -> None:
    _, key = await key_for(client, scopes=("dossiers:read",))
    response = await client.post(
        "/dvcqg/DongBoHoSoMC", json=[record("H01.01-261123-0001")],
        headers={"Authorization": f"Bearer {key}"},
    )  # fmt: skip
    assert (response.status_code, response.json()["error_code"]) == (200, 4)


async def test_an_unknown_bearer_on_dvcqg_is_the_envelope_not_a_problem(
    client: httpx.AsyncClient, world: None
) -> None:
    response = await client.post(
        "/dvcqg/DongBoHoSoMC", json=[], headers={"Authorization": "Bearer chiso_no_such"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error_code"] == 2


async def test_lgsp_records_named_by_identifier_belong_to_its_unit_and_unmapped_are_kept(
    client: httpx.AsyncClient, world: None
) -> None:
    await put_unit(client, "H01.01", "commune", "H01", name="UBND phường Long Xuyên",
                   identifier="000.00.12.H01")  # fmt: skip
    _, key = await key_for(client, "H01")
    lgsp = {"Authorization": f"Bearer {key}"}

    async def post(unit: str, code: str) -> dict[str, Any]:
        response = await client.post(
            "/dvcqg/DongBoHoSoMC", params={"MaDinhDanhDV": unit, "isUpdating": "False"},
            json=[record(code)], headers=lgsp,
        )  # fmt: skip
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        return body

    mine = "000.00.12.H01-261123-0001"
    body = await post("000.00.12.H01", mine)
    assert (body["error_code"], body["result"][0]["result"]) == (0, "stored")
    dossier = (await client.get(f"/v1/dossiers/{mine}", headers=ADMIN)).json()
    assert dossier["unit_code"] == "H01.01"

    # A record whose unit chiso cannot name yet is kept, not refused: success for the client.
    unmapped = "000.00.99.H01-261123-0001"
    body = await post("000.00.99.H01", unmapped)
    assert (body["error_code"], body["result"][0]["result"]) == (0, "quarantined")
    assert "000.00.99.H01" in body["result"][0]["reason"]
    assert body["counts"] == {"stored": 0, "updated": 0, "duplicate": 0, "quarantined": 1,
                              "rejected": 0}  # fmt: skip
    assert (await client.get(f"/v1/dossiers/{unmapped}", headers=ADMIN)).status_code == 404


# --- ownership ---------------------------------------------------------------------------------


async def test_a_units_session_can_neither_post_nor_look_up_another_units_dossiers(
    client: httpx.AsyncClient, world: None
) -> None:
    foreign = "H05.01-261123-0001"
    stored = await client.post(
        "/dvcqg/DongBoHoSoMC", params={"MaDinhDanhDV": "H05.01"}, json=[record(foreign)],
        headers=ADMIN,
    )  # fmt: skip
    assert stored.json()["error_code"] == 0
    _, key = await key_for(client, "H01.01")
    token = await login(client, key)

    mine = "H01.01-261123-0001"
    theirs = record(foreign, "9", NgayKetThucXuLy="20261124090000")
    answer = await call(client, token, "DongBoHoSoMC", isUpdating="True",
                        data=[record(mine), theirs])  # fmt: skip
    assert answer["error_code"] == 1
    assert answer["message"] == "1/2 hồ sơ bị từ chối"
    assert [(r["MaHoSo"], r["result"]) for r in answer["result"]] == [
        (mine, "stored"),
        (foreign, "rejected"),
    ]
    assert answer["result"][1]["reason"]
    assert answer["counts"]["rejected"] == 1
    assert (await call(client, token, "TraCuuHoSo", mahoso=foreign))["result"] == []
    dossier = (await client.get(f"/v1/dossiers/{foreign}", headers=ADMIN)).json()
    assert dossier["status"] == 4  # untouched


# --- the envelope for every outcome ------------------------------------------------------------


async def test_an_unknown_service_is_code_5(client: httpx.AsyncClient, world: None) -> None:
    _, key = await key_for(client)
    token = await login(client, key)
    answer = await call(client, token, "LayDanhSachHoSoThayDoi")
    assert (answer["error_code"], answer["message"]) == (
        5,
        "Dịch vụ không được hỗ trợ: LayDanhSachHoSoThayDoi",
    )
    response = await client.post("/dvcqg/LayDanhMucCoQuan", json=[], headers=ADMIN)
    assert (response.status_code, response.json()["error_code"]) == (404, 5)


async def test_malformed_calls_are_code_6(client: httpx.AsyncClient, world: None) -> None:
    _, key = await key_for(client)
    token = await login(client, key)
    bodies: list[Any] = [
        b"{not json",
        b"[1, 2]",
        {"session": token},  # no service
        {"session": token, "service": "DongBoHoSoMC", "data": {"MaHoSo": "x"}},
        {"session": token, "service": "DongBoHoSoMC", "isUpdating": "maybe", "data": []},
        {"session": token, "service": "TraCuuHoSo"},  # no mahoso
        {"session": token, "service": "TraCuuHoSo", "madonvi": 12, "mahoso": "x"},
    ]
    for body in bodies:
        sent = {"content": body} if isinstance(body, bytes) else {"json": body}
        response = await client.post("/dvcqg/service", **sent)
        assert (response.status_code, response.json()["error_code"]) == (200, 6), body
        assert response.json()["message"].startswith("Yêu cầu không hợp lệ")
    response = await client.post("/dvcqg/login", content=b"username=a&password=b")
    assert (response.status_code, response.json()["error_code"]) == (200, 6)
    response = await client.post(
        "/dvcqg/DongBoHoSoMC", json={"data": []}, headers={"session": token}
    )
    assert (response.status_code, response.json()["error_code"]) == (200, 6)


async def test_a_body_nested_past_any_decoders_depth_is_code_6_never_a_500(
    client: httpx.AsyncClient, world: None
) -> None:
    """Arrays nested 100,000 deep, where the records' decoder skips a field or where it reads
    one, through both routes: the general decoder refuses them as malformed, as before."""
    _, key = await key_for(client)
    token = await login(client, key)
    deep = b"[" * 100_000 + b"]" * 100_000
    record = b'{"MaHoSo": "H01.01-261123-0201", "ChuHoSo": ' + deep + b"}"
    envelope = b'{"session": "' + token.encode() + b'", "service": "DongBoHoSoMC", "data": ['
    for body in (envelope + record + b"]}", envelope + deep + b"]}"):
        response = await client.post("/dvcqg/service", content=body)
        assert (response.status_code, response.json()["error_code"]) == (200, 6)
    response = await client.post(
        "/dvcqg/DongBoHoSoMC", content=b"[" + record + b"]", headers={"session": token}
    )
    assert (response.status_code, response.json()["error_code"]) == (200, 6)
    assert response.json()["message_en"] == "Malformed call: not JSON"


async def test_more_than_10000_records_is_code_7(client: httpx.AsyncClient, world: None) -> None:
    _, key = await key_for(client)
    token = await login(client, key)
    answer = await call(client, token, "DongBoHoSoMC", isUpdating="False", data=[{}] * 10_001)
    assert answer["error_code"] == 7
    assert answer["result"] is None
    response = await client.post(
        "/dvcqg/DongBoHoSoMC", json=[{}] * 10_001, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.json()["error_code"] == 7


async def test_a_login_body_over_4_kb_is_413_in_the_envelope(
    client: httpx.AsyncClient, world: None
) -> None:
    response = await client.post("/dvcqg/login", json={"username": "u", "password": "x" * 5000})
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error_code"] == 7


async def test_error_code_is_a_json_number(client: httpx.AsyncClient, world: None) -> None:
    _, key = await key_for(client)
    ok = await client.post("/dvcqg/login", json={"username": "u", "password": key})
    refused = await client.post("/dvcqg/login", json={"username": "u", "password": "x"})
    assert re.search(r'"error_code":0[,}]', ok.text)
    assert re.search(r'"error_code":3[,}]', refused.text)


async def test_a_database_outage_is_code_8_with_503_and_retry_after(settings: Settings) -> None:
    async with own_app(settings, database_url="postgresql://postgres@127.0.0.1:1/none") as client:
        response = await client.post(
            "/dvcqg/login", json={"username": "u", "password": "chiso_0123456789ab_secret"}
        )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error_code"] == 8


def test_the_routes_are_documented_under_their_tag(app: FastAPI) -> None:
    schema = app.openapi()
    for path in ("/dvcqg/login", "/dvcqg/service", "/dvcqg/DongBoHoSoMC",
                 "/dvcqg/CapNhatTienDoHoSoMC"):  # fmt: skip
        operation = schema["paths"][path]["post"]
        assert operation["tags"] == ["dvcqg (national portal protocol)"]
        assert "requestBody" in operation
        assert "200" in operation["responses"]
    examples = schema["paths"]["/dvcqg/service"]["post"]["requestBody"]["content"][
        "application/json"
    ]["examples"]
    assert set(examples) == {"DongBoHoSoMC", "CapNhatTienDoHoSoMC", "TraCuuHoSo", "LayThuTuc"}
