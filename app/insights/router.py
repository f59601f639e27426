"""HTTP endpoints: what-if planner and projections (public), integrity flags (dossier readers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response

from app.core import clock, language
from app.core.auth import Principal, Scope, require
from app.core.database import DbSession
from app.core.pagination import Page, PageParams, Text, page_params, paginate
from app.indicators.periods import MonthText, PeriodText, parse_period
from app.indicators.router import CurrentCatalog
from app.insights import integrity, projections, what_if
from app.insights.rules import RULE_CODES, Rules, shipped_rules
from app.insights.schemas import IntegrityFlagOut, ProjectionReportOut, ResolveIn, WhatIfOut
from app.keys.access import UnitAdmin
from app.units.schemas import UNIT_CODE_PATTERN
from app.units.service import ensure_admin_over


@asynccontextmanager
async def load_rules(app: FastAPI) -> AsyncIterator[None]:
    """Validate the integrity rules at start-up: a broken file stops the service."""
    app.state.integrity_rules = shipped_rules()
    yield


router = APIRouter(tags=["insights"], lifespan=load_rules)

Reader = Annotated[Principal, Depends(require(Scope.dossiers_read))]
CodePath = Annotated[str, Path(pattern=UNIT_CODE_PATTERN)]
PeriodQuery = Annotated[PeriodText, Query()]
MonthQuery = Annotated[MonthText, Query()]


def current_rules(request: Request) -> Rules:
    rules: Rules | None = getattr(request.app.state, "integrity_rules", None)
    return rules if rules is not None else shipped_rules()


CurrentRules = Annotated[Rules, Depends(current_rules)]


@router.get(
    "/v1/units/{code}/what-if",
    response_model=WhatIfOut,
    summary="The cheapest metric improvements that reach a grade, rank or score (public)",
)
async def get_what_if(
    request: Request,
    response: Response,
    session: DbSession,
    catalog: CurrentCatalog,
    code: CodePath,
    period: PeriodQuery,
    target: Annotated[
        str,
        Query(
            max_length=64,
            # Stated, and checked by the planner itself (its 422 says which part is wrong).
            json_schema_extra={"pattern": what_if.TARGET_PATTERN},
            examples=["grade:Tốt", "rank:10", "score:80"],
            description="`grade:` a grade band's name or code in the period's catalog (422 "
            "for an unknown one); `rank:` a whole number from 1; `score:` 0–100, at most two "
            "decimals",
        ),
    ],
) -> WhatIfOut:
    lang = language.of_request(request)
    out = await what_if.what_if(
        session, request.app.state.settings, catalog, code, parse_period(period), target,
        clock.now(request), lang,
    )  # fmt: skip
    response.headers.update(language.headers(lang))
    await session.commit()  # a period computed on first demand stays stored
    return out


@router.get(
    "/v1/units/{code}/projection",
    response_model=ProjectionReportOut,
    summary="Where a unit will land at month end, with a range; later beside the actual (public)",
    openapi_extra={"x-rules": ["the month has started (422 for a month still to come)"]},
)
async def get_projection(
    request: Request,
    response: Response,
    session: DbSession,
    catalog: CurrentCatalog,
    code: CodePath,
    period: MonthQuery,
) -> ProjectionReportOut:
    lang = language.of_request(request)
    report = await projections.projection_report(
        session, request.app.state.settings, catalog, code, parse_period(period),
        clock.now(request), lang,
    )  # fmt: skip
    response.headers.update(language.headers(lang))
    await session.commit()  # a period computed on first demand stays stored
    return report


@router.get(
    "/v1/units/{code}/integrity",
    response_model=Page[IntegrityFlagOut],
    summary="Data-integrity flags of a unit's subtree with their dossiers (dossiers:read)",
)
async def get_integrity(
    session: DbSession,
    principal: Reader,
    rules: CurrentRules,
    code: CodePath,
    period: PeriodQuery,
    page: Annotated[PageParams, Depends(page_params)],
    status: Literal["open", "resolved"] | None = None,
) -> Page[IntegrityFlagOut]:
    # (period, unit code, rule): the widths of their columns.
    after = page.after((Text(max_length=16), Text(max_length=64), Text(max_length=48)))
    flags = await integrity.integrity_flags(
        session, principal, rules, code, parse_period(period),
        status=status, after=after, limit=page.limit,
    )  # fmt: skip
    items, next_cursor = paginate(flags, page.limit, lambda f: [f.period, f.unit_code, f.rule])
    return Page(items=items, next=next_cursor)


@router.post(
    "/v1/units/{code}/integrity/{rule}/resolve",
    response_model=IntegrityFlagOut,
    summary="Mark a flag reviewed and resolved, with a note (admin; a unit-bound admin: in "
    "its subtree)",
)
async def resolve_flag(
    request: Request,
    session: DbSession,
    admin: UnitAdmin,
    rules: CurrentRules,
    code: CodePath,
    rule: Annotated[str, Path(pattern="^(" + "|".join(RULE_CODES) + ")$")],
    body: ResolveIn,
) -> IntegrityFlagOut:
    await ensure_admin_over(session, admin, code)
    flag = await integrity.resolve_flag(
        session, rules, code, rule, parse_period(body.period), admin.name, body.note,
        clock.now(request),
    )  # fmt: skip
    await session.commit()
    return flag
