"""The national portal's protocol under ``/dvcqg/``, as real one-stop systems call it.

Two styles, one ingest path (``app.portal.service``), the portal's envelope for every answer
(``app.portal.envelope``):

- adapter style (OpenCPS and most provincial platforms): ``POST /dvcqg/login`` trades an API
  key (the password) for a session, then ``POST /dvcqg/service`` with ``{session, madonvi,
  service, ...}`` for ``DongBoHoSoMC``, ``CapNhatTienDoHoSoMC``, ``TraCuuHoSo``, ``LayThuTuc``;
- LGSP style (.NET systems through a provincial integration platform): ``POST
  /dvcqg/DongBoHoSoMC?MaDinhDanhDV=&isUpdating=`` (and ``/dvcqg/CapNhatTienDoHoSoMC``) with a
  bare array, authenticated by ``Authorization: Bearer <key or session>`` or a ``session``
  header.

These routes authenticate their caller themselves (``own_credentials``): the session is in the
body, so the body is read (up to the route's cap) and parsed once, and the session is checked
before any record is looked at. The outcome is charged to the rate limits as the gate charges
a key: a caller accepted draws from its key's write bucket, a failed one from the address's
anonymous and failed-authentication buckets. A session is a bearer credential on these routes
only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypedDict

import msgspec
import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.core.auth import (
    PRINCIPAL_STATE,
    Principal,
    Scope,
    own_credentials,
)
from app.core.database import DbSession
from app.core.ratelimit import RATE_LIMITED, Refusal
from app.core.uow import committed
from app.dossiers.schemas import MAX_BATCH
from app.keys.service import principal_for_key
from app.portal import lookup, service, sessions
from app.portal.envelope import (
    MESSAGES,
    Answer,
    Counts,
    LoginAnswer,
    LoginIn,
    PortalCode,
    RecordOutcome,
    ServiceAnswer,
    ServiceCall,
    answer,
    malformed,
    render_problem,
    unknown_service,
)
from app.portal.records import WireValue, decode_records
from app.portal.schemas import PortalSyncResult
from app.procedures import service as procedures

TAG = "dvcqg (national portal protocol)"
LOGIN_CAP = 4 * 1024  # {"username", "password"}: a few hundred bytes
# Paths whose bodies may reach CHISO_MAX_BODY_BYTES (app/main.py's BULK_ROUTES).
BULK_PATHS = ("/dvcqg/service", "/dvcqg/DongBoHoSoMC", "/dvcqg/CapNhatTienDoHoSoMC")

router = APIRouter(tags=[TAG], dependencies=[Depends(own_credentials)])

SessionHeader = Annotated[
    str | None,
    Header(
        alias="session",
        description="A session from /dvcqg/login (or send `Authorization: Bearer <key or "
        "session>`)",
    ),
]
# The documented answers besides 200: the same envelope, with the transport's status.
_TRANSPORT: dict[int | str, dict[str, Any]] = {
    413: {"model": Answer, "description": "Body over the route's cap (error_code 7)"},
    429: {"model": Answer, "description": "Rate limited (error_code 8; `Retry-After`)"},
    503: {"model": Answer, "description": "Database unreachable (error_code 8; `Retry-After`)"},
}

_RECORD_EXAMPLE = {
    "MaHoSo": "000.00.12.H01-261123-0001",
    "MaTTHC": "1.001022.000.00.00.H01",
    "TenTTHC": "Cấp giấy phép xây dựng",
    "MaLinhVuc": "G09-XD01",
    "TenLinhVuc": "Xây dựng",
    "KenhThucHien": "2",
    "LoaiDoiTuong": "1",
    "NgayTiepNhan": "20261123083000",
    "NgayHenTra": "20261130170000",
    "TrangThaiHoSo": "4",
    "NgayKetThucXuLy": "",
    "NgayTra": "",
    "DonViXuLy": "Sở Xây dựng",
}
_PROGRESS_EXAMPLE = {
    "MaHoSo": "000.00.12.H01-261123-0001",
    "ThoiDiemXuLy": "20261124100000",
    "PhongBanXuLy": "Phòng Quản lý xây dựng",
    "NoiDungXuLy": "Thẩm định hồ sơ",
    "TrangThai": "4",
    "NgayBatDau": "20261124080000",
    "NgayKetThucTheoQuyDinh": "20261127170000",
}


# --- plumbing ----------------------------------------------------------------------------------


class _RecordsCall(TypedDict, total=False):
    """What a ``DongBoHoSoMC`` call's envelope holds, its records left as sent."""

    session: WireValue
    service: WireValue
    madonvi: WireValue
    isUpdating: WireValue
    data: msgspec.Raw


