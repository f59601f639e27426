"""Portal dossier snapshots (DongBoHoSoMC records) read into dossier events, worked by hand.

The reader takes what real producers send: event ids no longer carry times
(``portal:{MaHoSo}:{status}``, supplements keyed by their request), and what used to refuse a
record (a malformed date, a terminal status without its end date, an unknown channel or
payment value) now stores it with notes. The tests below that encoded the old strictness say
so; the producers' real shapes are tested in test_records_real.py.
"""

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.dossiers.schemas import Channel, DossierEventIn, DossierStatus
from app.portal.records import (
    PORTAL_TZ,
    PortalFormatError,
    PortalRecordError,
    minimised,
    parse_compact_time,
    parse_portal_batch,
    records_to_events,
)

VN = ZoneInfo("Asia/Ho_Chi_Minh")
ARRIVED = datetime.fromisoformat("2026-10-25T10:00:00+07:00")


def events_of(raw: Any, index: int = 0, default_unit: str | None = None) -> list[DossierEventIn]:
    return records_to_events(raw, index, default_unit, ARRIVED).events


def notes_of(raw: Any) -> list[str]:
    return records_to_events(raw, 0, None, ARRIVED).notes


def at(text: str) -> datetime:
    """'2026-10-08 08:30' in Vietnam time."""
    return datetime.fromisoformat(text).replace(tzinfo=VN)


def dumped(events: list[DossierEventIn]) -> list[dict[str, Any]]:
    return [event.model_dump() for event in events]


def errors_of(raw: Any, index: int = 0, default_unit: str | None = None) -> list[dict[str, str]]:
    with pytest.raises(PortalRecordError) as caught:
        records_to_events(raw, index, default_unit, ARRIVED)
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
            event_id="portal:H15.50.05.13-261008-0975:2",
            status=DossierStatus.accepted,
            occurred_at=at("2026-10-08 08:30"),
            received_at=at("2026-10-08 08:30"),
            due_at=at("2026-10-09 16:30"),
        ),
        DossierEventIn(
            **common,
            event_id="portal:H15.50.05.13-261008-0975:9",
            status=DossierStatus.finished,
            occurred_at=at("2026-10-09 10:05"),
        ),
        DossierEventIn(
            **common,
            event_id="portal:H15.50.05.13-261008-0975:10",
            status=DossierStatus.returned,
            occurred_at=at("2026-10-09 14:30"),
        ),
    ]
    assert dumped(events_of(RETURNED)) == dumped(expected)


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
            event_id="portal:000.00.12.H29-261009-0042:2",
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
            event_id="portal:000.00.12.H29-261009-0042:4:20261012090000",
            status=DossierStatus.processing,
            occurred_at=at("2026-10-14 14:30"),
            supplement_supplied_at=at("2026-10-14 14:30"),
            supplement_new_due_at=at("2026-10-21 17:00"),
        ),
        DossierEventIn(
            **common,
            event_id="portal:000.00.12.H29-261009-0042:9",
            status=DossierStatus.finished,
            occurred_at=at("2026-10-20 15:30"),
        ),
    ]
    assert dumped(events_of(SUPPLEMENTED)) == dumped(expected)


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
            event_id="portal:H01.12-261015-0003:2",
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
    assert dumped(events_of(WAITING)) == dumped(expected)


def test_a_new_due_date_without_supply_stays_on_the_request() -> None:
    record = {
        **WAITING,
        "DanhSachHoSoBoSung": [
            {"NgayBoSung": "20261019100000", "NgayTiepNhanBoSung": "", "NgayHenTraMoi": "20261030"}
        ],
    }
    # Not refused: the unreadable new due date is left out, with a note.
    parsed = records_to_events(record, 4, None, ARRIVED)
    assert parsed.events[-1].supplement_new_due_at is None
    assert parsed.notes == [
        "DanhSachHoSoBoSung/0/NgayHenTraMoi: expected yyyyMMddHHmmss or an ISO 8601 date-time, "
        "got '20261030'; ignored"
    ]
    record["DanhSachHoSoBoSung"][0]["NgayHenTraMoi"] = "20261030170000"
    request = events_of(record, 4)[-1]
    assert request.status == DossierStatus.supplement_requested
    assert request.supplement_new_due_at == at("2026-10-30 17:00")
    assert request.supplement_supplied_at is None


