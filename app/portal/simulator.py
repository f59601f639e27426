"""A dichvucong-style portal adapter simulator, for development, demos and tests.

It serves ``/login``, ``/service`` (``LayDanhSachHoSoThayDoi``: dossiers changed since an
opaque cursor, paged) and ``/service-results`` (published index results), with realistic
generated dossiers — several procedures and units, all three channels, supplements, a share
finished late and a share still overdue — and fault knobs: latency, error rate, 429 bursts,
session expiry, malformed records and a repeated page. Deterministic for a given seed.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import csv
import io
import random
import secrets
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
from app.portal.client import LIST_CHANGED, MAX_PAGE_SIZE, SESSION_EXPIRED
from app.portal.records import PORTAL_TZ

REFERENCE = Path(__file__).resolve().parents[1]
PROCEDURES_CSV = REFERENCE / "procedures" / "reference" / "sample-procedures.csv"
PROVINCES_CSV = REFERENCE / "units" / "reference" / "provinces-2026.csv"
GROUPS = {"CKMB": 18, "TDGQ": 20, "CLGQ": 12, "TTTT": 10, "MDHL": 18, "MDSH": 22}


@dataclass
class Faults:
    latency: float = 0.0  # seconds added to every request
    error_rate: float = 0.0  # share of requests answered with a 5xx
    burst_every: int = 0  # every N-th request starts a burst of 429s (0 = never)
    burst_length: int = 3
    retry_after: int = 1
    session_calls: int = 0  # a session expires after this many service calls (0 = never)
    malformed_rate: float = 0.0  # share of records carrying a malformed date
    repeat_page_at: int = 0  # the N-th listing call repeats the previous page (0 = never)


@dataclass
class SimulatedDossier:
    record: dict[str, Any]
    seq: int


def _compact(instant: datetime | None) -> str:
    return instant.astimezone(PORTAL_TZ).strftime("%Y%m%d%H%M%S") if instant else ""


def _procedures() -> list[tuple[str, str, str, Decimal, LimitUnit]]:
    rows = csv.DictReader(io.StringIO(PROCEDURES_CSV.read_text(encoding="utf-8")))
    return [
        (
            r["code"],
            r["name"],
            r["field_code"],
            Decimal(r["limit_value"]),
            LimitUnit(r["limit_unit"]),
        )
        for r in rows
    ]


def _provinces() -> list[tuple[str, str]]:
    rows = csv.DictReader(io.StringIO(PROVINCES_CSV.read_text(encoding="utf-8")))
    return [(r["code"], r["name"]) for r in rows]


@dataclass
class PortalSimulator:
    """The simulated portal's state: its dossiers, sessions and fault counters."""

    dossiers: int = 500
    seed: int = 2026
    now: datetime | None = None
    units: list[str] | None = None
    username: str = "chiso"
    password: str = "chiso-sim"  # noqa: S105 - a simulator's well-known demo password
    faults: Faults = field(default_factory=Faults)
    _rng: random.Random = field(init=False)
    _items: list[SimulatedDossier] = field(init=False, default_factory=list)
    _sessions: dict[str, int] = field(init=False, default_factory=dict)
    _requests: int = field(init=False, default=0)
    _burst_left: int = field(init=False, default=0)
    _listing_calls: int = field(init=False, default=0)
    _last_page: dict[str, Any] | None = field(init=False, default=None)
    _seq: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 - simulation, not security
        self.now = self.now or datetime.now(PORTAL_TZ)
        self._calendar = WorkingCalendar(tz=PORTAL_TZ, overrides=load_shipped_overrides())
        self._procedures = _procedures()
        provinces = _provinces()
        self._unit_names = dict(provinces)
        self._units = self.units or [code for code, _ in provinces]
        for index in range(self.dossiers):
            self._items.append(SimulatedDossier(self._generate(index), self._next_seq()))

    # --- data ------------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _office_instant(self, days_ago: float) -> datetime:
        assert self.now is not None
        day = (self.now - timedelta(days=days_ago)).date()
        while not self._calendar.is_working_day(day):
            day -= timedelta(days=1)
        minute = self._rng.randrange(0, 8 * 60)
        start = time(7, 30) if minute < 240 else time(13, 0)
        base = datetime.combine(day, start, tzinfo=PORTAL_TZ)
        return base + timedelta(minutes=minute % 240)

    def _generate(self, index: int) -> dict[str, Any]:
        rng = self._rng
        unit = self._units[index % len(self._units)]
        code, name, field_code, limit, limit_unit = rng.choice(self._procedures)
        channel = rng.choices(["1", "2", "3"], weights=[50, 45, 5])[0]
        received = self._office_instant(rng.uniform(0, 45))
        due = self._calendar.due_at(received, limit, limit_unit)
        assert self.now is not None
        supplements: list[dict[str, str]] = []
        clock_shift = timedelta(0)
        roll = rng.random()
        if roll < 0.15:
            asked = received + timedelta(hours=rng.uniform(2, 20))
            supplied = asked + timedelta(hours=rng.uniform(4, 48))
            if supplied < self.now:
                supplements.append({"NgayBoSung": _compact(asked),
                                    "NgayTiepNhanBoSung": _compact(supplied),
                                    "NgayHenTraMoi": ""})  # fmt: skip
                clock_shift = supplied - asked
        outcome = rng.random()
        record: dict[str, Any] = {
            "MaHoSo": f"{unit}-{received:%y%m%d}-{index:04d}",
            "MaTTHC": code,
            "TenTTHC": name,
            "MaLinhVuc": field_code,
            "MaDonVi": unit,
            "DonViXuLy": self._unit_names.get(unit, unit),
            "KenhThucHien": channel,
            "ChuHoSo": f"Công dân {index}",
            "LoaiDoiTuong": rng.choice(["1", "1", "1", "2"]),
            "NgayTiepNhan": _compact(received),
            "NgayHenTra": _compact(due) if rng.random() < 0.9 else "",
            "DuocThanhToanTrucTuyen": "1" if channel == "2" and rng.random() < 0.6 else "0",
            "HoSoCoThanhPhanSoHoa": "1" if rng.random() < 0.5 else "0",
            "DanhSachHoSoBoSung": supplements,
        }
        if outcome < 0.7:  # finished on time
            finished = received + (due - received + clock_shift) * rng.uniform(0.2, 0.95)
        elif outcome < 0.82:  # finished late
            finished = due + clock_shift + timedelta(hours=rng.uniform(2, 120))
        else:  # still open: overdue or not depending on its due time
            finished = None
        if finished is not None and finished < self.now:
            returned = finished + timedelta(hours=rng.uniform(0.5, 30))
            record.update(TrangThaiHoSo="10" if returned < self.now else "9",
                          NgayKetThucXuLy=_compact(finished),
                          NgayTra=_compact(returned) if returned < self.now else "")  # fmt: skip
        else:
            record.update(TrangThaiHoSo="4", NgayKetThucXuLy="", NgayTra="")
        if self.faults.malformed_rate and rng.random() < self.faults.malformed_rate:
            record["NgayTiepNhan"] = f"{received:%Y-%m-%d %H:%M}"  # not yyyyMMddHHmmss
        return record

    def finish_open(self, count: int) -> list[str]:
        """Finish up to ``count`` open dossiers now: they change, so the next sync sees them."""
        assert self.now is not None
        changed: list[str] = []
        for item in self._items:
            if len(changed) == count:
                break
            if item.record["TrangThaiHoSo"] == "4":
                item.record.update(TrangThaiHoSo="9", NgayKetThucXuLy=_compact(self.now))
                item.seq = self._next_seq()
                changed.append(item.record["MaHoSo"])
        self._items.sort(key=lambda i: i.seq)
        return changed

    @property
    def records(self) -> list[dict[str, Any]]:
        """Every dossier as the portal currently shows it."""
        return [dict(i.record) for i in self._items]

    # --- HTTP ------------------------------------------------------------------------------

    async def _fault(self) -> Response | None:
        if self.faults.latency:
            await asyncio.sleep(self.faults.latency)
        if self._burst_left:
            self._burst_left -= 1
            return self._too_many()
        self._requests += 1  # requests outside bursts: every N-th starts one
        if self.faults.burst_every and self._requests % self.faults.burst_every == 0:
            self._burst_left = self.faults.burst_length - 1
            return self._too_many()
        if self.faults.error_rate and self._rng.random() < self.faults.error_rate:
            status = self._rng.choice([500, 502, 503])
            return JSONResponse({"error": "Lỗi máy chủ"}, status_code=status)
        return None

    def _too_many(self) -> Response:
        return JSONResponse(
            {"error": "Quá nhiều yêu cầu"},
            status_code=429,
            headers={"Retry-After": str(self.faults.retry_after)},
        )

    async def login(self, request: Request) -> Response:
        if (fault := await self._fault()) is not None:
            return fault
        body = await request.json()
        if body.get("username") != self.username or body.get("password") != self.password:
            return JSONResponse({"error_code": 1, "message": "Sai tên đăng nhập hoặc mật khẩu"})
        session = secrets.token_hex(16)
        self._sessions[session] = 0
        return JSONResponse({"error_code": 0, "message": "Thành công", "session": session})

    async def service(self, request: Request) -> Response:
        if (fault := await self._fault()) is not None:
            return fault
        body = await request.json()
        session = body.get("session")
        if session not in self._sessions:
            return JSONResponse({"error_code": SESSION_EXPIRED, "message": "Phiên không hợp lệ"})
        self._sessions[session] += 1
        limit = self.faults.session_calls
        if limit and self._sessions[session] > limit:
            del self._sessions[session]
            return JSONResponse(
                {"error_code": SESSION_EXPIRED, "message": "Phiên làm việc đã hết hạn"}
            )
        if body.get("service") != LIST_CHANGED:
            return JSONResponse({"error_code": 3, "message": "Dịch vụ không được hỗ trợ"})
        return JSONResponse(self._listing(str(body.get("cursor") or ""), body.get("sodong")))

    def _listing(self, cursor: str, size: Any) -> dict[str, Any]:
        self._listing_calls += 1
        repeat = self.faults.repeat_page_at == self._listing_calls
        if repeat and self._last_page is not None:
            return self._last_page  # the adapter's bug: the previous page, once more
        try:
            after = int(base64.urlsafe_b64decode(cursor.encode() + b"==")) if cursor else 0
            page_size = max(1, min(int(size or 100), MAX_PAGE_SIZE))
        except ValueError:
            return {"error_code": 4, "message": "Tham số không hợp lệ"}
        # Items are kept in seq order: find the resume point by bisection, not a full scan.
        start = bisect.bisect_right(self._items, after, key=lambda item: item.seq)
        page = self._items[start : start + page_size]
        remaining = len(self._items) - start - len(page)
        resume = page[-1].seq if page else after
        self._last_page = {
            "error_code": 0,
            "message": "Thành công",
            "result": {
                "data": [dict(i.record) for i in page],
                # Where to resume: after the last record served (opaque to clients).
                "cursor": base64.urlsafe_b64encode(str(resume).encode()).decode().rstrip("="),
                "conlai": remaining,
            },
        }
        return self._last_page

    async def results(self, request: Request) -> Response:
        if (fault := await self._fault()) is not None:
            return fault
        time_type = request.query_params.get("timeType", "month")
        period = request.query_params.get("period", "")
        rng = random.Random(f"{self.seed}:{time_type}:{period}")  # noqa: S311
        rows = []
        for code, name in sorted(self._unit_names.items()):
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
                Route("/login", self.login, methods=["POST"]),
                Route("/service", self.service, methods=["POST"]),
                Route("/service-results", self.results, methods=["GET"]),
            ]
        )
