"""Wire shapes of dossier events and dossiers (the JSON API; the portal shape is in portal.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    WithJsonSchema,
    field_validator,
)

from app.core.params import CODE_PATTERN as CODE_PATTERN
from app.core.params import JSON_INTEGER, NO_NUL_PATTERN
from app.core.vocabulary import named
from app.dossiers.privacy import scrub

# A dossier code is a path segment (/v1/dossiers/{code}): no "/".
DOSSIER_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
DossierCode = Annotated[str, Field(pattern=DOSSIER_CODE_PATTERN, examples=["H01.01-261008-0975"])]
EVENT_ID_PATTERN = r"^[\x21-\x7e]+$"
EventId = Annotated[str, Field(min_length=1, max_length=128, pattern=EVENT_ID_PATTERN)]

MAX_BATCH = 10_000
PAYMENT_CODE_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
FactCount = Annotated[int, Field(ge=0, le=100_000), JSON_INTEGER]
FactAmount = Annotated[int, Field(ge=0, le=10**15), JSON_INTEGER]
# The index facts an event may state, by their name in ``DossierFacts``.
EVENT_FACTS = (
    "papers_total", "papers_with_file", "papers_digitised", "papers_reused",
    "papers_from_national_store", "fees_count", "fees_total", "fees_all_zero", "results_total",
    "results_with_file", "databases", "vneid_verified", "payment_code",
)  # fmt: skip
# Timestamps outside this window are typos (year 0226, 20226), not history; and nothing about
# a dossier is dated years ahead (periods end in 2099: a date near it broke score refreshes).
EARLIEST = datetime.fromisoformat("2000-01-01T00:00:00+00:00")
AHEAD = timedelta(days=2 * 366)


def _instant_text(value: object) -> object:
    """Instants come as ISO 8601 text (a number would be read as a Unix timestamp)."""
    if isinstance(value, datetime):
        return value  # built in code (portal records), not sent as JSON
    if not isinstance(value, str):
        raise ValueError("expected a date and time as text: YYYY-MM-DDTHH:MM:SS±HH:MM")
    return value


# RFC 3339 with an offset, dated 2000 or later as written; "at most two years ahead" moves
# with the clock, so only the model's x-rules state it.
Instant = Annotated[
    AwareDatetime,
    BeforeValidator(_instant_text),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": "^2[0-9]{3}-"}),
]


class DossierStatus(IntEnum):
    """``TrangThaiHoSo``: the national portal's status codes."""

    registered = 1  # mới đăng ký
    accepted = 2  # được tiếp nhận
    not_accepted = 3  # không được tiếp nhận
    processing = 4  # đang xử lý
    supplement_requested = 5  # yêu cầu bổ sung
    financial_obligation = 6  # yêu cầu thực hiện nghĩa vụ tài chính
    withdrawn = 7  # công dân yêu cầu rút hồ sơ
    stopped = 8  # dừng xử lý
    finished = 9  # đã xử lý xong
    returned = 10  # đã trả kết quả


named(DossierStatus, {
    DossierStatus.registered: ("Mới đăng ký", "Registered"),
    DossierStatus.accepted: ("Được tiếp nhận", "Accepted"),
    DossierStatus.not_accepted: ("Không được tiếp nhận", "Not accepted"),
    DossierStatus.processing: ("Đang xử lý", "Processing"),
    DossierStatus.supplement_requested: ("Yêu cầu bổ sung giấy tờ", "Supplement requested"),
    DossierStatus.financial_obligation: (
        "Yêu cầu thực hiện nghĩa vụ tài chính", "Financial obligation requested"
    ),
    DossierStatus.withdrawn: ("Công dân yêu cầu rút hồ sơ", "Withdrawn by the applicant"),
    DossierStatus.stopped: ("Dừng xử lý", "Processing stopped"),
    DossierStatus.finished: ("Đã xử lý xong", "Processing finished"),
    DossierStatus.returned: ("Đã trả kết quả", "Result returned"),
})  # fmt: skip


class Channel(IntEnum):
    """``KenhThucHien``."""

    in_person = 1
    online = 2
    postal = 3


named(Channel, {
    Channel.in_person: ("Trực tiếp", "In person"),
    Channel.online: ("Trực tuyến", "Online"),
    Channel.postal: ("Qua dịch vụ bưu chính công ích", "By public postal service"),
})  # fmt: skip