def test_the_owner_never_leaves_the_record() -> None:
    for raw in (RETURNED, SUPPLEMENTED, WAITING):
        assert not set(OWNER) & set(minimised(raw))
        text = json.dumps(
            [event.model_dump(mode="json") for event in events_of(raw)],
            ensure_ascii=False,
        )
        for value in OWNER.values():
            assert value not in text
        assert "Chứng thực" not in text and "hợp đồng" not in text


def test_a_registered_online_dossier_is_not_yet_accepted() -> None:
    record = {**WAITING, "TrangThaiHoSo": "1", "DanhSachHoSoBoSung": []}
    [event] = events_of(record)
    assert (event.status, event.occurred_at) == (DossierStatus.registered, at("2026-10-15 08:00"))
    assert event.event_id == "portal:H01.12-261015-0003:1"
    assert event.received_at is None and event.due_at is None


def test_a_refused_dossier_was_registered_then_not_accepted() -> None:
    record = {
        **RETURNED,
        "TrangThaiHoSo": "3",
        "NgayKetThucXuLy": "20261008090000",
        "NgayTra": "20261008093000",
    }
    events = events_of(record)
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
    events = events_of(record)
    assert [(e.status, e.occurred_at) for e in events] == [
        (DossierStatus.accepted, at("2026-10-08 08:30")),
        (expected, at("2026-10-09 10:05")),
    ]


def test_a_financial_obligation_adds_no_event_of_its_own() -> None:
    record = {**RETURNED, "TrangThaiHoSo": "6", "NgayKetThucXuLy": "", "NgayTra": ""}
    assert [e.status for e in events_of(record)] == [DossierStatus.accepted]


def test_events_are_sorted_by_time_then_status() -> None:
    record = {
        **SUPPLEMENTED,
        "NgayTra": "20261020153000",  # handed back the minute processing finished
        "DanhSachHoSoBoSung": [
            {"NgayBoSung": "20261015090000", "NgayTiepNhanBoSung": "", "NgayHenTraMoi": ""},
            {"NgayBoSung": "20261012090000", "NgayTiepNhanBoSung": "20261014143000"},
        ],
    }
    events = events_of(record)
    assert [(e.occurred_at, e.status) for e in events] == [
        (at("2026-10-09 10:15"), DossierStatus.accepted),
        (at("2026-10-12 09:00"), DossierStatus.supplement_requested),
        (at("2026-10-14 14:30"), DossierStatus.processing),
        (at("2026-10-15 09:00"), DossierStatus.supplement_requested),
        (at("2026-10-20 15:30"), DossierStatus.finished),
        (at("2026-10-20 15:30"), DossierStatus.returned),
    ]


# --- odd records: stored with notes; refused only when not a dossier ----------------------------


def test_a_date_in_the_wrong_format() -> None:
    # Was refused; now the record is stored without a receipt, its due time on its first event.
    record = {**RETURNED, "NgayTiepNhan": "2026-13-01 10:00"}
    parsed = records_to_events(record, 3, None, ARRIVED)
    assert [(e.status, e.occurred_at, e.due_at) for e in parsed.events] == [
        (DossierStatus.finished, at("2026-10-09 10:05"), at("2026-10-09 16:30")),
        (DossierStatus.returned, at("2026-10-09 14:30"), None),
    ]
    assert parsed.notes == [
        "NgayTiepNhan: expected yyyyMMddHHmmss or an ISO 8601 date-time, "
        "got '2026-13-01 10:00'; ignored"
    ]


def test_month_13() -> None:
    # Was refused; now the appointment is left out. The note quotes the value scrubbed: not a
    # real date, so to the scrubber it is a 14-digit number, possibly someone's.
    parsed = records_to_events({**RETURNED, "NgayHenTra": "20261301100000"}, 2, None, ARRIVED)
    assert [e.due_at for e in parsed.events] == [None, None, None]
    assert parsed.notes == [
        "NgayHenTra: '[id]' is not a real date and time: month must be in 1..12; ignored"
    ]


