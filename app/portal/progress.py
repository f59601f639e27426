"""The portal's progress items (``CapNhatTienDoHoSoMC``): one processing step of a known dossier,
read into one dossier event. Pure functions.

An item names only its dossier (``MaHoSo``): the unit, procedure and channel are the stored
dossier's, looked up by the caller (:func:`progress_dossier_code` gives the code to look up).
Who handled the step (``NguoiXuLy``, ``ChucDanh``) is personal data and what they wrote
(``NoiDungXuLy``) is free text that may name the applicant: neither goes further than here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from app.dossiers.schemas import DOSSIER_CODE_PATTERN, Channel, DossierEventIn, DossierStatus
from app.portal.records import (
    EventFields,
    PortalRecordError,
    checks_pass,
    constructed_event,
    validated_fields,
)
from app.portal.values import ValueReader, as_text, compact, json_type, shown

_DOSSIER_CODE = re.compile(DOSSIER_CODE_PATTERN)


@dataclass(frozen=True, slots=True)
class ParsedProgress:
    """One progress item: its dossier, the event it makes, notes on what was odd, and the
    step's own start and deadline (``NgayBatDau``, ``NgayKetThucTheoQuyDinh``: read, not yet
    stored — no event field holds a step's deadline)."""

    dossier_code: str
    fields: list[EventFields]  # the event's values, as its DossierEventIn holds them
    notes: list[str]
    step_started_at: datetime | None = None
    step_due_at: datetime | None = None

    @property
    def events(self) -> list[DossierEventIn]:
        """The event, built from ``fields`` as validation builds it."""
        return [constructed_event(values) for values in self.fields]


def _pointer(index: int, path: str = "") -> str:
    return f"#/{index}/{path}" if path else f"#/{index}"


def progress_dossier_code(raw: Any) -> str | None:
    """The ``MaHoSo`` of a progress item, when it is a dossier code: what the caller looks up
    to find the dossier's unit, procedure and channel."""
    code = as_text(raw.get("MaHoSo")) if isinstance(raw, Mapping) else None
    return code if code and _DOSSIER_CODE.match(code) else None


def progress_event_id(dossier_code: str, at: datetime, status: DossierStatus) -> str:
    """``portal:{MaHoSo}:step:{ThoiDiemXuLy}:{status}``: a step re-sent is the same event
    whatever format its time came in (compact or ISO)."""
    return f"portal:{dossier_code}:step:{compact(at)}:{status.value}"


def progress_to_events(
    raw: Any, index: int, unit_code: str, procedure_code: str, channel: Channel
) -> ParsedProgress:
    """The event one progress item makes, with the stored dossier's unit, procedure and
    channel. ``TrangThai`` is the status the step leaves the dossier in; a value outside
    1–10 (or none) is stored as 4, processing, with a note. Raises :class:`PortalRecordError`
    when the item names no dossier or no time (a step that cannot be placed)."""
    if not isinstance(raw, Mapping):
        detail = f"expected an object (one progress item), got {json_type(raw)}"
        raise PortalRecordError([{"pointer": _pointer(index), "detail": detail}])
    errors: list[dict[str, str]] = []
    code = as_text(raw.get("MaHoSo"))
    if not code:
        errors.append({"pointer": _pointer(index, "MaHoSo"), "detail": "MaHoSo is required"})
    elif not _DOSSIER_CODE.match(code):
        detail = f"{shown(code)} is not a dossier code: letters, digits and . _ : - only"
        errors.append({"pointer": _pointer(index, "MaHoSo"), "detail": detail})
    # No horizon here: the event's own range check (up to two years ahead of now) applies.
    reader = ValueReader(horizon=None)
    at = reader.time(raw.get("ThoiDiemXuLy"), "ThoiDiemXuLy")
    if at is None:
        detail = reader.problems.get("ThoiDiemXuLy", "ThoiDiemXuLy is required")
        errors.append({"pointer": _pointer(index, "ThoiDiemXuLy"), "detail": detail})
    if errors or not code or at is None:
        raise PortalRecordError(errors)

    text = reader.text(raw.get("TrangThai"), "TrangThai")
    if text and text.isascii() and text.isdigit() and 1 <= int(text) <= 10:
        status = DossierStatus(int(text))
    else:
        status = DossierStatus.processing
        what = f"{shown(text)} is not a status 1 to 10" if text else "empty"
        reader.note(f"TrangThai: {what}; stored as 4 (processing)")
    started = reader.time(raw.get("NgayBatDau"), "NgayBatDau")
    step_due = reader.time(raw.get("NgayKetThucTheoQuyDinh"), "NgayKetThucTheoQuyDinh")
    fields: dict[str, Any] = {
        "event_id": progress_event_id(code, at, status),
        "dossier_code": code,
        "unit_code": unit_code,
        "procedure_code": procedure_code,
        "status": status,
        "occurred_at": at,
        "channel": channel,
    }
    if checks_pass(fields, datetime.now(UTC)):
        return ParsedProgress(code, [fields], reader.notes, started, step_due)
    try:
        fields = validated_fields(fields)
    except ValidationError as exc:
        errors = [
            {
                "pointer": _pointer(index, "ThoiDiemXuLy" if error["loc"] == ("occurred_at",)
                                    else ""),
                "detail": f"{error['loc'][0]}: {error['msg']}" if error["loc"] else error["msg"],
            }
            for error in exc.errors(include_url=False)
        ]  # fmt: skip
        raise PortalRecordError(errors) from None
    return ParsedProgress(code, [fields], reader.notes, started, step_due)
