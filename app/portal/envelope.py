"""The national portal's answer envelope, as chiso speaks it under ``/dvcqg/``.

Every answer is ``{"error_code": <number>, "message": "<Vietnamese>", "message_en": ...}`` plus
the call's own fields (``session``, ``result``, ``counts``), with HTTP 200 whatever happened:
one-stop systems read ``error_code`` (some as the number 0, some as the string "0") and resend
on anything else, and they cannot read RFC 9457 problems. Only transport limits keep their
HTTP status, with the same envelope: 413 (body too large), 429 (rate limited) and 503 (a
dependency down), the last two with ``Retry-After``. docs/PORTAL.md lists every code.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Literal

import orjson
from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from app.core.errors import PROBLEM_RENDERERS, Problem
from app.dossiers.schemas import MAX_BATCH

PREFIX = "/dvcqg/"
LOGIN_PATH = PREFIX + "login"


class PortalCode(IntEnum):
    """``error_code`` values. 0 is the only success; clients resend on any other."""

    success = 0
    rejected = 1  # some records were refused (each says why)
    session = 2  # session missing, unknown or expired: log in again
    credentials = 3  # wrong username or password (the password is an API key)
    forbidden = 4  # the key lacks the scope the call needs
    unknown_service = 5
    malformed = 6  # not JSON, a field missing or of the wrong type
    too_many = 7  # over 10,000 records, or a body over the size cap (HTTP 413)
    unavailable = 8  # retry later: HTTP 503 (or 429) with Retry-After
    unknown_unit = 9  # reserved: records of an unknown unit are quarantined (code 0)


# (Vietnamese, English) for each code; a call may say more in ``detail``.
MESSAGES: dict[PortalCode, tuple[str, str]] = {
    PortalCode.success: ("Thành công", "Success"),
    PortalCode.rejected: ("Có hồ sơ bị từ chối", "Some records were rejected"),
    PortalCode.session: (
        "Phiên làm việc không hợp lệ hoặc đã hết hạn, vui lòng đăng nhập lại",
        "The session is missing, unknown or expired: log in again",
    ),
    PortalCode.credentials: ("Sai tên đăng nhập hoặc mật khẩu", "Wrong username or password"),
    PortalCode.forbidden: (
        "Tài khoản không có quyền thực hiện dịch vụ này",
        "The key lacks the scope this call needs",
    ),
    PortalCode.unknown_service: ("Dịch vụ không được hỗ trợ", "Unsupported service"),
    PortalCode.malformed: ("Yêu cầu không hợp lệ", "Malformed call"),
    PortalCode.too_many: (
        f"Vượt quá số lượng hồ sơ cho phép (tối đa {MAX_BATCH:,} hồ sơ mỗi lần gửi)".replace(
            ",", "."
        ),
        f"Too many records: at most {MAX_BATCH:,} per call",
    ),
    PortalCode.unavailable: (
        "Hệ thống tạm thời không phục vụ được, vui lòng thử lại sau",
        "Temporarily unavailable: retry later",
    ),
    PortalCode.unknown_unit: ("Không xác định được đơn vị", "Unknown unit"),
}

RecordResult = Literal["stored", "updated", "duplicate", "quarantined", "rejected"]


# --- wire shapes (also the OpenAPI documentation) --------------------------------------------


class Answer(BaseModel):
    error_code: int = Field(description="0 success; see docs/PORTAL.md for every code")
    message: str = Field(description="Vietnamese, for the operator of the one-stop system")
    message_en: str


class LoginIn(BaseModel):
    username: str = Field(max_length=256, description="Recorded with the session")
    password: str = Field(description="A chiso API key with the `dossiers:write` scope")


class LoginAnswer(Answer):
    session: str | None = Field(
        default=None, description="Name it in every call; null when refused"
    )


class RecordOutcome(BaseModel):
    """What became of one record (or progress item) of the call."""

    MaHoSo: str | None
    result: RecordResult
    reason: str | None = Field(
        default=None, description="Why it was rejected or quarantined; null otherwise"
    )
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="`{pointer, detail}` per problem of a rejected record"
    )


class Counts(BaseModel):
    stored: int = 0
    updated: int = 0
    duplicate: int = 0
    quarantined: int = 0
    rejected: int = 0


class ServiceAnswer(Answer):
    """``result``: per-record outcomes (DongBoHoSoMC, CapNhatTienDoHoSoMC), ``[record]`` or
    ``[]`` (TraCuuHoSo), ``[procedure]`` or ``[]`` (LayThuTuc); null when the call failed."""

    result: list[Any] | None = None
    counts: Counts | None = Field(default=None, description="Sync services only")


class ServiceCall(BaseModel):
    """The body of ``POST /dvcqg/service`` (documentation: the route reads it itself)."""

    model_config = ConfigDict(extra="allow")

    session: str | None = Field(
        default=None, description="From /dvcqg/login (or send `Authorization: Bearer <key>`)"
    )
    madonvi: str | None = Field(
        default=None, description="The caller's unit identifier (e.g. 000.00.12.H01)"
    )
    service: str = Field(
        description="DongBoHoSoMC, CapNhatTienDoHoSoMC, TraCuuHoSo or LayThuTuc",
        examples=["DongBoHoSoMC"],
    )
    isUpdating: str | bool | None = Field(
        default=None, description='DongBoHoSoMC: "True"/"False" (informational)'
    )
    data: list[dict[str, Any]] | None = Field(
        default=None, description="DongBoHoSoMC: records; CapNhatTienDoHoSoMC: progress items"
    )
    mahoso: str | None = Field(default=None, description="TraCuuHoSo: the dossier's MaHoSo")
    maTTHC: str | None = Field(default=None, description="LayThuTuc: the procedure's code")


# --- answers -----------------------------------------------------------------------------------


def answer(
    code: PortalCode,
    detail: tuple[str, str] | None = None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> Response:
    """The envelope for ``code``: its message, or ``detail`` (Vietnamese, English) instead."""
    message, message_en = detail or MESSAGES[code]
    body = {"error_code": int(code), "message": message, "message_en": message_en, **fields}
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def malformed(vi: str, en: str, **fields: Any) -> Response:
    """Code 6; ``fields`` default to ``result: null`` (a login answers ``session: null``)."""
    return answer(
        PortalCode.malformed,
        (f"Yêu cầu không hợp lệ: {vi}", f"Malformed call: {en}"),
        **(fields or {"result": None}),
    )


def unknown_service(name: str) -> Response:
    shown = name if len(name) <= 64 else name[:64] + "…"
    return answer(
        PortalCode.unknown_service,
        (f"Dịch vụ không được hỗ trợ: {shown}", f"Unsupported service: {shown}"),
        result=None,
    )


# A problem raised anywhere under /dvcqg/ (the gate's refusals, the framework's 404/405, an
# outage) → (HTTP status kept or 200, code). Transport limits keep their status.
_FROM_STATUS: dict[int, tuple[int, PortalCode]] = {
    400: (200, PortalCode.malformed),
    401: (200, PortalCode.session),
    403: (200, PortalCode.forbidden),
    404: (404, PortalCode.unknown_service),
    405: (405, PortalCode.malformed),
    409: (200, PortalCode.malformed),
    413: (413, PortalCode.too_many),
    422: (200, PortalCode.malformed),
    429: (429, PortalCode.unavailable),
}
_KEPT_HEADERS = ("Retry-After", "Allow")


def render_problem(problem: Problem, request: Request) -> Response:
    status, code = _FROM_STATUS.get(
        problem.status,
        (problem.status, PortalCode.unavailable if problem.status >= 500 else PortalCode.malformed),
    )
    vi, en = MESSAGES[code]
    if problem.status == 404:
        name = request.scope["path"].removeprefix(PREFIX)
        vi, en = f"{vi}: {name[:64]}", f"{en}: {name[:64]}"
    elif problem.status == 413:
        vi, en = "Dữ liệu gửi lên vượt quá dung lượng cho phép", "The body is too large"
    elif problem.status == 429:
        vi, en = "Gửi quá nhiều yêu cầu, vui lòng thử lại sau", "Too many requests: retry later"
    detail = problem.detail or problem.title
    headers = {k: v for k, v in problem.headers.items() if k in _KEPT_HEADERS}
    # A login's answers carry `session`, a service's `result`: null either way here.
    fields = {"session" if request.scope["path"] == LOGIN_PATH else "result": None}
    return answer(code, (vi, f"{en} ({detail})"), status=status, headers=headers, **fields)


PROBLEM_RENDERERS[PREFIX] = render_problem
