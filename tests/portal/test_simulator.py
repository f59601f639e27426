"""The portal simulator speaks the real protocol and serves records in the shapes real
producers send: envelope and error codes, paging, lookups, identifiers, value sets, gaps,
personal data where producers put it, and times in office hours of working days."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, time
from typing import Any

import httpx
import pytest

from app.calendar.service import build_calendar
from app.core.settings import Settings
from app.portal.client import AdapterProtocol, PortalClient, PortalError, PortalSource
from app.portal.records import PORTAL_TZ
from app.portal.simulator import (
    NOT_IN_CATALOG,
    PROCEDURES_CSV,
    SIMULATOR_UNITS_CSV,
    Faults,
    PortalSimulator,
)
from tests.helpers import vn

NOW = vn("2026-03-20 10:00")  # a Friday; the window reaches back over Tết 2026
SOURCE = PortalSource(name="sim", base_url="http://portal", username="chiso", password="chiso-sim")
UNITS = list(csv.DictReader(io.StringIO(SIMULATOR_UNITS_CSV.read_text(encoding="utf-8"))))
IDENTIFIERS = {u["identifier"] for u in UNITS}
CATALOG = {r["code"] for r in csv.DictReader(io.StringIO(PROCEDURES_CSV.read_text("utf-8")))}
TOP_TIMES = ("NgayNopHoSo", "NgayTiepNhan", "NgayHenTra", "NgayKetThucXuLy", "NgayTra",
             "NgayTuChoi")  # fmt: skip
SUPPLEMENT_TIMES = ("NgayBoSung", "NgayTiepNhanBoSung", "NgayHenTraTruoc", "NgayHenTraMoi")
APPOINTMENTS = {"NgayHenTra", "NgayHenTraTruoc", "NgayHenTraMoi"}  # may lie after now


def http_for(sim: PortalSimulator) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app()), base_url="http://p")


async def no_sleep(_: float) -> None:
    return None


def client_for(sim: PortalSimulator, source: PortalSource = SOURCE) -> PortalClient:
    return PortalClient(source, http_for(sim), sleep=no_sleep)


async def logged_in(http: httpx.AsyncClient) -> str:
    answer = (await http.post("/login", json={"username": "chiso", "password": "chiso-sim"})).json()
    assert answer["error_code"] == 0
    session: str = answer["session"]
    return session


def parse_time(value: str) -> datetime:
    """A record's time, compact or (inside supplements, from .NET producers) ISO 8601."""
    pattern = "%Y-%m-%dT%H:%M:%S" if "T" in value else "%Y%m%d%H%M%S"
    return datetime.strptime(value, pattern).replace(tzinfo=PORTAL_TZ)


def times_of(record: dict[str, Any]) -> list[tuple[str, datetime]]:
    found = [(name, parse_time(record[name])) for name in TOP_TIMES if record.get(name)]
    for entry in record["DanhSachHoSoBoSung"]:
        found += [(n, parse_time(entry[n])) for n in SUPPLEMENT_TIMES if entry.get(n)]
    return found


# --- the protocol ------------------------------------------------------------------------------


async def test_login_answers_0_with_a_session_and_3_for_wrong_credentials() -> None:
    async with http_for(PortalSimulator(dossiers=1, seed=1)) as http:
        right = await http.post("/login", json={"username": "chiso", "password": "chiso-sim"})
        wrong = await http.post("/login", json={"username": "chiso", "password": "nope"})
        garbled = await http.post("/login", content=b"username=chiso")
    assert right.status_code == 200
    assert right.json()["error_code"] == 0  # a number, not "0"
    assert re.fullmatch(r"[0-9a-f]{32}", right.json()["session"])
    assert (wrong.status_code, wrong.json()["error_code"]) == (200, 3)
    assert "session" not in wrong.json()
    assert wrong.json()["message"] == "Sai tên đăng nhập hoặc mật khẩu"
    assert garbled.json()["error_code"] == 6


