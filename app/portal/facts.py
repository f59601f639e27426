"""The facts of a dossier that feed the service index, read off a portal record: counts, totals,
flags, codes and dates — never the people (no names, phones, e-mails, identity numbers, file
addresses, nor who handled the dossier). Pure: the SQL is in :mod:`app.portal.facts_repository`.

``None`` means "the producer did not say": a list field absent or ``null`` leaves its counts
unknown, which is not the same as an empty list (zero papers). Producers send different subsets
of the record, so the indicators built on these facts must tell the two apart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from app.portal.values import ValueReader, scrubbed, shown

PAPERS = "TaiLieuNop"
FEES = "DanhSachLePhi"
RESULTS = "DanhSachGiayToKetQua"
DATABASES = "DSKetNoiCSDL"

_DATABASE_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}")
_TEXT_CHARS = 255  # submitted_where
_CODE_CHARS = 64  # payment_code, result_return: codes stored as sent


@dataclass(frozen=True, slots=True)
class DossierFacts:
    """One dossier's index facts as its latest record states them."""

    papers_total: int | None = None  # TaiLieuNop entries, IsDeleted ones excluded
    papers_with_file: int | None = None  # … with a file (DuongDanTaiTepTin or TepDinhKemId)
    papers_digitised: int | None = None  # … DuocSoHoa
    papers_reused: int | None = None  # … DuocTaiSuDung
    papers_from_national_store: int | None = None  # … DuocLayTuKhoDMQG
    fees_count: int | None = None  # DanhSachLePhi entries
    fees_total: Decimal | None = None  # sum of their readable Gia, in dong
    fees_all_zero: bool | None = None  # every fee stated as 0 (None: no fees or unreadable)
    results_total: int | None = None  # DanhSachGiayToKetQua entries
    results_with_file: int | None = None  # … with DuongDanTepTinKetQua
    databases: tuple[str, ...] | None = None  # DSKetNoiCSDL MaCSDL codes, in sent order
    vneid_verified: bool | None = None  # TaiKhoanDuocXacThucVoiVNeID
    has_digitised_parts: bool | None = None  # HoSoCoThanhPhanSoHoa
    submitted_where: str | None = None  # NoiNopHoSo, as sent (scrubbed)
    submitted_at: datetime | None = None  # NgayNopHoSo
    refused_at: datetime | None = None  # NgayTuChoi
    payment_code: str | None = None  # DuocThanhToanTrucTuyen as sent: "0".."3" or other
    result_return: str | None = None  # HinhThuc as sent: "0" at the desk, "1" by post
    applicant_kind: int | None = None  # LoaiDoiTuong: 1 citizen, 2 business, …

    def merged_over(self, older: DossierFacts) -> DossierFacts:
        """These facts, completed by ``older`` where this record said nothing."""
        values: dict[str, Any] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            values[field.name] = getattr(older, field.name) if value is None else value
        return DossierFacts(**values)


def _code_as_sent(reader: ValueReader, value: Any, path: str) -> str | None:
    text = reader.text(value, path)
    if text is None:
        return None
    if len(text) > _CODE_CHARS:
        reader.note(f"{path}: {shown(text)} is longer than {_CODE_CHARS} characters; cut")
    return scrubbed(text[:_CODE_CHARS])


def _count(entries: list[tuple[int, Mapping[str, Any]]], test: Any) -> int:
    return sum(1 for j, entry in entries if test(j, entry))


def _papers(
    reader: ValueReader, raw: Mapping[str, Any]
) -> tuple[int | None, int | None, int | None, int | None, int | None]:
    entries = reader.entries(raw.get(PAPERS), PAPERS)
    if entries is None:
        return None, None, None, None, None
    kept = [
        (j, entry)
        for j, entry in entries
        if not reader.flag(entry.get("IsDeleted"), f"{PAPERS}/{j}/IsDeleted")
    ]

    def has(name: str) -> Any:
        return lambda j, entry: reader.flag(entry.get(name), f"{PAPERS}/{j}/{name}") is True

    def with_file(j: int, entry: Mapping[str, Any]) -> bool:
        return any(
            reader.text(entry.get(name), f"{PAPERS}/{j}/{name}")
            for name in ("DuongDanTaiTepTin", "TepDinhKemId")
        )

    return (
        len(kept),
        _count(kept, with_file),
        _count(kept, has("DuocSoHoa")),
        _count(kept, has("DuocTaiSuDung")),
        _count(kept, has("DuocLayTuKhoDMQG")),
    )


