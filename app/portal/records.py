"""The portal's dossier records (``DongBoHoSoMC``), read into our dossier events.

A record is a snapshot of one dossier, not an event: the events are read off its dates. Pure
functions, shared by ``POST /v1/portal/dossiers`` and the portal sync worker.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError

from app.dossiers.schemas import CODE_PATTERN, Channel, DossierEventIn, DossierStatus

PORTAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
COMPACT_TIME_FORMAT = "%Y%m%d%H%M%S"
SUPPLEMENTS = "DanhSachHoSoBoSung"

_COMPACT_TIME = re.compile(r"[0-9]{14}")
_CODE = re.compile(CODE_PATTERN)
_SHOWN_CHARS = 40

_T = TypeVar("_T")


class PortalFormatError(ValueError):
    """A portal value that does not follow the portal's wire format."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class PortalRecordError(ValueError):
    """A record that yields no events; ``errors`` are ``{"pointer", "detail"}`` items."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(f"portal dossier record rejected ({len(errors)} error(s))")
        self.errors = errors


def _shown(value: str) -> str:
    return repr(value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "…")


def parse_compact_time(value: str, field: str) -> datetime | None:
    """``yyyyMMddHHmmss`` in Vietnam time → an aware datetime; blank → None."""
    text = value.strip()
    if not text:
        return None
    if not _COMPACT_TIME.fullmatch(text):
        raise PortalFormatError(field, f"expected yyyyMMddHHmmss, got {_shown(value)}")
    year = int(text[:4])
    if not 2000 <= year < 2100:
        raise PortalFormatError(field, f"year {year} is out of range (2000 to 2099)")
    # Sliced, not strptime: strptime accepts 1-digit months and days and could misread the run.
    month, day, hour, minute, second = (int(text[i : i + 2]) for i in range(4, 14, 2))
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=PORTAL_TZ)
    except ValueError as exc:
        raise PortalFormatError(
            field, f"{_shown(text)} is not a real date and time: {exc}"
        ) from None


# --- field types of a record -------------------------------------------------------------------


def _format_error(message: str) -> PydanticCustomError:
    # The message goes through the context so braces in a sender's value are not a template.
    return PydanticCustomError("portal_format", "{message}", {"message": message})


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "a string" if isinstance(value, str) else type(value).__name__


def _text(value: Any) -> str | None:
    """The portal value as stripped text; numbers are accepted; None when it is not text at all."""
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) else None


def _as_text(value: Any) -> Any:
    text = _text(value)
    return value if text is None else text  # leave other types to fail as "not a string"


def _required_text(value: str, info: ValidationInfo) -> str:
    if not value:
        raise _format_error(f"{info.field_name} is required")
    return value


def _code_format(value: str) -> str:
    if value and not _CODE.match(value):
        raise _format_error(
            f"{_shown(value)} is not a code: letters, digits and . _ : / - only, at most 64"
        )
    return value


def _compact_time(value: Any, info: ValidationInfo) -> datetime | None:
    text = _text(value)
    if text is None:
        raise _format_error(f"expected a yyyyMMddHHmmss string, got {_json_type(value)}")
    try:
        return parse_compact_time(text, info.field_name or "")
    except PortalFormatError as exc:
        raise _format_error(exc.message) from None


def _required_compact_time(value: Any, info: ValidationInfo) -> datetime:
    parsed = _compact_time(value, info)
    if parsed is None:
        raise _format_error(f"{info.field_name} is required")
    return parsed


def _choice(value: Any, choices: Mapping[str, _T], expected: str) -> _T:
    text = _text(value)
    if text is not None and text in choices:
        return choices[text]
    shown = _shown(text) if text is not None else _json_type(value)
    raise _format_error(f"expected {expected}, got {shown}")


_STATUSES = {str(status.value): status for status in DossierStatus}
_CHANNELS = {str(channel.value): channel for channel in Channel}
_APPLICANT_KINDS: dict[str, int | None] = {"": None, "1": 1, "2": 2, "3": 3, "4": 4}
_FLAGS: dict[str, bool | None] = {"": None, "1": True, "0": False, "true": True, "false": False}


def _status(value: Any) -> DossierStatus:
    return _choice(value, _STATUSES, "a status code 1 to 10")


def _channel(value: Any) -> Channel:
    return _choice(value, _CHANNELS, "'1' (in person), '2' (online) or '3' (postal)")


def _applicant_kind(value: Any) -> int | None:
    return _choice(value, _APPLICANT_KINDS, "'1' to '4' or ''")


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = _text(value)
    return _choice(text.lower() if text is not None else value, _FLAGS, "'1', '0' or ''")


def _none_as_empty(value: Any) -> Any:
    return [] if value is None else value


Text = Annotated[str, BeforeValidator(_as_text)]
Code = Annotated[str, BeforeValidator(_as_text), AfterValidator(_code_format)]
# After-validators run in order: "required" is reported before "not a code".
RequiredCode = Annotated[
    str, BeforeValidator(_as_text), AfterValidator(_required_text), AfterValidator(_code_format)
]
CompactTime = Annotated[datetime | None, BeforeValidator(_compact_time)]
RequiredCompactTime = Annotated[datetime, BeforeValidator(_required_compact_time)]
Flag = Annotated[bool | None, BeforeValidator(_flag)]


class PortalSupplement(BaseModel):
    """One entry of ``DanhSachHoSoBoSung``: a supplement request and, once met, its supply."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    NgayBoSung: RequiredCompactTime  # requested
    NgayTiepNhanBoSung: CompactTime = None  # papers supplied: the clock restarts
    NgayHenTraMoi: CompactTime = None  # the new appointment