async def test_service_calls_need_a_live_session_and_a_known_service() -> None:
    sim = PortalSimulator(dossiers=3, seed=1, faults=Faults(session_calls=1))
    async with http_for(sim) as http:
        session = await logged_in(http)
        call = {"session": session, "madonvi": "", "service": "LayDanhSachHoSo"}
        first = (await http.post("/service", json=call)).json()
        expired = (await http.post("/service", json=call)).json()
        unknown = (await http.post("/service", json={**call, "session": "x"})).json()
        fresh = await logged_in(http)
        old_name = {**call, "session": fresh, "service": "LayDanhSachHoSoThayDoi"}
        gone = (await http.post("/service", json=old_name)).json()
    assert first["error_code"] == 0
    assert (expired["error_code"], unknown["error_code"]) == (2, 2)
    assert gone["error_code"] == 5  # the old chiso-only name is no service of a real portal


async def test_the_client_logs_in_again_when_the_session_expires() -> None:
    sim = PortalSimulator(dossiers=30, seed=1, faults=Faults(session_calls=2))
    client = client_for(sim, PortalSource("sim", "http://p", "chiso", "chiso-sim", page_size=10))
    cursor, seen = None, []
    for _ in range(3):
        page = await client.changed_dossiers(cursor)
        seen += [r["MaHoSo"] for r in page.records]
        cursor = page.next_cursor
    assert len(seen) == 30 == len(set(seen))
    assert client.logins == 2  # the third call found the session expired


async def test_the_listing_pages_through_every_record_once_with_an_opaque_cursor() -> None:
    sim = PortalSimulator(dossiers=25, seed=2, now=NOW)
    async with http_for(sim) as http:
        session = await logged_in(http)
        cursor, seen, remaining, cursors = "", [], [], []
        while True:
            call = {"session": session, "madonvi": "", "service": "LayDanhSachHoSo",
                    "cursor": cursor, "sodong": 10}  # fmt: skip
            answer = (await http.post("/service", json=call)).json()
            assert answer["error_code"] == 0, answer
            result = answer["result"]
            seen += [r["MaHoSo"] for r in result["data"]]
            remaining.append(result["conlai"])
            cursor = result["cursor"]
            cursors.append(cursor)
            if result["conlai"] == 0:
                break
        bad = {**call, "cursor": "not base64 of a number!"}
        malformed = (await http.post("/service", json=bad)).json()
    assert remaining == [15, 5, 0]
    assert seen == [r["MaHoSo"] for r in sim.records]  # each once, in change order
    assert not any(c.isdigit() for c in cursors)  # nothing a client could do arithmetic on
    assert malformed["error_code"] == 6


async def test_tracuuhoso_answers_the_record_or_an_empty_list() -> None:
    sim = PortalSimulator(dossiers=20, seed=3, now=NOW)
    wanted = sim.records[7]
    client = client_for(sim)
    assert await client.lookup(wanted["MaHoSo"]) == wanted
    assert await client.lookup("000.00.12.H01-260101-99999") is None
    async with http_for(sim) as http:
        session = await logged_in(http)
        call = {"session": session, "service": "TraCuuHoSo", "mahoso": "x"}
        miss = (await http.post("/service", json={**call, "madonvi": ""})).json()
        no_unit = (await http.post("/service", json={**call, "madonvi": "000.00.77.H99"})).json()
        no_code = (await http.post("/service", json={**call, "mahoso": ""})).json()
    assert (miss["error_code"], miss["result"]) == (0, [])
    assert no_unit["error_code"] == 9  # madonvi names no unit
    assert no_code["error_code"] == 6


async def test_tracuuhoso_finds_every_dossier_as_it_now_stands() -> None:
    sim = PortalSimulator(dossiers=150, seed=3, now=NOW, faults=Faults(unmapped_rate=0.2))
    [finished] = sim.finish_open(1)
    records = sim.records
    assert any(r["MaHoSo"].startswith("000.00.99.") for r in records)  # unmapped ones too
    assert all(sim.find(r["MaHoSo"]) == r for r in records)
    answer = await client_for(sim).lookup(finished)
    assert answer is not None and answer["TrangThaiHoSo"] == "9"
    # Another unit's code, or a day that is not the dossier's: no such dossier.
    code = next(r["MaHoSo"] for r in records if r["MaHoSo"].startswith("000.00.12.H01-"))
    assert sim.find(code.replace("000.00.12.H01", "000.00.15.H01", 1)) is None
    assert sim.find(code[:-5] + "99999") is None