def _fees(
    reader: ValueReader, raw: Mapping[str, Any]
) -> tuple[int | None, Decimal | None, bool | None]:
    entries = reader.entries(raw.get(FEES), FEES)
    if entries is None:
        return None, None, None
    amounts = [reader.amount(entry.get("Gia"), f"{FEES}/{j}/Gia") for j, entry in entries]
    known = [amount for amount in amounts if amount is not None]
    if any(amount > 0 for amount in known):
        all_zero: bool | None = False
    elif known and len(known) == len(amounts):
        all_zero = True
    else:
        all_zero = None  # no fees listed, or a price left blank: nobody knows
    return len(entries), sum(known, Decimal(0)), all_zero


def _results(reader: ValueReader, raw: Mapping[str, Any]) -> tuple[int | None, int | None]:
    entries = reader.entries(raw.get(RESULTS), RESULTS)
    if entries is None:
        return None, None
    with_file = _count(
        entries,
        lambda j, entry: bool(
            reader.text(entry.get("DuongDanTepTinKetQua"), f"{RESULTS}/{j}/DuongDanTepTinKetQua")
        ),
    )
    return len(entries), with_file


def _databases(reader: ValueReader, raw: Mapping[str, Any]) -> tuple[str, ...] | None:
    value = raw.get(DATABASES)
    if value is None:
        return None
    if not isinstance(value, list):
        reader.entries(value, DATABASES)  # notes the wrong type
        return None
    codes: list[str] = []
    for j, entry in enumerate(value):
        # Producers send [{"MaCSDL": "..."}]; a bare list of codes means the same.
        path = f"{DATABASES}/{j}/MaCSDL" if isinstance(entry, Mapping) else f"{DATABASES}/{j}"
        code = reader.text(entry.get("MaCSDL") if isinstance(entry, Mapping) else entry, path)
        if code is None:
            continue
        if not _DATABASE_CODE.fullmatch(code):
            reader.note(f"{path}: {shown(code)} is not a code; ignored")
        elif code not in codes:
            codes.append(code)
    return tuple(codes)


def read_facts(raw: Mapping[str, Any], reader: ValueReader) -> DossierFacts:
    """The index facts of one record; what cannot be read is left unknown, with a note."""
    papers_total, with_file, digitised, reused, national = _papers(reader, raw)
    fees_count, fees_total, fees_all_zero = _fees(reader, raw)
    results_total, results_with_file = _results(reader, raw)
    where = reader.text(raw.get("NoiNopHoSo"), "NoiNopHoSo")
    return DossierFacts(
        papers_total=papers_total,
        papers_with_file=with_file,
        papers_digitised=digitised,
        papers_reused=reused,
        papers_from_national_store=national,
        fees_count=fees_count,
        fees_total=fees_total,
        fees_all_zero=fees_all_zero,
        results_total=results_total,
        results_with_file=results_with_file,
        databases=_databases(reader, raw),
        vneid_verified=reader.flag(
            raw.get("TaiKhoanDuocXacThucVoiVNeID"), "TaiKhoanDuocXacThucVoiVNeID"
        ),
        has_digitised_parts=reader.flag(raw.get("HoSoCoThanhPhanSoHoa"), "HoSoCoThanhPhanSoHoa"),
        submitted_where=scrubbed(where)[:_TEXT_CHARS] if where else None,
        submitted_at=reader.time(raw.get("NgayNopHoSo"), "NgayNopHoSo"),
        refused_at=reader.time(raw.get("NgayTuChoi"), "NgayTuChoi"),
        payment_code=_code_as_sent(
            reader, raw.get("DuocThanhToanTrucTuyen"), "DuocThanhToanTrucTuyen"
        ),
        result_return=_code_as_sent(reader, raw.get("HinhThuc"), "HinhThuc"),
        applicant_kind=reader.small_int(raw.get("LoaiDoiTuong"), "LoaiDoiTuong"),
    )