_RECORDS_CALL = msgspec.json.Decoder(_RecordsCall)


def _service_call(raw: bytes) -> Any:
    """The body of a ``/dvcqg/service`` call, as JSON reads it (raises
    ``orjson.JSONDecodeError``). A ``DongBoHoSoMC`` call's records are read with only the
    fields chiso reads (:func:`decode_records`): what the record reader gets from them is the
    same, for less work, and the applicant's data is never read into memory."""
    try:
        call = _RECORDS_CALL.decode(raw)
    except (msgspec.MsgspecError, RecursionError):  # RecursionError: nested past its depth
        call = None
    if call is not None and call.get("service") == "DongBoHoSoMC" and "data" in call:
        records = decode_records(call["data"])
        if records is not None:
            return {**call, "data": records}
    return orjson.loads(raw)


def _records_body(raw: bytes) -> Any:
    """A bare array of records (LGSP style), read as :func:`_service_call` reads a call's."""
    records = decode_records(raw)
    return records if records is not None else orjson.loads(raw)


async def _read_body(request: Request, cap: int) -> bytes | None:
    """The body, or None once it passes ``cap`` (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(cap: int, **fields: Any) -> Response:
    return answer(
        PortalCode.too_many,
        (
            f"Dữ liệu gửi lên vượt quá dung lượng cho phép ({cap} byte)",
            f"The body exceeds {cap} bytes, this call's limit",
        ),
        status=413,
        **(fields or {"result": None}),
    )


def _limited(refusal: Refusal, request: Request) -> Response:
    RATE_LIMITED.labels(refusal.draw.kind).inc()
    return render_problem(refusal.problem(), request)


async def _charge_failure(request: Request, refused: Response) -> Response:
    """Charge a failed authentication as the gate charges a bad key; 429 once it may not."""
    refusal = await request.app.state.rate_limiter.failed(request.scope)
    return _limited(refusal, request) if refusal is not None else refused


async def _charge_caller(request: Request, principal: Principal) -> Response | None:
    """Charge an accepted caller to its key's write bucket; a 429 answer when it is empty."""
    holder = principal.key_id or principal.name
    refusal = await request.app.state.rate_limiter.keyed(request.scope, holder)
    return _limited(refusal, request) if refusal is not None else None


def _gate_principal(request: Request) -> Principal | None:
    """The caller the gate resolved from an ``Authorization`` header (and charged)."""
    principal: Principal | None = request.scope.get("state", {}).get(PRINCIPAL_STATE)
    return principal


@dataclass(frozen=True, slots=True)
class _Caller:
    """Who is calling, and the session that says so (its use is recorded with the work)."""

    principal: Principal
    session: sessions.SessionCaller | None

    async def record_use(self, db: AsyncSession, now: datetime) -> None:
        if self.session is not None:
            await sessions.record_use(db, self.session, now)


async def _authenticate(
    request: Request, session: AsyncSession, token: object
) -> _Caller | Response:
    """The caller, from the ``Authorization`` header (already checked and charged by the gate)
    or from a session token (checked and charged here); else the envelope to answer."""
    principal = _gate_principal(request)
    if principal is not None:
        return _Caller(principal, request.scope["state"].get(sessions.SESSION_STATE))
    caller = await sessions.caller_for_token(session, token, clock.now(request))
    if caller is None:
        return await _charge_failure(request, answer(PortalCode.session, result=None))
    limited = await _charge_caller(request, caller.principal)
    if limited is not None:
        return limited
    return _Caller(caller.principal, caller)


def _forbidden(scope: Scope) -> Response:
    return answer(
        PortalCode.forbidden,
        (
            f"Tài khoản không có quyền thực hiện dịch vụ này (cần quyền {scope.value})",
            f"The key lacks the {scope.value!r} scope",
        ),
        result=None,
    )