async def test_laythutuc_answers_the_procedure_by_national_code_or_local_variant() -> None:
    client = client_for(PortalSimulator(dossiers=1, seed=1))
    expected = {
        "MATTHC": "1.001193",
        "TENTTHC": "Đăng ký khai sinh",
        "LINHVUCTHUCHIEN": [{"MALINHVUC": "G09-TP05", "TENLINHVUC": "Hộ tịch"}],
    }
    assert await client.procedure("1.001193") == expected
    assert await client.procedure("1.001193.000.00.00.H01") == expected
    assert await client.procedure("9.999999") is None


async def test_madonvi_limits_the_listing_to_the_unit_or_the_province() -> None:
    sim = PortalSimulator(dossiers=60, seed=4, now=NOW)

    async def listed(madonvi: str) -> list[str]:
        source = PortalSource("sim", "http://p", "chiso", "chiso-sim", madonvi=madonvi)
        page = await client_for(sim, source).changed_dossiers(None)
        assert page.remaining == 0
        return [r["MaHoSo"] for r in page.records]

    assert {c.split("-")[0] for c in await listed("000.00.12.H01")} == {"000.00.12.H01"}
    assert len(await listed("000.00.12.H01")) == 6  # every 10th dossier is this unit's
    province = await listed("000.00.00.H49")
    assert len(province) == 24 and all(c.split("-")[0].endswith(".H49") for c in province)
    with pytest.raises(PortalError) as refused:
        await listed("000.00.88.H01")
    assert refused.value.error_code == 9


async def test_paths_listing_name_and_paging_fields_are_configurable() -> None:
    protocol = AdapterProtocol(
        auth_path="/api/dvcqg/login", integration_path="/api/dvcqg/service",
        list_service="DanhSachHoSoDongBo", cursor_field="vitri", page_size_field="soluong",
        remaining_field="consolai", records_field="hoso",
    )  # fmt: skip
    sim = PortalSimulator(dossiers=12, seed=5, protocol=protocol)
    source = PortalSource("sim", "http://p", "chiso", "chiso-sim", page_size=5, protocol=protocol)
    client = client_for(sim, source)
    cursor, seen = None, []
    while True:
        page = await client.changed_dossiers(cursor)
        seen += [r["MaHoSo"] for r in page.records]
        cursor = page.next_cursor
        if page.remaining == 0:
            break
    assert len(seen) == 12 == len(set(seen))
    with pytest.raises(PortalError, match="HTTP 404"):  # the default paths are not there
        await client_for(sim).changed_dossiers(None)


# --- the records -------------------------------------------------------------------------------


def test_records_name_their_unit_by_identifier_only() -> None:
    records = PortalSimulator(dossiers=300, seed=6, now=NOW).records
    for record in records:
        assert "MaDonVi" not in record
        prefix, day, sequence = record["MaHoSo"].split("-")
        assert prefix in IDENTIFIERS
        assert re.fullmatch(r"[0-9]{6}", day) and re.fullmatch(r"[0-9]{5}", sequence)
        receipt = record["NgayTiepNhan"] or record["NgayNopHoSo"]  # status 1: not received
        assert day == receipt[2:8]  # yyMMdd of the receipt
    assert {r["MaHoSo"].split("-")[0] for r in records} == IDENTIFIERS
    unit_names = {u["identifier"]: u["name"] for u in UNITS}
    assert all(r["DonViXuLy"] == unit_names[r["MaHoSo"].split("-")[0]] for r in records)


def test_unmapped_identifiers_appear_only_when_asked_for() -> None:
    sim = PortalSimulator(dossiers=200, seed=6, now=NOW, faults=Faults(unmapped_rate=0.1))
    prefixes = [r["MaHoSo"].split("-")[0] for r in sim.records]
    strangers = [p for p in prefixes if p not in IDENTIFIERS]
    assert strangers and set(strangers) <= {"000.00.99.H01", "000.00.99.H49"}
    assert len(set(r["MaHoSo"] for r in sim.records)) == 200


