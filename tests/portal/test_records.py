"""Portal dossier snapshots (DongBoHoSoMC records) read into dossier events, worked by hand."""

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.dossiers.schemas import Channel, DossierEventIn, DossierStatus
from app.portal.records import (
    PortalDossierRecord,
    PortalFormatError,
    PortalRecordError,
    parse_compact_time,
    parse_portal_batch,
    records_to_events,
)

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def at(text: str) -> datetime:
    """'2026-10-08 08:30' in Vietnam time."""
    return datetime.fromisoformat(text).replace(tzinfo=VN)


def dumped(events: list[DossierEventIn]) -> list[dict[str, Any]]:
    return [event.model_dump() for event in events]


def errors_of(raw: Any, index: int = 0, default_unit: str | None = None) -> list[dict[str, str]]:
    with pytest.raises(PortalRecordError) as caught:
        records_to_events(raw, index, default_unit)
    return caught.value.errors


OWNER = {
    "ChuHoSo": "Nguyễn Thị Lan",
    "SoDienThoai": "0912345678",
    "Email": "lan.nguyen@example.vn",
    "SoGiayTo": "079190012345",
    "DiaChiThuongTru": "12 Lê Lợi, phường Bến Thành, TP Hồ Chí Minh",
}

# In person, certified copy: received Thu 8 Oct, finished Fri 9 Oct 10:05, handed back 14:30.
RETURNED = {
    "MaHoSo": "H15.50.05.13-261008-0975",
    "MaTTHC": "2.000815",
    "MaDonVi": "H15.50.05.13",
    "MaLinhVuc": "G09-TP05",
    "TenTTHC": "Chứng thực bản sao từ bản chính giấy tờ, văn bản",
    "KenhThucHien": "1",
    **OWNER,
    "LoaiDoiTuong": "1",
    "NgayTiepNhan": "20261008083000",
    "NgayHenTra": "20261009163000",
    "TrangThaiHoSo": "10",
    "NgayKetThucXuLy": "20261009100500",
    "NgayTra": "20261009143000",
    "DonViXuLy": "UBND phường Bến Thành",
    "DuocThanhToanTrucTuyen": "0",
    "HoSoCoThanhPhanSoHoa": "1",
    "DanhSachHoSoBoSung": [],
}

# Online business registration: papers requested on 12 Oct, supplied 14 Oct with a new due
# date of 21 Oct, finished 20 Oct, not yet handed back. Codes sent as JSON numbers.
SUPPLEMENTED = {
    "MaHoSo": "000.00.12.H29-261009-0042",
    "MaTTHC": "1.001612",
    "MaDonVi": "000.00.12.H29",
    "TenTTHC": "Đăng ký thành lập hộ kinh doanh",
    "KenhThucHien": 2,
    **OWNER,
    "LoaiDoiTuong": 2,
    "NgayTiepNhan": "20261009101500",
    "NgayHenTra": "20261016170000",
    "TrangThaiHoSo": "9",
    "NgayKetThucXuLy": "20261020153000",
    "NgayTra": "",
    "DuocThanhToanTrucTuyen": "true",
    "HoSoCoThanhPhanSoHoa": "false",
    "DanhSachHoSoBoSung": [
        {
            "NgayBoSung": "20261012090000",
            "NgayTiepNhanBoSung": "20261014143000",
            "NgayHenTraMoi": "20261021170000",
            "NoiDungBoSung": "Bổ sung bản sao hợp đồng thuê nhà",
        }
    ],
}

# Still waiting for the applicant's papers; no MaDonVi, no flags.
WAITING = {
    "MaHoSo": "H01.12-261015-0003",
    "MaTTHC": "1.004227",
    "MaDonVi": "",
    "KenhThucHien": "3",
    **OWNER,
    "LoaiDoiTuong": "",
    "NgayTiepNhan": "20261015080000",
    "NgayHenTra": "20261022170000",
    "TrangThaiHoSo": "5",
    "NgayKetThucXuLy": "",
    "NgayTra": "",
    "DuocThanhToanTrucTuyen": "",
    "HoSoCoThanhPhanSoHoa": "",
    "DanhSachHoSoBoSung": [
        {"NgayBoSung": "20261019100000", "NgayTiepNhanBoSung": "", "NgayHenTraMoi": ""}
    ],
}