class Timeliness(StrEnum):
    """How a dossier stands against its due time: finished (early, on time, late) or still
    open (in time, overdue)."""

    early = "early"
    on_time = "on_time"
    late = "late"
    in_time = "in_time"
    overdue = "overdue"


named(Timeliness, {
    Timeliness.early: ("Trước hạn", "Early"),
    Timeliness.on_time: ("Đúng hạn", "On time"),
    Timeliness.late: ("Trễ hạn", "Late"),
    Timeliness.in_time: ("Đang xử lý, còn hạn", "Open, within time"),
    Timeliness.overdue: ("Đang xử lý, quá hạn", "Open, overdue"),
})  # fmt: skip

PauseKind = Literal["supplement", "financial"]
named(PauseKind, {
    "supplement": ("Chờ bổ sung giấy tờ", "Waiting for supplementary papers"),
    "financial": ("Chờ thực hiện nghĩa vụ tài chính", "Waiting for a financial obligation"),
})  # fmt: skip


class AnomalyCode(StrEnum):
    """What is odd about a well-formed dossier history (app/dossiers/timeline.py flags them)."""

    transfer = "transfer"
    time_inferred = "time_inferred"
    procedure_changed = "procedure_changed"
    receipt_after_later_steps = "receipt_after_later_steps"
    status_after_end = "status_after_end"
    supplied_without_request = "supplied_without_request"
    due_before_receipt = "due_before_receipt"
    end_before_receipt = "end_before_receipt"
    dated_in_future = "dated_in_future"


named(AnomalyCode, {
    AnomalyCode.transfer: (
        "Chuyển xử lý liên thông sang đơn vị khác", "Handled on by another unit (transfer)"
    ),
    AnomalyCode.time_inferred: (
        "Thời điểm được suy ra (trạng thái không kèm ngày)", "Time inferred (status without date)"
    ),
    AnomalyCode.procedure_changed: (
        "Thủ tục thay đổi trong cùng hồ sơ", "Procedure changed within the dossier"
    ),
    AnomalyCode.receipt_after_later_steps: (
        "Ngày tiếp nhận sau các bước xử lý", "Receipt recorded after later steps"
    ),
    AnomalyCode.status_after_end: (
        "Trạng thái sau khi hồ sơ đã kết thúc", "Status after the dossier ended"
    ),
    AnomalyCode.supplied_without_request: (
        "Bổ sung giấy tờ khi không có yêu cầu", "Papers supplied with no open request"
    ),
    AnomalyCode.due_before_receipt: (
        "Hẹn trả trước ngày tiếp nhận", "Appointment before the receipt"
    ),
    AnomalyCode.end_before_receipt: (
        "Kết thúc trước ngày tiếp nhận", "Ended before the receipt"
    ),
    AnomalyCode.dated_in_future: (
        "Thời điểm ghi sau thời điểm chiso nhận sự kiện", "Dated after the event reached chiso"
    ),
})  # fmt: skip


def _in_range(value: datetime | None) -> datetime | None:
    # The lower bound is the year as written (the schema's pattern), whatever the offset.
    if value is not None and not (
        EARLIEST.year <= value.year and value < datetime.now(UTC) + AHEAD
    ):
        raise ValueError("date out of range (from 2000-01-01 to two years from now)")
    return value