def test_malformed_records_carry_status_labels_and_foreign_dates_only_when_asked_for() -> None:
    clean = PortalSimulator(dossiers=200, seed=6, now=NOW).records
    broken = PortalSimulator(dossiers=200, seed=6, now=NOW, faults=Faults(malformed_rate=0.1))
    bad = [r for r in broken.records if not r["TrangThaiHoSo"].isdigit()]
    assert all(r["TrangThaiHoSo"].isdigit() for r in clean)
    assert 8 <= len(bad) <= 35  # about a tenth
    for record in bad:
        assert record["TrangThaiHoSo"] in {"Đang xử lý", "Đã trả kết quả", "Đã xử lý xong",
                                           "Mới đăng ký", "Yêu cầu bổ sung", "Rút hồ sơ",
                                           "Không được tiếp nhận", "Dừng xử lý",
                                           "Chờ thực hiện nghĩa vụ tài chính"}  # fmt: skip
        if record["NgayTiepNhan"]:
            assert re.fullmatch(r"\d\d/\d\d/\d{4} \d\d:\d\d:\d\d", record["NgayTiepNhan"])


def test_procedure_codes_are_national_or_local_variants_with_names_and_fields() -> None:
    records = PortalSimulator(dossiers=400, seed=7, now=NOW).records
    national = re.compile(r"[0-9]\.[0-9]{6}")
    local = re.compile(r"[0-9]\.[0-9]{6}\.000\.00\.00\.H[0-9]{2}")
    codes = [r["MaTTHC"] for r in records]
    assert all(national.fullmatch(c) or local.fullmatch(c) for c in codes)
    assert any(national.fullmatch(c) for c in codes) and any(local.fullmatch(c) for c in codes)
    for record in records:
        if local.fullmatch(record["MaTTHC"]):  # the variant of the unit's own province
            assert record["MaTTHC"][-3:] == record["MaHoSo"].split("-")[0][-3:]
        assert record["TenTTHC"] and record["TenLinhVuc"]
        assert re.fullmatch(r"G[0-9]{2}-[A-Z]{2}[0-9]{2}", record["MaLinhVuc"])
    learned = {p.code for p in NOT_IN_CATALOG}
    assert {c[:8] for c in codes} <= CATALOG | learned
    assert {c[:8] for c in codes} & learned  # some procedures chiso has to learn
    unknown = [r for r in records if r["MaTTHC"][:8] in learned]
    assert all(r["NgayHenTra"] for r in unknown if r["NgayTiepNhan"])  # their only deadline


def test_values_come_from_the_portal_sets_and_lists_are_present() -> None:
    records = PortalSimulator(dossiers=600, seed=8, now=NOW).records
    channels = [r.get("KenhThucHien", "absent") for r in records]
    assert set(channels) == {"1", "2", "3", "", "absent"}  # OpenCPS leaves it out or empty
    assert {r["HinhThuc"] for r in records} == {"0", "1"}
    assert {r["DuocThanhToanTrucTuyen"] for r in records} == {"0", "1", "2", "3", ""}
    assert {r["TrangThaiHoSo"] for r in records} <= {str(n) for n in range(1, 11)}
    assert {"1", "3", "4", "5", "9", "10"} <= {r["TrangThaiHoSo"] for r in records}
    assert {r["TaiKhoanDuocXacThucVoiVNeID"] for r in records} == {"0", "1"}
    assert {r["HoSoCoThanhPhanSoHoa"] for r in records} == {"0", "1"}
    assert {r["LoaiDoiTuong"] for r in records} <= {"1", "2", "3", "4"}
    for record in records:
        papers = record["TaiLieuNop"]
        assert papers and all(
            {p["IsDeleted"], p["DuocSoHoa"], p["DuocLayTuKhoDMQG"]} <= {"0", "1"}
            and p["DuocTaiSuDung"] in {"0", "1", "2"}
            for p in papers
        )
        assert record["HoSoCoThanhPhanSoHoa"] == (
            "1" if any(p["DuocSoHoa"] == "1" for p in papers) else "0"
        )
        assert all(f["Gia"].isdigit() for f in record["DanhSachLePhi"])
        assert all(set(d) == {"MaCSDL"} for d in record["DSKetNoiCSDL"])
        finished = record["TrangThaiHoSo"] in ("9", "10")
        assert bool(record["DanhSachGiayToKetQua"]) == finished
    assert any(r["DSKetNoiCSDL"] for r in records) and any(r["DanhSachLePhi"] for r in records)
    assert any(f["Gia"] == "0" for r in records for f in r["DanhSachLePhi"])
    assert any(not p["DuongDanTaiTepTin"] for r in records for p in r["TaiLieuNop"])