_BOOLEANS = {"true": True, "false": False, "1": True, "0": False, "": None}


def _is_updating(value: object) -> bool | str | None:
    """``isUpdating``: "True"/"False" as OpenCPS sends it, booleans, or nothing. Returns the
    value, or the text of the error."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _BOOLEANS:
        return _BOOLEANS[value.strip().lower()]
    return 'isUpdating phải là "True" hoặc "False"'


def _unit(value: object) -> str | Response | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64:
        return malformed("madonvi phải là mã đơn vị (chuỗi)", "madonvi must be a unit code (text)")
    return value.strip() or None


# --- the services ------------------------------------------------------------------------------


assert tuple(RecordOutcome.model_fields) == ("MaHoSo", "result", "reason", "errors")


def _outcomes(result: PortalSyncResult) -> tuple[list[dict[str, Any]], Counts]:
    items: list[dict[str, Any]] = []
    for item in result.items:
        errors = item.errors or None
        reason = item.reason
        if reason is None and errors:
            reason = "; ".join(str(e.get("detail", "")) for e in errors)
        # RecordOutcome's fields, in its order (built from checked values: not validated).
        items.append({"MaHoSo": item.MaHoSo, "result": item.result, "reason": reason,
                      "errors": errors})  # fmt: skip
    counts = Counts.model_construct(
        stored=result.stored,
        updated=result.updated,
        duplicate=result.duplicate,
        quarantined=result.quarantined,
        rejected=result.rejected,
    )
    return items, counts


async def _sync(
    request: Request,
    session: AsyncSession,
    caller: _Caller,
    items: object,
    what: tuple[str, str],
    ingest: Callable[[list[Any]], Awaitable[PortalSyncResult]],
) -> Response:
    """A sync service: ``items`` (``what`` names them) checked as a whole, then ``ingest``."""
    if not caller.principal.has(Scope.dossiers_write):
        return _forbidden(Scope.dossiers_write)
    if not isinstance(items, list):
        return malformed(f"{what[0]} phải là một mảng", f"{what[1]} must be an array")
    if len(items) > MAX_BATCH:
        vi, en = MESSAGES[PortalCode.too_many]
        sent = f"{len(items):,}"
        detail = (f"{vi}: đã gửi {sent.replace(',', '.')}", f"{en}; got {sent}")
        return answer(PortalCode.too_many, detail, result=None)
    now = clock.now(request)

    async def work() -> PortalSyncResult:
        result = await ingest(items)
        await caller.record_use(session, now)
        return result

    settings = request.app.state.settings
    result = await committed(session, work, retries=settings.retry_conflicts)
    outcomes, counts = _outcomes(result)
    if counts.rejected == 0:
        return answer(PortalCode.success, result=outcomes, counts=counts.model_dump())
    total = len(outcomes)
    detail = (
        f"{counts.rejected}/{total} hồ sơ bị từ chối",
        f"{counts.rejected} of {total} record(s) rejected",
    )
    return answer(PortalCode.rejected, detail, result=outcomes, counts=counts.model_dump())


async def _records(
    request: Request,
    session: AsyncSession,
    caller: _Caller,
    records: object,
    unit: str | None,
    is_updating: bool | None,
    what: tuple[str, str] = ("data", "data"),
) -> Response:
    """DongBoHoSoMC: dossier records, through the one ingest path. ``isUpdating`` changes
    nothing (ingestion is idempotent either way); it is kept with quarantined records."""
    settings = request.app.state.settings

    def ingest(rows: list[Any]) -> Awaitable[PortalSyncResult]:
        return service.ingest_records(
            session,
            settings,
            caller.principal,
            rows,
            default_unit=unit,
            source="push",
            is_updating=is_updating,
        )

    return await _sync(request, session, caller, records, what, ingest)


async def _progress(
    request: Request,
    session: AsyncSession,
    caller: _Caller,
    items: object,
    unit: str | None,
    what: tuple[str, str] = ("data", "data"),
) -> Response:
    """CapNhatTienDoHoSoMC: progress items, each an event in its dossier's history."""
    settings = request.app.state.settings

    def ingest(rows: list[Any]) -> Awaitable[PortalSyncResult]:
        return service.ingest_progress(
            session, settings, caller.principal, rows, default_unit=unit, source="push"
        )

    return await _sync(request, session, caller, items, what, ingest)