class DossierEventIn(BaseModel):
    """One status change of one dossier, as a desk or platform reports it.

    Unknown fields are dropped, never stored: payloads often carry the applicant's identity
    number, phone or e-mail, and the service must not keep them.
    """

    model_config = ConfigDict(
        extra="ignore",
        str_strip_whitespace=True,
        json_schema_extra={
            "x-rules": [
                "every time is before two years from now (422 `date out of range`)",
                "unit_code and procedure_code name a known unit and procedure (422); the unit "
                "lies in the key's subtree, and so does the owner of an existing dossier (403)",
                "a new dossier's code starts with the code of its unit: "
                "{unit}-{yymmdd}-{sequence} (422)",
                "an event_id already stored for the dossier with other content: 409",
            ]
        },
    )

    event_id: EventId
    dossier_code: DossierCode
    unit_code: Annotated[str, Field(pattern=CODE_PATTERN)]
    procedure_code: Annotated[str, Field(pattern=CODE_PATTERN)]
    status: Annotated[DossierStatus, JSON_INTEGER]
    occurred_at: Instant
    channel: Annotated[Channel, JSON_INTEGER]
    due_at: Instant | None = Field(default=None, description="NgayHenTra, when stated")
    received_at: Instant | None = Field(default=None, description="NgayTiepNhan")
    note: Annotated[
        str | None, Field(max_length=2000, json_schema_extra={"pattern": NO_NUL_PATTERN})
    ] = None
    supplement_supplied_at: Instant | None = Field(
        default=None, description="Papers supplied (NgayTiepNhanBoSung): the clock restarts"
    )
    supplement_new_due_at: Instant | None = Field(
        default=None, description="NgayHenTraMoi given when the clock restarts"
    )
    fee_paid_at: Instant | None = Field(
        default=None, description="Financial obligation met: the clock restarts"
    )
    apology_issued_at: Instant | None = Field(
        default=None, description="An apology letter was sent for the overdue dossier"
    )
    apology_new_due_at: Instant | None = Field(
        default=None, description="The new appointment promised in the apology letter"
    )
    applicant_kind: Annotated[int, Field(ge=1, le=4), JSON_INTEGER] | None = Field(
        default=None, description="LoaiDoiTuong: 1 citizen, 2 business, 3 agency, 4 other"
    )
    paid_online: StrictBool | None = Field(default=None, description="DuocThanhToanTrucTuyen")
    has_digitized_parts: StrictBool | None = Field(default=None, description="HoSoCoThanhPhanSoHoa")
    # The dossier's index facts, as a portal record states them (docs/INDEX.md, "Computed from
    # the records"): optional, null = not stated (an earlier statement stands).
    papers_total: FactCount | None = Field(default=None, description="TaiLieuNop entries")
    papers_with_file: FactCount | None = Field(
        default=None, description="… with an attached file (4.2)"
    )
    papers_digitised: FactCount | None = Field(default=None, description="… DuocSoHoa = 1 (4.3)")
    papers_reused: FactCount | None = Field(default=None, description="… DuocTaiSuDung = 1")
    papers_from_national_store: FactCount | None = Field(
        default=None, description="… DuocLayTuKhoDMQG = 1 (4.4, 4.5)"
    )
    fees_count: FactCount | None = Field(default=None, description="DanhSachLePhi entries")
    fees_total: FactAmount | None = Field(default=None, description="Sum of their Gia, in dong")
    fees_all_zero: StrictBool | None = Field(
        default=None, description="Every fee is 0: the dossier does not count in 3.6"
    )
    results_total: FactCount | None = Field(
        default=None, description="DanhSachGiayToKetQua entries"
    )
    results_with_file: FactCount | None = Field(
        default=None,
        description="… with DuongDanTepTinKetQua: an electronic result (3.3, 4.1, 4.2, 4.4)",
    )
    databases: (
        Annotated[list[Annotated[str, Field(pattern=CODE_PATTERN)]], Field(max_length=50)] | None
    ) = Field(default=None, description="DSKetNoiCSDL MaCSDL codes (CSDLQGDC: population, 4.5)")
    vneid_verified: StrictBool | None = Field(
        default=None, description="TaiKhoanDuocXacThucVoiVNeID (4.5)"
    )
    payment_code: Annotated[str, Field(pattern=PAYMENT_CODE_PATTERN)] | None = Field(
        default=None,
        description="DuocThanhToanTrucTuyen as sent: 1 national portal, 2 the province's "
        "gateway (paid online, 3.6); any other code is not paid online. Takes precedence over "
        "paid_online",
    )

    _dates_in_range = field_validator(
        "occurred_at",
        "due_at",
        "received_at",
        "supplement_supplied_at",
        "supplement_new_due_at",
        "fee_paid_at",
        "apology_issued_at",
        "apology_new_due_at",
    )(_in_range)

    @property
    def facts(self) -> dict[str, Any]:
        """The index facts this event states (an empty dict: none)."""
        stated = {name: getattr(self, name) for name in EVENT_FACTS}
        if self.has_digitized_parts is not None:
            stated["has_digitised_parts"] = self.has_digitized_parts
        if self.applicant_kind is not None:
            stated["applicant_kind"] = self.applicant_kind
        return {name: value for name, value in stated.items() if value is not None}

    @field_validator("note")
    @classmethod
    def _scrub_note(cls, value: str | None) -> str | None:
        if value and "\x00" in value:
            # PostgreSQL text holds no NUL: refused here, with a pointer, not by the database.
            raise ValueError("text must not contain NUL characters")
        return scrub(value) if value else value