def test_a_missing_dossier_number() -> None:
    record = {key: value for key, value in RETURNED.items() if key != "MaHoSo"}
    assert errors_of(record, 1) == [{"pointer": "#/1/MaHoSo", "detail": "MaHoSo is required"}]


def test_status_11() -> None:
    assert errors_of({**RETURNED, "TrangThaiHoSo": "11"}) == [
        {"pointer": "#/0/TrangThaiHoSo", "detail": "expected a status code 1 to 10, got '11'"}
    ]


def test_status_9_without_ngay_ket_thuc_xu_ly() -> None:
    # Was refused; now finished when the record arrived (SUPPLEMENTED has no NgayTra either).
    parsed = records_to_events({**SUPPLEMENTED, "NgayKetThucXuLy": ""}, 7, None, ARRIVED)
    assert (parsed.events[-1].status, parsed.events[-1].occurred_at) == (
        DossierStatus.finished,
        ARRIVED,
    )
    assert parsed.inferred == [False, False, False, True]
    assert parsed.notes == ["status 9 without NgayKetThucXuLy: end time taken from arrival"]


@pytest.mark.parametrize(
    ("changes", "expected", "note"),
    [
        (
            {"TrangThaiHoSo": "10", "NgayTra": ""},
            [(2, "2026-10-08 08:30", False), (9, "2026-10-09 10:05", False),
             (10, "2026-10-09 10:05", True)],
            "status 10 without NgayTra: end time taken from NgayKetThucXuLy",
        ),
        (
            {"TrangThaiHoSo": "8", "NgayKetThucXuLy": ""},
            [(2, "2026-10-08 08:30", False), (8, "2026-10-09 14:30", True)],
            "status 8 without NgayKetThucXuLy: end time taken from NgayTra",
        ),
        (
            {"TrangThaiHoSo": "4", "NgayTiepNhan": "", "NgayKetThucXuLy": "", "NgayTra": ""},
            [(4, "2026-10-25 10:00", True)],
            "status 4 without NgayTiepNhan: processing time taken from arrival",
        ),
        (
            {"TrangThaiHoSo": "1", "NgayTiepNhan": "", "NgayKetThucXuLy": "", "NgayTra": "",
             "NgayNopHoSo": "20261007200000"},
            [(1, "2026-10-07 20:00", True)],
            "status 1 without NgayTiepNhan: registration time taken from NgayNopHoSo",
        ),
        (
            {"TrangThaiHoSo": "5", "NgayKetThucXuLy": "", "NgayTra": ""},
            [(2, "2026-10-08 08:30", False)],
            "status 5 without an open request in DanhSachHoSoBoSung: no pause recorded",
        ),
    ],
)  # fmt: skip
def test_what_each_status_takes_when_its_date_is_missing(
    changes: dict[str, str], expected: list[tuple[int, str, bool]], note: str
) -> None:
    # These were refused ("status N needs ..."); now stored with the best evidence.
    parsed = records_to_events({**RETURNED, **changes}, 0, None, ARRIVED)
    assert [
        (e.status.value, e.occurred_at, inferred)
        for e, inferred in zip(parsed.events, parsed.inferred, strict=True)
    ] == [(status, at(when), inferred) for status, when, inferred in expected]
    assert parsed.notes == [note]


def test_every_odd_value_of_a_record_is_noted_at_once() -> None:
    # Was: seven errors and the record refused. Now stored: what could be read is kept.
    record = {
        **SUPPLEMENTED,
        "KenhThucHien": "4",
        "NgayTiepNhan": "2026-10-09",
        "TrangThaiHoSo": "10",
        "DuocThanhToanTrucTuyen": "có",
        "DanhSachHoSoBoSung": [{"NgayBoSung": "", "NgayTiepNhanBoSung": "20261014"}, "x"],
    }
    parsed = records_to_events(record, 5, None, ARRIVED)
    assert [(e.status, e.occurred_at, e.due_at) for e in parsed.events] == [
        (DossierStatus.finished, at("2026-10-20 15:30"), at("2026-10-16 17:00")),
        (DossierStatus.returned, at("2026-10-20 15:30"), None),
    ]
    assert parsed.inferred == [False, True]
    assert {(e.channel, e.paid_online) for e in parsed.events} == {(Channel.in_person, None)}
    assert parsed.facts.payment_code == "có"
    assert parsed.notes == [
        "NgayTiepNhan: expected yyyyMMddHHmmss or an ISO 8601 date-time, got '2026-10-09'; ignored",
        "DanhSachHoSoBoSung/1: expected an object, got a string; ignored",
        "DanhSachHoSoBoSung/0/NgayTiepNhanBoSung: expected yyyyMMddHHmmss or an ISO 8601 "
        "date-time, got '20261014'; ignored",
        "DanhSachHoSoBoSung/0: no NgayBoSung; the request is left out",
        "status 10 without NgayTra: end time taken from NgayKetThucXuLy",
        "KenhThucHien: '4' is not 1, 2 or 3; taken as 1",
        "DuocThanhToanTrucTuyen: 'có' is not 0, 1 or 2; kept as sent, paid online unknown",
    ]