async def _read(
    request: Request,
    session: AsyncSession,
    caller: _Caller,
    read: Callable[[], Awaitable[list[dict[str, Any]]]],
) -> Response:
    now = clock.now(request)

    async def work() -> list[dict[str, Any]]:
        found = await read()
        await caller.record_use(session, now)
        return found

    found = await committed(session, work, retries=request.app.state.settings.retry_conflicts)
    return answer(PortalCode.success, result=found)


async def _lookup(
    request: Request, session: AsyncSession, caller: _Caller, code: object
) -> Response:
    principal = caller.principal
    if not (principal.has(Scope.dossiers_read) or principal.has(Scope.dossiers_write)):
        return _forbidden(Scope.dossiers_read)
    if not isinstance(code, str) or not code.strip():
        return malformed("thiếu mahoso", "mahoso is required (text)")
    mahoso, settings, now = code.strip(), request.app.state.settings, clock.now(request)

    async def read() -> list[dict[str, Any]]:
        record = await lookup.portal_record(session, settings, principal, mahoso, now)
        return [record] if record is not None else []

    return await _read(request, session, caller, read)


async def _procedure(
    request: Request, session: AsyncSession, caller: _Caller, code: object
) -> Response:
    if not isinstance(code, str) or not code.strip():
        return malformed("thiếu maTTHC", "maTTHC is required (text)")
    ma_tthc = code.strip()

    async def read() -> list[dict[str, Any]]:
        found = await procedures.portal_procedure(session, ma_tthc)
        return [found] if found is not None else []

    return await _read(request, session, caller, read)


# --- routes ------------------------------------------------------------------------------------


@router.post(
    "/dvcqg/login",
    response_model=LoginAnswer,
    responses=_TRANSPORT,
    summary="Log in: the password is a chiso API key with dossiers:write; answers a session",
    description="Always HTTP 200 (except 413/429/503): `error_code` 0 with `session`, 3 for "
    "wrong credentials (counted against the address's failed-authentication limit), 4 for a "
    "key without `dossiers:write`, 6 for a malformed body. A session lasts "
    "`CHISO_PORTAL_SESSION_HOURS` and dies with its key.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": LoginIn.model_json_schema(),
                    "example": {"username": "motcua-h01", "password": "chiso_<prefix>_<secret>"},
                }
            },
        }
    },
)
async def login(request: Request, session: DbSession) -> Response:
    raw = await _read_body(request, LOGIN_CAP)
    if raw is None:
        return await _charge_failure(request, _too_large(LOGIN_CAP, session=None))
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return await _charge_failure(
            request, malformed("không phải JSON", "not JSON", session=None)
        )
    username = body.get("username") if isinstance(body, dict) else None
    password = body.get("password") if isinstance(body, dict) else None
    if not isinstance(username, str) or not isinstance(password, str) or len(username) > 256:
        return await _charge_failure(
            request,
            malformed(
                "cần {username, password} (chuỗi)",
                "expected {username, password} as text",
                session=None,
            ),
        )
    refused = answer(PortalCode.credentials, session=None)
    principal = await principal_for_key(session, password) if password else None
    if principal is None:
        return await _charge_failure(request, refused)
    limited = await _charge_caller(request, principal)
    if limited is not None:
        return limited
    if not principal.has(Scope.dossiers_write):
        return answer(
            PortalCode.forbidden,
            (
                "Khóa truy cập không có quyền dossiers:write",
                "The key lacks the 'dossiers:write' scope",
            ),
            session=None,
        )
    settings, now, name = request.app.state.settings, clock.now(request), username.strip()
    token = await committed(
        session,
        lambda: sessions.open_session(session, settings, principal, name, now),
        retries=settings.retry_conflicts,
    )
    return answer(PortalCode.success, ("Đăng nhập thành công", "Logged in"), session=token)