def test_records_have_the_gaps_real_producers_leave() -> None:
    records = PortalSimulator(dossiers=800, seed=9, now=NOW).records
    status = {r["MaHoSo"]: r["TrangThaiHoSo"] for r in records}
    assert any(status[r["MaHoSo"]] == "9" and not r["NgayKetThucXuLy"] for r in records)
    assert any(status[r["MaHoSo"]] == "10" and not r["NgayTra"] for r in records)
    assert any(r["NgayTra"] is None for r in records)  # .NET: null, not ""
    assert any(r["NgayTra"] == "" for r in records)
    entries = [e for r in records for e in r["DanhSachHoSoBoSung"]]
    assert any("T" in e["NgayBoSung"] for e in entries)  # ISO 8601, from a .NET producer
    assert any(re.fullmatch(r"[0-9]{14}", e["NgayBoSung"]) for e in entries)
    assert any(not e["NgayTiepNhanBoSung"] for e in entries)  # still waiting for the papers
    waiting = [r for r in records if r["TrangThaiHoSo"] == "5"]
    assert waiting and all(
        any(not e["NgayTiepNhanBoSung"] for e in r["DanhSachHoSoBoSung"]) for r in waiting
    )


def test_personal_data_is_where_real_producers_put_it() -> None:
    records = PortalSimulator(dossiers=100, seed=10, now=NOW).records
    for record in records:
        assert len(record["ChuHoSo"].split()) == 3
        assert re.fullmatch(r"0[35789][0-9]{8}", record["SoDienThoai"])
        assert re.fullmatch(r"0[0-9]{11}", record["SoGiayToChuHoSo"])  # a CCCD's shape
        assert record["DinhDanhCHS"] == [
            {"LoaiDinhDanh": "1", "SoDinhDanh": record["SoGiayToChuHoSo"]}
        ]
        assert record["ChuHoSo"] in record["TrichYeuHoSo"]
    emails = [r["Email"] for r in records if r["Email"]]
    assert emails and all(re.fullmatch(r"[a-z]+[0-9]{2}@example\.com", e) for e in emails)


@pytest.mark.parametrize(
    "now",
    [NOW, vn("2026-03-22 04:54"), vn("2026-01-20 12:10")],
    ids=["friday-morning", "sunday-before-dawn", "lunch-break"],
)
def test_every_time_is_in_office_hours_of_a_working_day_and_never_ahead(now: datetime) -> None:
    calendar = build_calendar(Settings())  # the shipped calendar, as chiso builds it
    sim = PortalSimulator(dossiers=600, seed=11, now=now)
    days = set()
    for record in sim.records:
        for name, instant in times_of(record):
            days.add(instant.date())
            assert calendar.is_working_day(instant.date()), (name, instant)
            local = instant.timetz().replace(tzinfo=None)
            assert time(7, 30) <= local <= time(11, 30) or time(13) <= local <= time(17), (
                name,
                instant,
            )
            if name not in APPOINTMENTS:
                assert instant <= now, (name, instant)
    if now.month == 1:
        # Shipped overrides, not just the holidays package: 2 Jan 2026 off, Sat 10 Jan worked.
        assert datetime(2026, 1, 10).date() in days
        assert datetime(2026, 1, 2).date() not in days


def test_finishing_now_on_a_sunday_uses_the_last_office_instant() -> None:
    sim = PortalSimulator(dossiers=100, seed=12, now=vn("2026-03-22 04:54"))
    changed = sim.finish_open(3)
    assert len(changed) == 3
    by_code = {r["MaHoSo"]: r for r in sim.records}
    assert {by_code[c]["NgayKetThucXuLy"] for c in changed} == {"20260320170000"}
    assert {by_code[c]["TrangThaiHoSo"] for c in changed} == {"9"}
    assert [r["MaHoSo"] for r in sim.records][-3:] == changed  # last in the change order


def test_a_record_depends_only_on_the_seed_and_its_place() -> None:
    small = PortalSimulator(dossiers=40, seed=13, now=NOW).records
    large = PortalSimulator(dossiers=90, seed=13, now=NOW).records
    assert large[:40] == small  # units cycle by index, so the first 40 are the same dossiers
    assert PortalSimulator(dossiers=40, seed=14, now=NOW).records != small