def test_a_dossier_finished_and_returned_in_person() -> None:
    common = {
        "dossier_code": "H15.50.05.13-261008-0975",
        "unit_code": "H15.50.05.13",
        "procedure_code": "2.000815",
        "channel": Channel.in_person,
        "applicant_kind": 1,
        "paid_online": False,
        "has_digitized_parts": True,
    }
    expected = [
        DossierEventIn(
            **common,
            event_id="portal:H15.50.05.13-261008-0975:2:20261008083000",
            status=DossierStatus.accepted,
            occurred_at=at("2026-10-08 08:30"),
            received_at=at("2026-10-08 08:30"),
            due_at=at("2026-10-09 16:30"),
        ),
        DossierEventIn(
            **common,
            event_id="portal:H15.50.05.13-261008-0975:9:20261009100500",
            status=DossierStatus.finished,
            occurred_at=at("2026-10-09 10:05"),
        ),
        DossierEventIn(
            **common,
            event_id="portal:H15.50.05.13-261008-0975:10:20261009143000",
            status=DossierStatus.returned,
            occurred_at=at("2026-10-09 14:30"),
        ),
    ]
    assert dumped(records_to_events(RETURNED, 0, None)) == dumped(expected)


def test_an_online_dossier_with_a_supplement_supplied_and_a_new_due_date() -> None:
    common = {
        "dossier_code": "000.00.12.H29-261009-0042",
        "unit_code": "000.00.12.H29",
        "procedure_code": "1.001612",
        "channel": Channel.online,
        "applicant_kind": 2,
        "paid_online": True,
        "has_digitized_parts": False,
    }
    expected = [
        DossierEventIn(
            **common,
            event_id="portal:000.00.12.H29-261009-0042:2:20261009101500",
            status=DossierStatus.accepted,
            occurred_at=at("2026-10-09 10:15"),
            received_at=at("2026-10-09 10:15"),
            due_at=at("2026-10-16 17:00"),
        ),
        DossierEventIn(
            **common,
            event_id="portal:000.00.12.H29-261009-0042:5:20261012090000",
            status=DossierStatus.supplement_requested,
            occurred_at=at("2026-10-12 09:00"),
        ),
        DossierEventIn(
            **common,
            event_id="portal:000.00.12.H29-261009-0042:4:20261014143000",
            status=DossierStatus.processing,
            occurred_at=at("2026-10-14 14:30"),
            supplement_supplied_at=at("2026-10-14 14:30"),
            supplement_new_due_at=at("2026-10-21 17:00"),
        ),
        DossierEventIn(
            **common,
            event_id="portal:000.00.12.H29-261009-0042:9:20261020153000",
            status=DossierStatus.finished,
            occurred_at=at("2026-10-20 15:30"),
        ),
    ]
    assert dumped(records_to_events(SUPPLEMENTED, 0, None)) == dumped(expected)


def test_a_dossier_waiting_for_papers_ends_on_the_open_request() -> None:
    common = {
        "dossier_code": "H01.12-261015-0003",
        "unit_code": "H01.12",  # the MaHoSo prefix: MaDonVi is empty
        "procedure_code": "1.004227",
        "channel": Channel.postal,
        "applicant_kind": None,
        "paid_online": None,
        "has_digitized_parts": None,
    }
    expected = [
        DossierEventIn(
            **common,
            event_id="portal:H01.12-261015-0003:2:20261015080000",
            status=DossierStatus.accepted,
            occurred_at=at("2026-10-15 08:00"),
            received_at=at("2026-10-15 08:00"),
            due_at=at("2026-10-22 17:00"),
        ),
        DossierEventIn(
            **common,
            event_id="portal:H01.12-261015-0003:5:20261019100000",
            status=DossierStatus.supplement_requested,
            occurred_at=at("2026-10-19 10:00"),
        ),
    ]
    assert dumped(records_to_events(WAITING, 0, None)) == dumped(expected)


