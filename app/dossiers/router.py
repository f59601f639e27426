"""HTTP endpoints for dossier events, dossiers and overdue lists."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import Headers
from starlette.types import Message, Send
from starlette.types import Scope as AsgiScope

from app.core import clock
from app.core.auth import Principal, Scope, require
from app.core.database import DbSession, request_session
from app.core.errors import Conflict, Forbidden, PayloadTooLarge, Unprocessable
from app.core.exports import EXPORT_CONTENT, ExportQuery
from app.core.pagination import CountedPage, Page, PageParams, page_params
from app.core.params import IsoDate, IsoDateTime
from app.core.prefer import REPRESENTATION_APPLIED, PreferHeader, wants_representation
from app.core.settings import Settings
from app.core.uow import committed
from app.dossiers import exports, intake, queries, service
from app.dossiers.schemas import (
    CODE_PATTERN,
    DOSSIER_CODE_PATTERN,
    MAX_BATCH,
    BatchResult,
    DossierEventIn,
    DossierEventOut,
    DossierOut,
    EventResult,
    OverdueCountsOut,
    OverdueList,
)
from app.indicators.periods import PeriodText
from app.units.service import require_unit

router = APIRouter(tags=["dossiers"])

Writer = Annotated[Principal, Depends(require(Scope.dossiers_write))]
Reader = Annotated[Principal, Depends(require(Scope.dossiers_read))]
CodePath = Annotated[str, Path(pattern=CODE_PATTERN)]
DossierPath = Annotated[str, Path(pattern=DOSSIER_CODE_PATTERN)]
UnitQuery = Annotated[str | None, Query(pattern=CODE_PATTERN)]
STATES = "pending|overdue|in_time|finished|early|on_time|late|not_counted"


_INSTANT = TypeAdapter(datetime | None)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def post_event(
    request: Request,
    principal: Writer,
    event: DossierEventIn,
    response: Response,
    prefer: PreferHeader = None,
) -> EventResult | Response:
    settings = _settings(request)
    if not wants_representation(prefer):
        # Checked, stored and queued by one statement in autocommit: committed on return.
        outcome = await service.ingest_one(request.app.state.direct, settings, principal, event)
        return _queued(event, outcome)
    async with request_session(request) as session:
        outcome, dossier = await _ingest_and_derive(request, session, settings, principal, event)
    said = _said(event, outcome)
    url = f"/v1/dossiers/{event.dossier_code}"
    response.headers.update(REPRESENTATION_APPLIED)
    response.headers["Location"] = url
    response.status_code = _DERIVED_STATUS[said]
    return EventResult(event_id=event.event_id, result=said, dossier_url=url, dossier=dossier)


def _said(event: DossierEventIn, outcome: service.Outcome) -> str:
    """``stored`` or ``duplicate``; a refused event raises its problem (403, 409, 422)."""
    _, _, result, errors, stored_at = outcome
    if result == "rejected":
        errors = errors or []
        if any(e["detail"] == service.OUTSIDE_SCOPE for e in errors):
            # A valid key writing outside its unit is refused, as everywhere: 403, not 422.
            raise Forbidden("This key is limited to its own unit and its subunits.", errors=errors)
        raise Unprocessable(errors[0]["detail"] if errors else None, errors=errors)
    if result == "conflict":
        raise Conflict(
            f"Event {event.event_id!r} of dossier {event.dossier_code!r} is already "
            "stored with other content; nothing was changed. Send a new event_id for a "
            "new event.",
            errors=errors,
            stored_at=_INSTANT.dump_python(stored_at, mode="json"),
        )
    return "duplicate" if result == "duplicate" else "stored"


def _queued(event: DossierEventIn, outcome: service.Outcome) -> Response:
    """The answer to an event stored and queued: EventResult without a dossier, encoded
    directly (nothing in it needs validating)."""
    said = _said(event, outcome)
    url = f"/v1/dossiers/{event.dossier_code}"
    body = {"event_id": event.event_id, "result": said, "dossier_url": url, "dossier": None}
    return Response(
        orjson.dumps(body),
        status_code=_QUEUED_STATUS[said],
        media_type="application/json",
        headers={"Location": url},
    )


async def event_lane(principal: Principal, scope: AsgiScope, body: bytes, send: Send) -> bool:
    """``POST /v1/dossier-events`` answered from the gate (``app.core.gate``), in the common
    case, below the layers, the routing and FastAPI's per-request machinery (dependency
    resolution, body validation, response encoding).

    The common case: a key with the ``dossiers:write`` scope, a JSON body that
    ``DossierEventIn`` accepts, no ``Prefer`` header. It is stored as :func:`post_event`
    would store it, and answered the same (a refusal raises its problem, answered by the
    app's handlers). Anything else is declined: the declared route answers it exactly as
    before."""
    if not principal.has(Scope.dossiers_write):
        return False
    event = _plain_event(Headers(scope=scope), body)
    if event is None:
        return False
    scope["route"] = EVENT_ROUTE  # what the access log and the metrics name
    app = scope["app"]
    outcome = await service.ingest_one(app.state.direct, app.state.settings, principal, event)
    await _queued(event, outcome)(scope, _no_body, send)
    return True


def _plain_event(headers: Headers, body: bytes) -> DossierEventIn | None:
    """The body as the declared route would read it, when nothing about the request asks for
    more than storing and queueing it; else None."""
    if "prefer" in headers or headers.get("content-type") != "application/json":
        return None
    try:
        return DossierEventIn.model_validate(orjson.loads(body))
    except (orjson.JSONDecodeError, ValidationError):
        return None


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


router.add_api_route(
    "/v1/dossier-events",
    post_event,
    methods=["POST"],
    response_model=EventResult,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Post one status event (202 stored, 200 duplicate; committed before answering)",
    responses={
        200: {"model": EventResult, "description": "Already stored: nothing changed"},
        201: {"model": EventResult, "description": "Stored, state derived (Prefer header)"},
        409: {"description": "This event_id is stored for the dossier with other content"},
    },
)
EVENT_ROUTE = router.routes[-1]


_QUEUED_STATUS = {"stored": status.HTTP_202_ACCEPTED, "duplicate": status.HTTP_200_OK}
_DERIVED_STATUS = {"stored": status.HTTP_201_CREATED, "duplicate": status.HTTP_200_OK}


async def _ingest_and_derive(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    event: DossierEventIn,
) -> tuple[service.Outcome, DossierOut | None]:
    """``Prefer: return=representation``: stored and derived in one transaction, the answer
    read in it too."""

    async def work() -> tuple[service.Outcome, DossierOut | None]:
        outcome = await service.ingest(
            session, settings, principal, [event], pointer_prefix=None, derive_now=True
        )
        if outcome.outcomes[0][2] in ("rejected", "conflict"):
            return outcome.outcomes[0], None
        dossier = await service.get_dossier(
            session, settings, principal, event.dossier_code, clock.now(request)
        )
        return outcome.outcomes[0], dossier

    return await committed(session, work, retries=settings.retry_conflicts)


@router.post(
    "/v1/dossier-events/batch",
    response_model=None,
    response_class=Response,
    summary=f"Post up to {MAX_BATCH:,} events; each item gets its own result",
    responses={
        200: {"model": BatchResult, "description": "One result per item"},
        413: {"description": f"More than {MAX_BATCH:,} events"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["events"],
                        # Items are checked one by one: a bad one is rejected in its result.
                        "properties": {
                            "events": {
                                "type": "array",
                                "items": {},
                                "maxItems": MAX_BATCH,
                                "description": "Events shaped like the body of POST "
                                "/v1/dossier-events (DossierEventIn); an item that is not is "
                                "`rejected` in its result, the others are stored. More than "
                                f"{MAX_BATCH:,}: 413.",
                            }
                        },
                    },
                    "example": {"events": []},
                }
            },
        }
    },
)
async def post_batch(
    request: Request,
    session: DbSession,
    principal: Writer,
    prefer: PreferHeader = None,
) -> Response:
    derive_now = wants_representation(prefer)
    settings = _settings(request)
    batch = intake.decode(await request.body(), settings.store_notes)
    if batch is None:  # not a batch msgspec reads whole: parsed as JSON, then item by item
        raw = await _json_body(request)
        raw = raw.get("events") if isinstance(raw, dict) else None
        if not isinstance(raw, list):
            raise Unprocessable(
                "`events` must be an array",
                errors=[{"pointer": "#/events", "detail": "must be an array of events"}],
            )
        if len(raw) > MAX_BATCH:
            raise PayloadTooLarge(f"A batch holds at most {MAX_BATCH:,} events; got {len(raw):,}.")
        batch = intake.read(raw, settings.store_notes)
    outcome = await committed(
        session,
        lambda: service.ingest_accepted(session, settings, principal, batch, derive_now=derive_now),
        retries=settings.retry_conflicts,
    )
    # Encoded directly: FastAPI would validate the 10,000 item results again first.
    headers = REPRESENTATION_APPLIED if derive_now else None
    return Response(
        intake.answer(outcome, derive_now), media_type="application/json", headers=headers
    )


async def _json_body(request: Request) -> Any:
    """The body parsed with orjson (several times faster than the stdlib parser on batches)."""
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise Unprocessable(
            "The body is not valid JSON.",
            errors=[{"pointer": "#", "detail": f"invalid JSON: {exc}"}],
        ) from None


@router.get("/v1/dossiers/{code}", response_model=DossierOut, summary="A dossier's state")
async def get_dossier(
    request: Request, session: DbSession, principal: Reader, code: DossierPath
) -> DossierOut:
    return await service.get_dossier(
        session, _settings(request), principal, code, clock.now(request)
    )


@router.get(
    "/v1/dossiers/{code}/events",
    response_model=Page[DossierEventOut],
    summary="A dossier's full history, in time order",
)
async def get_dossier_events(
    session: DbSession,
    principal: Reader,
    code: DossierPath,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[DossierEventOut]:
    after = page.after(queries.BY_TIME_AND_ID)
    items, next_cursor = await queries.dossier_events(session, principal, code, after, page.limit)
    return Page(items=items, next=next_cursor)


@router.get(
    "/v1/dossiers",
    response_model=CountedPage[DossierOut],
    summary="Dossiers of a unit's whole subtree, filtered",
    openapi_extra={"x-rules": ["`received_to` is not before `received_from` (422)"]},
)
async def list_dossiers(
    request: Request,
    session: DbSession,
    principal: Reader,
    page: Annotated[PageParams, Depends(page_params)],
    unit: UnitQuery = None,
    state: Annotated[str | None, Query(pattern=f"^({STATES})$")] = None,
    procedure: Annotated[str | None, Query(pattern=CODE_PATTERN)] = None,
    due_before: IsoDateTime | None = None,
    due_after: IsoDateTime | None = None,
    received_from: Annotated[
        IsoDate | None,
        Query(
            description="Received on or after this local date (dossiers without a receipt "
            "are left out)"
        ),
    ] = None,
    received_to: Annotated[
        IsoDate | None,
        Query(description="Received on or before this local date (included)"),
    ] = None,
    count: Annotated[
        bool,
        Query(
            description="Also answer `total`, how many dossiers the list holds in all its "
            "pages (one more statement: ask on the first page only)"
        ),
    ] = False,
) -> CountedPage[DossierOut]:
    settings = _settings(request)
    received_since, received_until = queries.received_between(settings, received_from, received_to)
    root = await queries.scope_root(session, principal, unit)
    after = page.after(queries.BY_CODE)
    narrowed = queries.DossierFilter(
        root=root, state=state, procedure=procedure, due_before=due_before, due_after=due_after,
        received_from=received_since, received_until=received_until,
    )  # fmt: skip
    items, next_cursor, total = await queries.dossiers(
        session, settings, narrowed, clock.now(request), after=after, limit=page.limit,
        count=count,
    )  # fmt: skip
    return CountedPage(items=items, next=next_cursor, total=total)


@router.get(
    "/v1/units/{code}/overdue",
    response_model=OverdueList,
    summary="Overdue dossiers of a unit and its subtree (format=csv|xlsx or Accept: every one "
    "as a file)",
    responses={200: {"content": EXPORT_CONTENT}},
)
async def get_overdue(
    request: Request,
    session: DbSession,
    principal: Reader,
    code: CodePath,
    page: Annotated[PageParams, Depends(page_params)],
    export: ExportQuery,
) -> Any:
    settings = _settings(request)
    root = await queries.unit_root(session, principal, code)
    now = clock.now(request)
    if export.format != "json":
        every = await queries.overdue_export(session, settings, root, now)
        return await exports.overdue_file(every, export, settings.timezone, root, now)
    after = page.after(queries.BY_DUE_TIME)
    items, next_cursor = await queries.overdue(
        session, settings, root, now, after=after, limit=page.limit
    )
    return OverdueList(
        unit_code=root,
        as_of=now,
        counts=await service.overdue_counts(session, settings, root, now),
        items=items,
        next=next_cursor,
    )


@router.get(
    "/v1/units/{code}/overdue-counts",
    response_model=OverdueCountsOut,
    summary="Overdue dossiers per unit of a subtree, now or at a period's end (public counts)",
)
async def get_overdue_counts(
    request: Request,
    session: DbSession,
    code: CodePath,
    period: Annotated[PeriodText | None, Query()] = None,
) -> OverdueCountsOut:
    settings = _settings(request)
    await require_unit(session, code)
    now = clock.now(request)
    at = now
    if period is not None:
        from app.indicators.periods import parse_period, window

        _, end = window(parse_period(period), ZoneInfo(settings.timezone))
        at = min(end, now)
    return await queries.overdue_counts_at(session, settings, code, at, period)


@router.get(
    "/v1/units/{code}/due-soon",
    response_model=Page[DossierOut],
    summary="Open dossiers of a unit's subtree due within the next N working hours",
)
async def get_due_soon(
    request: Request,
    session: DbSession,
    principal: Reader,
    code: CodePath,
    page: Annotated[PageParams, Depends(page_params)],
    hours: Annotated[int | None, Query(ge=1, le=400)] = None,
) -> Page[DossierOut]:
    root = await queries.unit_root(session, principal, code)
    after = page.after(queries.BY_DUE_TIME)
    items, next_cursor = await queries.due_soon(
        session, _settings(request), root, clock.now(request), hours=hours, after=after,
        limit=page.limit,
    )  # fmt: skip
    return Page(items=items, next=next_cursor)