class PortalDossierRecord(BaseModel):
    """One dossier as the portal syncs it. Every value is a string; ``""`` means none.

    The owner's identity (``ChuHoSo``, ``SoDienThoai``, ``Email``, ``SoCMND``/``SoGiayTo``, ...)
    is deliberately not modelled: unknown fields are dropped, so it never goes further.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    MaHoSo: RequiredCode
    MaTTHC: RequiredCode
    MaDonVi: Code = ""
    MaLinhVuc: Text = ""
    TenTTHC: Text = ""
    KenhThucHien: Annotated[Channel, BeforeValidator(_channel)]
    LoaiDoiTuong: Annotated[int | None, BeforeValidator(_applicant_kind)] = None
    NgayTiepNhan: CompactTime = None
    NgayHenTra: CompactTime = None
    TrangThaiHoSo: Annotated[DossierStatus, BeforeValidator(_status)]
    NgayKetThucXuLy: CompactTime = None
    NgayTra: CompactTime = None
    DuocThanhToanTrucTuyen: Flag = None
    HoSoCoThanhPhanSoHoa: Flag = None
    DanhSachHoSoBoSung: Annotated[list[PortalSupplement], BeforeValidator(_none_as_empty)] = Field(
        default_factory=list
    )


# --- rules across fields -----------------------------------------------------------------------

_RECEIPT_NEEDED = {
    DossierStatus.registered,
    DossierStatus.accepted,
    DossierStatus.processing,
    DossierStatus.financial_obligation,
}
_CLOSING_STATUSES = {DossierStatus.not_accepted, DossierStatus.withdrawn, DossierStatus.stopped}
_END_NEEDED = {*_CLOSING_STATUSES, DossierStatus.finished}


def _blank(value: Any) -> bool:
    return _text(value) == ""


def _unit_code(ma_don_vi: str, default_unit: str | None, ma_ho_so: str) -> tuple[str, str] | None:
    """The unit code and the record field it came from (for error pointers)."""
    if ma_don_vi:
        return ma_don_vi, "MaDonVi"
    if default_unit and default_unit.strip():
        return default_unit.strip(), "MaDonVi"
    prefix, dash, _ = ma_ho_so.partition("-")  # {unit code}-{yymmdd}-{sequence}
    return (prefix, "MaHoSo") if dash and prefix else None


def _rule_errors(raw: Mapping[str, Any], default_unit: str | None) -> list[tuple[str, str]]:
    """(field path, detail) for what the current status needs but the record lacks.

    Read off the raw values, so these are reported alongside malformed fields, not after them.
    """
    errors: list[tuple[str, str]] = []
    ma_don_vi, ma_ho_so = _text(raw.get("MaDonVi")), _text(raw.get("MaHoSo"))
    if ma_don_vi == "" and ma_ho_so and not _unit_code("", default_unit, ma_ho_so):
        detail = "no unit code: MaDonVi and ?madonvi= are empty and MaHoSo has no unit prefix"
        errors.append(("MaDonVi", detail))
    try:
        status = _status(raw.get("TrangThaiHoSo"))
    except PydanticCustomError:
        return errors  # reported as a field error

    def need(name: str) -> None:
        if _blank(raw.get(name)):
            errors.append((name, f"status {status.value} needs {name}"))

    if status in _RECEIPT_NEEDED:
        need("NgayTiepNhan")
    elif status in _END_NEEDED:
        need("NgayKetThucXuLy")
    elif status is DossierStatus.returned:
        need("NgayTra")
    elif status is DossierStatus.supplement_requested:
        entries = _none_as_empty(raw.get(SUPPLEMENTS))
        if isinstance(entries, list) and not any(
            isinstance(entry, dict) and _blank(entry.get("NgayTiepNhanBoSung")) for entry in entries
        ):
            errors.append((SUPPLEMENTS, "status 5 but no open supplement request"))
    return errors


# --- events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ImpliedEvent:
    """One event a snapshot implies, and the record fields its times were read from."""

    status: DossierStatus
    occurred_at: datetime
    received_at: datetime | None = None
    due_at: datetime | None = None
    supplement_supplied_at: datetime | None = None
    supplement_new_due_at: datetime | None = None
    sources: Mapping[str, str] = field(default_factory=dict)


def _implied_events(record: PortalDossierRecord) -> list[_ImpliedEvent]:
    implied: list[_ImpliedEvent] = []
    status = record.TrangThaiHoSo
    if record.NgayTiepNhan:
        if status in (DossierStatus.registered, DossierStatus.not_accepted):
            # Registered online but never accepted: NgayTiepNhan is the submission, and an
            # "accepted" event would be false (and would start a deadline).
            implied.append(
                _ImpliedEvent(
                    DossierStatus.registered,
                    record.NgayTiepNhan,
                    sources={"occurred_at": "NgayTiepNhan"},
                )
            )
        else:
            implied.append(
                _ImpliedEvent(
                    DossierStatus.accepted,
                    record.NgayTiepNhan,
                    received_at=record.NgayTiepNhan,
                    due_at=record.NgayHenTra,
                    sources={
                        "occurred_at": "NgayTiepNhan",
                        "received_at": "NgayTiepNhan",
                        "due_at": "NgayHenTra",
                    },
                )
            )
            if status == DossierStatus.processing:
                # The snapshot says "processing" but carries no time for it: the work started
                # no earlier than the receipt, so that is when we place it (the status order
                # puts it after the acceptance at the same instant).
                implied.append(
                    _ImpliedEvent(
                        DossierStatus.processing,
                        record.NgayTiepNhan,
                        sources={"occurred_at": "NgayTiepNhan"},
                    )
                )
    for j, entry in enumerate(record.DanhSachHoSoBoSung):
        path = f"{SUPPLEMENTS}/{j}"
        supplied, new_due = entry.NgayTiepNhanBoSung, entry.NgayHenTraMoi
        implied.append(
            _ImpliedEvent(
                DossierStatus.supplement_requested,
                entry.NgayBoSung,
                supplement_new_due_at=None if supplied else new_due,
                sources={
                    "occurred_at": f"{path}/NgayBoSung",
                    "supplement_new_due_at": f"{path}/NgayHenTraMoi",
                },
            )
        )
        if supplied:
            implied.append(
                _ImpliedEvent(
                    DossierStatus.processing,
                    supplied,
                    supplement_supplied_at=supplied,
                    supplement_new_due_at=new_due,
                    sources={
                        "occurred_at": f"{path}/NgayTiepNhanBoSung",
                        "supplement_supplied_at": f"{path}/NgayTiepNhanBoSung",
                        "supplement_new_due_at": f"{path}/NgayHenTraMoi",
                    },
                )
            )
    if status in _CLOSING_STATUSES:
        # NgayKetThucXuLy is when the dossier was refused, withdrawn or stopped, not finished;
        # NgayTra (papers handed back) is left out: "returned" would contradict the status.
        if record.NgayKetThucXuLy:
            implied.append(
                _ImpliedEvent(
                    status, record.NgayKetThucXuLy, sources={"occurred_at": "NgayKetThucXuLy"}
                )
            )
    else:
        if record.NgayKetThucXuLy:
            implied.append(
                _ImpliedEvent(
                    DossierStatus.finished,
                    record.NgayKetThucXuLy,
                    sources={"occurred_at": "NgayKetThucXuLy"},
                )
            )
        if record.NgayTra:
            implied.append(
                _ImpliedEvent(
                    DossierStatus.returned, record.NgayTra, sources={"occurred_at": "NgayTra"}
                )
            )
    # Status 6 (financial obligation requested) adds nothing: the portal shape carries no time
    # for the request, nor for the payment, so the pause cannot be placed from a snapshot.
    return implied


def event_id(dossier_code: str, status: DossierStatus, occurred_at: datetime) -> str:
    """Deterministic, so a re-sent snapshot yields the same ids, i.e. duplicates."""
    local = occurred_at.astimezone(PORTAL_TZ).strftime(COMPACT_TIME_FORMAT)
    return f"portal:{dossier_code}:{status.value}:{local}"


# Where each DossierEventIn field comes from, when the same for every event of a record.
_EVENT_FIELD_SOURCES = {
    "event_id": "MaHoSo",
    "dossier_code": "MaHoSo",
    "procedure_code": "MaTTHC",
    "channel": "KenhThucHien",
    "applicant_kind": "LoaiDoiTuong",
    "paid_online": "DuocThanhToanTrucTuyen",
    "has_digitized_parts": "HoSoCoThanhPhanSoHoa",
}


def _pointer(index: int, path: str = "") -> str:
    return f"#/{index}/{path}" if path else f"#/{index}"


def _build_event(
    record: PortalDossierRecord,
    unit: tuple[str, str],
    implied: _ImpliedEvent,
    index: int,
) -> DossierEventIn | list[dict[str, str]]:
    unit_code, unit_source = unit
    try:
        return DossierEventIn(
            event_id=event_id(record.MaHoSo, implied.status, implied.occurred_at),
            dossier_code=record.MaHoSo,
            unit_code=unit_code,
            procedure_code=record.MaTTHC,
            status=implied.status,
            occurred_at=implied.occurred_at,
            channel=record.KenhThucHien,
            due_at=implied.due_at,
            received_at=implied.received_at,
            supplement_supplied_at=implied.supplement_supplied_at,
            supplement_new_due_at=implied.supplement_new_due_at,
            applicant_kind=record.LoaiDoiTuong,
            paid_online=record.DuocThanhToanTrucTuyen,
            has_digitized_parts=record.HoSoCoThanhPhanSoHoa,
        )
    except ValidationError as exc:
        sources = {**_EVENT_FIELD_SOURCES, "unit_code": unit_source, **implied.sources}
        errors = []
        for error in exc.errors(include_url=False):
            name = str(error["loc"][0]) if error["loc"] else ""
            source = sources.get(name, "")
            detail = f"{name}: {error['msg']}" if name else error["msg"]
            errors.append({"pointer": _pointer(index, source), "detail": detail})
        return errors


def _unique(errors: list[dict[str, str]]) -> list[dict[str, str]]:
    seen: set[tuple[str, str]] = set()
    unique = []
    for error in errors:
        key = (error["pointer"], error["detail"])
        if key not in seen:
            seen.add(key)
            unique.append(error)
    return unique


def _field_errors(exc: ValidationError, index: int) -> list[dict[str, str]]:
    errors = []
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error["loc"]]
        if error["type"] == "missing":
            detail = f"{loc[-1]} is required"
        elif error["type"] in ("model_type", "dict_type"):
            detail = "expected an object"
        elif error["type"] == "list_type":
            detail = "expected an array"
        else:
            detail = error["msg"]
        errors.append({"pointer": _pointer(index, "/".join(loc)), "detail": detail})
    return errors


def records_to_events(raw: Any, index: int, default_unit: str | None) -> list[DossierEventIn]:
    """The events one portal record implies, sorted by time then status.

    ``index`` is the record's place in the request body (for error pointers); ``default_unit``
    is the request's ``?madonvi=``. Raises :class:`PortalRecordError` with every problem found.
    """
    if not isinstance(raw, dict):
        detail = f"expected an object (one dossier record), got {_json_type(raw)}"
        raise PortalRecordError([{"pointer": _pointer(index), "detail": detail}])

    errors: list[dict[str, str]] = []
    record: PortalDossierRecord | None = None
    try:
        record = PortalDossierRecord.model_validate(raw)
    except ValidationError as exc:
        errors.extend(_field_errors(exc, index))
    for path, detail in _rule_errors(raw, default_unit):
        errors.append({"pointer": _pointer(index, path), "detail": detail})
    if errors or record is None:
        raise PortalRecordError(_unique(errors))

    unit = _unit_code(record.MaDonVi, default_unit, record.MaHoSo)
    if unit is None:  # already reported by _rule_errors; kept for the type checker
        raise PortalRecordError([{"pointer": _pointer(index, "MaDonVi"), "detail": "no unit code"}])
    events: list[DossierEventIn] = []
    for implied in _implied_events(record):
        built = _build_event(record, unit, implied, index)
        if isinstance(built, list):
            errors.extend(built)
        else:
            events.append(built)
    if errors:
        raise PortalRecordError(_unique(errors))
    return sorted(events, key=lambda event: (event.occurred_at, event.status))


def parse_portal_batch(
    raw_records: list[Any], default_unit: str | None
) -> list[tuple[int, list[DossierEventIn] | None, list[dict[str, str]] | None]]:
    """Per record, in order: ``(index, events, None)`` or ``(index, None, errors)``."""
    results: list[tuple[int, list[DossierEventIn] | None, list[dict[str, str]] | None]] = []
    for index, raw in enumerate(raw_records):
        try:
            results.append((index, records_to_events(raw, index, default_unit), None))
        except PortalRecordError as exc:
            results.append((index, None, exc.errors))
    return results


def minimised(raw: Any) -> Any:
    """A raw record reduced to the portal fields we model, free text scrubbed: what may be kept
    (e.g. in quarantine) without keeping the applicant's name, identity number, phone or
    e-mail, whatever fields they came in. Every value kept is scrubbed, whatever its type: a
    malformed record may carry a phone in a date field, or a CCCD as a number or a list."""
    from app.dossiers.privacy import scrub_value

    if isinstance(raw, list):
        return [minimised(item) for item in raw]
    if not isinstance(raw, dict):
        return scrub_value(raw)
    allowed = set(PortalDossierRecord.model_fields)
    kept: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in allowed:
            continue
        if key == SUPPLEMENTS and isinstance(value, list):
            fields = set(PortalSupplement.model_fields)
            kept[key] = [
                {k: scrub_value(v) for k, v in entry.items() if k in fields}
                if isinstance(entry, dict)
                else None
                for entry in value
            ]
        else:
            kept[key] = scrub_value(value)
    return kept