def test_a_new_due_date_without_supply_stays_on_the_request() -> None:
    record = {
        **WAITING,
        "DanhSachHoSoBoSung": [
            {"NgayBoSung": "20261019100000", "NgayTiepNhanBoSung": "", "NgayHenTraMoi": "20261030"}
        ],
    }
    assert errors_of(record, 4) == [
        {
            "pointer": "#/4/DanhSachHoSoBoSung/0/NgayHenTraMoi",
            "detail": "expected yyyyMMddHHmmss, got '20261030'",
        }
    ]
    record["DanhSachHoSoBoSung"][0]["NgayHenTraMoi"] = "20261030170000"
    request = records_to_events(record, 4, None)[-1]
    assert request.status == DossierStatus.supplement_requested
    assert request.supplement_new_due_at == at("2026-10-30 17:00")
    assert request.supplement_supplied_at is None


def test_the_owner_never_leaves_the_record() -> None:
    assert not set(OWNER) & set(PortalDossierRecord.model_fields)
    for raw in (RETURNED, SUPPLEMENTED, WAITING):
        text = json.dumps(
            [event.model_dump(mode="json") for event in records_to_events(raw, 0, None)],
            ensure_ascii=False,
        )
        for value in OWNER.values():
            assert value not in text
        assert "Chứng thực" not in text and "hợp đồng" not in text


def test_a_registered_online_dossier_is_not_yet_accepted() -> None:
    record = {**WAITING, "TrangThaiHoSo": "1", "DanhSachHoSoBoSung": []}
    [event] = records_to_events(record, 0, None)
    assert (event.status, event.occurred_at) == (DossierStatus.registered, at("2026-10-15 08:00"))
    assert event.event_id == "portal:H01.12-261015-0003:1:20261015080000"
    assert event.received_at is None and event.due_at is None


def test_a_refused_dossier_was_registered_then_not_accepted() -> None:
    record = {
        **RETURNED,
        "TrangThaiHoSo": "3",
        "NgayKetThucXuLy": "20261008090000",
        "NgayTra": "20261008093000",
    }
    events = records_to_events(record, 0, None)
    assert [(e.status, e.occurred_at) for e in events] == [
        (DossierStatus.registered, at("2026-10-08 08:30")),
        (DossierStatus.not_accepted, at("2026-10-08 09:00")),
    ]


@pytest.mark.parametrize(
    ("status", "expected"), [("7", DossierStatus.withdrawn), ("8", DossierStatus.stopped)]
)
def test_withdrawn_and_stopped_happen_at_ngay_ket_thuc_xu_ly(
    status: str, expected: DossierStatus
) -> None:
    record = {**RETURNED, "TrangThaiHoSo": status, "NgayTra": ""}
    events = records_to_events(record, 0, None)
    assert [(e.status, e.occurred_at) for e in events] == [
        (DossierStatus.accepted, at("2026-10-08 08:30")),
        (expected, at("2026-10-09 10:05")),
    ]


def test_a_financial_obligation_adds_no_event_of_its_own() -> None:
    record = {**RETURNED, "TrangThaiHoSo": "6", "NgayKetThucXuLy": "", "NgayTra": ""}
    assert [e.status for e in records_to_events(record, 0, None)] == [DossierStatus.accepted]


def test_events_are_sorted_by_time_then_status() -> None:
    record = {
        **SUPPLEMENTED,
        "NgayTra": "20261020153000",  # handed back the minute processing finished
        "DanhSachHoSoBoSung": [
            {"NgayBoSung": "20261015090000", "NgayTiepNhanBoSung": "", "NgayHenTraMoi": ""},
            {"NgayBoSung": "20261012090000", "NgayTiepNhanBoSung": "20261014143000"},
        ],
    }
    events = records_to_events(record, 0, None)
    assert [(e.occurred_at, e.status) for e in events] == [
        (at("2026-10-09 10:15"), DossierStatus.accepted),
        (at("2026-10-12 09:00"), DossierStatus.supplement_requested),
        (at("2026-10-14 14:30"), DossierStatus.processing),
        (at("2026-10-15 09:00"), DossierStatus.supplement_requested),
        (at("2026-10-20 15:30"), DossierStatus.finished),
        (at("2026-10-20 15:30"), DossierStatus.returned),
    ]