def test_a_dossier_number_that_is_not_a_code() -> None:
    # The detail now names the dossier-code rule ("/" was never storable: it is a path segment).
    assert errors_of({**RETURNED, "MaHoSo": "HS 0975/ông Lan"}) == [
        {
            "pointer": "#/0/MaHoSo",
            "detail": "'HS 0975/ông Lan' is not a dossier code: letters, digits and . _ : - "
            "only, at most 64",
        }
    ]


# --- unit code ---------------------------------------------------------------------------------


def test_the_calls_madonvi_comes_before_ma_don_vi() -> None:
    # Was: MaDonVi first. No real producer sends MaDonVi: it is now the last resort, and the
    # MaHoSo prefix, when chiso knows it, wins over both (resolved by the caller).
    parsed = records_to_events(RETURNED, 0, "H15.50", ARRIVED)
    assert {event.unit_code for event in parsed.events} == {"H15.50"}
    assert (parsed.unit_token, parsed.unit_declared) == ("H15.50.05.13", "H15.50.05.13")


def test_then_ma_don_vi() -> None:
    events = events_of({**RETURNED, "MaHoSo": "HS-0975", "MaDonVi": "H15.50.05"})
    assert {event.unit_code for event in events} == {"H15.50.05"}


def test_then_from_the_dossier_number() -> None:
    events = events_of({**RETURNED, "MaDonVi": "  "})
    assert {event.unit_code for event in events} == {"H15.50.05.13"}


def test_no_unit_code_at_all() -> None:
    record = {**RETURNED, "MaDonVi": "", "MaHoSo": "HS0975"}
    assert errors_of(record, 9, "") == [
        {
            "pointer": "#/9/MaHoSo",
            "detail": "no unit: MaHoSo has no identifier prefix ({identifier}-{yyMMdd}-{sequence}) "
            "and no madonvi was given",
        }
    ]


# --- ids, time zone, batches -------------------------------------------------------------------


def test_a_resent_snapshot_yields_the_same_ids() -> None:
    first = [event.event_id for event in events_of(SUPPLEMENTED)]
    again = [event.event_id for event in events_of(json.loads(json.dumps(SUPPLEMENTED)), 8)]
    assert first == again
    assert len(set(first)) == 4


def test_portal_times_are_vietnam_time() -> None:
    parsed = parse_compact_time("20261008143000", "NgayTiepNhan")
    assert parsed == datetime.fromisoformat("2026-10-08T14:30:00+07:00")
    assert parsed == datetime(2026, 10, 8, 7, 30, tzinfo=UTC)
    assert parsed is not None and parsed.utcoffset() is not None
    assert parsed.isoformat() == "2026-10-08T14:30:00+07:00"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20000101000000", datetime(2000, 1, 1, 0, 0, 0)),  # the first instant read
        ("20991231235959", datetime(2099, 12, 31, 23, 59, 59)),  # the last
        ("20280229120000", datetime(2028, 2, 29, 12, 0, 0)),  # a leap day
        ("20261008000000", datetime(2026, 10, 8, 0, 0, 0)),  # midnight is hour 00, not 24
    ],
)
def test_times_at_the_edges(value: str, expected: datetime) -> None:
    parsed = parse_compact_time(value, "NgayHenTra")
    assert parsed == expected.replace(tzinfo=PORTAL_TZ)
    assert parsed is not None and parsed.tzinfo is PORTAL_TZ  # the zone, not a fixed offset


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