_SERVICE_EXAMPLES = {
    "DongBoHoSoMC": {
        "value": {
            "session": "<from /dvcqg/login>",
            "madonvi": "000.00.12.H01",
            "service": "DongBoHoSoMC",
            "isUpdating": "False",
            "data": [_RECORD_EXAMPLE],
        }
    },
    "CapNhatTienDoHoSoMC": {
        "value": {
            "session": "<from /dvcqg/login>",
            "madonvi": "000.00.12.H01",
            "service": "CapNhatTienDoHoSoMC",
            "data": [_PROGRESS_EXAMPLE],
        }
    },
    "TraCuuHoSo": {
        "value": {
            "session": "<from /dvcqg/login>",
            "madonvi": "000.00.12.H01",
            "service": "TraCuuHoSo",
            "mahoso": "000.00.12.H01-261123-0001",
        }
    },
    "LayThuTuc": {
        "value": {"session": "<from /dvcqg/login>", "service": "LayThuTuc", "maTTHC": "1.001022"}
    },
}
_ANSWER_EXAMPLES = {
    "synced": {
        "value": {
            "error_code": 0,
            "message": "Thành công",
            "message_en": "Success",
            "result": [
                {"MaHoSo": "000.00.12.H01-261123-0001", "result": "stored", "reason": None,
                 "errors": None}
            ],
            "counts": {"stored": 1, "updated": 0, "duplicate": 0, "quarantined": 0,
                       "rejected": 0},
        }
    },
    "rejected": {
        "value": {
            "error_code": 1,
            "message": "1/1 hồ sơ bị từ chối",
            "message_en": "1 of 1 record(s) rejected",
            "result": [
                {"MaHoSo": "H05.01-261123-0001", "result": "rejected",
                 "reason": "outside this key's unit",
                 "errors": [{"pointer": "#/0/MaHoSo", "detail": "outside this key's unit"}]}
            ],
            "counts": {"stored": 0, "updated": 0, "duplicate": 0, "quarantined": 0,
                       "rejected": 1},
        }
    },
    "looked up": {
        "value": {
            "error_code": 0,
            "message": "Thành công",
            "message_en": "Success",
            "result": [
                {"MaHoSo": "000.00.12.H01-261123-0001", "MaTTHC": "1.001022",
                 "TenTTHC": "Cấp giấy phép xây dựng", "TrangThaiHoSo": "4",
                 "NgayTiepNhan": "20261123083000", "NgayHenTra": "20261130170000",
                 "NgayKetThucXuLy": "", "NgayTra": "", "KenhThucHien": "2",
                 "DonViXuLy": "Sở Xây dựng"}
            ],
        }
    },
    "session expired": {
        "value": {
            "error_code": 2,
            "message": "Phiên làm việc không hợp lệ hoặc đã hết hạn, vui lòng đăng nhập lại",
            "message_en": "The session is missing, unknown or expired: log in again",
            "result": None,
        }
    },
}  # fmt: skip


@router.post(
    "/dvcqg/service",
    response_model=ServiceAnswer,
    responses={
        200: {"content": {"application/json": {"examples": _ANSWER_EXAMPLES}}},
        **_TRANSPORT,
    },
    summary="One service call: DongBoHoSoMC, CapNhatTienDoHoSoMC, TraCuuHoSo, LayThuTuc",
    description="`{session, madonvi, service, ...}`. Always HTTP 200 (except 413/429/503) with "
    "`error_code`: 0 when every record was stored, updated, a duplicate or quarantined, 1 when "
    "some were rejected (each says why in `result`), 2 session missing/unknown/expired, 4 the "
    "key lacks the scope, 5 unknown service, 6 malformed, 7 over 10,000 records. "
    "`Authorization: Bearer <key or session>` may stand for `session`.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": ServiceCall.model_json_schema(),
                    "examples": _SERVICE_EXAMPLES,
                }
            },
        }
    },
)
async def service_call(
    request: Request, session: DbSession, session_header: SessionHeader = None
) -> Response:
    authenticated = _gate_principal(request) is not None
    raw = await _read_body(request, request.app.state.settings.max_body_bytes)
    if raw is None:
        refused = _too_large(request.app.state.settings.max_body_bytes)
        return refused if authenticated else await _charge_failure(request, refused)
    try:
        body = _service_call(raw)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        refused = malformed("cần một đối tượng JSON", "expected a JSON object")
        return refused if authenticated else await _charge_failure(request, refused)
    caller = await _authenticate(request, session, body.get("session") or session_header)
    if isinstance(caller, Response):
        return caller
    name = body.get("service")
    if not isinstance(name, str):
        return malformed("thiếu service", "service is required (text)")
    unit = _unit(body.get("madonvi"))
    if isinstance(unit, Response):
        return unit
    if name == "DongBoHoSoMC":
        updating = _is_updating(body.get("isUpdating"))
        if isinstance(updating, str):
            return malformed(updating, 'isUpdating must be "True" or "False"')
        return await _records(request, session, caller, body.get("data"), unit, updating)
    if name == "CapNhatTienDoHoSoMC":
        return await _progress(request, session, caller, body.get("data"), unit)
    if name == "TraCuuHoSo":
        return await _lookup(request, session, caller, body.get("mahoso"))
    if name == "LayThuTuc":
        return await _procedure(request, session, caller, body.get("maTTHC"))
    return unknown_service(name)