# --- malformed records -------------------------------------------------------------------------


def test_a_date_in_the_wrong_format() -> None:
    record = {**RETURNED, "NgayTiepNhan": "2026-13-01 10:00"}
    assert errors_of(record, 3) == [
        {
            "pointer": "#/3/NgayTiepNhan",
            "detail": "expected yyyyMMddHHmmss, got '2026-13-01 10:00'",
        }
    ]


def test_month_13() -> None:
    record = {**RETURNED, "NgayHenTra": "20261301100000"}
    assert errors_of(record, 2) == [
        {
            "pointer": "#/2/NgayHenTra",
            "detail": "'20261301100000' is not a real date and time: month must be in 1..12",
        }
    ]


def test_a_missing_dossier_number() -> None:
    record = {key: value for key, value in RETURNED.items() if key != "MaHoSo"}
    assert errors_of(record, 1) == [{"pointer": "#/1/MaHoSo", "detail": "MaHoSo is required"}]


def test_status_11() -> None:
    assert errors_of({**RETURNED, "TrangThaiHoSo": "11"}) == [
        {"pointer": "#/0/TrangThaiHoSo", "detail": "expected a status code 1 to 10, got '11'"}
    ]


def test_status_9_without_ngay_ket_thuc_xu_ly() -> None:
    record = {**SUPPLEMENTED, "NgayKetThucXuLy": ""}
    assert errors_of(record, 7) == [
        {"pointer": "#/7/NgayKetThucXuLy", "detail": "status 9 needs NgayKetThucXuLy"}
    ]


@pytest.mark.parametrize(
    ("changes", "pointer", "detail"),
    [
        ({"TrangThaiHoSo": "10", "NgayTra": ""}, "NgayTra", "status 10 needs NgayTra"),
        (
            {"TrangThaiHoSo": "8", "NgayKetThucXuLy": ""},
            "NgayKetThucXuLy",
            "status 8 needs NgayKetThucXuLy",
        ),
        ({"TrangThaiHoSo": "4", "NgayTiepNhan": ""}, "NgayTiepNhan", "status 4 needs NgayTiepNhan"),
        ({"TrangThaiHoSo": "1", "NgayTiepNhan": ""}, "NgayTiepNhan", "status 1 needs NgayTiepNhan"),
        ({"TrangThaiHoSo": "5"}, "DanhSachHoSoBoSung", "status 5 but no open supplement request"),
    ],
)
def test_what_each_status_needs(changes: dict[str, str], pointer: str, detail: str) -> None:
    assert errors_of({**RETURNED, **changes}) == [{"pointer": f"#/0/{pointer}", "detail": detail}]


def test_every_problem_of_a_record_is_reported_at_once() -> None:
    record = {
        **SUPPLEMENTED,
        "KenhThucHien": "4",
        "NgayTiepNhan": "2026-10-09",
        "TrangThaiHoSo": "10",
        "DuocThanhToanTrucTuyen": "có",
        "DanhSachHoSoBoSung": [{"NgayBoSung": "", "NgayTiepNhanBoSung": "20261014"}, "x"],
    }
    assert errors_of(record, 5) == [
        {
            "pointer": "#/5/KenhThucHien",
            "detail": "expected '1' (in person), '2' (online) or '3' (postal), got '4'",
        },
        {"pointer": "#/5/NgayTiepNhan", "detail": "expected yyyyMMddHHmmss, got '2026-10-09'"},
        {"pointer": "#/5/DuocThanhToanTrucTuyen", "detail": "expected '1', '0' or '', got 'có'"},
        {"pointer": "#/5/DanhSachHoSoBoSung/0/NgayBoSung", "detail": "NgayBoSung is required"},
        {
            "pointer": "#/5/DanhSachHoSoBoSung/0/NgayTiepNhanBoSung",
            "detail": "expected yyyyMMddHHmmss, got '20261014'",
        },
        {"pointer": "#/5/DanhSachHoSoBoSung/1", "detail": "expected an object"},
        {"pointer": "#/5/NgayTra", "detail": "status 10 needs NgayTra"},
    ]


