"""The scrubber against identity data in the shapes people type it, and against everything
that looks like a number but is not personal (codes, dates, money): exact input → output."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.cli import load_reference_data
from app.core.database import create_sessionmaker
from app.core.settings import Settings
from app.dossiers.privacy import scrub, scrub_value
from app.portal.client import PortalClient, PortalSource, RetryPolicy
from app.portal.records import minimised
from app.portal.simulator import SIMULATOR_UNITS_CSV, PortalSimulator
from app.portal.sync import sync_source
from app.units.service import load_units
from tests.helpers import ADMIN, vn

# (what a clerk typed, what may be kept). Labels stay: they say what was there, not whose.
CORPUS = [
    # Citizen identity cards (CCCD, 12 digits) and old identity cards (CMND, 9 digits).
    ("CCCD 079.085.001.234", "CCCD [id]"),
    ("CMND 0790 8500 1234", "CMND [id]"),
    ("CCCD: 079-085-001-234", "CCCD: [id]"),
    ("cccd 079085001234", "cccd [id]"),
    ("Số định danh cá nhân: 079085001234", "Số định danh cá nhân: [id]"),
    ("ĐDCN 079 085 001 234", "ĐDCN [id]"),
    ("CMND/CCCD: 079085001234.", "CMND/CCCD: [id]."),
    ("CMT số 025123456", "CMT số [id]"),
    ("CMND 025.123.456 cấp ngày 02/03/2026", "CMND [id] cấp ngày 02/03/2026"),
    ("CC 187-654-321", "CC [id]"),
    ("anh An 079085001234 đồng ý", "anh An [id] đồng ý"),
    ("CMND 187654321 500.000 đồng", "CMND [id] 500.000 đồng"),
    ("https://dvc.example.vn/tra-cuu/079085001234", "https://dvc.example.vn/tra-cuu/[id]"),
    # Passports: a letter and 7 digits.
    ("hộ chiếu C1234567", "hộ chiếu [id]"),
    ("HC: B 1234567", "HC: [id]"),
    ("passport N1234567.", "passport [id]."),
    ("số hộ chiếu là c1234567", "số hộ chiếu là [id]"),
    ("đã nộp C1234567 bản gốc", "đã nộp [id] bản gốc"),
    # Mobiles, international and national.
    ("+84 912 345 678", "[phone]"),
    ("+84-912-345-678", "[phone]"),
    ("(+84) 912345678", "[phone]"),
    ("+84912345678", "[phone]"),
    ("+84 (0) 912 345 678", "[phone]"),
    ("+84 0912 345 678", "[phone]"),
    ("84 912 345 678", "[phone]"),
    ("0084 912 345 678", "[phone]"),
    ("0912.345.678", "[phone]"),
    ("0912 345 678", "[phone]"),
    ("091 234 5678", "[phone]"),
    ("0912-345-678", "[phone]"),
    ("0912\u00a0345\u00a0678", "[phone]"),
    ("SĐT:0912345678", "SĐT:[phone]"),
    ("ĐT 0912345678, 0987 654 321", "ĐT [phone], [phone]"),
    ("ĐT: 0912345678/0987654321", "ĐT: [phone]/[phone]"),
    ("0912345678-0987654321", "[phone]-[phone]"),
    ("(0912345678)", "([phone])"),
    ("gọi 0912 345 678 2 lần", "gọi [phone] 2 lần"),
    ("Phòng 3 0912 345 678", "Phòng 3 [phone]"),
    ("gọi 0912345678-anh An", "gọi [phone]-anh An"),
    ("Liên hệ anh An 0912345678 (Zalo)", "Liên hệ anh An [phone] (Zalo)"),
    # Landlines.
    ("024 3825 3535", "[phone]"),
    ("(028) 3829 1234", "[phone]"),
    ("(024)38253535", "[phone]"),
    ("+84 24 3825 3535", "[phone]"),
    ("ĐT cơ quan: 028.3829.1234", "ĐT cơ quan: [phone]"),
    # Tax codes: 10 digits, or 10 + branch; a person's is their CCCD number, hence [id].
    ("MST 0101234567", "MST [id]"),
    ("mã số thuế 0101234567-001", "mã số thuế [id]"),
    ("MST 0312345678", "MST [id]"),
    ("MST: 0101234567001", "MST: [id]"),
    ("Công ty có MST 0101234567-001, ĐT 024 3825 3535", "Công ty có MST [id], ĐT [phone]"),
    # E-mail addresses, plain and disguised.
    ("ten.ho+x@sub.gov.vn", "[email]"),
    ("Gửi về nguyen.van.an@example.vn.", "Gửi về [email]."),
    ("an.nguyen [at] gmail [dot] com", "[email]"),
    ("an (at) example.vn", "[email]"),
    ("0912345678@gmail.com", "[email]"),
    # Other identity numbers.
    ("thẻ BHYT DN4010123456789", "thẻ BHYT [id]"),
    ("STK 1234 5678 9012 3456", "STK [id]"),
    ("STK 19036512345018", "STK [id]"),
    # Everything at once, as a note is written.
    (
        "Email: nguyen.van.an@example.vn; ĐT: +84 912 345 678; CCCD: 079085001234",
        "Email: [email]; ĐT: [phone]; CCCD: [id]",
    ),
    (
        "Ông Nguyễn Văn An (CCCD 079.085.001.234, hộ chiếu C1234567) nộp hồ sơ "
        "H01.01-260302-0042 ngày 02/03/2026 lúc 08:30, lệ phí 150.000 đồng; "
        "liên hệ 0912 345 678 hoặc an [at] example [dot] vn.",
        "Ông Nguyễn Văn An (CCCD [id], hộ chiếu [id]) nộp hồ sơ "
        "H01.01-260302-0042 ngày 02/03/2026 lúc 08:30, lệ phí 150.000 đồng; "
        "liên hệ [phone] hoặc [email].",
    ),
]

# Numbers that are not personal and must come through unchanged, alone and inside prose.
MUST_NOT_SCRUB = [
    "H15.50.05.13-261008-0975",  # dossier codes
    "000.00.12.H01-261123-48213",
    "H01.01-260302-0042",
    "1.001022",  # procedure codes
    "1.001022.000.00.00.H01",
    "20260302",  # dates and times
    "2026-03-02",
    "02/03/2026",
    "08:30",
    "2026-03-02 08:30:00",
    "20260302080000",  # the portal's compact time
    "1.500.000 đồng",  # money
    "150000",
    "150.000.000 VNĐ",
    "100 000 000 đồng",
    "1.500.000.000đ",
    "G09-TP05",  # field codes
    "Nghị định 61/2018/NĐ-CP",  # legal documents
    "766/QĐ-TTg",
    "Quyết định 123456789/QĐ-UBND",
    "Hotline 1900 1234",  # hotlines belong to offices, not people
    "Tổng đài 1800 1091",
    "Tổng đài 1900 54 54 54",
    "Phòng 3, tầng 2, số 12 Lê Lợi",
    "Bổ sung 2 bản sao, 1 bản chính",
    "Đã nộp [id], liên hệ [phone], [email]",  # already scrubbed: stable
]


@pytest.mark.parametrize(("typed", "kept"), CORPUS, ids=[c[0][:40] for c in CORPUS])
def test_identity_data_is_replaced_in_every_shape(typed: str, kept: str) -> None:
    assert scrub(typed) == kept


def test_the_corpus_covers_at_least_thirty_formats() -> None:
    assert len(CORPUS) >= 30
    assert len({typed for typed, _ in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("text", MUST_NOT_SCRUB)
def test_codes_dates_and_money_are_kept(text: str) -> None:
    assert scrub(text) == text
    sentence = f"Hồ sơ ghi: {text}. Xong"
    assert scrub(sentence) == sentence


def test_scrubbing_twice_changes_nothing_more() -> None:
    for typed, kept in CORPUS:
        assert scrub(kept) == kept, typed


def test_json_values_are_scrubbed_whatever_their_type() -> None:
    value = {
        "a": "CCCD 079085001234",
        "b": 79085001234,  # a CCCD sent as a number has lost its leading zero
        "c": [912345678, "gọi 0912.345.678", None, True, 150000, 1.5],
        "0912345678": {"d": "an@example.vn"},
    }
    assert scrub_value(value) == {
        "a": "CCCD [id]",
        "b": "[id]",
        "c": ["[id]", "gọi [phone]", None, True, 150000, 1.5],
        "[phone]": {"d": "[email]"},
    }


def test_a_quarantined_record_keeps_no_identity_data_in_any_field() -> None:
    raw = {
        "MaHoSo": "H01.01-260302-0042",
        "MaTTHC": "1.001022",
        "TenTTHC": "Cấp bản sao, người nộp CCCD 079.085.001.234",
        "KenhThucHien": "2",
        "LoaiDoiTuong": 79085001234,
        "NgayTiepNhan": "gọi 0912 345 678",
        "TrangThaiHoSo": "5",
        "DanhSachHoSoBoSung": [
            {"NgayBoSung": "20260303100000", "NgayHenTraMoi": "hẹn 0987.654.321",
             "LyDo": "gọi 0912345678"},
            "an@example.vn",
        ],
        "ChuHoSo": "Nguyễn Văn An",
        "SoCCCD": "079085001234",
    }  # fmt: skip
    assert minimised(raw) == {
        "MaHoSo": "H01.01-260302-0042",
        "MaTTHC": "1.001022",
        "TenTTHC": "Cấp bản sao, người nộp CCCD [id]",
        "KenhThucHien": "2",
        "LoaiDoiTuong": "[id]",
        "NgayTiepNhan": "gọi [phone]",
        "TrangThaiHoSo": "5",
        "DanhSachHoSoBoSung": [
            {"NgayBoSung": "20260303100000", "NgayHenTraMoi": "hẹn [phone]"},
            None,
        ],
    }
    assert minimised("CCCD 079085001234") == "CCCD [id]"
    assert minimised([{"MaHoSo": "X", "Email": "an@example.vn"}, 79085001234]) == [
        {"MaHoSo": "X"},
        "[id]",
    ]


async def test_a_sync_quarantines_malformed_records_scrubbed(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    async with create_sessionmaker(engine)() as session:
        await load_reference_data(session)  # the simulator's provinces and procedures
        await session.commit()

    class Garbling(PortalSimulator):
        """A producer whose first record has personal data typed into its fields."""

        def _generate(self, index: int) -> dict[str, Any]:
            record = super()._generate(index)
            if index == 0:
                record.update({
                    "TenTTHC": "Cấp bản sao trích lục hộ tịch (HC B 1234567)",
                    "NgayTiepNhan": "ngày 0912 345 678",
                    "TrangThaiHoSo": "gọi 0912 345 678",  # cannot be a status: refused
                    "DanhSachHoSoBoSung": [{"NgayBoSung": "gọi +84 912 345 678",
                                            "LyDo": "CCCD 079085001234"}],
                    "SoDienThoai": "0912345678",
                })  # fmt: skip
            return record

    sim = Garbling(dossiers=2, seed=1, now=vn("2026-03-20 10:00"))
    async with create_sessionmaker(engine)() as session:  # the simulator's units resolve
        await load_units(session, SIMULATOR_UNITS_CSV.read_text(encoding="utf-8"))
        await session.commit()
    source = PortalSource(name="scrub", base_url="http://portal", username="chiso",
                          password="chiso-sim", page_size=10)  # fmt: skip
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app())) as http:
        report = await sync_source(
            create_sessionmaker(engine), settings, PortalClient(source, http, RetryPolicy()),
            lambda: datetime(2026, 3, 20, 3, 0),
        )  # fmt: skip
    assert report.quarantined == 1, report

    listed = await client.get("/v1/portal/quarantine", headers=ADMIN)
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["items"]
    assert item["raw"]["TenTTHC"] == "Cấp bản sao trích lục hộ tịch (HC [id])"
    assert item["raw"]["NgayTiepNhan"] == "ngày [phone]"
    assert item["raw"]["TrangThaiHoSo"] == "gọi [phone]"
    assert item["raw"]["DanhSachHoSoBoSung"] == [{"NgayBoSung": "gọi [phone]"}]
    assert "SoDienThoai" not in item["raw"] and "ChuHoSo" not in item["raw"]
    text = listed.text
    assert not [s for s in ("0912", "912 345", "1234567", "079085001234") if s in text], text


# Inputs built to make a backtracking pattern take exponential (or quadratic) time.
_KB100 = 100_000
HOSTILE = {
    "digits and spaces": "1 " * (_KB100 // 2),
    "digits and dots": "1." * (_KB100 // 2),
    "word characters": "a" * _KB100,
    "at signs": "a@" * (_KB100 // 2),
    "dotted local part": "a." * (_KB100 // 2) + "@",
    "disguised at": "a [at] " * (_KB100 // 7),
    "disguised dots": "a [at] b" + " [dot] b" * (_KB100 // 8) + " x",
    "plus eighty-four": "+84 " * (_KB100 // 4),
    "open parentheses": "(0" * (_KB100 // 2),
    "area codes": "(028) " * (_KB100 // 6),
    "one long number": "9" * _KB100,
    "phones": "0912 345 678 " * (_KB100 // 13),
    "labels": "CCCD " * (_KB100 // 5) + "1",
    "spaces before at": "a" + " " * _KB100 + "@",
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_input_of_100_kb_finishes(name: str) -> None:
    result: list[str] = []
    worker = threading.Thread(target=lambda: result.append(scrub(HOSTILE[name])), daemon=True)
    worker.start()
    # A guard against catastrophic backtracking (minutes or more), not a timing assertion:
    # each takes well under a second.
    worker.join(timeout=5)
    assert not worker.is_alive(), f"scrubbing {name!r} did not finish within 5 s"
    if name == "phones":
        assert result == ["[phone] " * (_KB100 // 13)]
    elif name in ("digits and spaces", "digits and dots", "word characters", "one long number"):
        assert result == [HOSTILE[name]]
