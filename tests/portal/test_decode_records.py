"""Records read with only the fields chiso reads: the same events, facts and notes as the
whole record gives, the applicant's data never read, and every other shape left to the
general reader."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import orjson
import pytest

from app.portal.records import decode_records, parse_records
from app.portal.simulator import PortalSimulator
from tests.portal.fixtures import (
    DOTNET_FINISHED,
    DOTNET_RETURNED,
    OPENCPS_RECORD,
    PERSONAL_VALUES,
)

ARRIVED = datetime.fromisoformat("2026-10-25T10:00:00+07:00")
FIXTURES = [OPENCPS_RECORD, DOTNET_FINISHED, DOTNET_RETURNED]


def _read(records: list[Any]) -> list[Any]:
    """What the reader makes of records: per record its events, facts, notes and places."""
    out = []
    for _, parsed, errors in parse_records(records, None, ARRIVED):
        if parsed is None:
            out.append(errors)
            continue
        events = [(e.model_dump(), sorted(e.model_fields_set)) for e in parsed.events]
        out.append((events, parsed.inferred, parsed.notes, parsed.facts, parsed.procedure,
                    parsed.unit_token, parsed.unit_declared))  # fmt: skip
    return out


def test_the_producers_records_read_the_same_from_their_read_fields() -> None:
    records = [copy.deepcopy(r) for r in FIXTURES]
    records += PortalSimulator(dossiers=200, seed=4, units=["H01", "H02"]).records
    data = orjson.dumps(records)
    decoded = decode_records(data)
    assert decoded is not None
    assert _read(decoded) == _read(orjson.loads(data))


def test_the_applicants_data_is_never_read() -> None:
    decoded = decode_records(orjson.dumps(FIXTURES))
    assert decoded is not None
    # File addresses are read (that a paper has a file is an index fact), and never kept.
    for record in decoded:
        for entry in record.get("TaiLieuNop") or []:
            entry.pop("DuongDanTaiTepTin", None)
        for entry in record.get("DanhSachGiayToKetQua") or []:
            entry.pop("DuongDanTepTinKetQua", None)
    text = orjson.dumps(decoded).decode()
    for value in PERSONAL_VALUES:
        assert value not in text
    assert "ChuHoSo" not in decoded[0] and "SoDienThoai" not in decoded[0]
    # The .NET producer's int HoSoBoSungId and null dates are kept as sent.
    supplements = decoded[1]["DanhSachHoSoBoSung"]
    assert supplements and isinstance(supplements[0]["HoSoBoSungId"], int)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("TrangThaiHoSo", ["9"]),  # an array where text belongs
        ("NgayTiepNhan", {"date": "20261008083000"}),  # an object where text belongs
        ("TaiLieuNop", "none"),  # text where an array belongs
        ("DanhSachLePhi", [None]),  # an entry that is not an object
        ("LoaiDoiTuong", "BEYOND_64_BITS"),  # an integer beyond 64 bits
    ],
)
def test_other_shapes_are_left_to_the_general_reader(field: str, value: Any) -> None:
    record = copy.deepcopy(OPENCPS_RECORD)
    record[field] = value
    data = orjson.dumps([record]).replace(b'"BEYOND_64_BITS"', str(2**64).encode())
    assert decode_records(data) is None


DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    "body",
    [b"{}", b'"text"', b"[1]", b"[{]", b"null", b"", DEEP, b'[{"ChuHoSo": ' + DEEP + b"}]"],
)
def test_what_is_not_an_array_of_objects_is_not_read(body: bytes) -> None:
    # Arrays nested 100,000 deep, even in a field the decoder skips: not read, never raised.
    assert decode_records(body) is None


def test_a_bare_list_of_database_codes_is_read() -> None:
    record = {**copy.deepcopy(OPENCPS_RECORD), "DSKetNoiCSDL": ["CSDLQGDC", {"MaCSDL": "DKKD"}]}
    decoded = decode_records(orjson.dumps([record]))
    assert decoded is not None
    assert decoded[0]["DSKetNoiCSDL"] == ["CSDLQGDC", {"MaCSDL": "DKKD"}]
    ((_, parsed, _),) = parse_records(decoded, None, ARRIVED)
    assert parsed is not None and parsed.facts.databases == ("CSDLQGDC", "DKKD")


def test_a_fault_in_a_field_not_read_does_not_refuse_the_record() -> None:
    """Bytes that are not UTF-8, or a number no double holds, in a field chiso never reads:
    skipped unread. In a field it reads, the record is not read here (the caller's general
    decoder then refuses the call as before)."""
    skipped = decode_records(b'[{"MaHoSo": "A-1", "ChuHoSo": "\xff\xfe", "SoLuong": 1e999}]')
    assert skipped == [{"MaHoSo": "A-1"}]
    assert decode_records(b'[{"MaHoSo": "\xff\xfe"}]') is None
    assert decode_records(b'[{"MaHoSo": "A-1", "LoaiDoiTuong": 1e999}]') is None