# --- LGSP style --------------------------------------------------------------------------------

_BODY = ("nội dung yêu cầu", "the body")
UnitParam = Annotated[
    str | None,
    Query(max_length=64, description="The caller's unit identifier (e.g. 000.00.12.H01)"),
]


async def _lgsp(
    request: Request,
    session: AsyncSession,
    token: str | None,
    run: Callable[[_Caller, object], Awaitable[Response]],
    decode: Callable[[bytes], Any] = orjson.loads,
) -> Response:
    """Credentials first (headers only here: nothing is read without them), then the body,
    read by ``decode`` (raises ``orjson.JSONDecodeError`` when it is not JSON)."""
    caller = await _authenticate(request, session, token)
    if isinstance(caller, Response):
        return caller
    raw = await _read_body(request, request.app.state.settings.max_body_bytes)
    if raw is None:
        return _too_large(request.app.state.settings.max_body_bytes)
    try:
        items = decode(raw)
    except orjson.JSONDecodeError:
        return malformed("không phải JSON", "not JSON")
    return await run(caller, items)


def _lgsp_body(example: dict[str, str]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "array", "items": {"type": "object"}},
                    "example": [example],
                }
            },
        }
    }


@router.post(
    "/dvcqg/DongBoHoSoMC",
    response_model=ServiceAnswer,
    responses=_TRANSPORT,
    summary="LGSP style: a bare array of DongBoHoSoMC records",
    description="Authenticated by `Authorization: Bearer <key or session>` or a `session` "
    "header. Answered like `DongBoHoSoMC` through /dvcqg/service.",
    openapi_extra=_lgsp_body(_RECORD_EXAMPLE),
)
async def lgsp_records(
    request: Request,
    session: DbSession,
    MaDinhDanhDV: UnitParam = None,
    isUpdating: Annotated[
        str | None, Query(max_length=8, description='"True" or "False" (informational)')
    ] = None,
    session_header: SessionHeader = None,
) -> Response:
    updating = _is_updating(isUpdating)
    if isinstance(updating, str):
        return malformed(updating, 'isUpdating must be "True" or "False"')
    unit = (MaDinhDanhDV or "").strip() or None

    async def run(caller: _Caller, records: object) -> Response:
        return await _records(request, session, caller, records, unit, updating, _BODY)

    return await _lgsp(request, session, session_header, run, _records_body)


@router.post(
    "/dvcqg/CapNhatTienDoHoSoMC",
    response_model=ServiceAnswer,
    responses=_TRANSPORT,
    summary="LGSP style: a bare array of CapNhatTienDoHoSoMC progress items",
    description="Authenticated by `Authorization: Bearer <key or session>` or a `session` "
    "header. Answered like `CapNhatTienDoHoSoMC` through /dvcqg/service.",
    openapi_extra=_lgsp_body(_PROGRESS_EXAMPLE),
)
async def lgsp_progress(
    request: Request,
    session: DbSession,
    MaDinhDanhDV: UnitParam = None,
    session_header: SessionHeader = None,
) -> Response:
    unit = (MaDinhDanhDV or "").strip() or None

    async def run(caller: _Caller, items: object) -> Response:
        return await _progress(request, session, caller, items, unit, _BODY)

    return await _lgsp(request, session, session_header, run)
