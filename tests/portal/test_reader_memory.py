"""The readers remember what repeats (procedure names, scrubbed texts, times) but never a
sender's long value: a call's body may hold megabytes of text, and thousands of such values
remembered would hold gigabytes in every API process."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.portal import records, values
from app.portal.records import parse_records
from app.portal.values import REMEMBERED_CHARS

ARRIVED = datetime.fromisoformat("2026-10-25T10:00:00+07:00")
RECORD = {
    "MaHoSo": "H15.50.05.13-261008-0975",
    "MaTTHC": "2.000815",
    "TenTTHC": "Chứng thực bản sao từ bản chính giấy tờ, văn bản",
    "KenhThucHien": "1",
    "NgayTiepNhan": "20261008083000",
    "NgayHenTra": "20261009163000",
    "TrangThaiHoSo": "4",
}


def _sizes() -> tuple[int, int, int]:
    return (
        values._scrubbed.cache_info().currsize,
        values._remembered_time.cache_info().currsize,
        records._procedure_seen.cache_info().currsize,
    )


def _long(n: int) -> str:
    """A text of 5,000 characters, different for each ``n`` (at its end: the notes that quote
    it, cut to 40 characters, are the same for every ``n``)."""
    return "Thủ tục " + "x" * 4_980 + f"{n:012d}"


def test_long_values_are_read_but_not_remembered() -> None:
    batch: list[dict[str, Any]] = [
        {**RECORD, "MaHoSo": f"H15.50.05.13-261008-{n:04d}", "TenTTHC": _long(n),
         "MaLinhVuc": _long(n), "NoiNopHoSo": _long(n), "NgayHenTra": _long(n)}
        for n in range(60)
    ]  # fmt: skip
    parse_records(batch[:1], None, ARRIVED)  # what every record shares, remembered once
    before = _sizes()
    parsed = parse_records(batch, None, ARRIVED)
    after = _sizes()
    # 60 records, each with four long values of its own: none of them remembered.
    assert after == before
    first = parsed[0][1]
    assert first is not None
    assert first.procedure.name == _long(0)[:1_000]  # read, and cut as ever
    assert first.facts.submitted_where == _long(0)[:255]
    assert first.notes == [
        "NgayHenTra: expected yyyyMMddHHmmss or an ISO 8601 date-time, got 'Thủ tục "
        + "x" * 32
        + "…'; ignored"
    ]


def test_short_values_are_remembered() -> None:
    batch = [{**RECORD, "MaHoSo": f"H15.50.05.13-261008-{n:04d}"} for n in range(60)]
    assert len(RECORD["TenTTHC"]) <= REMEMBERED_CHARS
    parse_records(batch[:1], None, ARRIVED)
    hits = records._procedure_seen.cache_info().hits
    parse_records(batch, None, ARRIVED)
    assert records._procedure_seen.cache_info().hits == hits + 60