class ItemResult(BaseModel):
    index: int
    event_id: str | None = None
    result: Literal["stored", "updated", "duplicate", "conflict", "rejected"] = Field(
        description="`stored`: new; `updated`: an event chiso read off a portal record, "
        "replaced by the re-sent record's values; `duplicate`: this event_id is stored for "
        "this dossier with the same content (nothing changed); `conflict`: stored with other "
        "content (nothing changed; `stored_at` says when the version that stays arrived); "
        "`rejected`: see `errors`"
    )
    errors: list[dict[str, Any]] | None = None
    stored_at: datetime | None = None


class BatchResult(BaseModel):
    stored: int
    updated: int = 0
    duplicate: int
    conflict: int = 0
    rejected: int
    derived: bool = Field(
        description="true when the touched dossiers' states were derived before answering "
        "(`Prefer: return=representation`); else they are queued and derived within seconds"
    )
    items: list[ItemResult]


class EventResult(BaseModel):
    event_id: str
    result: Literal["stored", "duplicate"]
    dossier_url: str
    dossier: DossierOut | None = Field(
        description="The dossier's state with this event, when asked for with "
        "`Prefer: return=representation`; null otherwise (read it at `dossier_url`)"
    )


class Pause(BaseModel):
    kind: PauseKind
    started_at: datetime
    ended_at: datetime | None
    new_due_at: datetime | None = None


class Anomaly(BaseModel):
    # An open list: a new kind of anomaly must not make older clients refuse the answer.
    code: str = Field(json_schema_extra={"x-extensible-enum": [c.value for c in AnomalyCode]})
    detail: str
    event_id: str | None = None


class Apology(BaseModel):
    issued_at: datetime
    new_due_at: datetime | None


class DossierOut(BaseModel):
    code: str
    unit_code: str
    procedure_code: str
    status: DossierStatus
    channel: Channel
    received_at: datetime | None
    due_at: datetime | None
    finished_at: datetime | None
    counted: bool = Field(
        description="Whether the index counts this dossier (2.1 and the record-based "
        "indicators): false when withdrawn before acceptance, or when no receipt time was "
        "stated (a portal record without NgayTiepNhan, its receipt placed by chiso)"
    )
    timeliness: Timeliness | None
    overdue_by: Decimal | None = Field(description="Working days past due (overdue or late)")
    supplement_requests: int
    paused_for_hours: Decimal = Field(description="Working hours the clock was stopped")
    pauses: list[Pause]
    apology: Apology | None
    anomalies: list[Anomaly]
    last_event_at: datetime


class DossierEventOut(BaseModel):
    event_id: str
    status: DossierStatus
    occurred_at: datetime
    recorded_at: datetime
    channel: Channel
    unit_code: str
    procedure_code: str
    due_at: datetime | None
    received_at: datetime | None
    note: str | None
    supplement_supplied_at: datetime | None
    supplement_new_due_at: datetime | None
    fee_paid_at: datetime | None
    apology_issued_at: datetime | None
    apology_new_due_at: datetime | None
    source: str
    key_id: str | None = Field(description="The API key that posted it (null: the admin token)")


class OverdueItem(BaseModel):
    code: str
    unit_code: str
    unit_name: str
    procedure_code: str
    received_at: datetime | None
    due_at: datetime
    overdue_by: Decimal
    apology_issued: bool
    apology_new_due_at: datetime | None


class OverdueCount(BaseModel):
    unit_code: str
    overdue: int
    without_apology: int


class OverdueCountAt(BaseModel):
    unit_code: str
    unit_name: str
    level: str
    overdue: int
    without_apology: int


class OverdueCountsOut(BaseModel):
    unit_code: str
    as_of: datetime
    period: str | None
    items: list[OverdueCountAt]
    next: None = None


class OverdueList(BaseModel):
    unit_code: str
    as_of: datetime
    counts: list[OverdueCount]
    items: list[OverdueItem]
    next: str | None = None


EventResult.model_rebuild()
