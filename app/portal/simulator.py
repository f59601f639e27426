"""A portal adapter simulator that speaks what real one-stop systems speak, for development, demos
and tests.

It answers ``POST {auth_path}`` (login) and ``POST {integration_path}`` with the portal's envelope
and ``error_code``s, serving the listing of changed dossiers (chiso's convention: name and paging
fields from :class:`~app.portal.client.AdapterProtocol`; an opaque cursor), ``TraCuuHoSo`` and
``LayThuTuc``; ``GET /service-results`` serves published index results.

Its dossiers are in the shapes real producers send (docs/PORTAL.md): ``MaHoSo`` is
``{unit identifier}-{yyMMdd of receipt}-{sequence}``, units are named only by that identifier
(no ``MaDonVi``), ``MaTTHC`` is a national code or its local variant, half the records come as an
OpenCPS-style producer sends them (``HinhThuc``, no ``KenhThucHien``) and half as a .NET one does
(``null`` for empty values, ISO dates inside ``DanhSachHoSoBoSung``), with the list fields, the
applicant's personal data (fake, but where real producers put it: chiso must drop it) and the gaps
real producers leave (a terminal status without its end date). Every time is in office hours of a
working day of the shipped calendar, and never after ``now``. Units come from
``simulator_units.csv`` (``code,name,level,parent_code,identifier``: load it with
``chiso units load`` so that chiso resolves the identifiers).

A dossier's record is a pure function of the seed and its index, generated when asked for, so a
million dossiers cost little memory; fault knobs add latency, 5xx and 429, expiring sessions,
malformed records, unmapped unit identifiers and a repeated page.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import copy
import csv
import io
import json
import random
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.calendar.data import load_shipped_overrides
from app.calendar.workdays import LimitUnit, WorkingCalendar
from app.portal.client import (
    LOOKUP_SERVICE,
    MAX_PAGE_SIZE,
    PROCEDURE_SERVICE,
    AdapterProtocol,
)
from app.portal.envelope import PortalCode
from app.portal.records import PORTAL_TZ

REFERENCE = Path(__file__).resolve().parents[1]
PROCEDURES_CSV = REFERENCE / "procedures" / "reference" / "sample-procedures.csv"
PROVINCES_CSV = REFERENCE / "units" / "reference" / "provinces-2026.csv"
SIMULATOR_UNITS_CSV = Path(__file__).with_name("simulator_units.csv")
GROUPS = {"CKMB": 18, "TDGQ": 20, "CLGQ": 12, "TTTT": 10, "MDHL": 18, "MDSH": 22}
WINDOW_DAYS = 45  # receipts spread over the last 45 days

MESSAGES = {
    PortalCode.success: "Thành công",
    PortalCode.session: "Phiên làm việc không hợp lệ hoặc đã hết hạn, vui lòng đăng nhập lại",
    PortalCode.credentials: "Sai tên đăng nhập hoặc mật khẩu",
    PortalCode.unknown_service: "Dịch vụ không được hỗ trợ",
    PortalCode.malformed: "Yêu cầu không đúng định dạng",
    PortalCode.unavailable: "Hệ thống đang bận, vui lòng thử lại sau",
    PortalCode.unknown_unit: "Không tìm thấy đơn vị",
}

# What a producer's own screens call the statuses (sent by one whose mapping is broken).
STATUS_LABELS = {
    "1": "Mới đăng ký", "2": "Đã tiếp nhận", "3": "Không được tiếp nhận", "4": "Đang xử lý",
    "5": "Yêu cầu bổ sung", "6": "Chờ thực hiện nghĩa vụ tài chính", "7": "Rút hồ sơ",
    "8": "Dừng xử lý", "9": "Đã xử lý xong", "10": "Đã trả kết quả",
}  # fmt: skip

# Portal-style field codes and names for the sample catalog's fields (illustrative, in the
# shape of the portal's codes: chiso's own field codes are not what producers send).
PORTAL_FIELDS = {
    "HOTICH": ("G09-TP05", "Hộ tịch"),
    "CHUNGTHUC": ("G09-TP02", "Chứng thực"),
    "HOKINHDOANH": ("G05-KH09", "Thành lập và hoạt động của hộ kinh doanh"),
    "LYLICHTUPHAP": ("G09-TP06", "Lý lịch tư pháp"),
    "XAYDUNG": ("G13-XD03", "Hoạt động xây dựng"),
    "DATDAI": ("G12-TN01", "Đất đai"),
    "KHIEUNAI": ("G16-TT02", "Giải quyết khiếu nại"),
    "TAINGUYENNUOC": ("G12-TN05", "Tài nguyên nước"),
    "VANHOA": ("G18-VH02", "Văn hóa cơ sở"),
}
# Which fields a unit handles: a commune's, or a department's by what its name says it is.
COMMUNE_FIELDS = {"HOTICH", "CHUNGTHUC", "HOKINHDOANH", "DATDAI", "KHIEUNAI"}
DEPARTMENT_FIELDS = {
    "Tư pháp": {"LYLICHTUPHAP", "CHUNGTHUC"},
    "Xây dựng": {"XAYDUNG"},
    "Nông nghiệp và Môi trường": {"DATDAI", "TAINGUYENNUOC"},
    "Văn hóa": {"VANHOA"},
}


@dataclass
class Faults:
    latency: float = 0.0  # seconds added to every request
    error_rate: float = 0.0  # share of requests answered with a 5xx (503: error_code 8)
    burst_every: int = 0  # every N-th request starts a burst of 429s (0 = never)
    burst_length: int = 3
    retry_after: int = 1  # seconds, on 429 and 503
    session_calls: int = 0  # a session expires after this many service calls (0 = never)
    malformed_rate: float = 0.0  # share of records with a status label and dd/MM/yyyy dates
    unmapped_rate: float = 0.0  # share of records from a unit identifier no units file lists
    repeat_page_at: int = 0  # the N-th listing call repeats the previous page (0 = never)


@dataclass(frozen=True, slots=True)
class SimulatedUnit:
    identifier: str  # what the portal names it by: the MaHoSo prefix
    name: str
    province: str  # the ``Hxx`` part, for local procedure variants
    level: str | None = None  # None: handles every procedure
    code: str | None = None  # chiso's code, when the units file gives one


@dataclass(frozen=True, slots=True)
class SimulatedProcedure:
    code: str  # national form
    name: str
    field_code: str  # the catalog's field, for which units handle it
    portal_field: tuple[str, str]  # MaLinhVuc, TenLinhVuc
    limit: Decimal
    limit_unit: LimitUnit
    has_fees: bool
    in_catalog: bool  # shipped with chiso (else chiso learns it from the records)


# Procedures chiso does not ship: it learns them from the records, deadlines from NgayHenTra.
NOT_IN_CATALOG = (
    SimulatedProcedure("1.001699", "Xác nhận thông tin hộ tịch", "HOTICH",
                       PORTAL_FIELDS["HOTICH"], Decimal(3), LimitUnit.WORKING_DAYS, True, False),
    SimulatedProcedure("2.000488", "Cấp Giấy phép kinh doanh dịch vụ karaoke", "VANHOA",
                       PORTAL_FIELDS["VANHOA"], Decimal(5), LimitUnit.WORKING_DAYS, True, False),
)  # fmt: skip

_PROVINCE_PART = re.compile(r"H[0-9]{2}")


def load_units(path: Path = SIMULATOR_UNITS_CSV) -> list[SimulatedUnit]:
    """The simulated units from a ``code,name,level,parent_code,identifier`` CSV."""
    rows = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")))
    units = []
    for row in rows:
        identifier = row["identifier"].strip()
        last = identifier.rsplit(".", 1)[-1]
        province = last if _PROVINCE_PART.fullmatch(last) else (row.get("parent_code") or "")
        units.append(
            SimulatedUnit(
                identifier=identifier,
                name=row["name"].strip(),
                province=province.strip(),
                level=(row.get("level") or "").strip() or None,
                code=(row.get("code") or "").strip() or None,
            )
        )
    return units


def _plain_unit(prefix: str) -> SimulatedUnit:
    # A bare MaHoSo prefix (a chiso code, say): the province is its first H-part, if any.
    head = re.split(r"[.]", prefix)
    province = next((p for p in reversed(head) if _PROVINCE_PART.fullmatch(p)), "")
    return SimulatedUnit(identifier=prefix, name=prefix, province=province)


def _procedures() -> list[SimulatedProcedure]:
    rows = csv.DictReader(io.StringIO(PROCEDURES_CSV.read_text(encoding="utf-8")))
    shipped = [
        SimulatedProcedure(
            code=r["code"],
            name=r["name"],
            field_code=r["field_code"],
            portal_field=PORTAL_FIELDS.get(r["field_code"], (r["field_code"], r["field_code"])),
            limit=Decimal(r["limit_value"]),
            limit_unit=LimitUnit(r["limit_unit"]),
            has_fees=r["has_fees"] == "true",
            in_catalog=True,
        )
        for r in rows
    ]
    return [*shipped, *NOT_IN_CATALOG]


def _provinces() -> list[tuple[str, str]]:
    rows = csv.DictReader(io.StringIO(PROVINCES_CSV.read_text(encoding="utf-8")))
    return [(r["code"], r["name"]) for r in rows]


def _compact(instant: datetime | None) -> str:
    if instant is None:
        return ""
    t = instant.astimezone(PORTAL_TZ)  # yyyyMMddHHmmss (by hand: strftime is slow here)
    return f"{t.year:04d}{t.month:02d}{t.day:02d}{t.hour:02d}{t.minute:02d}{t.second:02d}"


def _iso(instant: datetime | None) -> str | None:
    # How a .NET producer serialises a DateTime: ISO 8601, local time, no zone.
    return instant.astimezone(PORTAL_TZ).strftime("%Y-%m-%dT%H:%M:%S") if instant else None


def _hours(value: float) -> timedelta:
    return timedelta(hours=value)


# --- fake applicants: realistic shapes, generated (never real people) ---------------------------

_FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Huỳnh", "Hoàng", "Võ", "Đặng", "Bùi", "Đỗ", "Ngô")
_MIDDLE = ("Văn", "Thị", "Minh", "Thanh", "Ngọc", "Hữu", "Thu", "Quốc", "Kim")
_GIVEN = ("An", "Bình", "Châu", "Dũng", "Giang", "Hà", "Hùng", "Lan", "Linh", "Nam", "Phúc",
          "Quyên", "Sơn", "Tâm", "Trang", "Tuấn", "Vy", "Yến")  # fmt: skip
_ASCII = str.maketrans(
    "àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ",
    "aaaaaaaaaaaaaaaaaeeeeeeeeeeeiiiiiooooooooooooooooouuuuuuuuuuuyyyyyd",
)
_PAPERS = ("Tờ khai", "Bản sao Căn cước công dân", "Giấy ủy quyền", "Bản vẽ hiện trạng",
           "Giấy chứng nhận quyền sử dụng đất", "Đơn đề nghị")  # fmt: skip


def _person(rng: random.Random) -> dict[str, Any]:
    name = f"{rng.choice(_FAMILY)} {rng.choice(_MIDDLE)} {rng.choice(_GIVEN)}"
    born = rng.randrange(1950, 2006)
    # CCCD: 3-digit province of birth, a century-and-sex digit, 2-digit year, 6 digits.
    cccd = (
        f"0{rng.randrange(1, 96):02d}{rng.choice('0123')}{born % 100:02d}{rng.randrange(10**6):06d}"
    )
    handle = "".join(name.lower().translate(_ASCII).split()[::-1][:2]) + f"{born % 100:02d}"
    return {
        "ChuHoSo": name,
        "SoGiayToChuHoSo": cccd,
        "SoDienThoai": f"0{rng.choice('35789')}{rng.randrange(10**8):08d}",
        "Email": f"{handle}@example.com" if rng.random() < 0.6 else "",
    }


@dataclass(slots=True, eq=False)
class SimulatedDossier:
    """One dossier of the simulated portal and its place in the change sequence."""

    index: int
    seq: int
    source: Callable[[int], dict[str, Any]] = field(repr=False)
    changed: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def record(self) -> dict[str, Any]:
        """The record, kept from now on: changes made through it are what the portal serves."""
        if self.changed is None:
            self.changed = self.source(self.index)
        return self.changed

    def current(self) -> dict[str, Any]:
        """The record as served (not to be changed: it may be the kept one)."""
        return self.changed if self.changed is not None else self.source(self.index)


@dataclass
class PortalSimulator:
    """The simulated portal's state: its dossiers, sessions and fault counters."""

    dossiers: int = 500
    seed: int = 2026
    now: datetime | None = None
    units: list[str] | None = None  # MaHoSo prefixes instead of the units file's identifiers
    username: str = "chiso"
    password: str = "chiso-sim"  # noqa: S105 - a simulator's well-known demo password
    faults: Faults = field(default_factory=Faults)
    protocol: AdapterProtocol = field(default_factory=AdapterProtocol)
    units_file: Path = SIMULATOR_UNITS_CSV
    _items: list[SimulatedDossier] = field(init=False, default_factory=list)
    _sessions: dict[str, int] = field(init=False, default_factory=dict)
    _requests: int = field(init=False, default=0)
    _burst_left: int = field(init=False, default=0)
    _listing_calls: int = field(init=False, default=0)
    _last_page: dict[str, Any] | None = field(init=False, default=None)
    _seq: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 - simulation, not security
        self.now = (self.now or datetime.now(PORTAL_TZ)).astimezone(PORTAL_TZ)
        self.calendar = WorkingCalendar(tz=PORTAL_TZ, overrides=load_shipped_overrides())
        self._procedures = _procedures()
        self._catalog = {p.code: p for p in self._procedures}
        self._unit_list = (
            [_plain_unit(u) for u in self.units] if self.units else load_units(self.units_file)
        )
        self._by_identifier = {u.identifier: u for u in self._unit_list}
        self._handled = {
            u.identifier: [p for p in self._procedures if self._handles(u, p)] or self._procedures
            for u in self._unit_list
        }
        self._province_names = dict(_provinces())
        # Receipts fall uniformly over the office time of the window, up to now.
        self._window_start = self.calendar.next_opening(self.now - timedelta(days=WINDOW_DAYS))
        self._window = self.calendar.working_time_between(self._window_start, self.now)
        self._latest = self.last_office_instant(self.now)
        self._position = {u.identifier: n for n, u in enumerate(self._unit_list)}
        generate = self._generate
        self._items = [
            SimulatedDossier(index, self._next_seq(), generate) for index in range(self.dossiers)
        ]
        self._by_index = list(self._items)  # _items is reordered by change; this is not

    # --- data ------------------------------------------------------------------------------

    @staticmethod
    def _handles(unit: SimulatedUnit, procedure: SimulatedProcedure) -> bool:
        if unit.level == "commune":
            return procedure.field_code in COMMUNE_FIELDS
        if unit.level == "department":
            fields = [f for kind, f in DEPARTMENT_FIELDS.items() if kind in unit.name]
            return not fields or procedure.field_code in fields[0]
        return True

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def last_office_instant(self, instant: datetime) -> datetime:
        """The latest instant ≤ ``instant`` within office hours of a working day."""
        local = instant.astimezone(PORTAL_TZ)
        day = local.date()
        while True:
            if self.calendar.is_working_day(day):
                for start, end in reversed(self.calendar.office_hours.intervals):
                    opening = datetime.combine(day, start, tzinfo=PORTAL_TZ)
                    closing = datetime.combine(day, end, tzinfo=PORTAL_TZ)
                    if opening <= local:
                        return min(local, closing)
            day -= timedelta(days=1)
            local = datetime.combine(day, time(23, 59, 59), tzinfo=PORTAL_TZ)

    def _after(self, start: datetime, office_time: timedelta) -> datetime:
        return self.calendar.add_working_time(start, max(office_time, timedelta(0)))

    def _rng_of(self, index: int) -> random.Random:
        return random.Random(self.seed * 10_000_019 + index)  # noqa: S311 - simulation

    def _identifier_of(self, index: int, rng: random.Random | None = None) -> str:
        """The MaHoSo prefix of dossier ``index``, without generating its record. ``rng`` is the
        dossier's own, before its first draw (the draw that decides this)."""
        unit = self._unit_list[index % len(self._unit_list)]
        rate = self.faults.unmapped_rate
        if rate and (rng or self._rng_of(index)).random() < rate:
            # A unit the province never listed: chiso keeps its records in quarantine.
            return f"000.00.99.{unit.province or 'H00'}"
        return unit.identifier

    def _generate(self, index: int) -> dict[str, Any]:
        """The record of dossier ``index``: the same for the same seed, whatever else is asked."""
        assert self.now is not None
        rng = self._rng_of(index)
        now = self.now
        unit = self._unit_list[index % len(self._unit_list)]
        identifier = self._identifier_of(index, rng)
        procedure = rng.choice(self._handled[unit.identifier])
        dotnet = rng.random() < 0.5  # which producer's habits this record has
        channel = rng.choices(("1", "2", "3"), weights=(50, 45, 5))[0]

        submitted = self._after(self._window_start, self._window * rng.random())
        received: datetime | None = submitted
        if channel != "1":  # online and postal dossiers reach the desk later
            received = self._after(submitted, _hours(rng.uniform(0.25, 12)))
        if received is not None and received > now:
            received = None  # submitted online, not yet received (status 1)
        due = (
            self.calendar.due_at(received, procedure.limit, procedure.limit_unit)
            if received
            else None
        )

        status = "1"
        finished = returned = refused = None
        supplements: list[dict[str, Any]] = []
        results: list[dict[str, Any]] = []
        if received is not None and due is not None:
            budget = self.calendar.working_time_between(received, due)
            roll = rng.random()
            if roll < 0.02:  # not accepted at the desk
                refused = self._after(received, _hours(rng.uniform(0.1, 4)))
                status = "3"
            elif roll < 0.035:  # withdrawn at the applicant's request, or stopped
                finished = self._after(received, budget * rng.uniform(0.1, 0.6))
                status = "7" if roll < 0.028 else "8"
            elif roll < 0.045:  # waiting for the applicant's financial obligation
                status = "6"
            else:
                status, finished, returned, supplements = self._processed(
                    rng, received, due, budget, dotnet
                )
            if (refused and refused > now) or (finished and finished > now):
                refused = finished = None  # that step lies ahead: still in processing
                status = "4"
            if status in ("9", "10"):
                results = self._results(rng, procedure, finished)

        code = procedure.code
        if rng.random() < 0.4 and unit.province:  # the province's local variant of the code
            code = f"{code}.000.00.00.{unit.province}"
        person = _person(rng)
        none: str | None = None if dotnet else ""  # .NET producers send null for "nothing"
        # {identifier}-{yyMMdd}-{sequence}: a unit's own numbering, unique per identifier.
        sequence = index // len(self._unit_list) if identifier == unit.identifier else index
        record: dict[str, Any] = {
            "MaHoSo": f"{identifier}-{(received or submitted):%y%m%d}-{sequence + 1:05d}",
            "MaTTHC": code,
            "TenTTHC": procedure.name,
            "MaLinhVuc": procedure.portal_field[0],
            "TenLinhVuc": procedure.portal_field[1],
        }
        if dotnet:
            record["KenhThucHien"] = channel
        elif rng.random() < 0.5:
            record["KenhThucHien"] = ""  # OpenCPS leaves it empty, or out
        record.update(
            {
                "HinhThuc": "1" if channel == "3" or rng.random() < 0.1 else "0",
                **person,
                "LoaiDoiTuong": rng.choices(("1", "2", "3", "4"), weights=(75, 20, 3, 2))[0],
                "MaDoiTuong": f"{rng.getrandbits(64):016x}" if dotnet else "",
                "DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": person["SoGiayToChuHoSo"]}],
                "Fax": "",
                "TrichYeuHoSo": f"{procedure.name} - {person['ChuHoSo']}",
                "ThongTinKhac": "",
                "GhiChu": f"Liên hệ {person['SoDienThoai']}" if rng.random() < 0.2 else none,
                "NoiNopHoSo": "1" if channel == "1" else "2",
                "NgayNopHoSo": _compact(submitted),
                "NgayTiepNhan": _compact(received),
                "NgayHenTra": _compact(due)
                if due and (not procedure.in_catalog or rng.random() < 0.95)
                else none,
                "TrangThaiHoSo": status,
                "NgayKetThucXuLy": _compact(finished or refused) or none,
                "NgayTra": _compact(returned) or none,
                "NgayTuChoi": _compact(refused) or none,
                "ThongTinTra": none,
                "DonViXuLy": unit.name,
                "TaiLieuNop": self._papers(rng, procedure, index),
                "DanhSachLePhi": self._fees(rng, procedure),
                "DanhSachTepDinhKemKhac": [{"TenGiayTo": "Bản sao Căn cước công dân",
                                            "SoLuong": 1, "LoaiGiayTo": 1}] if dotnet else [],
                "DanhSachHoSoBoSung": supplements,
                "DanhSachGiayToKetQua": results,
                "TaiKhoanDuocXacThucVoiVNeID": "1"
                if channel == "2" and rng.random() < 0.7
                else "0",
                "DuocThanhToanTrucTuyen": self._paid_online(rng, procedure, channel, dotnet),
                "DSKetNoiCSDL": [{"MaCSDL": "1"}] if rng.random() < 0.4 else [],
            }
        )  # fmt: skip
        record["HoSoCoThanhPhanSoHoa"] = (
            "1" if any(p["DuocSoHoa"] == "1" for p in record["TaiLieuNop"]) else "0"
        )
        self._leave_gaps(rng, record, none)
        if self.faults.malformed_rate and rng.random() < self.faults.malformed_rate:
            # A producer whose mapping is broken: its own status label instead of the code, and
            # its own date format. No status and no receipt: this cannot be read as a dossier.
            record["TrangThaiHoSo"] = STATUS_LABELS[status]
            if received:
                record["NgayTiepNhan"] = f"{received:%d/%m/%Y %H:%M:%S}"
        return record

    def _processed(
        self,
        rng: random.Random,
        received: datetime,
        due: datetime,
        budget: timedelta,
        dotnet: bool,
    ) -> tuple[str, datetime | None, datetime | None, list[dict[str, Any]]]:
        """An accepted dossier's course: supplements, then finished on time, late, or not yet."""
        assert self.now is not None
        supplements: list[dict[str, Any]] = []
        pause = timedelta(0)
        waiting = False
        supplied: datetime | None = None
        if rng.random() < 0.15:
            asked = self._after(received, budget * rng.uniform(0.05, 0.4))
            answered = self._after(asked, _hours(rng.uniform(2, 24)))
            if asked <= self.now:
                if answered <= self.now:
                    supplied = answered
                    pause = self.calendar.working_time_between(asked, supplied)
                else:
                    waiting = True
                supplements.append(self._supplement(rng, asked, supplied, due, pause, dotnet))
        outcome = rng.random()
        finished: datetime | None = None
        if waiting:
            pass
        elif outcome < 0.7:  # finished on time
            finished = self._after(received, budget * rng.uniform(0.2, 0.95) + pause)
        elif outcome < 0.82:  # finished late
            finished = self._after(due, pause + _hours(rng.uniform(2, 40)))
        if finished is not None and supplied is not None and finished <= supplied:
            finished = self._after(supplied, _hours(rng.uniform(1, 8)))  # not before the papers
        if finished is None or finished > self.now:
            return ("5" if waiting else "4"), None, None, supplements
        returned = self._after(finished, _hours(rng.uniform(0.5, 16)))
        if returned > self.now:
            return "9", finished, None, supplements
        return "10", finished, returned, supplements

    def _supplement(
        self,
        rng: random.Random,
        asked: datetime,
        supplied: datetime | None,
        due: datetime,
        pause: timedelta,
        dotnet: bool,
    ) -> dict[str, Any]:
        new_due = self._after(due, pause) if supplied else None
        official = _person(rng)["ChuHoSo"]
        if dotnet:  # typed fields: an int id, a bool, DateTimes in ISO 8601 without zone
            return {
                "HoSoBoSungId": rng.randrange(1, 10**6),
                "NguoiYeuCauBoSung": official,
                "NoiDungBoSung": "Bổ sung bản sao giấy tờ còn thiếu",
                "NgayBoSung": _iso(asked),
                "NguoiTiepNhanBoSung": official if supplied else None,
                "ThongTinTiepNhan": None,
                "NgayTiepNhanBoSung": _compact(supplied) or None,
                "TrangThaiBoSung": supplied is not None,
                "DanhSachGiayToBoSung": [],
                "DanhSachLePhiBoSung": [],
                "NgayHenTraTruoc": _iso(due),
                "NgayHenTraMoi": _iso(new_due),
            }
        return {
            "HoSoBoSungId": str(rng.randrange(1, 10**6)),
            "NguoiYeuCauBoSung": official,
            "NoiDungBoSung": "Bổ sung bản sao giấy tờ còn thiếu",
            "NgayBoSung": _compact(asked),
            "NguoiTiepNhanBoSung": official if supplied else "",
            "ThongTinTiepNhan": "",
            "NgayTiepNhanBoSung": _compact(supplied),
            "TrangThaiBoSung": "1" if supplied else "0",
            "DanhSachGiayToBoSung": [],
            "DanhSachLePhiBoSung": [],
            "NgayHenTraTruoc": _compact(due),
            "NgayHenTraMoi": _compact(new_due),
        }

    @staticmethod
    def _papers(
        rng: random.Random, procedure: SimulatedProcedure, index: int
    ) -> list[dict[str, Any]]:
        papers = []
        for n in range(rng.randrange(1, 5)):
            title = _PAPERS[(index + n) % len(_PAPERS)]
            with_file = rng.random() < 0.85
            papers.append({
                "TepDinhKemId": str(rng.randrange(1, 10**7)),
                "TenTepDinhKem": f"{title}.pdf",
                "IsDeleted": "1" if rng.random() < 0.05 else "0",
                "MaThanhPhanHoSo": f"{procedure.code}.TP{n + 1}",
                "DuongDanTaiTepTin": f"https://motcua.example.vn/api/files?Path=hoso/{index}/{n}.pdf"
                if with_file else "",
                "DuocSoHoa": "1" if with_file and rng.random() < 0.7 else "0",
                "DuocTaiSuDung": rng.choices(("0", "1", "2"), weights=(70, 20, 10))[0],
                "DuocLayTuKhoDMQG": "1" if rng.random() < 0.15 else "0",
                "MaKetQuaThayThe": "",
            })  # fmt: skip
        return papers

    @staticmethod
    def _fees(rng: random.Random, procedure: SimulatedProcedure) -> list[dict[str, Any]]:
        if not procedure.has_fees:
            return []
        exempt = rng.random() < 0.1  # e.g. a policy beneficiary: the fee is listed at 0
        return [{
            "TenPhiLePhi": f"Lệ phí {procedure.name[0].lower()}{procedure.name[1:]}",
            "MaPhiLePhi": f"LP{procedure.code.replace('.', '')}",
            "HinhThucThu": rng.choice(("1", "2")),
            "Gia": "0" if exempt else str(rng.choice((8000, 10000, 50000, 100000))),
            "LoaiPhiLePhi": "1",
        }]  # fmt: skip

    @staticmethod
    def _results(
        rng: random.Random, procedure: SimulatedProcedure, finished: datetime | None
    ) -> list[dict[str, Any]]:
        linked = rng.random() < 0.7
        return [{
            "TenGiayTo": f"Kết quả {procedure.name[0].lower()}{procedure.name[1:]}",
            "MaThanhPhanHoSo": "",
            "GiayToId": str(rng.randrange(1, 10**7)),
            "DuongDanTepTinKetQua": f"https://motcua.example.vn/api/files?Path=ketqua/"
            f"{_compact(finished)}.pdf" if linked else "",
            "MaGiayToKetQua": procedure.code,
        }]  # fmt: skip

    @staticmethod
    def _paid_online(
        rng: random.Random, procedure: SimulatedProcedure, channel: str, dotnet: bool
    ) -> str:
        if not dotnet and rng.random() < 0.1:
            return ""  # some producers leave it empty
        if channel != "2" or not procedure.has_fees:
            return "0"
        # 1: on the national portal, 2: the province's gateway, 3: what some producers also send
        return rng.choices(("0", "1", "2", "3"), weights=(25, 40, 30, 5))[0]

    @staticmethod
    def _leave_gaps(rng: random.Random, record: dict[str, Any], none: str | None) -> None:
        """What real producers leave out: a terminal status's own end date, now and then."""
        status = record["TrangThaiHoSo"]
        roll = rng.random()
        if status == "9" and roll < 0.06:
            record["NgayKetThucXuLy"] = none
        elif status == "10" and roll < 0.05:
            record["NgayTra"] = none
        elif status == "10" and roll < 0.09:
            record["NgayKetThucXuLy"] = none

    def finish_open(self, count: int) -> list[str]:
        """Finish up to ``count`` dossiers in processing now (the latest office instant up to
        ``now``): they change, so the next sync sees them."""
        finished_at = _compact(self._latest)
        changed: list[str] = []
        for item in self._items:
            if len(changed) == count:
                break
            if item.current()["TrangThaiHoSo"] == "4":
                item.record.update(TrangThaiHoSo="9", NgayKetThucXuLy=finished_at)
                item.seq = self._next_seq()
                changed.append(item.record["MaHoSo"])
        self._items.sort(key=lambda i: i.seq)
        return changed

    @property
    def records(self) -> list[dict[str, Any]]:
        """Every dossier as the portal currently shows it, in change order (copies)."""
        return [copy.deepcopy(i.current()) for i in self._items]

    def unit_codes(self) -> dict[str, str]:
        """Unit identifier → chiso code, as the units file maps them."""
        return {u.identifier: u.code for u in self._unit_list if u.code}

    # --- HTTP ------------------------------------------------------------------------------

    def _answer(self, code: PortalCode, result: Any = None, status: int = 200) -> JSONResponse:
        body = {"error_code": int(code), "message": MESSAGES[code], "result": result}
        headers = {"Retry-After": str(self.faults.retry_after)} if status in (429, 503) else None
        return JSONResponse(body, status_code=status, headers=headers)

    async def _fault(self) -> Response | None:
        if self.faults.latency:
            await asyncio.sleep(self.faults.latency)
        if self._burst_left:
            self._burst_left -= 1
            return self._answer(PortalCode.unavailable, status=429)
        self._requests += 1  # requests outside bursts: every N-th starts one
        if self.faults.burst_every and self._requests % self.faults.burst_every == 0:
            self._burst_left = self.faults.burst_length - 1
            return self._answer(PortalCode.unavailable, status=429)
        if self.faults.error_rate and self._rng.random() < self.faults.error_rate:
            status = self._rng.choice([500, 502, 503])
            if status == 503:
                return self._answer(PortalCode.unavailable, status=503)
            # What a proxy in front of the adapter answers: no envelope at all.
            return Response("Bad Gateway" if status == 502 else "Internal Server Error", status)
        return None

    @staticmethod
    async def _body(request: Request) -> dict[str, Any] | None:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    async def login(self, request: Request) -> Response:
        if (fault := await self._fault()) is not None:
            return fault
        body = await self._body(request)
        if body is None or not isinstance(body.get("username"), str):
            return self._answer(PortalCode.malformed)
        if body.get("username") != self.username or body.get("password") != self.password:
            return self._answer(PortalCode.credentials)
        session = secrets.token_hex(16)
        self._sessions[session] = 0
        code = PortalCode.success
        return JSONResponse(
            {"error_code": int(code), "message": MESSAGES[code], "session": session}
        )

    async def service(self, request: Request) -> Response:
        if (fault := await self._fault()) is not None:
            return fault
        body = await self._body(request)
        if body is None:
            return self._answer(PortalCode.malformed)
        session = body.get("session")
        if not isinstance(session, str) or session not in self._sessions:
            return self._answer(PortalCode.session)
        self._sessions[session] += 1
        limit = self.faults.session_calls
        if limit and self._sessions[session] > limit:
            del self._sessions[session]
            return self._answer(PortalCode.session)
        service = body.get("service")
        if not isinstance(service, str) or not service:
            return self._answer(PortalCode.malformed)
        if service not in (self.protocol.list_service, LOOKUP_SERVICE, PROCEDURE_SERVICE):
            return self._answer(PortalCode.unknown_service)
        if service == PROCEDURE_SERVICE:
            return self._procedure(body.get("maTTHC"))
        scope = self._scope(body.get("madonvi"))
        if scope is None:
            return self._answer(PortalCode.unknown_unit)
        if service == LOOKUP_SERVICE:
            return self._lookup(body.get("mahoso", body.get("MaHoSo")), scope)
        return self._listing(body, scope)

    def _scope(self, madonvi: Any) -> Callable[[str], bool] | None:
        """Which dossiers a caller's ``madonvi`` sees (None: no such unit). Empty: all of them;
        a unit's identifier: its own; a province's (``000.00.00.H01``): the province's."""
        if madonvi in (None, ""):
            return lambda _: True
        if not isinstance(madonvi, str):
            return None
        if madonvi in self._by_identifier:
            return lambda mahoso: mahoso.startswith(f"{madonvi}-")
        last = madonvi.rsplit(".", 1)[-1]
        if madonvi == f"000.00.00.{last}" and any(u.province == last for u in self._unit_list):
            return lambda mahoso: mahoso.split("-", 1)[0].endswith(f".{last}")
        return None

    def _procedure(self, code: Any) -> Response:
        if not isinstance(code, str) or not code.strip():
            return self._answer(PortalCode.malformed)
        national = ".".join(code.strip().split(".")[:2])
        procedure = self._catalog.get(national)
        if procedure is None:
            return self._answer(PortalCode.success, result=[])
        return self._answer(
            PortalCode.success,
            result=[{
                "MATTHC": procedure.code,
                "TENTTHC": procedure.name,
                "LINHVUCTHUCHIEN": [{"MALINHVUC": procedure.portal_field[0],
                                     "TENLINHVUC": procedure.portal_field[1]}],
            }],
        )  # fmt: skip

    def _lookup(self, mahoso: Any, scope: Callable[[str], bool]) -> Response:
        if not isinstance(mahoso, str) or not mahoso.strip():
            return self._answer(PortalCode.malformed)
        wanted = mahoso.strip()
        record = self.find(wanted)
        return self._answer(PortalCode.success, result=[record] if record and scope(wanted) else [])

    def find(self, mahoso: str) -> dict[str, Any] | None:
        """A dossier's record by its code: the code says its index, so no scan is needed."""
        prefix, _, rest = mahoso.partition("-")
        sequence = rest.rpartition("-")[2]
        if not sequence.isdigit():
            return None
        number = int(sequence) - 1
        position = self._position.get(prefix)
        # A listed unit numbers its own dossiers; an unmapped identifier carries the index.
        candidates = [number] if position is None else [number * len(self._unit_list) + position]
        for index in candidates:
            if 0 <= index < len(self._by_index):
                record = self._by_index[index].current()
                if record["MaHoSo"] == mahoso:
                    return record
        return None

    def _listing(self, body: dict[str, Any], scope: Callable[[str], bool]) -> Response:
        p = self.protocol
        self._listing_calls += 1
        if self.faults.repeat_page_at == self._listing_calls and self._last_page is not None:
            return JSONResponse(self._last_page)  # the adapter's bug: the previous page, again
        cursor, size = body.get(p.cursor_field) or "", body.get(p.page_size_field)
        try:
            if not isinstance(cursor, str) or isinstance(size, bool | float):
                raise ValueError("wrong type")
            after = int(base64.urlsafe_b64decode(cursor.encode() + b"==")) if cursor else 0
            page_size = int(size) if size not in (None, "") else 100
        except ValueError:
            return self._answer(PortalCode.malformed)
        page_size = max(1, min(page_size, MAX_PAGE_SIZE))
        # Items are kept in change order: find the resume point by bisection, not a full scan.
        start = bisect.bisect_right(self._items, after, key=lambda item: item.seq)
        waiting = self._items[start:]
        if body.get("madonvi"):  # a unit's own dossiers: filtered by prefix, counted one by one
            waiting = [
                i
                for i in waiting
                if scope(i.changed["MaHoSo"] if i.changed else f"{self._identifier_of(i.index)}-")
            ]
        page = waiting[:page_size]
        resume = page[-1].seq if page else after
        self._last_page = {
            "error_code": int(PortalCode.success),
            "message": MESSAGES[PortalCode.success],
            "result": {
                p.records_field: [i.current() for i in page],
                # Where to resume: after the last record served (opaque to clients).
                p.cursor_field: base64.urlsafe_b64encode(str(resume).encode()).decode().rstrip("="),
                p.remaining_field: len(waiting) - len(page),
            },
        }
        return JSONResponse(self._last_page)

    async def results(self, request: Request) -> Response:
        if (fault := await self._fault()) is not None:
            return fault
        time_type = request.query_params.get("timeType", "month")
        period = request.query_params.get("period", "")
        rng = random.Random(f"{self.seed}:{time_type}:{period}")  # noqa: S311
        rows = []
        for code, name in sorted(self._province_names.items()):
            groups = {g: round(m * rng.uniform(0.55, 1.0), 2) for g, m in GROUPS.items()}
            rows.append({
                "departmentCode": code,
                "departmentName": name,
                "totalScore": round(sum(groups.values()), 2),
                "scoreDelta": round(rng.uniform(-4, 4), 2),
                "groupScores": groups,
                "timeType": time_type,
                "period": period,
            })  # fmt: skip
        return JSONResponse(rows)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(self.protocol.auth_path, self.login, methods=["POST"]),
                Route(self.protocol.integration_path, self.service, methods=["POST"]),
                Route("/service-results", self.results, methods=["GET"]),
            ]
        )
