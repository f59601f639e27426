"""Records and progress items in the real producers' shapes (tests/portal/fixtures.py), read
into events, notes and index facts — every expected value worked out by hand."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import create_sessionmaker
from app.dossiers.facts import DossierFacts
from app.dossiers.facts_repository import facts_of, upsert_facts
from app.dossiers.schemas import Channel, DossierEventIn, DossierStatus
from app.portal.progress import progress_dossier_code, progress_to_events
from app.portal.records import (
    FILE_PLACEHOLDER,
    UNKNOWN_PROCEDURE,
    ParsedRecord,
    PortalRecordError,
    ProcedureSeen,
    minimised,
    parse_records,
    records_to_events,
)
from tests.portal.fixtures import (
    DOTNET_FINISHED,
    DOTNET_RETURNED,
    DOTNET_UNIT,
    OPENCPS_RECORD,
    OPENCPS_UNIT,
    PERSONAL_VALUES,
    PROGRESS_ITEMS,
)

VN = ZoneInfo("Asia/Ho_Chi_Minh")
ARRIVED = datetime.fromisoformat("2026-12-08T10:00:00+07:00")  # Tue 8 Dec 2026
SUPPLEMENT_ID = "7731"  # HoSoBoSungId, an int in the .NET producer
PAYMENT_NOTE = "DuocThanhToanTrucTuyen: '3' is not 0, 1 or 2; kept as sent, paid online unknown"


def at(when: str) -> datetime:
    """'2026-10-08 08:30' in Vietnam time."""
    return datetime.fromisoformat(when).replace(tzinfo=VN)


def parse(raw: Any, default_unit: str | None = None, arrived: datetime = ARRIVED) -> ParsedRecord:
    return records_to_events(raw, 0, default_unit, arrived)


def refused(raw: Any, index: int = 0) -> list[dict[str, str]]:
    with pytest.raises(PortalRecordError) as caught:
        records_to_events(raw, index, None, ARRIVED)
    return caught.value.errors


def dumped(events: list[DossierEventIn]) -> list[dict[str, Any]]:
    return [event.model_dump() for event in events]


def timeline(parsed: ParsedRecord) -> list[tuple[int, datetime, bool]]:
    return [
        (event.status.value, event.occurred_at, inferred)
        for event, inferred in zip(parsed.events, parsed.inferred, strict=True)
    ]


def opencps(**changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(OPENCPS_RECORD), **changes}


def dotnet(**changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(DOTNET_FINISHED), **changes}


# --- the producers' records as sent -----------------------------------------------------------


def test_an_opencps_record_is_a_dossier_received_in_person_and_returned() -> None:
    parsed = parse(OPENCPS_RECORD, OPENCPS_UNIT)
    common = {
        "dossier_code": "000.20.31.H01-261008-0007",
        "unit_code": "000.20.31.H01",
        "procedure_code": "1.001193",
        "channel": Channel.in_person,  # no KenhThucHien; HinhThuc "0" is the result's return
        "applicant_kind": 1,
        "paid_online": False,
        "has_digitized_parts": True,
    }
    assert dumped(parsed.events) == dumped(
        [
            DossierEventIn(
                **common,
                event_id="portal:000.20.31.H01-261008-0007:2",
                status=DossierStatus.accepted,
                occurred_at=at("2026-10-08 08:30"),
                received_at=at("2026-10-08 08:30"),
                due_at=at("2026-10-09 16:30"),
            ),
            DossierEventIn(
                **common,
                event_id="portal:000.20.31.H01-261008-0007:9",
                status=DossierStatus.finished,
                occurred_at=at("2026-10-09 10:05"),
            ),
            DossierEventIn(
                **common,
                event_id="portal:000.20.31.H01-261008-0007:10",
                status=DossierStatus.returned,
                occurred_at=at("2026-10-09 14:30"),
            ),
        ]
    )
    assert parsed.inferred == [False, False, False]
    assert parsed.notes == []
    assert (parsed.dossier_code, parsed.unit_token, parsed.unit_declared) == (
        "000.20.31.H01-261008-0007",
        "000.20.31.H01",
        None,
    )
    assert parsed.procedure == ProcedureSeen(
        code="1.001193", name="Thủ tục đăng ký khai sinh", field_code="G09-TP03",
        field_name="Hộ tịch",
    )  # fmt: skip


def test_an_opencps_record_keeps_its_index_facts() -> None:
    # Papers: 4 listed, 1 deleted → 3; with a file: 88231, 88232 → 2; DuocSoHoa: TP1, TP2 → 2;
    # DuocTaiSuDung and DuocLayTuKhoDMQG: TP2 → 1 each. Fees "0" and "8.000" (thousands) → 8000,
    # not all zero. Results: 2, one with a link. Databases in sent order.
    assert parse(OPENCPS_RECORD).facts == DossierFacts(
        papers_total=3,
        papers_with_file=2,
        papers_digitised=2,
        papers_reused=1,
        papers_from_national_store=1,
        fees_count=2,
        fees_total=Decimal(8000),
        fees_all_zero=False,
        results_total=2,
        results_with_file=1,
        databases=("CSDLQGDC", "CSDLHT"),
        vneid_verified=True,
        has_digitised_parts=True,
        submitted_where="1",
        submitted_at=at("2026-10-08 08:15"),
        refused_at=None,
        payment_code="0",
        result_return="0",
        applicant_kind=1,
    )


def test_a_dotnet_record_finished_without_its_end_date_ends_when_it_arrived() -> None:
    parsed = parse(DOTNET_FINISHED, DOTNET_UNIT)
    common = {
        "dossier_code": "000.00.12.H01-261123-48213",
        "unit_code": "000.00.12.H01",
        "procedure_code": "1.001022.000.00.00.H01",  # as sent: the caller resolves the variant
        "channel": Channel.online,
        "applicant_kind": 1,
        "paid_online": None,  # "3": kept as a fact, unknown here
        "has_digitized_parts": False,
    }
    assert dumped(parsed.events) == dumped(
        [
            DossierEventIn(
                **common,
                event_id="portal:000.00.12.H01-261123-48213:2",
                status=DossierStatus.accepted,
                occurred_at=at("2026-11-23 08:30"),
                received_at=at("2026-11-23 08:30"),
                due_at=at("2026-12-07 17:00"),
            ),
            DossierEventIn(
                **common,
                event_id=f"portal:000.00.12.H01-261123-48213:5:{SUPPLEMENT_ID}",
                status=DossierStatus.supplement_requested,
                occurred_at=at("2026-11-25 09:15"),  # ISO 8601 without zone: Vietnam time
            ),
            DossierEventIn(
                **common,
                event_id=f"portal:000.00.12.H01-261123-48213:4:{SUPPLEMENT_ID}",
                status=DossierStatus.processing,
                occurred_at=at("2026-11-27 14:00"),  # the 7-digit fraction dropped
                supplement_supplied_at=at("2026-11-27 14:00"),
                supplement_new_due_at=at("2026-12-09 17:00"),
            ),
            DossierEventIn(
                **common,
                event_id="portal:000.00.12.H01-261123-48213:9",
                status=DossierStatus.finished,
                occurred_at=ARRIVED,
            ),
        ]
    )
    assert parsed.inferred == [False, False, False, True]
    assert parsed.notes == [
        "status 9 without NgayKetThucXuLy: end time taken from arrival",
        PAYMENT_NOTE,
    ]
    assert parsed.unit_token == "000.00.12.H01"
    assert parsed.procedure == ProcedureSeen(
        code="1.001022.000.00.00.H01", name="Cấp giấy phép xây dựng nhà ở riêng lẻ",
        field_code="XD-01", field_name="Hoạt động xây dựng",
    )  # fmt: skip


def test_a_dotnet_record_keeps_what_it_sends_and_leaves_the_rest_unknown() -> None:
    # TaiLieuNop, DanhSachGiayToKetQua, DSKetNoiCSDL are null: unknown, not zero.
    assert parse(DOTNET_FINISHED).facts == DossierFacts(
        fees_count=1,
        fees_total=Decimal(75000),  # a JSON number
        fees_all_zero=False,
        has_digitised_parts=False,
        submitted_where="2",
        submitted_at=at("2026-11-22 20:30"),
        payment_code="3",
        applicant_kind=1,
    )


def test_a_dotnet_record_returned_without_ngay_tra_takes_ngay_ket_thuc_xu_ly() -> None:
    parsed = parse(DOTNET_RETURNED)
    assert [(e.event_id, e.due_at) for e in parsed.events] == [
        ("portal:000.00.12.H01-261124-48377:2", at("2026-12-08 17:00")),
        ("portal:000.00.12.H01-261124-48377:9", None),
        ("portal:000.00.12.H01-261124-48377:10", None),
    ]
    assert timeline(parsed) == [
        (2, at("2026-11-24 10:00"), False),
        (9, at("2026-12-04 16:00"), False),
        (10, at("2026-12-04 16:00"), True),
    ]
    assert parsed.notes == [
        "status 10 without NgayTra: end time taken from NgayKetThucXuLy",
        PAYMENT_NOTE,
    ]


def test_an_inferred_time_is_never_part_of_an_event_id() -> None:
    first = parse(DOTNET_FINISHED, arrived=ARRIVED)
    later = parse(DOTNET_FINISHED, arrived=ARRIVED + timedelta(days=1))
    assert [e.event_id for e in first.events] == [e.event_id for e in later.events]
    assert (first.events[-1].occurred_at, later.events[-1].occurred_at) == (
        at("2026-12-08 10:00"),
        at("2026-12-09 10:00"),
    )
    # The record sent again with its end date: the same event, now with its own time.
    dated = parse(dotnet(NgayKetThucXuLy="20261204160000"))
    assert (dated.events[-1].event_id, dated.events[-1].occurred_at, dated.inferred[-1]) == (
        "portal:000.00.12.H01-261123-48213:9",
        at("2026-12-04 16:00"),
        False,
    )


# --- channel and payment -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "channel", "notes"),
    [
        ({}, Channel.in_person, []),  # OpenCPS: KenhThucHien absent
        ({"KenhThucHien": ""}, Channel.in_person, []),
        ({"KenhThucHien": None}, Channel.in_person, []),
        ({"KenhThucHien": "2"}, Channel.online, []),
        ({"KenhThucHien": "3"}, Channel.postal, []),
        ({"KenhThucHien": 2}, Channel.online, []),
        ({"KenhThucHien": "9"}, Channel.in_person,
         ["KenhThucHien: '9' is not 1, 2 or 3; taken as 1"]),
        ({"HinhThuc": "1"}, Channel.in_person, []),  # returned by post: still received in person
    ],
)  # fmt: skip
def test_the_channel_comes_from_kenh_thuc_hien_only(
    changes: dict[str, Any], channel: Channel, notes: list[str]
) -> None:
    parsed = parse(opencps(**changes))
    assert {event.channel for event in parsed.events} == {channel}
    assert parsed.notes == notes
    assert parsed.facts.result_return == changes.get("HinhThuc", "0")


@pytest.mark.parametrize(
    ("sent", "paid_online", "payment_code", "notes"),
    [
        ("0", False, "0", []),
        ("1", True, "1", []),
        ("2", True, "2", []),
        ("3", None, "3", [PAYMENT_NOTE]),
        ("", None, None, []),
        (None, None, None, []),
        (1, True, "1", []),
        ("true", True, "true", []),
        ("x9", None, "x9", ["DuocThanhToanTrucTuyen: 'x9' is not 0, 1 or 2; kept as sent, "
                            "paid online unknown"]),
    ],
)  # fmt: skip
def test_paid_online_is_read_from_the_value_as_sent(
    sent: Any, paid_online: bool | None, payment_code: str | None, notes: list[str]
) -> None:
    parsed = parse(opencps(DuocThanhToanTrucTuyen=sent))
    assert {event.paid_online for event in parsed.events} == {paid_online}
    assert parsed.facts.payment_code == payment_code
    assert parsed.notes == notes


def test_an_absent_payment_value_is_unknown() -> None:
    record = {k: v for k, v in OPENCPS_RECORD.items() if k != "DuocThanhToanTrucTuyen"}
    parsed = parse(record)
    assert ({e.paid_online for e in parsed.events}, parsed.facts.payment_code) == ({None}, None)


# --- terminal statuses without their end date --------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "end", "note"),
    [
        # A refusal's own dates: NgayKetThucXuLy, else NgayTuChoi — a fact, no note.
        ({"TrangThaiHoSo": "3", "NgayTuChoi": "20261124110000"},
         (3, at("2026-11-24 11:00"), False), None),
        ({"TrangThaiHoSo": "3"}, (3, ARRIVED, True),
         "status 3 without NgayKetThucXuLy or NgayTuChoi: end time taken from arrival"),
        ({"TrangThaiHoSo": "7", "NgayTuChoi": "20261124110000"},
         (7, at("2026-11-24 11:00"), True),
         "status 7 without NgayKetThucXuLy: end time taken from NgayTuChoi"),
        ({"TrangThaiHoSo": "8", "NgayTra": "20261130090000"}, (8, at("2026-11-30 09:00"), True),
         "status 8 without NgayKetThucXuLy: end time taken from NgayTra"),
        ({"TrangThaiHoSo": "8"}, (8, ARRIVED, True),
         "status 8 without NgayKetThucXuLy: end time taken from arrival"),
        ({"TrangThaiHoSo": "9", "NgayTra": "20261204153000"}, (9, at("2026-12-04 15:30"), True),
         "status 9 without NgayKetThucXuLy: end time taken from NgayTra"),
        ({"TrangThaiHoSo": "10"}, (10, ARRIVED, True),
         "status 10 without NgayTra: end time taken from arrival"),
    ],
)  # fmt: skip
def test_a_terminal_status_without_its_end_date_takes_the_best_evidence(
    changes: dict[str, str], end: tuple[int, datetime, bool], note: str | None
) -> None:
    parsed = parse(dotnet(DanhSachHoSoBoSung=None, **changes))
    status = int(changes["TrangThaiHoSo"])
    # The receipt: a refused dossier was registered, never accepted.
    receipt = (1 if status == 3 else 2, at("2026-11-23 08:30"), False)
    ends = [e for e in timeline(parsed) if e[0] == status]
    assert timeline(parsed)[0] == receipt
    assert ends == [end]
    assert parsed.notes == ([note] if note else []) + [PAYMENT_NOTE]
    assert [e.event_id for e in parsed.events if e.status.value == status] == [
        f"portal:000.00.12.H01-261123-48213:{status}"
    ]


def test_a_refusal_date_is_kept_as_a_fact() -> None:
    parsed = parse(dotnet(TrangThaiHoSo="3", NgayTuChoi="2026-11-24T11:00:00"))
    assert parsed.facts.refused_at == at("2026-11-24 11:00")


@pytest.mark.parametrize(
    ("changes", "expected", "note"),
    [
        ({"TrangThaiHoSo": "2", "NgayTiepNhan": ""},
         [(2, "portal:000.00.12.H01-261123-48213:2", at("2026-11-22 20:30"), True,
           at("2026-12-07 17:00"))],
         "status 2 without NgayTiepNhan: receipt time taken from NgayNopHoSo"),
        ({"TrangThaiHoSo": "4", "NgayTiepNhan": None, "NgayNopHoSo": ""},
         [(4, "portal:000.00.12.H01-261123-48213:4", ARRIVED, True, at("2026-12-07 17:00"))],
         "status 4 without NgayTiepNhan: processing time taken from arrival"),
        ({"TrangThaiHoSo": "6", "NgayTiepNhan": "", "NgayNopHoSo": ""},
         [(4, "portal:000.00.12.H01-261123-48213:4", ARRIVED, True, at("2026-12-07 17:00"))],
         "status 6 without NgayTiepNhan: processing time taken from arrival"),
        ({"TrangThaiHoSo": "1", "NgayTiepNhan": ""},
         [(1, "portal:000.00.12.H01-261123-48213:1", at("2026-11-22 20:30"), True, None)],
         "status 1 without NgayTiepNhan: registration time taken from NgayNopHoSo"),
    ],
)  # fmt: skip
def test_a_status_without_its_receipt_is_placed_at_the_submission_or_the_arrival(
    changes: dict[str, Any],
    expected: list[tuple[int, str, datetime, bool, datetime | None]],
    note: str,
) -> None:
    parsed = parse(dotnet(DanhSachHoSoBoSung=None, **changes))
    assert [
        (e.status.value, e.event_id, e.occurred_at, inferred, e.due_at)
        for e, inferred in zip(parsed.events, parsed.inferred, strict=True)
    ] == expected
    assert parsed.notes == [note, PAYMENT_NOTE]


def test_status_5_without_an_open_request_records_no_pause() -> None:
    # Inventing a request would count one more, and two requests make the dossier late.
    parsed = parse(dotnet(TrangThaiHoSo="5"))  # its only request was supplied
    assert [e.status.value for e in parsed.events] == [2, 5, 4]
    assert parsed.notes == [
        "status 5 without an open request in DanhSachHoSoBoSung: no pause recorded",
        PAYMENT_NOTE,
    ]


def test_a_record_without_a_status_is_read_from_its_dates() -> None:
    parsed = parse(opencps(TrangThaiHoSo=""))
    assert timeline(parsed) == [
        (2, at("2026-10-08 08:30"), False),
        (9, at("2026-10-09 10:05"), False),
        (10, at("2026-10-09 14:30"), False),
    ]
    assert parsed.notes == ["TrangThaiHoSo is empty: the status is read from the dates"]


# --- dates -------------------------------------------------------------------------------------


def test_nested_lists_take_iso_8601_dates_in_vietnam_time() -> None:
    request = {
        "HoSoBoSungId": None,
        "NgayBoSung": "2026-11-25T02:15:00Z",  # a zone, when written, is honoured
        "NgayTiepNhanBoSung": "0001-01-01T00:00:00",  # .NET's "no date"
        "NgayHenTraMoi": "2026-12-09T17:00",
    }
    parsed = parse(dotnet(TrangThaiHoSo="5", DanhSachHoSoBoSung=[request]))
    [_, pending] = parsed.events
    assert (pending.event_id, pending.status, pending.occurred_at) == (
        "portal:000.00.12.H01-261123-48213:5:20261125091500",
        DossierStatus.supplement_requested,
        at("2026-11-25 09:15"),
    )
    assert (pending.supplement_new_due_at, pending.supplement_supplied_at) == (
        at("2026-12-09 17:00"),
        None,
    )
    assert parsed.notes == [PAYMENT_NOTE]


def test_iso_and_compact_dates_are_the_same_instant_everywhere() -> None:
    iso = parse(dotnet(NgayTiepNhan="2026-11-23T08:30:00.000", NgayHenTra="2026-12-07T17:00:00"))
    assert dumped(iso.events) == dumped(parse(DOTNET_FINISHED).events)


@pytest.mark.parametrize(
    ("sent", "note"),
    [
        ("gọi 0912345678",  # notes quote values scrubbed
         "NgayHenTra: expected yyyyMMddHHmmss or an ISO 8601 date-time, got 'gọi [phone]'; "
         "ignored"),
        ("20291009163000", "NgayHenTra: '20291009163000' is more than two years ahead; ignored"),
        ("1999-10-09T16:30:00", "NgayHenTra: year 1999 is out of range (2000 to 2099); ignored"),
        ({"v": 1}, "NgayHenTra: expected text, got an object; ignored"),
    ],
)  # fmt: skip
def test_an_unreadable_date_is_left_out_with_a_note(sent: Any, note: str) -> None:
    parsed = parse(opencps(NgayHenTra=sent))
    assert [e.due_at for e in parsed.events] == [None, None, None]
    assert parsed.notes == [note]


# --- refused: not a dossier at all -------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"MaHoSo": None}, [{"pointer": "#/3/MaHoSo", "detail": "MaHoSo is required"}]),
        ({"MaHoSo": "  "}, [{"pointer": "#/3/MaHoSo", "detail": "MaHoSo is required"}]),
        ({"TrangThaiHoSo": "", "NgayTiepNhan": None},
         [{"pointer": "#/3/TrangThaiHoSo",
           "detail": "TrangThaiHoSo and NgayTiepNhan are both empty: without a status or a "
                     "receipt the record is not a dossier"}]),
        ({"TrangThaiHoSo": None, "NgayTiepNhan": "23/11/2026"},
         [{"pointer": "#/3/TrangThaiHoSo",
           "detail": "TrangThaiHoSo and NgayTiepNhan are both empty: without a status or a "
                     "receipt the record is not a dossier"},
          {"pointer": "#/3/NgayTiepNhan",
           "detail": "expected yyyyMMddHHmmss or an ISO 8601 date-time, got '23/11/2026'"}]),
        ({"TrangThaiHoSo": "0"},
         [{"pointer": "#/3/TrangThaiHoSo", "detail": "expected a status code 1 to 10, got '0'"}]),
        ({"TrangThaiHoSo": "11"},
         [{"pointer": "#/3/TrangThaiHoSo", "detail": "expected a status code 1 to 10, got '11'"}]),
        ({"TrangThaiHoSo": "gọi 0912345678"},  # quoted scrubbed
         [{"pointer": "#/3/TrangThaiHoSo",
           "detail": "expected a status code 1 to 10, got 'gọi [phone]'"}]),
        ({"TrangThaiHoSo": ["9"]},
         [{"pointer": "#/3/TrangThaiHoSo",
           "detail": "expected a status code 1 to 10, got an array"}]),
        ({"MaHoSo": None, "TrangThaiHoSo": "12"},
         [{"pointer": "#/3/MaHoSo", "detail": "MaHoSo is required"},
          {"pointer": "#/3/TrangThaiHoSo",
           "detail": "expected a status code 1 to 10, got '12'"}]),
    ],
)  # fmt: skip
def test_a_record_is_refused_only_when_it_cannot_be_a_dossier(
    changes: dict[str, Any], errors: list[dict[str, str]]
) -> None:
    assert refused(dotnet(**changes), 3) == errors


@pytest.mark.parametrize(
    ("sent", "note"),
    [
        ("", "MaTTHC: empty; stored under procedure 'unknown'"),  # OpenCPS, when unmapped
        (None, "MaTTHC: empty; stored under procedure 'unknown'"),
        ("Thủ tục 1", "MaTTHC: 'Thủ tục 1' is not a code; stored under procedure 'unknown'"),
    ],
)
def test_a_record_without_a_procedure_code_is_kept_under_unknown(sent: Any, note: str) -> None:
    parsed = parse(opencps(MaTTHC=sent))
    assert {e.procedure_code for e in parsed.events} == {UNKNOWN_PROCEDURE}
    assert parsed.procedure == ProcedureSeen(
        UNKNOWN_PROCEDURE, "Thủ tục đăng ký khai sinh", "G09-TP03", "Hộ tịch"
    )
    assert parsed.notes == [note]


def test_something_that_is_not_a_record_is_refused() -> None:
    assert refused("000.00.12.H01-261123-48213", 2) == [
        {"pointer": "#/2", "detail": "expected an object (one dossier record), got a string"}
    ]


def test_a_batch_is_read_record_by_record() -> None:
    results = parse_records([OPENCPS_RECORD, dotnet(MaHoSo=""), DOTNET_RETURNED], None, ARRIVED)
    assert [(index, parsed is not None, errors) for index, parsed, errors in results] == [
        (0, True, None),
        (1, False, [{"pointer": "#/1/MaHoSo", "detail": "MaHoSo is required"}]),
        (2, True, None),
    ]


# --- odd values: kept, with notes --------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "kind_on_events", "kind_fact", "notes"),
    [
        ({"LoaiDoiTuong": "2"}, 2, 2, []),
        ({"LoaiDoiTuong": "5"}, None, 5,
         ["LoaiDoiTuong: 5 is not 1 to 4; kept as a fact only"]),
        ({"LoaiDoiTuong": "công dân"}, None, None,
         ["LoaiDoiTuong: expected a number from 0 to 32767, got 'công dân'; ignored"]),
    ],
)  # fmt: skip
def test_the_applicant_kind(
    changes: dict[str, Any], kind_on_events: int | None, kind_fact: int | None, notes: list[str]
) -> None:
    parsed = parse(opencps(**changes))
    assert {e.applicant_kind for e in parsed.events} == {kind_on_events}
    assert parsed.facts.applicant_kind == kind_fact
    assert parsed.notes == notes


def test_an_odd_flag_is_unknown_with_a_note() -> None:
    parsed = parse(opencps(HoSoCoThanhPhanSoHoa="có", TaiKhoanDuocXacThucVoiVNeID=True))
    assert {e.has_digitized_parts for e in parsed.events} == {None}
    assert (parsed.facts.has_digitised_parts, parsed.facts.vneid_verified) == (None, True)
    assert parsed.notes == ["HoSoCoThanhPhanSoHoa: expected '1', '0' or '', got 'có'; ignored"]


# --- the unit ----------------------------------------------------------------------------------


def test_the_unit_token_is_the_dossier_codes_prefix_and_madonvi_a_fallback() -> None:
    # The caller resolves the token first (an identifier chiso knows), then madonvi, then
    # MaDonVi; the events carry madonvi (else MaDonVi, else the token) until it does.
    parsed = parse(DOTNET_FINISHED, "H01")
    assert (parsed.unit_token, {e.unit_code for e in parsed.events}) == ("000.00.12.H01", {"H01"})
    parsed = parse(dotnet(MaDonVi="H01.12"))  # no real producer sends it: a last resort
    assert (parsed.unit_declared, {e.unit_code for e in parsed.events}) == ("H01.12", {"H01.12"})
    parsed = parse(DOTNET_FINISHED)
    assert {e.unit_code for e in parsed.events} == {"000.00.12.H01"}


def test_a_dossier_code_without_a_prefix_needs_madonvi() -> None:
    parsed = parse(dotnet(MaHoSo="HS48213"), DOTNET_UNIT)
    assert (parsed.unit_token, {e.unit_code for e in parsed.events}) == (None, {DOTNET_UNIT})
    assert refused(dotnet(MaHoSo="HS48213")) == [
        {
            "pointer": "#/0/MaHoSo",
            "detail": "no unit: MaHoSo has no identifier prefix ({identifier}-{yyMMdd}-{sequence}) "
            "and no madonvi was given",
        }
    ]


# --- supplements -------------------------------------------------------------------------------


def test_supplement_requests_are_named_by_their_id_else_their_date() -> None:
    entries = [
        {"HoSoBoSungId": "", "NgayBoSung": "20261124090000",
         "NgayTiepNhanBoSung": "20261124150000"},
        {"HoSoBoSungId": "BS 2", "NgayBoSung": "2026-11-25T09:00:00"},  # not usable in an id
        {"HoSoBoSungId": 7731, "NgayBoSung": "20261126090000"},
        {"HoSoBoSungId": 7731, "NgayBoSung": "20261126090000"},  # sent twice
        {"HoSoBoSungId": "7732", "NgayBoSung": "", "NgayTiepNhanBoSung": "20261127090000"},
    ]  # fmt: skip
    parsed = parse(dotnet(TrangThaiHoSo="5", DanhSachHoSoBoSung=entries))
    prefix = "portal:000.00.12.H01-261123-48213:"
    assert [(e.event_id.removeprefix(prefix), e.occurred_at) for e in parsed.events] == [
        ("2", at("2026-11-23 08:30")),
        ("5:20261124090000", at("2026-11-24 09:00")),
        ("4:20261124090000", at("2026-11-24 15:00")),
        ("5:20261125090000", at("2026-11-25 09:00")),
        ("5:7731", at("2026-11-26 09:00")),
    ]
    assert parsed.notes == [
        "DanhSachHoSoBoSung/3: the same request as an earlier entry; left out",
        "DanhSachHoSoBoSung/4: no NgayBoSung; the request is left out",
        PAYMENT_NOTE,
    ]


# --- facts in detail ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prices", "count", "total", "all_zero", "notes"),
    [
        (["50.000"], 1, Decimal(50000), False, []),
        (["50,000", 25000, "1.250.000"], 3, Decimal(1325000), False, []),
        (["0", 0, "0.00"], 3, Decimal(0), True, []),
        (["12500.50"], 1, Decimal("12500.50"), False, []),
        (["0", ""], 2, Decimal(0), None, []),  # a price left blank: nobody knows
        (["0", "miễn phí"], 2, Decimal(0), None,
         ["DanhSachLePhi/1/Gia: expected an amount in dong, got 'miễn phí'; ignored"]),
        (["-5000", "20000"], 2, Decimal(20000), False,
         ["DanhSachLePhi/0/Gia: expected an amount in dong, got '-5000'; ignored"]),
        ([], 0, Decimal(0), None, []),
    ],
)  # fmt: skip
def test_fees(
    prices: list[Any], count: int, total: Decimal, all_zero: bool | None, notes: list[str]
) -> None:
    fees = [
        {"TenPhiLePhi": "Lệ phí", "MaPhiLePhi": f"P{j}", "Gia": p} for j, p in enumerate(prices)
    ]
    facts = parse(opencps(DanhSachLePhi=fees)).facts
    assert (facts.fees_count, facts.fees_total, facts.fees_all_zero) == (count, total, all_zero)
    assert parse(opencps(DanhSachLePhi=fees)).notes == notes


def test_papers_sent_empty_are_zero_and_absent_are_unknown() -> None:
    empty = parse(opencps(TaiLieuNop=[], DanhSachGiayToKetQua=[], DSKetNoiCSDL=[])).facts
    assert (empty.papers_total, empty.papers_with_file, empty.papers_digitised) == (0, 0, 0)
    assert (empty.results_total, empty.results_with_file, empty.databases) == (0, 0, ())
    absent = parse(opencps(TaiLieuNop=None, DanhSachGiayToKetQua=None, DSKetNoiCSDL=None)).facts
    assert (absent.papers_total, absent.results_total, absent.databases) == (None, None, None)


def test_paper_flags_as_booleans_and_deleted_papers() -> None:
    papers = [
        {"TepDinhKemId": 1, "IsDeleted": False, "DuocSoHoa": True, "DuocTaiSuDung": "true"},
        {"DuongDanTaiTepTin": "https://x.vn/a.pdf", "IsDeleted": True, "DuocSoHoa": True},
        {"IsDeleted": None, "DuocSoHoa": "0", "DuocLayTuKhoDMQG": 1},
        "not a paper",
    ]
    parsed = parse(opencps(TaiLieuNop=papers))
    facts = parsed.facts
    assert (
        facts.papers_total, facts.papers_with_file, facts.papers_digitised, facts.papers_reused,
        facts.papers_from_national_store,
    ) == (2, 1, 1, 1, 1)  # fmt: skip
    assert parsed.notes == ["TaiLieuNop/3: expected an object, got a string; ignored"]


def test_database_codes() -> None:
    sent = [
        {"MaCSDL": "CSDLQGDC"},
        "CSDLHT",  # a bare code means the same
        {"MaCSDL": "CSDLQGDC"},
        {"MaCSDL": ""},
        {"MaCSDL": "khong co ma"},
    ]
    parsed = parse(opencps(DSKetNoiCSDL=sent))
    assert parsed.facts.databases == ("CSDLQGDC", "CSDLHT")
    assert parsed.notes == ["DSKetNoiCSDL/4/MaCSDL: 'khong co ma' is not a code; ignored"]


# --- no personal data ----------------------------------------------------------------------------


def _personal_in(text_: str) -> list[str]:
    return [value for value in PERSONAL_VALUES if value in text_]


@pytest.mark.parametrize("raw", [OPENCPS_RECORD, DOTNET_FINISHED, DOTNET_RETURNED])
def test_nothing_returned_carries_personal_data(raw: dict[str, Any]) -> None:
    parsed = parse(raw)
    assert _personal_in(str(parsed)) == []
    assert _personal_in(json.dumps([e.model_dump(mode="json") for e in parsed.events])) == []


@pytest.mark.parametrize("raw", [OPENCPS_RECORD, DOTNET_FINISHED, DOTNET_RETURNED])
def test_a_minimised_record_keeps_no_personal_data_and_reads_the_same(raw: dict[str, Any]) -> None:
    kept = minimised(copy.deepcopy(raw))
    assert _personal_in(json.dumps(kept, ensure_ascii=False)) == []
    original, again = parse(raw), parse(kept)
    assert dumped(again.events) == dumped(original.events)
    assert (again.inferred, again.notes, again.facts, again.procedure) == (
        original.inferred, original.notes, original.facts, original.procedure,
    )  # fmt: skip


def test_a_minimised_record_says_there_was_a_file_not_where() -> None:
    kept = minimised(copy.deepcopy(OPENCPS_RECORD))
    assert [p["DuongDanTaiTepTin"] for p in kept["TaiLieuNop"]] == [
        FILE_PLACEHOLDER, FILE_PLACEHOLDER, "", FILE_PLACEHOLDER,
    ]  # fmt: skip
    assert [r["DuongDanTepTinKetQua"] for r in kept["DanhSachGiayToKetQua"]] == [
        FILE_PLACEHOLDER, "",
    ]  # fmt: skip
    assert set(kept["TaiLieuNop"][0]) == {
        "TepDinhKemId", "IsDeleted", "MaThanhPhanHoSo", "DuongDanTaiTepTin", "DuocSoHoa",
        "DuocTaiSuDung", "DuocLayTuKhoDMQG", "MaKetQuaThayThe",
    }  # fmt: skip
    dropped = {"ChuHoSo", "SoDienThoai", "Email", "Fax", "SoGiayToChuHoSo", "DinhDanhCHS",
               "MaDoiTuong", "TrichYeuHoSo", "GhiChu", "DonViXuLy",
               "DanhSachTepDinhKemKhac"}  # fmt: skip
    assert not dropped & set(kept)


# --- progress items ------------------------------------------------------------------------------


def test_progress_items_become_steps_of_the_stored_dossier() -> None:
    parsed = [
        progress_to_events(item, i, DOTNET_UNIT, "1.001022", Channel.online)
        for i, item in enumerate(PROGRESS_ITEMS)
    ]
    code = "000.00.12.H01-261123-48213"
    common = {"dossier_code": code, "unit_code": DOTNET_UNIT, "procedure_code": "1.001022",
              "channel": Channel.online}  # fmt: skip
    assert [dumped(p.events) for p in parsed] == [
        dumped([DossierEventIn(**common, event_id=f"portal:{code}:step:20261124093000:4",
                               status=DossierStatus.processing,
                               occurred_at=at("2026-11-24 09:30"))]),
        dumped([DossierEventIn(**common, event_id=f"portal:{code}:step:20261126080000:4",
                               status=DossierStatus.processing,
                               occurred_at=at("2026-11-26 08:00"))]),
        dumped([DossierEventIn(**common, event_id=f"portal:{code}:step:20261204160000:9",
                               status=DossierStatus.finished,
                               occurred_at=at("2026-12-04 16:00"))]),
    ]  # fmt: skip
    assert [p.notes for p in parsed] == [[], ["TrangThai: empty; stored as 4 (processing)"], []]
    assert [(p.step_started_at, p.step_due_at) for p in parsed] == [
        (at("2026-11-24 09:30"), at("2026-12-01 17:00")),
        (None, None),
        (at("2026-12-04 08:00"), at("2026-12-04 17:00")),
    ]
    assert {p.dossier_code for p in parsed} == {code}
    assert [progress_dossier_code(item) for item in PROGRESS_ITEMS] == [code] * 3


def test_a_step_sent_again_in_another_time_format_is_the_same_event() -> None:
    item = {**PROGRESS_ITEMS[0], "ThoiDiemXuLy": "2026-11-24T09:30:00.000"}
    [again] = progress_to_events(item, 0, DOTNET_UNIT, "1.001022", Channel.online).events
    [first] = progress_to_events(
        PROGRESS_ITEMS[0], 0, DOTNET_UNIT, "1.001022", Channel.online
    ).events
    assert again.model_dump() == first.model_dump()


def test_a_step_status_outside_1_to_10_is_processing() -> None:
    item = {**PROGRESS_ITEMS[0], "TrangThai": "12"}
    parsed = progress_to_events(item, 0, DOTNET_UNIT, "1.001022", Channel.online)
    assert (parsed.events[0].status, parsed.events[0].event_id) == (
        DossierStatus.processing,
        "portal:000.00.12.H01-261123-48213:step:20261124093000:4",
    )
    assert parsed.notes == ["TrangThai: '12' is not a status 1 to 10; stored as 4 (processing)"]


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"ThoiDiemXuLy": ""},
         [{"pointer": "#/2/ThoiDiemXuLy", "detail": "ThoiDiemXuLy is required"}]),
        ({"ThoiDiemXuLy": "24/11/2026 09:30"},
         [{"pointer": "#/2/ThoiDiemXuLy",
           "detail": "expected yyyyMMddHHmmss or an ISO 8601 date-time, got '24/11/2026 09:30'"}]),
        ({"MaHoSo": None, "ThoiDiemXuLy": None},
         [{"pointer": "#/2/MaHoSo", "detail": "MaHoSo is required"},
          {"pointer": "#/2/ThoiDiemXuLy", "detail": "ThoiDiemXuLy is required"}]),
    ],
)  # fmt: skip
def test_a_step_without_a_dossier_or_a_time_is_refused(
    changes: dict[str, Any], errors: list[dict[str, str]]
) -> None:
    with pytest.raises(PortalRecordError) as caught:
        progress_to_events({**PROGRESS_ITEMS[0], **changes}, 2, DOTNET_UNIT, "1.001022",
                           Channel.online)  # fmt: skip
    assert caught.value.errors == errors
    assert progress_dossier_code({**PROGRESS_ITEMS[0], **changes}) == (
        None if "MaHoSo" in changes else "000.00.12.H01-261123-48213"
    )


def test_a_step_keeps_nobody_and_nothing_they_wrote() -> None:
    for i, item in enumerate(PROGRESS_ITEMS):
        parsed = progress_to_events(item, i, DOTNET_UNIT, "1.001022", Channel.online)
        assert _personal_in(str(parsed)) == []
        assert "Phòng Quản lý" not in str(parsed)  # PhongBanXuLy: free text, not kept


# --- stored facts ------------------------------------------------------------------------------


async def test_facts_are_kept_per_dossier_latest_record_first(
    engine: AsyncEngine, clean: None
) -> None:
    sessions = create_sessionmaker(engine)
    opencps_facts = parse(OPENCPS_RECORD).facts
    dotnet_facts = parse(DOTNET_FINISHED).facts
    async with sessions() as session:
        await upsert_facts(session, [
            ("000.20.31.H01-261008-0007", opencps_facts),
            ("000.00.12.H01-261123-48213", dotnet_facts),
        ])  # fmt: skip
        await session.commit()
    async with sessions() as session:
        assert await facts_of(session, "000.20.31.H01-261008-0007") == opencps_facts
        assert await facts_of(session, "000.00.12.H01-261123-48213") == dotnet_facts
        assert await facts_of(session, "nobody") is None

    # An update that does not send the lists keeps what an earlier record said; what it does
    # send replaces it (an empty list of databases is a fact: none consulted).
    update = parse(opencps(TaiLieuNop=None, DanhSachLePhi=None, DSKetNoiCSDL=[],
                           DuocThanhToanTrucTuyen="1", HinhThuc=None)).facts  # fmt: skip
    async with sessions() as session:
        await upsert_facts(session, [("000.20.31.H01-261008-0007", update)])
        await session.commit()
        kept = await facts_of(session, "000.20.31.H01-261008-0007")
    assert kept is not None
    assert (kept.papers_total, kept.papers_with_file, kept.fees_total, kept.databases) == (
        3, 2, Decimal("8000.00"), (),
    )  # fmt: skip
    assert (kept.payment_code, kept.result_return) == ("1", "0")


async def test_one_batch_with_a_dossier_twice_keeps_the_later_record(
    engine: AsyncEngine, clean: None
) -> None:
    sessions = create_sessionmaker(engine)
    first = DossierFacts(papers_total=2, payment_code="0", databases=("CSDLHT",))
    later = DossierFacts(papers_total=3, fees_count=1)
    async with sessions() as session:
        await upsert_facts(session, [("X-1", first), ("X-1", later)])
        await session.commit()
        assert await facts_of(session, "X-1") == DossierFacts(
            papers_total=3, fees_count=1, payment_code="0", databases=("CSDLHT",)
        )


async def test_a_record_sent_again_unchanged_rewrites_nothing(
    engine: AsyncEngine, clean: None
) -> None:
    sessions = create_sessionmaker(engine)
    facts = parse(OPENCPS_RECORD).facts

    async def stored_at() -> datetime:
        async with engine.connect() as conn:
            value = (await conn.execute(text("SELECT updated_at FROM dossier_facts"))).scalar_one()
        assert isinstance(value, datetime)
        return value

    async with sessions() as session:
        await upsert_facts(session, [("D-1", facts)])
        await session.commit()
    stamped = await stored_at()
    async with sessions() as session:
        await upsert_facts(session, [("D-1", facts)])
        await session.commit()
    assert await stored_at() == stamped
    async with sessions() as session:
        await upsert_facts(session, [("D-1", DossierFacts(papers_total=9))])
        await session.commit()
    assert await stored_at() > stamped