def test_a_dossier_number_that_is_not_a_code() -> None:
    assert errors_of({**RETURNED, "MaHoSo": "HS 0975/ông Lan"}) == [
        {
            "pointer": "#/0/MaHoSo",
            "detail": "'HS 0975/ông Lan' is not a code: letters, digits and . _ : / - only, "
            "at most 64",
        }
    ]


# --- unit code ---------------------------------------------------------------------------------


def test_the_unit_code_comes_from_ma_don_vi_first() -> None:
    events = records_to_events(RETURNED, 0, "H15.50")
    assert {event.unit_code for event in events} == {"H15.50.05.13"}


def test_then_from_the_requests_madonvi() -> None:
    events = records_to_events({**RETURNED, "MaDonVi": ""}, 0, "H15.50")
    assert {event.unit_code for event in events} == {"H15.50"}


def test_then_from_the_dossier_number() -> None:
    events = records_to_events({**RETURNED, "MaDonVi": "  "}, 0, None)
    assert {event.unit_code for event in events} == {"H15.50.05.13"}


def test_no_unit_code_at_all() -> None:
    record = {**RETURNED, "MaDonVi": "", "MaHoSo": "HS0975"}
    assert errors_of(record, 9, "") == [
        {
            "pointer": "#/9/MaDonVi",
            "detail": "no unit code: MaDonVi and ?madonvi= are empty and MaHoSo has no unit prefix",
        }
    ]


# --- ids, time zone, batches -------------------------------------------------------------------


def test_a_resent_snapshot_yields_the_same_ids() -> None:
    first = [event.event_id for event in records_to_events(SUPPLEMENTED, 0, None)]
    again = [
        event.event_id for event in records_to_events(json.loads(json.dumps(SUPPLEMENTED)), 8, None)
    ]
    assert first == again
    assert len(set(first)) == 4


def test_portal_times_are_vietnam_time() -> None:
    parsed = parse_compact_time("20261008143000", "NgayTiepNhan")
    assert parsed == datetime.fromisoformat("2026-10-08T14:30:00+07:00")
    assert parsed == datetime(2026, 10, 8, 7, 30, tzinfo=UTC)
    assert parsed is not None and parsed.utcoffset() is not None
    assert parsed.isoformat() == "2026-10-08T14:30:00+07:00"


@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_time_is_none(blank: str) -> None:
    assert parse_compact_time(blank, "NgayTra") is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-10-08", "expected yyyyMMddHHmmss, got '2026-10-08'"),
        ("202610081430", "expected yyyyMMddHHmmss, got '202610081430'"),
        ("2026100814300a", "expected yyyyMMddHHmmss, got '2026100814300a'"),
        ("20261301100000", "'20261301100000' is not a real date and time: month must be in 1..12"),
        (
            "20260230090000",
            "'20260230090000' is not a real date and time: day is out of range for month",
        ),
        ("20261008240000", "'20261008240000' is not a real date and time: hour must be in 0..23"),
        ("19991231235959", "year 1999 is out of range (2000 to 2099)"),
        ("21000101000000", "year 2100 is out of range (2000 to 2099)"),
    ],
)
def test_malformed_times(value: str, message: str) -> None:
    with pytest.raises(PortalFormatError) as caught:
        parse_compact_time(value, "NgayHenTra")
    assert (caught.value.field, caught.value.message) == ("NgayHenTra", message)


def test_a_batch_reports_each_record_on_its_own() -> None:
    results = parse_portal_batch(
        [RETURNED, ["not", "a", "record"], {**WAITING, "TrangThaiHoSo": "11"}], None
    )
    assert [index for index, _, _ in results] == [0, 1, 2]
    _, events, errors = results[0]
    assert events is not None and len(events) == 3 and errors is None
    assert results[1] == (
        1,
        None,
        [{"pointer": "#/1", "detail": "expected an object (one dossier record), got an array"}],
    )
    assert results[2] == (
        2,
        None,
        [{"pointer": "#/2/TrangThaiHoSo", "detail": "expected a status code 1 to 10, got '11'"}],
    )
