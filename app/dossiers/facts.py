"""The facts of a dossier that feed the service index: counts, totals, flags, codes and dates
its producer stated — never the people (no names, phones, e-mails, identity numbers, file
addresses, nor who handled the dossier). Pure: the SQL is in
:mod:`app.dossiers.facts_repository`.

Events sent to the API state them in ``facts``; portal records carry them in their own fields
(read by ``app.portal.facts``). ``None`` means "the producer did not say": a list field absent
or ``null`` leaves its counts unknown, which is not the same as an empty list (zero papers).
Producers send different subsets of the record, so the indicators built on these facts must
tell the two apart.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any


@dataclass(slots=True)  # one per record, thousands a call: a frozen __init__ costs 4 × as much
class DossierFacts:
    """One dossier's index facts as its latest record states them. Not changed once read:
    :meth:`merged_over` makes new facts."""

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
